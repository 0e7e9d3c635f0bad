//! `migrate`: every company database to the latest tenant schema, bounded in parallel.
//!
//! Tenants run in parallel (bounded), each on one short-lived connection.
//! First, every PostgreSQL server's company roles are given the limits of
//! the settings (statement and idle-transaction time, connections).
//! A failing tenant is recorded and skipped past; tenants whose recorded
//! `schema_version` is already the latest are not even connected to, so a
//! re-run touches only those still behind.
use std::{
    collections::{HashMap, HashSet},
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use migration::{MigratorTrait, TenantMigrator};
use sea_orm::{ActiveModelTrait, Database, DatabaseConnection, DbErr, Set};
use secrecy::SecretString;
use tokio::{sync::Semaphore, task::JoinSet};

use super::runs::{self, CompanyDone, NewRun, RunError};
use super::waves::{self, Canary, Candidate, WaveError, WaveOptions};
use crate::domain::Subdomain;
use crate::ssr::entities::migration_run_companies::CompanyOutcome;
use crate::ssr::entities::tenants::{self, TenantStatus};
use crate::ssr::http::error_chain;
use crate::ssr::secrets::CipherError;
use crate::ssr::services::Services;
use crate::ssr::tenancy::connections::conn::sqlstate;
use crate::ssr::tenancy::servers::databases::once_options;
use crate::ssr::tenancy::{request::directory, servers::fleet};

#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Companies migrated at once on each database server (each holds one
    /// connection): `--parallel`.
    pub concurrency: usize,
    /// Only this tenant.
    pub only: Option<Subdomain>,
    /// List what is pending; change nothing.
    pub dry_run: bool,
    /// In waves, stopped by their own failures; `None`: every company in
    /// one wave, never stopped (as before waves existed).
    pub waves: Option<WaveOptions>,
    /// Continue the stopped run instead of planning a new one.
    pub resume: bool,
    /// Each company's migration waits at most this long for a lock and
    /// runs no statement longer than that.
    pub guards: Guards,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        Self {
            concurrency: 8,
            only: None,
            dry_run: false,
            waves: None,
            resume: false,
            guards: Guards::default(),
        }
    }
}

/// The limits of one company's migration: `lock_timeout` and
/// `statement_timeout` on PostgreSQL (above the company role's own
/// statement limit, which is for requests); on SQLite, the busy timeout
/// and an interrupt once the statement limit has passed since the step began.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Guards {
    pub lock_timeout: Duration,
    pub statement_timeout: Duration,
}

impl Default for Guards {
    fn default() -> Self {
        Self {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(600),
        }
    }
}

#[derive(Clone, Debug)]
pub enum Outcome {
    /// These migrations were applied.
    Migrated(Vec<String>),
    /// Nothing to do.
    Current,
    /// Dry run: these would be applied.
    Pending(Vec<String>),
    Failed(Arc<TenantMigrationError>),
}

/// Two outcomes are equal when they say the same; failures, when their
/// messages (cause chains included) read the same.
impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Migrated(a), Self::Migrated(b)) | (Self::Pending(a), Self::Pending(b)) => a == b,
            (Self::Current, Self::Current) => true,
            (Self::Failed(a), Self::Failed(b)) => error_chain(&**a) == error_chain(&**b),
            _ => false,
        }
    }
}

