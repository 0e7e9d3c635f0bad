//! `tenant restore`: one company put back to a moment, as a state machine recorded in the registry (`tenant_restores`), while every other company keeps serving.
//!
//! started → recovered (the company's database at the moment, outside
//! every serving server: a temporary cluster restored by pgBackRest, or a
//! copy of the SQLite snapshot; brought to the latest schema) → created
//! (a new database on the company's live server) → verified (copied with
//! the move's `COPY`, row counts and checksums equal) → switched → cleaned
//! (the temporary cluster gone).
//!
//! **In place**, the switch is one transaction on the company's server
//! that renames its database to a kept name and the new one to the
//! company's (PostgreSQL; connections to the old one are refused and ended
//! first, so the company pauses only for the switch), or two renames of
//! files while the company is paused (SQLite). The kept database stays for
//! `ENCLAVE_RESTORE_KEEP_DAYS`; `--undo` swaps it back.
//! **Beside**, the switch is one registry transaction that turns the
//! reserved subdomain into a paused company with the new database.
//!
//! What is on the server decides recovery, as the registry does for a move:
//! while the new database still has its temporary name (in place) or the
//! reservation is not a company yet (beside), the restore is undone (the
//! new database dropped, the old one open again); after, it is finished.
use std::time::{Duration, Instant};

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{
    sea_query::Expr, ActiveEnum, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr,
    EntityTrait, QueryFilter, QueryOrder, Set, SqlErr, TransactionTrait,
};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::pgbackrest::{archived_now, archiver_caught_up, archiver_pid, facts, BackupError};
use super::scratch::Scratch;
use super::snapshots;
use super::Laps;
use crate::domain::Subdomain;
use crate::ssr::entities::{
    tenant_moves::{self, MoveOutcome},
    tenant_restores::{self, RestoreOutcome, RestoreStep},
    tenants::{self, TenantStatus},
};
use crate::ssr::heartbeat::Heartbeat;
use crate::ssr::services::Services;
use crate::ssr::tenancy::lifecycle::provisioning::keep_reserved;
use crate::ssr::tenancy::schema::migrate::latest_tenant_schema;
use crate::ssr::tenancy::servers::databases::{
    close_to_public, connect_once, quote_ident, TenantServer, TenantServerError,
};
use crate::ssr::tenancy::servers::fleet::{FleetError, FIRST};
use crate::ssr::tenancy::servers::moves::{
    checksums, copy, end_sessions, migrations, open_copy_session, relations, run, server_clock,
    tables, MoveError,
};

/// How often a running restore says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// A running restore not heard from for this long is presumed dead.
pub const RESTORE_STALE: Duration = Duration::from_secs(60);
/// How long the switch waits for the company's sessions to end.
const SWITCH_WAIT: Duration = Duration::from_secs(5);

/// Where the restored company goes.
#[derive(Clone, Debug)]
pub enum RestoreAs {
    /// In place of the company's database (kept for `--undo`).
    InPlace,
    /// Beside it, as a new paused company with this subdomain.
    Beside(Subdomain),
}

/// What a finished restore did.
#[derive(Debug)]
pub struct Restored {
    pub subdomain: String,
    pub to: DateTime<Utc>,
    /// SQLite: the snapshot's moment.
    pub snapshot: Option<DateTime<Utc>>,
    pub rows: u64,
    /// In place: how long the company could not write.
    pub paused: Duration,
    pub took: Duration,
    /// In place: until when the database before is kept.
    pub kept_until: Option<DateTime<Utc>>,
}

