//! The registry's record of `migrate` runs: one running at a time, its waves, each company's outcome, and what `migrate status` reads.
//!
//! A run is `running` while its process lives (it raises `updated_at`
//! every [`HEARTBEAT`]); one whose heartbeat is older than [`STALE`] was
//! killed and counts as stopped, so `--resume` can continue it. A partial
//! unique index keeps a second run from starting while one is running.
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr,
    EntityTrait, QueryFilter, QueryOrder, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::ssr::entities::{
    migration_run_companies::{self as run_companies, CompanyOutcome},
    migration_runs::{self as runs, RunState},
    tenants,
};
use crate::ssr::tenancy::connections::conn::is_unique_violation;

/// How often a running run says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A running run not heard from for this long is presumed dead.
pub const STALE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "another migrate run is under way (started {0}); wait for it, or for a minute after \
         its process died"
    )]
    AlreadyRunning(DateTime<Utc>),
    #[error("there is no stopped migrate run to resume")]
    NothingToResume,
    #[error("cannot record the run in the registry")]
    Registry(#[from] DbErr),
}

/// How a new run was asked for, as recorded.
pub struct NewRun<'a> {
    pub target: &'a str,
    pub canary: Option<String>,
    pub growth: f64,
    pub parallel: usize,
    pub abort_rate: f64,
}

