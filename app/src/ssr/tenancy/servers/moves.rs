//! Moving a company to another database server, as a state machine recorded in the registry (`tenant_moves`) so that no crash leaves a company on two servers, or on none.
//!
//! started → created (its database and role on the target, at the latest
//! schema) → paused (the source takes no writes) → copied → verified (row
//! counts and checksums agree, table by table) → switched (the registry
//! names the target) → cleaned (the source's database and role dropped).
//!
//! The switch is one registry transaction; it is what decides where the
//! company is. Before it, the company is served from the source, which holds
//! all its data: a failure, or recovery of a move whose process died, undoes
//! (drops what was made on the target, makes the source writable again).
//! From it on, the company is served from the target, which was verified to
//! hold all of it: recovery finishes (drops the source).
//!
//! The copy is PostgreSQL's own `COPY` (binary), streamed from one server to
//! the other over two administrator connections: no dump file, nothing on
//! disk, no `pg_dump` of a matching version needed. Writes pause from the
//! pause to the switch: the source's database turns read-only for new
//! sessions (and a write that meets a lock gives up within 100 ms), the
//! sessions opened before are ended, and the mover holds a `SHARE` lock on
//! every table until the registry names the target: reads go on, writes
//! are refused (503, "try again in a moment"). Other
//! instances see the switch within their directory TTL; until then they
//! read the source (read-only, and current to the switch). The source is
//! dropped one TTL after the switch.
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::sqlx::{
    self,
    postgres::{PgConnectOptions, PgConnection},
    AssertSqlSafe, ConnectOptions, Connection, Executor, Row,
};
use sea_orm::{
    sea_query::Expr, ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr,
    EntityTrait, QueryFilter, Set, SqlErr, Statement, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::Subdomain;
use crate::ssr::entities::{
    tenant_moves::{self, MoveOutcome, MoveStep},
    tenants::{self, TenantStatus},
};
use crate::ssr::heartbeat::Heartbeat;
use crate::ssr::services::Services;
use crate::ssr::tenancy::schema::migrate::latest_tenant_schema;
use crate::ssr::tenancy::servers::databases::{
    connect_once, quote_ident, TenantServer, TenantServerError,
};
use crate::ssr::tenancy::servers::fleet::{FleetError, FIRST};

/// How often a running move says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A running move not heard from for this long (or the provisioning
/// timeout, if shorter) is presumed dead: recovery finishes or undoes it.
pub const MOVE_STALE: Duration = Duration::from_secs(60);
/// How long the pause waits for the company's sessions to end and for the
/// table locks.
const PAUSE_WAIT: Duration = Duration::from_secs(10);
/// How long a company's write waits for a table lock while it is paused.
const WRITE_LOCK_TIMEOUT: Duration = Duration::from_millis(100);
/// The mover's sessions call themselves this.
const APPLICATION: &str = "enclave-move";

/// What a finished move did.
#[derive(Debug)]
pub struct Moved {
    pub from: String,
    pub to: String,
    pub tables: usize,
    pub rows: u64,
    /// How long the company could not write (pause to switch).
    pub paused: Duration,
    /// The whole move, waiting out the TTL before cleaning up included.
    pub took: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum MoveError {
    #[error("no company has the subdomain '{0}'")]
    NotFound(String),
    #[error("the company '{0}' is not active or paused")]
    NotSettled(String),
    #[error("'{0}' is already on '{1}'")]
    AlreadyThere(String, String),
    #[error("companies can be moved only between PostgreSQL servers")]
    NotPostgres,
    #[error("'{0}' is not at the latest schema: run `server migrate` first")]
    NotMigrated(String),
    #[error("a move of '{0}' is under way; wait for it to end (or, if its process died, for recovery, within a minute)")]
    Underway(String),
    #[error("'{0}' is being restored from backup; move it once the restore has ended")]
    Restoring(String),
    #[error("'{1}' already holds a database for '{0}' (is it the same PostgreSQL server under another name?)")]
    TargetHolds(String, String),
    #[error("the company's sessions on its server did not end within {0:?}")]
    SessionsLinger(Duration),
    #[error("the target's tables differ from the source's (a migration not run on one of them?)")]
    SchemaDiffers,
    #[error("the copy differs from the source in '{0}'")]
    Differs(String),
    #[error("the company changed while it was being moved (deleted, or moved by someone else)")]
    Changed,
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("the company's database server")]
    Server(#[from] TenantServerError),
    #[error("registry or company database")]
    Db(#[from] DbErr),
    #[error("copying between the servers")]
    Copy(#[from] sqlx::Error),
    #[error(transparent)]
    Cipher(#[from] crate::ssr::secrets::CipherError),
    /// Tests: the process "died" after this step.
    #[error("injected crash after {0:?}")]
    Injected(MoveStep),
}

/// A table or sequence of a company's database (schema `public`).
#[derive(Debug, PartialEq, Eq)]
pub(in crate::ssr::tenancy) struct Relation {
    name: String,
    sequence: bool,
}

impl Services {
    /// Moves company `sub` to server `to` (see the module's doc). Returns
    /// once the source is dropped.
    pub async fn move_tenant(&self, sub: &Subdomain, to: &str) -> Result<Moved, MoveError> {
        let started = Instant::now();
        let fleet = self.provisioner.fleet();
        if !fleet.first().is_postgres() {
            return Err(MoveError::NotPostgres);
        }
        if let Some(left) = self.running_move(sub).await? {
            if !self.is_stale(&left) {
                return Err(MoveError::Underway(sub.to_string()));
            }
            self.settle_move(left).await?;
        }
        let t = crate::ssr::tenancy::request::directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| MoveError::NotFound(sub.to_string()))?;
        if !matches!(t.status, TenantStatus::Active | TenantStatus::Paused) {
            return Err(MoveError::NotSettled(sub.to_string()));
        }
        if crate::ssr::entities::tenant_restores::Entity::find()
            .filter(crate::ssr::entities::tenant_restores::Column::TenantId.eq(t.id))
            .filter(
                crate::ssr::entities::tenant_restores::Column::Outcome
                    .eq(crate::ssr::entities::tenant_restores::RestoreOutcome::Running),
            )
            .one(&self.registry)
            .await?
            .is_some()
        {
            return Err(MoveError::Restoring(sub.to_string()));
        }
        let from = t.db_server.clone().unwrap_or_else(|| FIRST.to_owned());
        if from == to {
            return Err(MoveError::AlreadyThere(sub.to_string(), from));
        }
        if t.schema_version.as_deref() != Some(latest_tenant_schema().as_str()) {
            return Err(MoveError::NotMigrated(sub.to_string()));
        }
        let target = fleet.target(to).await?;
        let source = fleet.named(&from).await?;
        // Undo drops the target's copy: there must be none to begin with.
        if target.exists(t.id).await? {
            return Err(MoveError::TargetHolds(sub.to_string(), to.to_owned()));
        }
        self.record_start(&t, &from, to).await?;
        let _alive = self.heartbeat(t.id);
        let mut done = MoveStep::Started;
        let outcome = self.run_move(&t, &source, &target, to, &mut done).await;
        match outcome {
            Ok((tables, rows, paused)) => {
                tracing::info!(tenant = %sub, from, to, rows, paused_ms = paused.as_millis() as u64, "company moved");
                Ok(Moved {
                    from,
                    to: to.to_owned(),
                    tables,
                    rows,
                    paused,
                    took: started.elapsed(),
                })
            }
            Err(e @ MoveError::Injected(_)) => Err(e),
            Err(e) => {
                let reason = crate::ssr::http::error_chain(&e);
                tracing::error!(tenant = %sub, step = ?done, error = %reason, "moving failed");
                let left = tenant_moves::Entity::find_by_id(t.id)
                    .one(&self.registry)
                    .await?;
                if let Some(left) = left {
                    match self.settle_move(left).await {
                        Ok(_) => self.note_error(t.id, &reason).await,
                        Err(e2) => {
                            tracing::error!(tenant = %sub, error = %crate::ssr::http::error_chain(&e2), "cannot settle the move; recovery will retry")
                        }
                    }
                }
                Err(e)
            }
        }
    }

    async fn run_move(
        &self,
        t: &tenants::Model,
        source: &TenantServer,
        target: &TenantServer,
        to: &str,
        done: &mut MoveStep,
    ) -> Result<(usize, u64, Duration), MoveError> {
        // The company's database and role on the target, at the latest schema.
        let mut created = target.create(t.id).await?;
        if let Some(session) = created.session.take() {
            let _ = session.close().await;
        }
        if !created.from_template {
            let db = connect_once(&created.url).await?;
            let migrated =
                <migration::TenantMigrator as migration::MigratorTrait>::up(&db, None).await;
            let _ = db.close().await;
            migrated?;
        }
        let sealed = self.cipher.encrypt(t.id, &created.url);
        self.step(t.id, MoveStep::Created, |row| {
            row.target_url = Set(Some(sealed.clone()))
        })
        .await?;
        self.move_checkpoint(MoveStep::Created, done)?;

        // Pause: the source takes no writes from here to the switch.
        let name = TenantServer::db_name(t.id);
        let paused_at = Instant::now();
        let mut src = open_copy_session(source, &name, &name).await?;
        let src_pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut src)
            .await?;
        let since = set_read_only(source, &name, true).await?;
        end_sessions(source, &name, Some(src_pid), &since).await?;
        self.pools.forget(t.id).await;
        src.execute("BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE")
            .await?;
        let relations = relations(&mut src).await?;
        let tables = tables(&relations);
        // Reads go on; a write that slipped past the read-only default waits.
        run(
            &mut src,
            format!(
                "SET LOCAL lock_timeout = '{}s'; LOCK TABLE {} IN SHARE MODE",
                PAUSE_WAIT.as_secs(),
                tables.join(", ")
            ),
        )
        .await?;
        self.step(t.id, MoveStep::Paused, |_| {}).await?;
        self.move_checkpoint(MoveStep::Paused, done)?;

        // Copy.
        let mut dst = open_copy_session(target, &name, &name).await?;
        if relations != self::relations(&mut dst).await?
            || migrations(&mut src).await? != migrations(&mut dst).await?
        {
            return Err(MoveError::SchemaDiffers);
        }
        let rows = copy(&mut src, &mut dst, &relations).await?;
        self.step(t.id, MoveStep::Copied, |row| {
            row.rows = Set(Some(rows as i64))
        })
        .await?;
        self.move_checkpoint(MoveStep::Copied, done)?;

        // Verify.
        let (here, there) = tokio::join!(
            checksums(&mut src, &relations),
            checksums(&mut dst, &relations)
        );
        let (here, there) = (here?, there?);
        if let Some((r, _)) = here.iter().zip(&there).find(|(a, b)| a != b) {
            return Err(MoveError::Differs(r.0.clone()));
        }
        let _ = dst.close().await;
        self.step(t.id, MoveStep::Verified, |_| {}).await?;
        self.move_checkpoint(MoveStep::Verified, done)?;

        // Switch: one transaction that only applies to the move this is.
        let paused = paused_at.elapsed();
        let txn = self.registry.begin().await?;
        let moved = tenant_moves::Entity::update_many()
            .col_expr(
                tenant_moves::Column::Step,
                Expr::value(MoveStep::Switched.to_value()),
            )
            .col_expr(
                tenant_moves::Column::PauseMs,
                Expr::value(paused.as_millis() as i64),
            )
            .col_expr(tenant_moves::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenant_moves::Column::TenantId.eq(t.id))
            .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Running))
            .filter(tenant_moves::Column::Step.eq(MoveStep::Verified))
            .exec(&txn)
            .await?;
        let switched = tenants::Entity::update_many()
            .col_expr(tenants::Column::DbServer, Expr::value(to))
            .col_expr(tenants::Column::DbUrl, Expr::value(sealed))
            .col_expr(tenants::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenants::Column::Id.eq(t.id))
            .filter(tenants::Column::DbUrl.eq(t.db_url.clone()))
            .filter(tenants::Column::Status.is_in([TenantStatus::Active, TenantStatus::Paused]))
            .exec(&txn)
            .await?;
        if moved.rows_affected != 1 || switched.rows_affected != 1 {
            txn.rollback().await?;
            return Err(MoveError::Changed);
        }
        txn.commit().await?;
        *done = MoveStep::Switched;
        self.directory.invalidate(&t.subdomain);
        // A write still waiting on the source ends with its session, before
        // the locks go; then this process's pool, which no longer waits on it.
        if let Ok(now) = server_clock(source).await {
            let _ = end_sessions(source, &name, Some(src_pid), &now).await;
        }
        let _ = src.close().await;
        self.pools.forget(t.id).await;
        self.move_checkpoint(MoveStep::Switched, done)?;

        // Clean up, once no instance can still be using the source.
        tokio::time::sleep(self.directory.ttl()).await;
        source.drop(t.id).await?;
        self.step(t.id, MoveStep::Cleaned, |row| {
            row.outcome = Set(MoveOutcome::Moved)
        })
        .await?;
        *done = MoveStep::Cleaned;
        Ok((tables.len(), rows, paused))
    }

    /// Finishes (switched) or undoes (not switched) every move whose process
    /// died. Returns how many it settled.
    pub async fn recover_moves(&self) -> Result<usize, MoveError> {
        let running = tenant_moves::Entity::find()
            .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Running))
            .all(&self.registry)
            .await?;
        let mut settled = 0;
        for m in running.into_iter().filter(|m| self.is_stale(m)) {
            let sub = m.subdomain.clone();
            match self.settle_move(m).await {
                Ok(how) => {
                    tracing::warn!(tenant = %sub, how, "settled a move left midway");
                    settled += 1;
                }
                Err(e) => {
                    tracing::error!(tenant = %sub, error = %crate::ssr::http::error_chain(&e), "cannot settle a move left midway")
                }
            }
        }
        Ok(settled)
    }

    fn is_stale(&self, m: &tenant_moves::Model) -> bool {
        let stale = self.provisioning_timeout.min(MOVE_STALE);
        Utc::now() - m.updated_at >= chrono::Duration::from_std(stale).unwrap_or_default()
    }

    async fn running_move(&self, sub: &Subdomain) -> Result<Option<tenant_moves::Model>, DbErr> {
        tenant_moves::Entity::find()
            .filter(tenant_moves::Column::Subdomain.eq(sub.as_str()))
            .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Running))
            .one(&self.registry)
            .await
    }

    /// Where the registry says the company is decides: on the target, the
    /// move is finished (the source dropped); anywhere else, undone (the
    /// target's copy dropped, the source writable again).
    async fn settle_move(&self, m: tenant_moves::Model) -> Result<&'static str, MoveError> {
        let fleet = self.provisioner.fleet();
        let row = tenants::Entity::find_by_id(m.tenant_id)
            .one(&self.registry)
            .await?;
        let switched = row
            .as_ref()
            .is_some_and(|t| t.db_server.as_deref() == Some(m.target.as_str()));
        let (how, outcome, step) = if switched {
            fleet.named(&m.source).await?.drop(m.tenant_id).await?;
            ("finished", MoveOutcome::Moved, MoveStep::Cleaned)
        } else {
            let name = TenantServer::db_name(m.tenant_id);
            let source = fleet.named(&m.source).await?;
            if source.exists(m.tenant_id).await? {
                let since = set_read_only(&source, &name, false).await?;
                // Sessions opened during the pause are read-only: end them.
                end_sessions(&source, &name, None, &since).await?;
            }
            fleet.named(&m.target).await?.drop(m.tenant_id).await?;
            ("undone", MoveOutcome::Undone, m.step)
        };
        tenant_moves::ActiveModel {
            tenant_id: Set(m.tenant_id),
            step: Set(step),
            outcome: Set(outcome),
            target_url: Set(None),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(&m.subdomain);
        self.pools.forget(m.tenant_id).await;
        Ok(how)
    }

    /// Records a new move of `t`, replacing its last, ended one; a move
    /// already running (or started meanwhile) is refused.
    async fn record_start(
        &self,
        t: &tenants::Model,
        from: &str,
        to: &str,
    ) -> Result<(), MoveError> {
        tenant_moves::Entity::delete_many()
            .filter(tenant_moves::Column::TenantId.eq(t.id))
            .filter(tenant_moves::Column::Outcome.ne(MoveOutcome::Running))
            .exec(&self.registry)
            .await?;
        let now = Utc::now();
        let inserted = tenant_moves::ActiveModel {
            tenant_id: Set(t.id),
            subdomain: Set(t.subdomain.clone()),
            source: Set(from.to_owned()),
            target: Set(to.to_owned()),
            step: Set(MoveStep::Started),
            outcome: Set(MoveOutcome::Running),
            target_url: Set(None),
            rows: Set(None),
            pause_ms: Set(None),
            error: Set(None),
            started_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.registry)
        .await;
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(MoveError::Underway(t.subdomain.clone()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn step(
        &self,
        id: Uuid,
        step: MoveStep,
        more: impl FnOnce(&mut tenant_moves::ActiveModel),
    ) -> Result<(), DbErr> {
        let mut row = tenant_moves::ActiveModel {
            tenant_id: Set(id),
            step: Set(step),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        more(&mut row);
        row.update(&self.registry).await.map(|_| ())
    }

    async fn note_error(&self, id: Uuid, reason: &str) {
        let _ = tenant_moves::ActiveModel {
            tenant_id: Set(id),
            error: Set(Some(reason.chars().take(2000).collect())),
            ..Default::default()
        }
        .update(&self.registry)
        .await;
    }

    /// Says every [`HEARTBEAT`] that a move is alive, until dropped.
    fn heartbeat(&self, id: Uuid) -> Heartbeat {
        let registry = self.registry.clone();
        Heartbeat::every(HEARTBEAT, move || {
            let registry = registry.clone();
            async move {
                let _ = tenant_moves::Entity::update_many()
                    .col_expr(tenant_moves::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(tenant_moves::Column::TenantId.eq(id))
                    .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Running))
                    .exec(&registry)
                    .await;
            }
        })
    }

    fn move_checkpoint(&self, step: MoveStep, done: &mut MoveStep) -> Result<(), MoveError> {
        *done = step;
        match self.move_crash_after {
            Some(at) if at == step => Err(MoveError::Injected(step)),
            _ => Ok(()),
        }
    }
}

/// An administrator's session on database `db` of `server`, acting as
/// the company's role `role` (which owns everything in it), with the settings
/// that make `::text` of a row the same on every server.
pub(in crate::ssr::tenancy) async fn open_copy_session(
    server: &TenantServer,
    db: &str,
    role: &str,
) -> Result<PgConnection, MoveError> {
    let (_, url) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
    let opts: PgConnectOptions = url.as_str().parse()?;
    let opts = opts
        .database(db)
        .application_name(APPLICATION)
        .disable_statement_logging();
    let mut conn = PgConnection::connect_with(&opts).await?;
    // `role` is `tenant_<hex>`, read from the registry's ids.
    run(
        &mut conn,
        format!(
            "SET ROLE {}; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; \
             SET IntervalStyle = 'postgres'; SET extra_float_digits = 1; SET bytea_output = 'hex'",
            quote_ident(role)
        ),
    )
    .await?;
    Ok(conn)
}

/// Makes new sessions on database `name` read-only, with a short lock
/// timeout (or neither). Returns the
/// server's clock once that holds: every session started later has it.
async fn set_read_only(server: &TenantServer, name: &str, on: bool) -> Result<String, MoveError> {
    let (admin, _) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
    // A write parses (and so locks its table) before it is refused as
    // read-only: the short lock timeout makes one that meets the mover's
    // lock fail at once too, instead of waiting for the switch.
    let name = quote_ident(name);
    let sql = if on {
        format!(
            "ALTER DATABASE {name} SET default_transaction_read_only = on; \
             ALTER DATABASE {name} SET lock_timeout = '{}ms'",
            WRITE_LOCK_TIMEOUT.as_millis()
        )
    } else {
        format!(
            "ALTER DATABASE {name} RESET default_transaction_read_only; \
             ALTER DATABASE {name} RESET lock_timeout"
        )
    };
    admin.execute_unprepared(&sql).await?;
    server_clock(server).await
}

/// The server's clock, as text PostgreSQL reads back exactly.
pub(in crate::ssr::tenancy) async fn server_clock(
    server: &TenantServer,
) -> Result<String, MoveError> {
    let (admin, _) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
    let row = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT clock_timestamp()::text AS now",
        ))
        .await?
        .ok_or_else(|| DbErr::Custom("no answer to clock_timestamp()".into()))?;
    Ok(row.try_get::<String>("", "now")?)
}