#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error("no company has the subdomain '{0}'")]
    NotFound(String),
    #[error("the company '{0}' is not active or paused")]
    NotSettled(String),
    #[error("a restore of '{0}' is under way; wait for it to end (or, if its process died, for recovery, within a minute)")]
    Underway(String),
    #[error("'{0}' is being moved to another server; restore it once the move has ended")]
    Moving(String),
    #[error("the subdomain '{0}' is taken")]
    Taken(String),
    #[error("{asked} is in the future: the latest moment that can be restored is now, {now}")]
    Future { asked: String, now: String },
    #[error("'{sub}' cannot be restored to {asked}: its {what} cover {earliest} to {latest}")]
    Outside {
        sub: String,
        asked: String,
        what: &'static str,
        earliest: String,
        latest: String,
    },
    #[error("'{sub}' got other data at {changed} (a restore in place, its undo, or a move), after the backup that {asked} would start from: restore to a moment before {changed}, or after the next `server backup run`")]
    Gap {
        sub: String,
        asked: String,
        changed: String,
    },
    #[error("no {what} holds '{sub}' yet (it is newer than the last one): run `server backup run` first")]
    NotCovered { sub: String, what: &'static str },
    #[error(
        "'{0}' has no restore in place to undo (or its database from before has been dropped)"
    )]
    NothingToUndo(String),
    #[error("the restored database's tables differ from the company's (a migration not run on one of them?)")]
    SchemaDiffers,
    #[error("the copy differs from the restored database in '{0}'")]
    Differs(String),
    #[error("the company's sessions on its server did not end within {0:?}")]
    SessionsLinger(Duration),
    #[error("the restored SQLite file fails its integrity check: {0}")]
    Corrupt(String),
    #[error(
        "the company changed while it was being restored (deleted, or restored by someone else)"
    )]
    Changed,
    #[error(transparent)]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("the company's database server")]
    Server(#[from] TenantServerError),
    #[error(transparent)]
    Move(#[from] MoveError),
    #[error("registry or company database")]
    Db(#[from] DbErr),
    #[error("copying between the servers")]
    Copy(#[from] sea_orm::sqlx::Error),
    #[error(transparent)]
    Cipher(#[from] crate::ssr::secrets::CipherError),
    #[error("file system")]
    Io(#[from] std::io::Error),
    /// Tests: the process "died" after this step.
    #[error("injected crash after {0:?}")]
    Injected(RestoreStep),
}

fn shown(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// In place: the new database's name until the switch.
fn incoming_name(db: &str, restore: Uuid) -> String {
    format!("{db}_r{}", &restore.simple().to_string()[..8])
}

/// In place: the name the database before is kept under.
fn kept_name(db: &str, restore: Uuid) -> String {
    format!("{db}_k{}", &restore.simple().to_string()[..8])
}

/// About how much a temporary cluster holding database `db` of `server`,
/// restored from a backup that began at WAL position `from`, can grow to:
/// the database as it is now, the server's own three, and all the WAL
/// written since `from` (replay writes no more than that into the other
/// companies' databases, which pgBackRest leaves empty), plus room for
/// the WAL segments replay and promotion keep. `None` where the server
/// cannot say.
async fn scratch_room(server: &TenantServer, db: &str, from: &str) -> Option<u64> {
    const SEGMENTS: i64 = 4 * 16 << 20;
    let (admin, _) = server.postgres_admin()?;
    let row = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT (pg_database_size($1::text) \
               + (SELECT sum(pg_database_size(oid)) FROM pg_database \
                  WHERE datname IN ('postgres', 'template0', 'template1')) \
               + pg_wal_lsn_diff(pg_current_wal_lsn(), $2::text::pg_lsn))::int8 AS n",
            [db.into(), from.into()],
        ))
        .await;
    match row {
        Ok(Some(row)) => row
            .try_get::<i64>("", "n")
            .ok()
            .and_then(|n| u64::try_from(n + SEGMENTS).ok()),
        Ok(None) => None,
        Err(e) => {
            tracing::debug!(error = %e, "the room a restore needs is unknown");
            None
        }
    }
}

/// A parallel query's workers would be the postmaster's children, at its
/// priority: the checksums' scan stays in `session`'s one process.
async fn no_parallel_workers(session: &mut sea_orm::sqlx::postgres::PgConnection) {
    if let Err(e) = sea_orm::sqlx::query("SET max_parallel_workers_per_gather = 0")
        .execute(&mut *session)
        .await
    {
        tracing::debug!(error = %e, "the copy's checksums may run in parallel workers");
    }
}

/// SQLite: a file name beside the company's, in its directory.
fn sqlite_file(dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    dir.join(format!("{name}.db"))
}

impl Services {
    /// Restores company `sub` to moment `to` (see the module's doc).
    pub async fn restore_tenant(
        &self,
        sub: &Subdomain,
        to: DateTime<Utc>,
        how: RestoreAs,
    ) -> Result<Restored, RestoreError> {
        let started = Instant::now();
        if let Some(left) = self.running_restore(sub.as_str()).await? {
            if !self.restore_is_stale(&left) {
                return Err(RestoreError::Underway(sub.to_string()));
            }
            self.settle_restore(left).await?;
        }
        let t = crate::ssr::tenancy::request::directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| RestoreError::NotFound(sub.to_string()))?;
        if !matches!(t.status, TenantStatus::Active | TenantStatus::Paused) {
            return Err(RestoreError::NotSettled(sub.to_string()));
        }
        if tenant_moves::Entity::find_by_id(t.id)
            .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Running))
            .one(&self.registry)
            .await?
            .is_some()
        {
            return Err(RestoreError::Moving(sub.to_string()));
        }
        if to > Utc::now() {
            return Err(RestoreError::Future {
                asked: shown(to),
                now: shown(Utc::now()),
            });
        }
        let server_name = t.db_server.clone().unwrap_or_else(|| FIRST.to_owned());
        let server = self.provisioner.fleet().named(&server_name).await?;
        // What the backups cover, before anything is recorded or made.
        let (snapshot, from_lsn) = if server.is_postgres() {
            (
                None,
                self.check_window(&t, &server_name, &server, to).await?,
            )
        } else {
            (Some(self.pick_snapshot(&t, to)?), None)
        };
        let id = Uuid::new_v4();
        let new_id = match &how {
            RestoreAs::Beside(new_sub) => Some(self.reserve(&t, new_sub, &server_name).await?),
            RestoreAs::InPlace => None,
        };
        let scratch = match server.is_postgres() {
            true => {
                let needed = match &from_lsn {
                    Some(lsn) => scratch_room(&server, &TenantServer::db_name(t.id), lsn).await,
                    None => None,
                };
                let place = self.backups.scratch_for(needed);
                tracing::info!(tenant = %sub, needed_mb = needed.map(|n| n >> 20), place = %place.display(), "the restore's temporary server");
                Some(place.join(id.simple().to_string()))
            }
            false => None,
        };
        let now = Utc::now();
        let inserted = tenant_restores::ActiveModel {
            id: Set(id),
            tenant_id: Set(t.id),
            subdomain: Set(t.subdomain.clone()),
            server: Set(server_name.clone()),
            target_time: Set(to),
            as_subdomain: Set(match &how {
                RestoreAs::Beside(s) => Some(s.to_string()),
                RestoreAs::InPlace => None,
            }),
            new_tenant_id: Set(new_id),
            step: Set(RestoreStep::Started),
            outcome: Set(RestoreOutcome::Running),
            scratch: Set(scratch.as_ref().map(|p| p.display().to_string())),
            kept: Set(None),
            kept_until: Set(None),
            restored_from: Set(snapshot.as_ref().map(|(at, _)| *at)),
            rows: Set(None),
            pause_ms: Set(None),
            switched_at: Set(None),
            error: Set(None),
            started_at: Set(now),
            updated_at: Set(now),
        }
        .insert(&self.registry)
        .await;
        let row = match inserted {
            Ok(row) => row,
            Err(e) => {
                if let Some(new_id) = new_id {
                    let _ = tenants::Entity::delete_by_id(new_id)
                        .exec(&self.registry)
                        .await;
                }
                if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) {
                    return Err(RestoreError::Underway(sub.to_string()));
                }
                return Err(e.into());
            }
        };
        let _alive = self.restore_heartbeat(id, new_id);
        let mut done = RestoreStep::Started;
        let outcome = match &snapshot {
            None => self.run_pg_restore(&t, &row, &server, &mut done).await,
            Some((_, file)) => {
                self.run_sqlite_restore(&t, &row, &server, file, &mut done)
                    .await
            }
        };
        match outcome {
            Ok((rows, paused, kept_until)) => {
                tracing::info!(tenant = %sub, to = %shown(to), rows, paused_ms = paused.as_millis() as u64, "company restored");
                Ok(Restored {
                    subdomain: row.as_subdomain.clone().unwrap_or(t.subdomain.clone()),
                    to,
                    snapshot: snapshot.map(|(at, _)| at),
                    rows,
                    paused,
                    took: started.elapsed(),
                    kept_until,
                })
            }
            Err(e @ RestoreError::Injected(_)) => Err(e),
            Err(e) => {
                let reason = crate::ssr::http::error_chain(&e);
                tracing::error!(tenant = %sub, step = ?done, error = %reason, "restoring failed");
                if let Some(left) = tenant_restores::Entity::find_by_id(id)
                    .one(&self.registry)
                    .await?
                {
                    match self.settle_restore(left).await {
                        Ok(_) => self.note_restore_error(id, &reason).await,
                        Err(e2) => {
                            tracing::error!(tenant = %sub, error = %crate::ssr::http::error_chain(&e2), "cannot settle the restore; recovery will retry")
                        }
                    }
                }
                Err(e)
            }
        }
    }

    /// The moments company `t` can be restored to on PostgreSQL: from the
    /// end of the first backup that holds its database to now (the newest
    /// WAL archived first). Refuses `to` outside; returns where in the WAL
    /// the backup a restore to `to` starts from began, if pgBackRest says.
    async fn check_window(
        &self,
        t: &tenants::Model,
        server_name: &str,
        server: &TenantServer,
        to: DateTime<Utc>,
    ) -> Result<Option<String>, RestoreError> {
        let b = &self.backups;
        let mut laps = Laps::start();
        // Both at once; the listing's errors first.
        let (backups, checked) =
            tokio::join!(b.backups(server_name), archived_now(b, server_name, server));
        let backups = backups?;
        laps.lap("backups listed, the newest WAL archived");
        let changes = self.data_changes(t).await?;
        let arrived = changes.iter().copied().min().unwrap_or(t.created_at);
        let earliest = super::pgbackrest::earliest(&backups, arrived).ok_or_else(|| {
            RestoreError::NotCovered {
                sub: t.subdomain.clone(),
                what: "backup",
            }
        })?;
        checked?;
        let latest = Utc::now();
        if to < earliest {
            return Err(RestoreError::Outside {
                sub: t.subdomain.clone(),
                asked: shown(to),
                what: "backups",
                earliest: shown(earliest),
                latest: shown(latest),
            });
        }
        // pgBackRest starts from the newest backup ended by the moment; the
        // company's database must not have changed under its name since.
        let start = backups
            .iter()
            .filter(|b| b.stopped <= to)
            .max_by_key(|b| b.stopped);
        let changed = changes.iter().copied().filter(|c| *c <= to).max();
        if let (Some(start), Some(changed)) = (start, changed) {
            if start.started < changed {
                return Err(RestoreError::Gap {
                    sub: t.subdomain.clone(),
                    asked: shown(to),
                    changed: shown(changed),
                });
            }
        }
        Ok(start.and_then(|b| b.lsn_start.clone()))
    }

    /// When company `t`'s database on its server became the one it has:
    /// created, moved there, switched by a restore in place or its undo.
    async fn data_changes(&self, t: &tenants::Model) -> Result<Vec<DateTime<Utc>>, DbErr> {
        let mut changes = vec![self.on_server_since(t).await?];
        let restores = tenant_restores::Entity::find()
            .filter(tenant_restores::Column::TenantId.eq(t.id))
            .filter(tenant_restores::Column::AsSubdomain.is_null())
            .all(&self.registry)
            .await?;
        changes.extend(restores.iter().filter_map(|r| r.switched_at));
        Ok(changes)
    }

    /// SQLite: the latest snapshot of `t` at or before `to`.
    fn pick_snapshot(
        &self,
        t: &tenants::Model,
        to: DateTime<Utc>,
    ) -> Result<(DateTime<Utc>, std::path::PathBuf), RestoreError> {
        let all = snapshots::list(&self.backups.snapshot_dir, t.id);
        let (Some(first), Some(last)) = (all.first(), all.last()) else {
            return Err(RestoreError::NotCovered {
                sub: t.subdomain.clone(),
                what: "snapshot",
            });
        };
        let (first, last) = (first.0, last.0);
        all.into_iter()
            .rev()
            .find(|(at, _)| *at <= to)
            .ok_or_else(|| RestoreError::Outside {
                sub: t.subdomain.clone(),
                asked: shown(to),
                what: "snapshots",
                earliest: shown(first),
                latest: shown(last),
            })
    }

    /// Beside: reserves `new_sub` (a company row being provisioned, which
    /// the restore's heartbeat keeps fresh); returns its id.
    async fn reserve(
        &self,
        t: &tenants::Model,
        new_sub: &Subdomain,
        server: &str,
    ) -> Result<Uuid, RestoreError> {
        let id = Uuid::new_v4();
        let reserved = crate::ssr::tenancy::lifecycle::provisioning::reserve(
            &self.registry,
            id,
            &t.name,
            new_sub.as_str(),
            server,
        )
        .await?;
        if !reserved {
            return Err(RestoreError::Taken(new_sub.to_string()));
        }
        Ok(id)
    }

    async fn run_pg_restore(
        &self,
        t: &tenants::Model,
        row: &tenant_restores::Model,
        server: &TenantServer,
        done: &mut RestoreStep,
    ) -> Result<(u64, Duration, Option<DateTime<Utc>>), RestoreError> {
        let b = self.backups.clone();
        let role = TenantServer::db_name(t.id);
        let mut laps = Laps::start();
        let f = facts(&row.server, server).await?;
        let scratch = Scratch::new(row.scratch.clone().unwrap_or_default().into());
        // The company's database at the moment, outside every serving server.
        let _idle = scratch
            .restore_and_start(&b, &row.server, &f, &role, row.target_time, &[&role])
            .await?;
        migrate_up(&scratch.role_url(&role, &role)).await?;
        laps.lap("temporary server at the latest schema");
        self.restore_step(row.id, RestoreStep::Recovered, |_| {})
            .await?;
        self.restore_checkpoint(RestoreStep::Recovered, done)?;

        // A new database on the company's server, at the latest schema.
        let (admin, _) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
        let (new_db, new_role, new_url) = match row.new_tenant_id {
            None => {
                let name = incoming_name(&role, row.id);
                admin
                    .execute_unprepared(&format!(
                        "CREATE DATABASE {} OWNER {}",
                        quote_ident(&name),
                        quote_ident(&role)
                    ))
                    .await?;
                close_to_public(admin, &name).await?;
                let live = self.directory_url(t)?;
                let url = with_database(&live, &name);
                migrate_up(&url).await?;
                (name, role.clone(), url)
            }
            Some(new_id) => {
                let mut created = server.create(new_id).await?;
                if let Some(session) = created.session.take() {
                    let _ = session.close().await;
                }
                if !created.from_template {
                    migrate_up(&created.url).await?;
                }
                let name = TenantServer::db_name(new_id);
                let sealed = self.cipher.encrypt(new_id, &created.url);
                tenants::ActiveModel {
                    id: Set(new_id),
                    db_url: Set(Some(sealed)),
                    updated_at: Set(Utc::now()),
                    ..Default::default()
                }
                .update(&self.registry)
                .await?;
                (name.clone(), name, created.url)
            }
        };
        self.restore_step(row.id, RestoreStep::Created, |_| {})
            .await?;
        laps.lap("new database created");
        self.restore_checkpoint(RestoreStep::Created, done)?;

        // Copy and verify.
        let scratch_server = TenantServer::postgres(&scratch.admin_url(), false).await?;
        let mut src = open_copy_session(&scratch_server, &role, &role).await?;
        let mut dst = open_copy_session(server, &new_db, &new_role).await?;
        // The source's server process is the temporary cluster's, yielded
        // as it starts (`keep_cluster_idle`); the target's, here.
        no_parallel_workers(&mut src).await;
        self.yield_cores(&mut dst).await;
        if relations(&mut src).await? != relations(&mut dst).await?
            || migrations(&mut src).await? != migrations(&mut dst).await?
        {
            return Err(RestoreError::SchemaDiffers);
        }
        laps.lap("copy sessions open");
        // The WAL the copy writes there is archived with the archiver's
        // group yielded too, until the archiver has caught up.
        let archiver = match archiver_pid(admin).await {
            Some(pid) => b.yield_archiver(pid).await,
            None => None,
        };
        let copied = async {
            let (rows, here, there) = b
                .on_idle_cores(async move {
                    let mut laps = Laps::start();
                    let rels = relations(&mut src).await?;
                    let rows = copy(&mut src, &mut dst, &rels).await?;
                    laps.lap("copy");
                    // Here, yielded, rather than by an autovacuum worker of the
                    // server's, at its priority, once the rows are in.
                    run(
                        &mut dst,
                        format!("VACUUM (ANALYZE) {}", tables(&rels).join(", ")),
                    )
                    .await?;
                    laps.lap("vacuum");
                    // Both sides at once, each a yielded server process.
                    let (here, there) =
                        tokio::join!(checksums(&mut src, &rels), checksums(&mut dst, &rels));
                    let (here, there) = (here?, there?);
                    laps.lap("checksums");
                    let _ = sea_orm::sqlx::Connection::close(src).await;
                    let _ = sea_orm::sqlx::Connection::close(dst).await;
                    Ok::<_, sea_orm::sqlx::Error>((rows, here, there))
                })
                .await??;
            if let Some((r, _)) = here.iter().zip(&there).find(|(a, b)| a != b) {
                return Err(RestoreError::Differs(r.0.clone()));
            }
            scratch_server.close().await;
            self.verified(row, rows, done).await?;

            // Switch.
            let (paused, kept_until) = match row.new_tenant_id {
                None => {
                    let (kept, until) = self.record_kept(row, &role).await?;
                    let paused = self
                        .swap_databases(t, server, &role, &new_db, &kept)
                        .await?;
                    self.restore_step(row.id, RestoreStep::Switched, |r| {
                        r.pause_ms = Set(Some(paused.as_millis() as i64));
                        r.switched_at = Set(Some(Utc::now()));
                    })
                    .await?;
                    self.after_switch(
                        t,
                        Some(format!(
                            "restored to {} in place; the data before is kept until {}",
                            shown(row.target_time),
                            shown(until)
                        )),
                    )
                    .await?;
                    (paused, Some(until))
                }
                Some(new_id) => {
                    self.open_beside(t, row, new_id, &new_url).await?;
                    (Duration::ZERO, None)
                }
            };
            *done = RestoreStep::Switched;
            self.restore_checkpoint(RestoreStep::Switched, done)?;

            scratch.remove(&b, Some(f.major)).await;
            self.restore_step(row.id, RestoreStep::Cleaned, |r| {
                r.outcome = Set(RestoreOutcome::Restored)
            })
            .await?;
            *done = RestoreStep::Cleaned;
            Ok::<_, RestoreError>((rows, paused, kept_until))
        }
        .await;
        if let Some(a) = archiver {
            if copied.is_ok() {
                archiver_caught_up(admin).await;
                laps.lap("the restore's WAL archived");
            }
            b.restore_archiver(a).await;
        }
        copied
    }

    /// In place on PostgreSQL: the company's database `live` becomes `kept`
    /// and `incoming` becomes `live`, in one transaction on its server,
    /// with no session on either. Returns how long the company could not
    /// connect.
    async fn swap_databases(
        &self,
        t: &tenants::Model,
        server: &TenantServer,
        live: &str,
        incoming: &str,
        kept: &str,
    ) -> Result<Duration, RestoreError> {
        let (admin, _) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
        let paused_at = Instant::now();
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE {} ALLOW_CONNECTIONS false",
                quote_ident(live)
            ))
            .await?;
        self.pools.forget(t.id).await;
        let now = server_clock(server).await?;
        if let Err(e) = end_sessions(server, live, None, &now).await {
            admin
                .execute_unprepared(&format!(
                    "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                    quote_ident(live)
                ))
                .await?;
            return Err(match e {
                MoveError::SessionsLinger(_) => RestoreError::SessionsLinger(SWITCH_WAIT),
                e => e.into(),
            });
        }
        let txn = admin.begin().await?;
        txn.execute_unprepared(&format!(
            "ALTER DATABASE {} RENAME TO {}; ALTER DATABASE {} RENAME TO {}",
            quote_ident(live),
            quote_ident(kept),
            quote_ident(incoming),
            quote_ident(live)
        ))
        .await?;
        txn.commit().await?;
        self.pools.forget(t.id).await;
        self.directory.invalidate(&t.subdomain);
        Ok(paused_at.elapsed())
    }

    /// Puts the server process behind `session` (the copy into a database
    /// no request uses yet, or out of the temporary cluster, and their
    /// checksums, with no parallel workers) on idle cores, as pgBackRest
    /// and the temporary cluster are (see
    /// [`BackupSettings::yield_processes`]), so the companies served from
    /// that server keep the cores. Only where the server runs on this
    /// machine (as pgBackRest's restore needs); elsewhere no such process
    /// is found, and the copy runs as it is.
    async fn yield_cores(&self, session: &mut sea_orm::sqlx::postgres::PgConnection) {
        let Ok(pid) = sea_orm::sqlx::query_scalar::<_, i32>("SELECT pg_backend_pid()")
            .fetch_one(&mut *session)
            .await
        else {
            return;
        };
        if let Ok(pid) = u32::try_from(pid) {
            self.backups.yield_processes(&[pid]).await;
        }
        no_parallel_workers(session).await;
    }

    /// Records the copy verified, with its rows.
    async fn verified(
        &self,
        row: &tenant_restores::Model,
        rows: u64,
        done: &mut RestoreStep,
    ) -> Result<(), RestoreError> {
        self.restore_step(row.id, RestoreStep::Verified, |r| {
            r.rows = Set(Some(rows as i64))
        })
        .await?;
        self.restore_checkpoint(RestoreStep::Verified, done)
    }

    /// In place: the name the database before is kept under, and until
    /// when, recorded before the switch (recovery looks for it).
    async fn record_kept(
        &self,
        row: &tenant_restores::Model,
        live: &str,
    ) -> Result<(String, DateTime<Utc>), DbErr> {
        let kept = kept_name(live, row.id);
        let until = Utc::now() + chrono::Duration::from_std(self.backups.keep).unwrap_or_default();
        self.restore_step(row.id, RestoreStep::Verified, |r| {
            r.kept = Set(Some(kept.clone()));
            r.kept_until = Set(Some(until));
        })
        .await?;
        Ok((kept, until))
    }

    /// In place, once switched: the audit line (unless it came with the
    /// data), and "find your workspace" brought up to the restored users.
    async fn after_switch(
        &self,
        t: &tenants::Model,
        audit: Option<String>,
    ) -> Result<(), RestoreError> {
        let db = connect_once(&self.directory_url(t)?).await?;
        let noted = match audit {
            Some(detail) => {
                crate::ssr::accounts::users::audit(&db, "platform", "company.restored", detail)
                    .await
            }
            None => Ok(()),
        };
        let synced =
            crate::ssr::accounts::workspaces::sync(&self.registry, &self.cipher, t.id, &db).await;
        let _ = db.close().await;
        if let Err(e) = synced {
            tracing::warn!(tenant = %t.subdomain, error = %e, "member index not updated after the restore");
        }
        Ok(noted?)
    }

    /// Beside: the reservation becomes a paused company with the restored
    /// data, in one registry transaction with the restore's record.
    async fn open_beside(
        &self,
        t: &tenants::Model,
        row: &tenant_restores::Model,
        new_id: Uuid,
        new_url: &SecretString,
    ) -> Result<(), RestoreError> {
        let new_sub = row.as_subdomain.clone().unwrap_or_default();
        let txn = self.registry.begin().await?;
        let opened = tenants::Entity::update_many()
            .col_expr(
                tenants::Column::Status,
                Expr::value(TenantStatus::Paused.to_value()),
            )
            .col_expr(tenants::Column::AdminUserId, Expr::value(t.admin_user_id))
            .col_expr(
                tenants::Column::SchemaVersion,
                Expr::value(latest_tenant_schema()),
            )
            .col_expr(tenants::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenants::Column::Id.eq(new_id))
            .filter(tenants::Column::Status.eq(TenantStatus::Provisioning))
            .exec(&txn)
            .await?;
        let stepped = tenant_restores::Entity::update_many()
            .col_expr(
                tenant_restores::Column::Step,
                Expr::value(RestoreStep::Switched.to_value()),
            )
            .col_expr(tenant_restores::Column::UpdatedAt, Expr::value(Utc::now()))
            .filter(tenant_restores::Column::Id.eq(row.id))
            .filter(tenant_restores::Column::Outcome.eq(RestoreOutcome::Running))
            .exec(&txn)
            .await?;
        if opened.rows_affected != 1 || stepped.rows_affected != 1 {
            txn.rollback().await?;
            return Err(RestoreError::Changed);
        }
        txn.commit().await?;
        self.directory.invalidate(&new_sub);
        let db = connect_once(new_url).await?;
        let noted = async {
            crate::ssr::accounts::users::audit(
                &db,
                "platform",
                "company.restored",
                format!(
                    "opened as a copy of {} as it was at {}",
                    t.subdomain,
                    shown(row.target_time)
                ),
            )
            .await?;
            crate::ssr::accounts::workspaces::sync(&self.registry, &self.cipher, new_id, &db).await
        }
        .await;
        let _ = db.close().await;
        if let Err(e) = noted {
            tracing::warn!(tenant = %new_sub, error = %e, "restored company's audit or member index not updated");
        }
        if let Ok(live) = self.directory_url(t) {
            if let Ok(db) = connect_once(&live).await {
                let _ = crate::ssr::accounts::users::audit(
                    &db,
                    "platform",
                    "company.restored",
                    format!(
                        "a copy as it was at {} opened beside, as {new_sub}",
                        shown(row.target_time)
                    ),
                )
                .await;
                let _ = db.close().await;
            }
        }
        Ok(())
    }

    async fn run_sqlite_restore(
        &self,
        t: &tenants::Model,
        row: &tenant_restores::Model,
        server: &TenantServer,
        snapshot: &std::path::Path,
        done: &mut RestoreStep,
    ) -> Result<(u64, Duration, Option<DateTime<Utc>>), RestoreError> {
        let TenantServer::Sqlite { dir } = server else {
            return Err(MoveError::NotPostgres.into());
        };
        let live_name = t.id.to_string();
        let new_name = match row.new_tenant_id {
            None => incoming_name(&live_name, row.id),
            Some(new_id) => new_id.to_string(),
        };
        let new_path = sqlite_file(dir, &new_name);
        // Recovered: the snapshot's copy, at the latest schema, checked.
        crate::ssr::tenancy::servers::databases::create_private_file(&new_path, true)?;
        std::fs::copy(snapshot, &new_path)?;
        let url = SecretString::from(format!("sqlite://{}?mode=rw", new_path.display()));
        migrate_up(&url).await?;
        let check_path = new_path.clone();
        let rows = blocking(move || sqlite_rows(&check_path)).await?;
        self.verified(row, rows, done).await?;

        let (paused, kept_until) = match row.new_tenant_id {
            None => {
                let (kept, until) = self.record_kept(row, &live_name).await?;
                // The audit line goes in with the data: whether the live
                // file holds it is what tells recovery the switch happened.
                let db = connect_once(&url).await?;
                let noted = crate::ssr::accounts::users::audit(
                    &db,
                    "platform",
                    "company.restored",
                    format!(
                        "restored to its snapshot of {} (asked for {}) in place; the data before is kept until {} (restore {})",
                        shown(row.restored_from.unwrap_or(row.target_time)),
                        shown(row.target_time),
                        shown(until),
                        row.id
                    ),
                )
                .await;
                let _ = db.close().await;
                noted?;
                let (live, incoming, kept_path) = (
                    sqlite_file(dir, &live_name),
                    new_path.clone(),
                    sqlite_file(dir, &kept),
                );
                let paused =
                    blocking(move || replace_contents(&live, &incoming, &kept_path)).await?;
                remove_db_files(dir, &new_name)?;
                self.restore_step(row.id, RestoreStep::Switched, |r| {
                    r.pause_ms = Set(Some(paused.as_millis() as i64));
                    r.switched_at = Set(Some(Utc::now()));
                })
                .await?;
                self.after_switch(t, None).await?;
                (paused, Some(until))
            }
            Some(new_id) => {
                let sealed = self.cipher.encrypt(new_id, &url);
                tenants::ActiveModel {
                    id: Set(new_id),
                    db_url: Set(Some(sealed)),
                    updated_at: Set(Utc::now()),
                    ..Default::default()
                }
                .update(&self.registry)
                .await?;
                self.open_beside(t, row, new_id, &url).await?;
                (Duration::ZERO, None)
            }
        };
        *done = RestoreStep::Switched;
        self.restore_checkpoint(RestoreStep::Switched, done)?;
        self.restore_step(row.id, RestoreStep::Cleaned, |r| {
            r.outcome = Set(RestoreOutcome::Restored)
        })
        .await?;
        *done = RestoreStep::Cleaned;
        Ok((rows, paused, kept_until))
    }

    /// `tenant restore --undo`: brings back the database company `sub` had
    /// before its last restore in place (the restored one is kept in its
    /// stead, so an undo can itself be undone until it expires).
    pub async fn undo_restore(&self, sub: &Subdomain) -> Result<String, RestoreError> {
        if self.running_restore(sub.as_str()).await?.is_some() {
            return Err(RestoreError::Underway(sub.to_string()));
        }
        let t = crate::ssr::tenancy::request::directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| RestoreError::NotFound(sub.to_string()))?;
        let last = tenant_restores::Entity::find()
            .filter(tenant_restores::Column::TenantId.eq(t.id))
            .filter(tenant_restores::Column::AsSubdomain.is_null())
            .filter(
                tenant_restores::Column::Outcome
                    .is_in([RestoreOutcome::Restored, RestoreOutcome::Reverted]),
            )
            .filter(tenant_restores::Column::Kept.is_not_null())
            .order_by_desc(tenant_restores::Column::StartedAt)
            .one(&self.registry)
            .await?
            .ok_or_else(|| RestoreError::NothingToUndo(sub.to_string()))?;
        let kept = last.kept.clone().unwrap_or_default();
        let server_name = t.db_server.clone().unwrap_or_else(|| FIRST.to_owned());
        let server = self.provisioner.fleet().named(&server_name).await?;
        // The current database and the kept one trade names, through a
        // third, in one transaction (PostgreSQL) or three renames (SQLite).
        let parked = format!("{kept}x");
        match &server {
            TenantServer::Postgres { .. } => {
                let role = TenantServer::db_name(t.id);
                let (admin, _) = server.postgres_admin().ok_or(MoveError::NotPostgres)?;
                if !crate::ssr::tenancy::servers::template::database_exists(admin, &kept).await? {
                    return Err(RestoreError::NothingToUndo(sub.to_string()));
                }
                admin
                    .execute_unprepared(&format!(
                        "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                        quote_ident(&kept)
                    ))
                    .await?;
                self.swap_databases(&t, &server, &role, &kept, &parked)
                    .await?;
                admin
                    .execute_unprepared(&format!(
                        "ALTER DATABASE {} RENAME TO {}",
                        quote_ident(&parked),
                        quote_ident(&kept)
                    ))
                    .await?;
            }
            TenantServer::Sqlite { dir } => {
                let kept_path = sqlite_file(dir, &kept);
                if !kept_path.exists() {
                    return Err(RestoreError::NothingToUndo(sub.to_string()));
                }
                let (live, parked_path) = (
                    sqlite_file(dir, &t.id.to_string()),
                    sqlite_file(dir, &parked),
                );
                blocking(move || {
                    replace_contents(&live, &kept_path, &parked_path)?;
                    std::fs::rename(&parked_path, &kept_path)?;
                    Ok::<_, RestoreError>(())
                })
                .await?;
            }
        }
        tenant_restores::ActiveModel {
            id: Set(last.id),
            outcome: Set(if last.outcome == RestoreOutcome::Reverted {
                RestoreOutcome::Restored
            } else {
                RestoreOutcome::Reverted
            }),
            switched_at: Set(Some(Utc::now())),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(&t.subdomain);
        let db = self.connect_tenant(sub).await.map_err(|e| match e {
            crate::ssr::tenancy::lifecycle::LifecycleError::Db(e) => RestoreError::Db(e),
            _ => RestoreError::NotSettled(sub.to_string()),
        })?;
        let _ = crate::ssr::accounts::users::audit(
            &db,
            "platform",
            "company.restore_undone",
            format!(
                "the restore to {} was undone: the data from before it is back",
                shown(last.target_time)
            ),
        )
        .await;
        let _ = db.close().await;
        tracing::info!(tenant = %sub, "restore undone");
        Ok(kept)
    }

    /// Finishes (switched) or undoes (not switched) every restore whose
    /// process died, and drops kept databases past their time. Returns how
    /// many restores it settled.
    pub async fn recover_restores(&self) -> Result<usize, RestoreError> {
        let running = tenant_restores::Entity::find()
            .filter(tenant_restores::Column::Outcome.eq(RestoreOutcome::Running))
            .all(&self.registry)
            .await?;
        let mut settled = 0;
        for r in running.into_iter().filter(|r| self.restore_is_stale(r)) {
            let sub = r.subdomain.clone();
            match self.settle_restore(r).await {
                Ok(how) => {
                    tracing::warn!(tenant = %sub, how, "settled a restore left midway");
                    settled += 1;
                }
                Err(e) => {
                    tracing::error!(tenant = %sub, error = %crate::ssr::http::error_chain(&e), "cannot settle a restore left midway")
                }
            }
        }
        self.drop_expired_kept().await?;
        Ok(settled)
    }

    /// Drops the databases kept by restores in place whose time is up.
    async fn drop_expired_kept(&self) -> Result<(), RestoreError> {
        let expired = tenant_restores::Entity::find()
            .filter(tenant_restores::Column::Kept.is_not_null())
            .filter(tenant_restores::Column::KeptUntil.lte(Utc::now()))
            .filter(tenant_restores::Column::Outcome.ne(RestoreOutcome::Running))
            .all(&self.registry)
            .await?;
        for r in expired {
            self.drop_kept(&r).await?;
            tracing::info!(tenant = %r.subdomain, "dropped the database a restore kept");
        }
        Ok(())
    }

    /// Drops the database (or file) restore `r` kept, and says so in its
    /// record.
    pub(in crate::ssr::tenancy) async fn drop_kept(
        &self,
        r: &tenant_restores::Model,
    ) -> Result<(), RestoreError> {
        let Some(kept) = r.kept.clone() else {
            return Ok(());
        };
        match self.provisioner.fleet().named(&r.server).await? {
            TenantServer::Postgres { admin, .. } => {
                admin
                    .execute_unprepared(&format!(
                        "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                        quote_ident(&kept)
                    ))
                    .await?;
            }
            TenantServer::Sqlite { dir } => remove_db_files(&dir, &kept)?,
        }
        tenant_restores::ActiveModel {
            id: Set(r.id),
            kept: Set(None),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        Ok(())
    }

    fn restore_is_stale(&self, r: &tenant_restores::Model) -> bool {
        Utc::now() - r.updated_at >= chrono::Duration::from_std(RESTORE_STALE).unwrap_or_default()
    }

    async fn running_restore(&self, sub: &str) -> Result<Option<tenant_restores::Model>, DbErr> {
        tenant_restores::Entity::find()
            .filter(tenant_restores::Column::Subdomain.eq(sub))
            .filter(tenant_restores::Column::Outcome.eq(RestoreOutcome::Running))
            .one(&self.registry)
            .await
    }

    /// What is on the server decides (see the module's doc).
    async fn settle_restore(
        &self,
        r: tenant_restores::Model,
    ) -> Result<&'static str, RestoreError> {
        let server = self.provisioner.fleet().named(&r.server).await?;
        let role = TenantServer::db_name(r.tenant_id);
        let switched = match (&server, r.new_tenant_id) {
            (_, Some(new_id)) => tenants::Entity::find_by_id(new_id)
                .one(&self.registry)
                .await?
                .is_some_and(|n| n.status != TenantStatus::Provisioning),
            (TenantServer::Postgres { admin, .. }, None) => {
                let incoming = incoming_name(&role, r.id);
                !crate::ssr::tenancy::servers::template::database_exists(admin, &incoming).await?
                    && r.kept.is_some()
                    && crate::ssr::tenancy::servers::template::database_exists(
                        admin,
                        r.kept.as_deref().unwrap_or_default(),
                    )
                    .await?
            }
            (TenantServer::Sqlite { dir }, None) => {
                let live = sqlite_file(dir, &r.tenant_id.to_string());
                let id = r.id;
                blocking(move || holds_restore(&live, id)).await?
            }
        };
        if let Some(dir) = &r.scratch {
            let major = facts(&r.server, &server).await.ok().map(|f| f.major);
            Scratch::new(dir.into()).remove(&self.backups, major).await;
        }
        let (how, outcome, step) = if switched {
            if let (TenantServer::Sqlite { dir }, None) = (&server, r.new_tenant_id) {
                remove_db_files(dir, &incoming_name(&r.tenant_id.to_string(), r.id))?;
            }
            ("finished", RestoreOutcome::Restored, RestoreStep::Cleaned)
        } else {
            match (&server, r.new_tenant_id) {
                (_, Some(new_id)) => {
                    server.drop(new_id).await?;
                    tenants::Entity::delete_many()
                        .filter(tenants::Column::Id.eq(new_id))
                        .filter(tenants::Column::Status.eq(TenantStatus::Provisioning))
                        .exec(&self.registry)
                        .await?;
                }
                (TenantServer::Postgres { admin, .. }, None) => {
                    // Two statements: DROP DATABASE runs outside a transaction.
                    admin
                        .execute_unprepared(&format!(
                            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                            quote_ident(&incoming_name(&role, r.id)),
                        ))
                        .await?;
                    admin
                        .execute_unprepared(&format!(
                            "ALTER DATABASE {} ALLOW_CONNECTIONS true",
                            quote_ident(&role)
                        ))
                        .await?;
                }
                (TenantServer::Sqlite { dir }, None) => {
                    remove_db_files(dir, &incoming_name(&r.tenant_id.to_string(), r.id))?;
                    if let Some(kept) = &r.kept {
                        remove_db_files(dir, kept)?;
                    }
                }
            }
            ("undone", RestoreOutcome::Undone, r.step)
        };
        tenant_restores::ActiveModel {
            id: Set(r.id),
            step: Set(step),
            outcome: Set(outcome),
            kept: Set(if switched { r.kept.clone() } else { None }),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(&r.subdomain);
        self.pools.forget(r.tenant_id).await;
        Ok(how)
    }

    async fn restore_step(
        &self,
        id: Uuid,
        step: RestoreStep,
        more: impl FnOnce(&mut tenant_restores::ActiveModel),
    ) -> Result<(), DbErr> {
        let mut row = tenant_restores::ActiveModel {
            id: Set(id),
            step: Set(step),
            updated_at: Set(Utc::now()),
            ..Default::default()
        };
        more(&mut row);
        row.update(&self.registry).await.map(|_| ())
    }

    async fn note_restore_error(&self, id: Uuid, reason: &str) {
        let _ = tenant_restores::ActiveModel {
            id: Set(id),
            error: Set(Some(reason.chars().take(2000).collect())),
            ..Default::default()
        }
        .update(&self.registry)
        .await;
    }

    /// Keeps the restore's record (and, beside, the reserved company row)
    /// fresh, so that recovery leaves a live restore alone.
    fn restore_heartbeat(&self, id: Uuid, reserved: Option<Uuid>) -> Heartbeat {
        let registry = self.registry.clone();
        Heartbeat::every(HEARTBEAT, move || {
            let registry = registry.clone();
            async move {
                let _ = tenant_restores::Entity::update_many()
                    .col_expr(tenant_restores::Column::UpdatedAt, Expr::value(Utc::now()))
                    .filter(tenant_restores::Column::Id.eq(id))
                    .filter(tenant_restores::Column::Outcome.eq(RestoreOutcome::Running))
                    .exec(&registry)
                    .await;
                if let Some(reserved) = reserved {
                    keep_reserved(&registry, reserved).await;
                }
            }
        })
    }

    fn restore_checkpoint(
        &self,
        step: RestoreStep,
        done: &mut RestoreStep,
    ) -> Result<(), RestoreError> {
        *done = step;
        match self.restore_crash_after {
            Some(at) if at == step => Err(RestoreError::Injected(step)),
            _ => Ok(()),
        }
    }

    fn directory_url(&self, t: &tenants::Model) -> Result<SecretString, RestoreError> {
        self.directory
            .connection_url(t)?
            .ok_or_else(|| RestoreError::NotSettled(t.subdomain.clone()))
    }

    /// The restores of company `sub`, newest first (the platform's page).
    pub async fn restores_of(&self, tenant: Uuid) -> Result<Vec<tenant_restores::Model>, DbErr> {
        tenant_restores::Entity::find()
            .filter(tenant_restores::Column::TenantId.eq(tenant))
            .order_by_desc(tenant_restores::Column::StartedAt)
            .all(&self.registry)
            .await
    }
}