/// Why one company could not be migrated.
#[derive(Debug, thiserror::Error)]
pub enum TenantMigrationError {
    #[error("no database URL recorded")]
    NoUrl,
    #[error(
        "its schema ({0}) is newer than this binary knows: run migrate with the newer release"
    )]
    Newer(String),
    #[error("the stored database URL")]
    Cipher(#[from] CipherError),
    #[error("the company's database")]
    Db(#[from] DbErr),
    #[error("migrated, but the registry could not record it")]
    Record(#[source] DbErr),
    #[error("the migration task failed")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Clone, Debug)]
pub struct TenantResult {
    pub subdomain: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub results: Vec<TenantResult>,
    pub elapsed: Duration,
    /// The run as recorded in the registry (none for a dry run, or when no
    /// company was behind).
    pub run: Option<uuid::Uuid>,
    /// Waves planned, and the last one run.
    pub waves: usize,
    pub wave: usize,
    /// Why the run stopped before its last wave.
    pub stopped: Option<String>,
    /// Companies of the waves after the stop, not touched.
    pub untouched: usize,
}

impl Summary {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }
    pub fn migrated(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Migrated(_)))
    }
    pub fn current(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Current))
    }
    pub fn pending(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pending(_)))
    }
    /// The companies that failed, each with its error's cause chain.
    pub fn failed(&self) -> impl Iterator<Item = (&str, String)> {
        self.results.iter().filter_map(|r| match &r.outcome {
            Outcome::Failed(e) => Some((r.subdomain.as_str(), error_chain(&**e))),
            _ => None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read the registry")]
    Registry(#[from] DbErr),
    #[error("no company has the subdomain '{0}'")]
    UnknownTenant(String),
    #[error("cannot list the database servers")]
    Servers(#[from] fleet::FleetError),
    #[error("cannot set the company roles' limits on server '{0}'")]
    Limits(String, #[source] DbErr),
    #[error("cannot measure the companies' sizes on server '{0}'")]
    Sizes(String, #[source] DbErr),
    #[error(transparent)]
    Waves(#[from] WaveError),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// What a run would do, changing nothing (`--plan`).
#[derive(Debug, Default)]
pub struct Plan {
    /// Each wave: its companies, each with the migrations it would get
    /// (from the version the registry records; all of them when none).
    pub waves: Vec<Vec<(String, Vec<String>)>>,
    /// Companies already at the latest migration.
    pub current: usize,
}

/// The name of `M`'s newest migration: what an up-to-date tenant records.
pub fn latest<M: MigratorTrait>() -> String {
    M::migrations()
        .last()
        .map(|m| m.name().to_owned())
        .unwrap_or_default()
}

/// The tenant migration a freshly provisioned database is at.
pub fn latest_tenant_schema() -> String {
    latest::<TenantMigrator>()
}

/// Where a recorded tenant schema stands: (its place in the migration
/// list, counting from 1; the list's length), for people to read.
/// The directory asks it of every company it reads, so the names are
/// listed once per process, not built anew each time.
pub fn tenant_schema_position(name: &str) -> Option<(usize, usize)> {
    static NAMES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let all = NAMES.get_or_init(|| {
        TenantMigrator::migrations()
            .iter()
            .map(|m| m.name().to_owned())
            .collect()
    });
    all.iter()
        .position(|m| m == name)
        .map(|i| (i + 1, all.len()))
}

/// Whether `t`'s recorded schema is `latest` with no failure since.
fn is_current(t: &tenants::Model, latest: &str) -> bool {
    t.schema_version.as_deref() == Some(latest) && t.last_migration_error.is_none()
}

/// The active and paused companies (or only `opts.only`), and whether the
/// canary names only such companies.
fn candidates(
    every: &[tenants::Model],
    opts: &MigrateOptions,
) -> Result<Vec<tenants::Model>, MigrateError> {
    let mut served: Vec<tenants::Model> = every
        .iter()
        .filter(|t| matches!(t.status, TenantStatus::Active | TenantStatus::Paused))
        .cloned()
        .collect();
    if let Some(Canary::Named(names)) = opts.waves.as_ref().map(|w| &w.canary) {
        if let Some(unknown) = names
            .iter()
            .find(|n| !served.iter().any(|t| t.subdomain == n.as_str()))
        {
            return Err(WaveError::UnknownCanary(unknown.to_string()).into());
        }
    }
    if let Some(only) = &opts.only {
        served.retain(|t| t.subdomain == only.as_str());
        if served.is_empty() {
            return Err(MigrateError::UnknownTenant(only.to_string()));
        }
    }
    Ok(served)
}

/// The companies behind `latest`, in waves: by `opts.waves` (measuring
/// their sizes), or all in one.
async fn divide_into_waves(
    services: &Services,
    behind: Vec<tenants::Model>,
    opts: &MigrateOptions,
) -> Result<Vec<Vec<tenants::Model>>, MigrateError> {
    let Some(w) = &opts.waves else {
        return Ok(if behind.is_empty() {
            vec![]
        } else {
            vec![behind]
        });
    };
    let fleet = services.provisioner.fleet();
    let mut by_server: HashMap<String, Vec<uuid::Uuid>> = HashMap::new();
    for t in &behind {
        by_server
            .entry(
                t.db_server
                    .clone()
                    .unwrap_or_else(|| fleet::FIRST.to_owned()),
            )
            .or_default()
            .push(t.id);
    }
    let mut sizes = HashMap::new();
    for (name, ids) in by_server {
        let server = fleet.server(Some(&name)).await?;
        sizes.extend(
            server
                .sizes(&ids)
                .await
                .map_err(|e| MigrateError::Sizes(name.clone(), e))?,
        );
    }
    let candidates = behind
        .into_iter()
        .map(|t| Candidate {
            size: sizes.get(&t.id).copied(),
            subdomain: t.subdomain.clone(),
            item: t,
        })
        .collect();
    Ok(waves::divide(candidates, &w.canary, &w.labelled, w.growth))
}

/// The migrations of `M` after `version` (all of them when it is none or
/// unknown).
fn pending_after<M: MigratorTrait>(version: Option<&str>) -> Vec<String> {
    let names: Vec<String> = M::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    match version.and_then(|v| names.iter().position(|n| n == v)) {
        Some(at) => names[at + 1..].to_vec(),
        None => names,
    }
}

/// What a run with `opts` would do, from what the registry records,
/// without connecting to any company or changing anything.
pub async fn plan<M: MigratorTrait>(
    services: &Services,
    opts: &MigrateOptions,
) -> Result<Plan, MigrateError> {
    let latest = latest::<M>();
    let every = directory::list(&services.registry).await?;
    let (current, behind): (Vec<_>, Vec<_>) = candidates(&every, opts)?
        .into_iter()
        .partition(|t| is_current(t, &latest));
    let waves = divide_into_waves(services, behind, opts).await?;
    Ok(Plan {
        current: current.len(),
        waves: waves
            .into_iter()
            .map(|wave| {
                wave.into_iter()
                    .map(|t| {
                        let pending = pending_after::<M>(t.schema_version.as_deref());
                        (t.subdomain, pending)
                    })
                    .collect()
            })
            .collect(),
    })
}

/// Migrates every active or paused tenant (or `opts.only`) with `M`,
/// calling `progress` as each finishes. `total` is reported first.
/// `opts.concurrency` companies at a time on each database server, the
/// servers in parallel; wave after wave when `opts.waves` asks, stopping
/// after a wave whose share of failures passes the abort rate. Each run and
/// each company's outcome is recorded in the registry ([`runs`]), unless
/// it is a dry run.
pub async fn migrate_tenants<M: MigratorTrait + 'static>(
    services: &Services,
    opts: &MigrateOptions,
    mut total: impl FnMut(usize),
    mut progress: impl FnMut(&TenantResult),
) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let latest = latest::<M>();
    let every: Vec<tenants::Model> = directory::list(&services.registry).await?;
    let mut summary = Summary::default();
    let (waves, abort_rate) = if opts.resume {
        // The stopped run's plan: each company not done yet, in its wave.
        let resumed = runs::resume(&services.registry).await?;
        let mut waves: Vec<Vec<tenants::Model>> = vec![vec![]; resumed.run.waves.max(0) as usize];
        for c in resumed.companies {
            let not_done = matches!(c.outcome, CompanyOutcome::Pending | CompanyOutcome::Failed);
            let t = every.iter().find(|t| t.id == c.tenant_id);
            if let (true, Some(t), Some(wave)) = (not_done, t, waves.get_mut(c.wave as usize - 1)) {
                wave.push(t.clone());
            }
        }
        summary.run = Some(resumed.run.id);
        (waves, resumed.run.abort_rate)
    } else {
        let (current, behind): (Vec<_>, Vec<_>) = candidates(&every, opts)?
            .into_iter()
            .partition(|t| is_current(t, &latest));
        for t in current {
            let r = TenantResult {
                subdomain: t.subdomain,
                outcome: Outcome::Current,
                elapsed: Duration::ZERO,
            };
            progress(&r);
            summary.results.push(r);
        }
        let waves = divide_into_waves(services, behind, opts).await?;
        if !opts.dry_run && !waves.is_empty() {
            let plan: Vec<Vec<(uuid::Uuid, String)>> = waves
                .iter()
                .map(|w| w.iter().map(|t| (t.id, t.subdomain.clone())).collect())
                .collect();
            let w = opts.waves.as_ref();
            let new = NewRun {
                target: &latest,
                canary: w.map(|w| w.canary.to_string()),
                growth: w.map_or(1.0, |w| w.growth),
                parallel: opts.concurrency,
                abort_rate: w.map_or(1.0, |w| w.abort_rate),
            };
            summary.run = Some(runs::start(&services.registry, new, &plan).await?);
        }
        (waves, opts.waves.as_ref().map_or(1.0, |w| w.abort_rate))
    };
    summary.waves = waves.len();
    total(summary.results.len() + waves.iter().map(Vec::len).sum::<usize>());
    let heartbeat = summary
        .run
        .map(|run| AbortOnDrop(runs::heartbeat(&services.registry, run)));

    let fleet = services.provisioner.fleet();
    let servers: HashSet<String> = fleet.list().await?.into_iter().map(|s| s.name).collect();
    // Roles made before the limits were set (or changed) get them now.
    if !opts.dry_run {
        for name in &servers {
            let server = fleet.server(Some(name)).await?;
            let on_it = every
                .iter()
                .filter(|t| t.db_server.as_deref().unwrap_or(fleet::FIRST) == name)
                .map(|t| t.id)
                .collect::<Vec<_>>();
            let set = server
                .apply_limits(on_it)
                .await
                .map_err(|e| MigrateError::Limits(name.clone(), e))?;
            tracing::debug!(server = %name, roles = set, "company role limits set");
        }
    }
    let run = Wave {
        services,
        servers: &servers,
        latest: &latest,
        run: summary.run,
        opts,
    };
    let mut waves = waves.into_iter().enumerate().peekable();
    while let Some((k, wave)) = waves.next() {
        summary.wave = k + 1;
        if wave.is_empty() {
            continue;
        }
        if let Some(id) = summary.run {
            runs::enter_wave(&services.registry, id, k + 1).await?;
        }
        let tried = wave.len();
        let results = run.migrate::<M>(wave, &mut progress).await;
        let failed = results
            .iter()
            .filter(|r| matches!(r.outcome, Outcome::Failed(_)))
            .count();
        summary.results.extend(results);
        let last = waves.peek().is_none();
        if !last && failed as f64 / tried as f64 > abort_rate {
            summary.untouched = waves.map(|(_, w)| w.len()).sum();
            summary.stopped = Some(format!(
                "wave {} of {}: {failed} of {tried} companies failed, more than the abort rate \
                 ({abort_rate}); {} companies in later waves not touched",
                k + 1,
                summary.waves,
                summary.untouched
            ));
            break;
        }
    }
    drop(heartbeat);
    if let Some(id) = summary.run {
        runs::end(&services.registry, id, summary.stopped.clone()).await?;
    }
    for r in &summary.results {
        services.metrics.migrated(match r.outcome {
            Outcome::Migrated(_) => "migrated",
            Outcome::Current => "current",
            Outcome::Pending(_) => "pending",
            Outcome::Failed(_) => "failed",
        });
    }
    summary
        .results
        .sort_by(|a, b| a.subdomain.cmp(&b.subdomain));
    summary.elapsed = started.elapsed();
    Ok(summary)
}

/// Ends a background task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What every company of a run's waves is migrated with.
struct Wave<'a> {
    services: &'a Services,
    servers: &'a HashSet<String>,
    latest: &'a str,
    run: Option<uuid::Uuid>,
    opts: &'a MigrateOptions,
}

impl Wave<'_> {
    /// Migrates `wave`, `concurrency` at a time on each server; returns
    /// when every one has finished.
    async fn migrate<M: MigratorTrait + 'static>(
        &self,
        wave: Vec<tenants::Model>,
        progress: &mut impl FnMut(&TenantResult),
    ) -> Vec<TenantResult> {
        let mut per_server: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let mut running = JoinSet::new();
        for t in wave {
            // The company's server, as `Fleet::server` reads its row.
            let server = t
                .db_server
                .clone()
                .filter(|name| self.servers.contains(name))
                .unwrap_or_else(|| fleet::FIRST.to_owned());
            let permits = per_server
                .entry(server)
                .or_insert_with(|| Arc::new(Semaphore::new(self.opts.concurrency.max(1))))
                .clone();
            let (services, latest) = (self.services.clone(), self.latest.to_owned());
            let (dry_run, guards, run) = (self.opts.dry_run, self.opts.guards, self.run);
            running.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("never closed");
                let started = Instant::now();
                let outcome = migrate_one::<M>(&services, &t, dry_run, guards, &latest, run).await;
                TenantResult {
                    subdomain: t.subdomain,
                    outcome,
                    elapsed: started.elapsed(),
                }
            });
        }
        let mut results = Vec::new();
        while let Some(done) = running.join_next().await {
            let r = done.unwrap_or_else(|e| TenantResult {
                subdomain: "?".into(),
                outcome: Outcome::Failed(Arc::new(e.into())),
                elapsed: Duration::ZERO,
            });
            progress(&r);
            results.push(r);
        }
        results
    }
}

/// Connects to a company's database for its migration, with `guards`.
async fn connect_guarded(url: &SecretString, guards: Guards) -> Result<DatabaseConnection, DbErr> {
    let mut opts = once_options(url);
    let (lock, statement) = (
        guards.lock_timeout.as_millis(),
        guards.statement_timeout.as_millis(),
    );
    // Startup options: above the role's own `statement_timeout`.
    opts.map_sqlx_postgres_opts(move |o| {
        o.options([("lock_timeout", lock), ("statement_timeout", statement)])
    });
    let busy = guards.lock_timeout;
    opts.map_sqlx_sqlite_opts(move |o| o.busy_timeout(busy));
    Database::connect(opts).await
}

/// SQLite has no `statement_timeout`: its one connection is interrupted
/// (SQLITE_INTERRUPT, code 9) once `limit` has passed since the company's
/// migration began, so on SQLite the limit holds for its whole step.
async fn limit_sqlite_time(db: &DatabaseConnection, limit: Duration) -> Result<(), DbErr> {
    if db.get_database_backend() != sea_orm::DbBackend::Sqlite {
        return Ok(());
    }
    let sqlx_err = |e: sea_orm::sqlx::Error| DbErr::Conn(sea_orm::RuntimeErr::SqlxError(e.into()));
    // The pool holds one connection: the one the migration runs on next.
    let mut conn = db
        .get_sqlite_connection_pool()
        .acquire()
        .await
        .map_err(sqlx_err)?;
    let deadline = Instant::now() + limit;
    conn.lock_handle()
        .await
        .map_err(sqlx_err)?
        .set_progress_handler(1_000, move || Instant::now() < deadline);
    Ok(())
}

async fn migrate_one<M: MigratorTrait>(
    services: &Services,
    t: &tenants::Model,
    dry_run: bool,
    guards: Guards,
    latest: &str,
    run: Option<uuid::Uuid>,
) -> Outcome {
    let started_at = Utc::now();
    // What its database has, after its step (`None`: not read).
    let mut reached: Option<String> = None;
    let attempt = async {
        if let Some(v) = t.schema_version.as_deref() {
            if !M::migrations().iter().any(|m| m.name() == v) {
                return Err(TenantMigrationError::Newer(v.to_owned()));
            }
        }
        let url = services
            .directory
            .connection_url(t)?
            .ok_or(TenantMigrationError::NoUrl)?;
        let db = connect_guarded(&url, guards).await?;
        let result = async {
            limit_sqlite_time(&db, guards.statement_timeout).await?;
            let pending: Vec<String> = M::get_pending_migrations(&db)
                .await?
                .iter()
                .map(|m| m.name().to_owned())
                .collect();
            if pending.is_empty() || dry_run {
                return Ok(pending);
            }
            M::up(&db, None).await?;
            Ok::<_, DbErr>(pending)
        }
        .await;
        if result.is_err() {
            // Each migration commits on its own: some may have.
            reached = M::get_applied_migrations(&db)
                .await
                .ok()
                .and_then(|applied| applied.last().map(|m| m.name().to_owned()));
        }
        let _ = db.close().await;
        Ok::<_, TenantMigrationError>(result?)
    };
    let outcome = match attempt.await {
        Ok(pending) if dry_run && !pending.is_empty() => return Outcome::Pending(pending),
        Ok(pending) if pending.is_empty() => Outcome::Current,
        Ok(applied) => Outcome::Migrated(applied),
        Err(e) => Outcome::Failed(Arc::new(e)),
    };
    if dry_run {
        return outcome;
    }
    let mut row = tenants::ActiveModel {
        id: Set(t.id),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    let (error, sqlstate) = match &outcome {
        Outcome::Failed(e) => {
            let error: String = error_chain(&**e).chars().take(2000).collect();
            row.last_migration_error = Set(Some(error.clone()));
            if reached.is_some() {
                row.schema_version = Set(reached.clone());
            }
            let sqlstate = match &**e {
                TenantMigrationError::Db(db) => sqlstate(db),
                _ => None,
            };
            (Some(error), sqlstate)
        }
        _ => {
            reached = Some(latest.to_owned());
            row.schema_version = Set(reached.clone());
            row.last_migration_error = Set(None);
            (None, None)
        }
    };
    // A company a newer release migrated keeps that release's record: this
    // binary's failure says nothing about it.
    let newer =
        matches!(&outcome, Outcome::Failed(e) if matches!(**e, TenantMigrationError::Newer(_)));
    if !newer {
        if let Err(e) = row.update(&services.registry).await {
            return Outcome::Failed(Arc::new(TenantMigrationError::Record(e)));
        }
    }
    if let Some(run) = run {
        let done = CompanyDone {
            outcome: match outcome {
                Outcome::Migrated(_) => CompanyOutcome::Migrated,
                Outcome::Current => CompanyOutcome::Current,
                _ => CompanyOutcome::Failed,
            },
            reached: reached.or_else(|| t.schema_version.clone()),
            error,
            sqlstate,
            started_at,
        };
        if let Err(e) = runs::company_done(&services.registry, run, t.id, done).await {
            return Outcome::Failed(Arc::new(TenantMigrationError::Record(e)));
        }
    }
    outcome
}