/// Ends every session on database `name` that started before `before`
/// (the server's clock), but `keep`, and waits until they are gone,
/// [`PAUSE_WAIT`] at most. Sessions started since have the database's
/// settings as they are now, and are left be.
pub(in crate::ssr::tenancy) async fn end_sessions(
    server: &TenantServer,
    name: &str,
    keep: Option<i32>,
    before: &str,
) -> Result<(), MoveError> {
    let (admin, _) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
    let deadline = Instant::now() + PAUSE_WAIT;
    loop {
        let rows = admin
            .query_all_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_terminate_backend(pid, 2000) AS ended FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid() AND pid <> $2 \
                 AND backend_start <= $3::timestamptz",
                [name.into(), keep.unwrap_or(0).into(), before.into()],
            ))
            .await?;
        if rows.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(MoveError::SessionsLinger(PAUSE_WAIT));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs `sql`: built only of constants and names read from the catalog,
/// quoted.
pub(in crate::ssr::tenancy) async fn run(
    conn: &mut PgConnection,
    sql: String,
) -> Result<(), sqlx::Error> {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(conn)
        .await
        .map(|_| ())
}

/// The tables and sequences of the company's schema, by name.
pub(in crate::ssr::tenancy) async fn relations(
    conn: &mut PgConnection,
) -> Result<Vec<Relation>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT c.relname::text AS name, c.relkind = 'S' AS sequence FROM pg_class c \
         JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relkind IN ('r', 'S') ORDER BY c.relname",
    )
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Relation {
                name: r.try_get("name")?,
                sequence: r.try_get("sequence")?,
            })
        })
        .collect()
}