/// The newest restore of each of `ids` (a restore beside counts for the
/// company it copied), for the platform's companies page.
pub async fn latest_restores(
    registry: &sea_orm::DatabaseConnection,
    ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, tenant_restores::Model>, DbErr> {
    let rows = tenant_restores::Entity::find()
        .filter(tenant_restores::Column::TenantId.is_in(ids.iter().copied()))
        .order_by_asc(tenant_restores::Column::StartedAt)
        .all(registry)
        .await?;
    Ok(rows.into_iter().map(|r| (r.tenant_id, r)).collect())
}

/// A restore as the platform's page shows it: a label, and the detail on
/// hover.
pub fn describe(r: &tenant_restores::Model) -> (String, String) {
    let to = shown(r.target_time);
    let place = match &r.as_subdomain {
        Some(s) => format!("beside, as {s}"),
        None => "in place".to_owned(),
    };
    let label = match r.outcome {
        RestoreOutcome::Running => format!("restoring to {to}"),
        RestoreOutcome::Restored => format!("restored to {to}"),
        RestoreOutcome::Undone => "restore failed".to_owned(),
        RestoreOutcome::Reverted => "restore undone".to_owned(),
    };
    let mut detail = format!(
        "{place}, started {}; step: {}",
        shown(r.started_at),
        r.step.to_value()
    );
    if let Some(ms) = r.pause_ms {
        detail.push_str(&format!("; writes paused {ms} ms"));
    }
    if let (Some(_), Some(until)) = (&r.kept, r.kept_until) {
        detail.push_str(&format!("; the data before is kept until {}", shown(until)));
    }
    if let Some(e) = &r.error {
        detail.push_str(&format!("; {e}"));
    }
    (label, detail)
}

fn sqlite_err(e: rusqlite::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Runs blocking work (SQLite files) off the async workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, RestoreError> + Send + 'static,
) -> Result<T, RestoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?
}