/// Records a new run and its plan (`waves` of (company id, subdomain)), or
/// refuses while another is running. A run found dead is marked stopped
/// first; stopped runs are superseded by this one.
pub async fn start(
    db: &DatabaseConnection,
    new: NewRun<'_>,
    waves: &[Vec<(Uuid, String)>],
) -> Result<Uuid, RunError> {
    let txn = db.begin().await?;
    mark_dead_stopped(&txn).await?;
    runs::Entity::update_many()
        .col_expr(runs::Column::State, Expr::value(RunState::Superseded))
        .filter(runs::Column::State.eq(RunState::Stopped))
        .exec(&txn)
        .await?;
    let id = Uuid::new_v4();
    let now = Utc::now();
    let inserted = runs::ActiveModel {
        id: Set(id),
        state: Set(RunState::Running),
        target: Set(new.target.to_owned()),
        canary: Set(new.canary),
        growth: Set(new.growth),
        parallel: Set(new.parallel as i32),
        abort_rate: Set(new.abort_rate),
        waves: Set(waves.len() as i32),
        wave: Set(0),
        stop_reason: Set(None),
        started_at: Set(now),
        updated_at: Set(now),
        finished_at: Set(None),
    }
    .insert(&txn)
    .await;
    if let Err(e) = inserted {
        drop(txn);
        return Err(if is_unique_violation(&e) {
            running_since(db).await?
        } else {
            e.into()
        });
    }
    let rows: Vec<run_companies::ActiveModel> = waves
        .iter()
        .enumerate()
        .flat_map(|(k, wave)| {
            wave.iter()
                .map(move |(tenant, subdomain)| run_companies::ActiveModel {
                    run_id: Set(id),
                    tenant_id: Set(*tenant),
                    subdomain: Set(subdomain.clone()),
                    wave: Set(k as i32 + 1),
                    outcome: Set(CompanyOutcome::Pending),
                    reached: Set(None),
                    error: Set(None),
                    sqlstate: Set(None),
                    started_at: Set(None),
                    finished_at: Set(None),
                })
        })
        .collect();
    // SQLite takes at most 32,766 parameters in a statement: 10 a row.
    for chunk in rows.chunks(500) {
        run_companies::Entity::insert_many(chunk.to_vec())
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(id)
}

/// The `AlreadyRunning` refusal, naming when the running run began.
async fn running_since(db: &DatabaseConnection) -> Result<RunError, DbErr> {
    let running = runs::Entity::find()
        .filter(runs::Column::State.eq(RunState::Running))
        .one(db)
        .await?;
    Ok(RunError::AlreadyRunning(
        running.map_or_else(Utc::now, |r| r.started_at),
    ))
}

/// Runs whose process stopped saying it is alive: stopped.
async fn mark_dead_stopped(db: &impl ConnectionTrait) -> Result<(), DbErr> {
    let dead_before = Utc::now() - chrono::Duration::from_std(STALE).expect("small");
    runs::Entity::update_many()
        .col_expr(runs::Column::State, Expr::value(RunState::Stopped))
        .col_expr(
            runs::Column::StopReason,
            Expr::value("its process stopped without finishing (killed, or the machine went down)"),
        )
        .filter(runs::Column::State.eq(RunState::Running))
        .filter(runs::Column::UpdatedAt.lt(dead_before))
        .exec(db)
        .await?;
    Ok(())
}

/// A stopped run, taken up again, and the companies it had planned.
pub struct Resumed {
    pub run: runs::Model,
    pub companies: Vec<run_companies::Model>,
}

/// Takes up the latest stopped run (or one found dead) to continue it.
pub async fn resume(db: &DatabaseConnection) -> Result<Resumed, RunError> {
    let txn = db.begin().await?;
    mark_dead_stopped(&txn).await?;
    let Some(run) = runs::Entity::find()
        .filter(runs::Column::State.eq(RunState::Stopped))
        .order_by_desc(runs::Column::StartedAt)
        .one(&txn)
        .await?
    else {
        drop(txn);
        let running = runs::Entity::find()
            .filter(runs::Column::State.eq(RunState::Running))
            .one(db)
            .await?;
        return Err(match running {
            Some(r) => RunError::AlreadyRunning(r.started_at),
            None => RunError::NothingToResume,
        });
    };
    let claimed = runs::Entity::update_many()
        .col_expr(runs::Column::State, Expr::value(RunState::Running))
        .col_expr(
            runs::Column::StopReason,
            Expr::value(Option::<String>::None),
        )
        .col_expr(runs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(runs::Column::Id.eq(run.id))
        .filter(runs::Column::State.eq(RunState::Stopped))
        .exec(&txn)
        .await;
    match claimed {
        Ok(r) if r.rows_affected == 1 => {}
        Ok(_) => return Err(RunError::NothingToResume),
        Err(e) if is_unique_violation(&e) => {
            drop(txn);
            return Err(running_since(db).await?);
        }
        Err(e) => return Err(e.into()),
    }
    let companies = run_companies::Entity::find()
        .filter(run_companies::Column::RunId.eq(run.id))
        .order_by_asc(run_companies::Column::Wave)
        .order_by_asc(run_companies::Column::Subdomain)
        .all(&txn)
        .await?;
    txn.commit().await?;
    Ok(Resumed { run, companies })
}

/// Says the run is alive every [`HEARTBEAT`] until the guard is dropped.
pub fn heartbeat(db: &DatabaseConnection, run: Uuid) -> tokio::task::JoinHandle<()> {
    let db = db.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(HEARTBEAT);
        loop {
            every.tick().await;
            let beat = runs::Entity::update_many()
                .col_expr(runs::Column::UpdatedAt, Expr::value(Utc::now()))
                .filter(runs::Column::Id.eq(run))
                .exec(&db)
                .await;
            if let Err(e) = beat {
                tracing::warn!(error = %crate::ssr::http::error_chain(&e), "migrate: heartbeat not recorded");
            }
        }
    })
}