/// The tables among `relations`, as quoted qualified names.
pub(in crate::ssr::tenancy) fn tables(relations: &[Relation]) -> Vec<String> {
    relations
        .iter()
        .filter(|r| !r.sequence)
        .map(|r| format!("public.{}", quote_ident(&r.name)))
        .collect()
}

/// The migrations applied to a company's database.
pub(in crate::ssr::tenancy) async fn migrations(
    conn: &mut PgConnection,
) -> Result<String, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT coalesce(string_agg(version, ',' ORDER BY version), '') FROM public.seaql_migrations",
    )
    .fetch_one(&mut *conn)
    .await
}

/// Bytes sent to the target at a time by [`copy`].
const COPY_BATCH: usize = 64 << 10;

/// Replaces everything in `dst` with what `src` holds: every table by
/// binary `COPY`, every sequence's position, in one transaction on `dst`.
/// Returns the rows copied.
///
/// The rows arrive frozen (`FREEZE`, allowed as each table is truncated in
/// the same transaction): `dst` is a database no request uses until the
/// switch, and so nothing is left for a later vacuum or first reader to
/// rewrite (hint bits, freezing) at the company's expense or the server's.
pub(in crate::ssr::tenancy) async fn copy(
    src: &mut PgConnection,
    dst: &mut PgConnection,
    relations: &[Relation],
) -> Result<u64, sqlx::Error> {
    let mut tx = dst.begin().await?;
    let tables = tables(relations);
    run(&mut tx, format!("TRUNCATE {}", tables.join(", "))).await?;
    let mut rows = 0;
    for table in &tables {
        let mut out = src
            .copy_out_raw(&format!("COPY {table} TO STDOUT (FORMAT binary)"))
            .await?;
        let mut into = tx
            .copy_in_raw(&format!("COPY {table} FROM STDIN (FORMAT binary, FREEZE)"))
            .await?;
        // The source sends a message per row; the target gets them in
        // batches (a binary COPY's stream may be cut anywhere).
        let mut batch = Vec::with_capacity(COPY_BATCH + (COPY_BATCH >> 2));
        while let Some(chunk) = out.next().await {
            match chunk {
                Ok(chunk) => {
                    batch.extend_from_slice(&chunk);
                    if batch.len() >= COPY_BATCH {
                        into.send(batch.as_slice()).await?;
                        batch.clear();
                    }
                }
                Err(e) => {
                    let _ = into.abort("the source failed").await;
                    return Err(e);
                }
            }
        }
        if !batch.is_empty() {
            into.send(batch.as_slice()).await?;
        }
        rows += into.finish().await?;
    }
    for seq in relations.iter().filter(|r| r.sequence) {
        let seq = format!("public.{}", quote_ident(&seq.name));
        let (last, called): (i64, bool) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT last_value, is_called FROM {seq}"
        )))
        .fetch_one(&mut *src)
        .await?;
        sqlx::query("SELECT setval($1::regclass, $2, $3)")
            .bind(&seq)
            .bind(last)
            .bind(called)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(rows)
}