/// Runs every tenant migration not yet applied to the database at `url`.
async fn migrate_up(url: &SecretString) -> Result<(), DbErr> {
    let db = connect_once(url).await?;
    let up = <migration::TenantMigrator as migration::MigratorTrait>::up(&db, None).await;
    let _ = db.close().await;
    up
}

/// `url` with database `db` instead of its own.
fn with_database(url: &SecretString, db: &str) -> SecretString {
    match url::Url::parse(url.expose_secret()) {
        Ok(mut u) => {
            u.set_path(db);
            SecretString::from(u.to_string())
        }
        Err(_) => url.clone(),
    }
}

/// SQLite: copies the database at `live` into a new file at `keep`
/// (`VACUUM INTO`), then replaces what `live` holds with what `from` holds,
/// in one write transaction of SQLite's online backup (its other
/// connections, in any process, wait on its lock, then read the new
/// contents). Returns how long writes to `live` waited. Blocking.
fn replace_contents(
    live: &std::path::Path,
    from: &std::path::Path,
    keep: &std::path::Path,
) -> Result<Duration, RestoreError> {
    let sql = sqlite_err;
    match std::fs::remove_file(keep) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
        _ => {}
    }
    let mut dst = rusqlite::Connection::open_with_flags(
        live,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    dst.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
    // The path is the company directory's, a UUID and a suffix: bound.
    dst.execute("VACUUM INTO ?1", [keep.to_string_lossy()])
        .map_err(sql)?;
    let src = rusqlite::Connection::open_with_flags(
        from,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    let started = Instant::now();
    {
        use rusqlite::backup::StepResult;
        let backup = rusqlite::backup::Backup::new(&src, &mut dst).map_err(sql)?;
        // Every page in one step: one write transaction on `live`.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match backup.step(-1).map_err(sql)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                _ => return Err(std::io::Error::other("the company's file stayed locked").into()),
            }
        }
    }
    Ok(started.elapsed())
}