/// The run has started wave `k` (from 1).
pub async fn enter_wave(db: &DatabaseConnection, run: Uuid, k: usize) -> Result<(), DbErr> {
    runs::Entity::update_many()
        .col_expr(runs::Column::Wave, Expr::value(k as i32))
        .col_expr(runs::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(runs::Column::Id.eq(run))
        .exec(db)
        .await
        .map(|_| ())
}

/// What became of one company in a run.
pub struct CompanyDone {
    pub outcome: CompanyOutcome,
    pub reached: Option<String>,
    pub error: Option<String>,
    pub sqlstate: Option<String>,
    pub started_at: DateTime<Utc>,
}

pub async fn company_done(
    db: &impl ConnectionTrait,
    run: Uuid,
    tenant: Uuid,
    done: CompanyDone,
) -> Result<(), DbErr> {
    run_companies::Entity::update_many()
        .col_expr(run_companies::Column::Outcome, Expr::value(done.outcome))
        .col_expr(run_companies::Column::Reached, Expr::value(done.reached))
        .col_expr(run_companies::Column::Error, Expr::value(done.error))
        .col_expr(run_companies::Column::Sqlstate, Expr::value(done.sqlstate))
        .col_expr(
            run_companies::Column::StartedAt,
            Expr::value(done.started_at),
        )
        .col_expr(run_companies::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(run_companies::Column::RunId.eq(run))
        .filter(run_companies::Column::TenantId.eq(tenant))
        .exec(db)
        .await
        .map(|_| ())
}

/// The run ends: `Finished`, or `Stopped` with its reason.
pub async fn end(db: &DatabaseConnection, run: Uuid, stopped: Option<String>) -> Result<(), DbErr> {
    let state = if stopped.is_some() {
        RunState::Stopped
    } else {
        RunState::Finished
    };
    let now = Utc::now();
    runs::Entity::update_many()
        .col_expr(runs::Column::State, Expr::value(state))
        .col_expr(runs::Column::StopReason, Expr::value(stopped))
        .col_expr(runs::Column::UpdatedAt, Expr::value(now))
        .col_expr(
            runs::Column::FinishedAt,
            Expr::value(if state == RunState::Finished {
                Some(now)
            } else {
                None
            }),
        )
        .filter(runs::Column::Id.eq(run))
        .exec(db)
        .await
        .map(|_| ())
}

/// Where the fleet stands: `migrate status`.
pub struct Status {
    /// The latest run, and its companies' outcomes.
    pub last_run: Option<(runs::Model, Vec<run_companies::Model>)>,
    /// Active and paused companies by recorded schema version, most first.
    pub versions: Vec<(String, usize)>,
    /// Active and paused companies not at `latest` (subdomain, version).
    pub behind: Vec<(String, String)>,
    /// Companies whose last migration failed (subdomain, error).
    pub failed: Vec<(String, String)>,
}

pub async fn status(db: &DatabaseConnection, latest: &str) -> Result<Status, DbErr> {
    let last = runs::Entity::find()
        .order_by_desc(runs::Column::StartedAt)
        .one(db)
        .await?;
    let last_run = match last {
        Some(run) => {
            let companies = run_companies::Entity::find()
                .filter(run_companies::Column::RunId.eq(run.id))
                .order_by_asc(run_companies::Column::Wave)
                .order_by_asc(run_companies::Column::Subdomain)
                .all(db)
                .await?;
            Some((run, companies))
        }
        None => None,
    };
    let served: Vec<tenants::Model> = crate::ssr::tenancy::request::directory::list(db)
        .await?
        .into_iter()
        .filter(|t| {
            matches!(
                t.status,
                tenants::TenantStatus::Active | tenants::TenantStatus::Paused
            )
        })
        .collect();
    let mut versions = std::collections::BTreeMap::<String, usize>::new();
    for t in &served {
        *versions
            .entry(t.schema_version.clone().unwrap_or_else(|| "(none)".into()))
            .or_default() += 1;
    }
    let mut versions: Vec<_> = versions.into_iter().collect();
    versions.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Status {
        last_run,
        versions,
        behind: served
            .iter()
            .filter(|t| t.schema_version.as_deref() != Some(latest))
            .map(|t| {
                (
                    t.subdomain.clone(),
                    t.schema_version.clone().unwrap_or_else(|| "(none)".into()),
                )
            })
            .collect(),
        failed: served
            .iter()
            .filter_map(|t| Some((t.subdomain.clone(), t.last_migration_error.clone()?)))
            .collect(),
    })
}