/// Column types whose values `hash_record_extended` hashes with their
/// type's own hash function, with no text made of them (six times faster
/// than an md5 of each row's text: 0.15 s against 0.91 s for 400,000 rows).
const HASHED_TYPES: &str = "'{bool,int2,int4,int8,float4,float8,numeric,text,varchar,bpchar,\
    name,bytea,uuid,date,time,timestamp,timestamptz,interval,jsonb,inet,oid}'::regtype[]::oid[]";

/// Each relation's row count and an order-free checksum of its rows (the
/// sum of each row's 64-bit hash, as exact numeric: by its columns' own
/// hash functions where every column's type is in [`HASHED_TYPES`], by the
/// first 64 bits of the md5 of its text otherwise; the tables are the
/// same on both sides, so both choose alike); a sequence's position.
/// Runs no statement that can fail on a well-formed table, so it may run
/// inside a transaction (a move's paused session).
pub(in crate::ssr::tenancy) async fn checksums(
    conn: &mut PgConnection,
    relations: &[Relation],
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let mut out = Vec::with_capacity(relations.len());
    for r in relations {
        let rel = format!("public.{}", quote_ident(&r.name));
        let sql = if r.sequence {
            format!("SELECT last_value::text || ' ' || is_called::text FROM {rel}")
        } else {
            let hashed: bool = sqlx::query_scalar(AssertSqlSafe(format!(
                "SELECT coalesce(bool_and(atttypid = ANY({HASHED_TYPES})), true) \
                 FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
            )))
            .bind(&rel)
            .fetch_one(&mut *conn)
            .await?;
            let row_hash = match hashed {
                true => "hash_record_extended(t, 0)::numeric",
                false => "('x' || left(md5(t::text), 16))::bit(64)::int8::numeric",
            };
            format!(
                "SELECT count(*)::text || ' ' || coalesce(sum({row_hash}), 0)::text \
                 FROM {rel} AS t"
            )
        };
        let sum: String = sqlx::query_scalar(AssertSqlSafe(sql))
            .fetch_one(&mut *conn)
            .await?;
        out.push((r.name.clone(), sum));
    }
    Ok(out)
}