/// SQLite: whether the database at `live` has restore `id`'s audit line
/// (it went in with the restored data). Blocking.
fn holds_restore(live: &std::path::Path, id: Uuid) -> Result<bool, RestoreError> {
    let sql = sqlite_err;
    let conn = rusqlite::Connection::open_with_flags(
        live,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sql)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(sql)?;
    let n: i64 = conn
        .query_row(
            "SELECT count(*) FROM audit_log WHERE action = 'company.restored' AND detail LIKE ?1",
            [format!("%(restore {id})")],
            |r| r.get(0),
        )
        .map_err(sql)?;
    Ok(n > 0)
}

fn remove_db_files(dir: &std::path::Path, name: &str) -> std::io::Result<()> {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        match std::fs::remove_file(dir.join(format!("{name}.db{suffix}"))) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    Ok(())
}

/// The rows of every table of the SQLite file at `path`, once it passes
/// `PRAGMA integrity_check`.
fn sqlite_rows(path: &std::path::Path) -> Result<u64, RestoreError> {
    let conn = rusqlite::Connection::open(path).map_err(sqlite_err)?;
    let sql = sqlite_err;
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(sql)?;
    if check != "ok" {
        return Err(RestoreError::Corrupt(check));
    }
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .map_err(sql)?;
    let mut rows = 0u64;
    for t in tables {
        // A table name read from the file's own catalog, quoted.
        let n: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM \"{}\"", t.replace('"', "\"\"")),
                [],
                |r| r.get(0),
            )
            .map_err(sql)?;
        rows += n as u64;
    }
    Ok(rows)
}
