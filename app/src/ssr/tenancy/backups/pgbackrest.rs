//! pgBackRest, one stanza per PostgreSQL server (the server's name): what it needs, a backup now, and what the backups cover.
//!
//! Enclave runs the `pgbackrest` command as the operating-system user that
//! owns PostgreSQL's data (`ENCLAVE_BACKUP_OS_USER`), with the
//! configuration file `ENCLAVE_PGBACKREST_CONFIG` if set. Debian 12's
//! pgBackRest (2.45) supports PostgreSQL up to 15; `backup setup` refuses
//! any other server clearly.
use std::ops::RangeInclusive;

use chrono::{DateTime, Utc};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, Statement,
};

use super::{BackupSettings, ToolError};
use crate::ssr::entities::{
    tenant_moves::{self, MoveOutcome},
    tenants,
};
use crate::ssr::services::Services;
use crate::ssr::tenancy::servers::databases::TenantServer;
use crate::ssr::tenancy::servers::fleet::{FleetError, FIRST};

/// The PostgreSQL major versions backups support: what Debian 12's
/// pgBackRest 2.45 knows (9.0–15), from the oldest Enclave runs on.
pub const SUPPORTED: RangeInclusive<u32> = 12..=15;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("'{0}' keeps companies in SQLite files: they are snapshotted instead (ENCLAVE_SNAPSHOT_EVERY)")]
    NotPostgres(String),
    #[error("'{server}' runs PostgreSQL {version}: backups support PostgreSQL {} to {} (pgBackRest 2.45, Debian 12's, predates 16)", SUPPORTED.start(), SUPPORTED.end())]
    Unsupported { server: String, version: String },
    #[error("--write needs the file to write: set ENCLAVE_PGBACKREST_CONFIG")]
    NoConfig,
    #[error("no backup of '{0}' yet: run `server backup run {0}`")]
    NoBackup(String),
    #[error(transparent)]
    Tool(#[from] ToolError),
    #[error(transparent)]
    Fleet(#[from] FleetError),
    #[error("the database server")]
    Db(#[from] DbErr),
    #[error("reading pgBackRest's answer")]
    Json(#[from] serde_json::Error),
    #[error("file system")]
    Io(#[from] std::io::Error),
}

/// What a server says about itself that backups need.
#[derive(Debug)]
pub struct ServerFacts {
    pub version: String,
    pub major: u32,
    pub data_directory: String,
    pub port: String,
    pub socket_dir: Option<String>,
    pub archive_mode: String,
    pub wal_level: String,
    pub archive_command: String,
    /// The settings a server replaying this one's WAL must have at least
    /// as high (`max_connections` and the like), with their values.
    pub replay_minimums: Vec<(&'static str, String)>,
}

/// See [`ServerFacts::replay_minimums`].
const REPLAY_MINIMUMS: [&str; 5] = [
    "max_connections",
    "max_worker_processes",
    "max_wal_senders",
    "max_prepared_transactions",
    "max_locks_per_transaction",
];

/// What `backup setup` found and did for one server.
#[derive(Debug)]
pub struct Setup {
    pub server: String,
    /// PostgreSQL settings, each with the value it needs.
    pub settings: Vec<(&'static str, String)>,
    /// `archive_mode` is off: the server must be restarted for it.
    pub needs_restart: bool,
    /// The stanza's section of `pgbackrest.conf`.
    pub stanza: String,
    /// The settings were set (`ALTER SYSTEM`) and the section written.
    pub written: bool,
    /// The stanza exists and `pgbackrest check` passed.
    pub checked: bool,
}

/// One backup, as `backup list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Backup {
    pub label: String,
    /// `full`, `diff` or `incr`.
    pub kind: String,
    pub started: DateTime<Utc>,
    pub stopped: DateTime<Utc>,
    pub size: u64,
    /// Where in the server's WAL it began (`0/2000028`), when pgBackRest
    /// says.
    #[serde(skip)]
    pub lsn_start: Option<String>,
}

/// A server's backups, and the earliest moment each of its companies can
/// be restored to (`None`: no backup holds it yet).
#[derive(Debug, serde::Serialize)]
pub struct ServerBackups {
    pub server: String,
    pub backups: Vec<Backup>,
    pub companies: Vec<(String, Option<DateTime<Utc>>)>,
}

impl BackupSettings {
    /// `pgbackrest [--config=…] --stanza=<stanza> <args…>`.
    pub(in crate::ssr::tenancy) fn pgbackrest(
        &self,
        stanza: &str,
        args: &[&str],
    ) -> tokio::process::Command {
        self.pgbackrest_as(self.command("pgbackrest"), stanza, args)
    }

    /// [`BackupSettings::pgbackrest`] on idle cores only (a restore's, see
    /// [`BackupSettings::command_idle`]).
    pub(in crate::ssr::tenancy) fn pgbackrest_idle(
        &self,
        stanza: &str,
        args: &[&str],
    ) -> tokio::process::Command {
        self.pgbackrest_as(self.command_idle("pgbackrest"), stanza, args)
    }

    fn pgbackrest_as(
        &self,
        mut cmd: tokio::process::Command,
        stanza: &str,
        args: &[&str],
    ) -> tokio::process::Command {
        if let Some(config) = &self.pgbackrest_config {
            cmd.arg(format!("--config={}", config.display()));
        }
        cmd.arg(format!("--stanza={stanza}")).args(args);
        cmd
    }

    /// The `archive_command` that pushes a server's WAL into its stanza.
    pub fn archive_command(&self, stanza: &str) -> String {
        let config = self
            .pgbackrest_config
            .as_ref()
            .map(|c| format!("--config={} ", c.display()))
            .unwrap_or_default();
        format!("pgbackrest {config}--stanza={stanza} archive-push %p")
    }

    /// The server's backups, oldest first.
    pub(in crate::ssr::tenancy) async fn backups(
        &self,
        stanza: &str,
    ) -> Result<Vec<Backup>, BackupError> {
        let out = self
            .run(
                "pgbackrest info",
                self.pgbackrest(stanza, &["--output=json", "info"]),
            )
            .await?;
        parse_info(&out)
    }

    /// Makes the server archive its newest WAL and waits until it is in
    /// the repository (`pgbackrest check`): every moment until now can be
    /// restored to after it.
    pub(in crate::ssr::tenancy) async fn check(&self, stanza: &str) -> Result<(), BackupError> {
        self.run("pgbackrest check", self.pgbackrest(stanza, &["check"]))
            .await?;
        Ok(())
    }
}

/// How long [`archived_now`] waits for the server's archiver.
const ARCHIVE_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// What [`BackupSettings::check`] does for a restore, without starting
/// pgBackRest and its checks of the whole setup (about 0.2 s against
/// 0.8 s): `server` closes its current WAL file, and this waits until its
/// archiver has pushed that file into the repository (`pg_stat_archiver`,
/// asked every 20 ms). Every moment until now can be restored to after
/// it. Where the server's administrator may not switch files
/// (`pg_switch_wal` needs a superuser or a grant), `pgbackrest check`.
pub(in crate::ssr::tenancy) async fn archived_now(
    b: &BackupSettings,
    stanza: &str,
    server: &TenantServer,
) -> Result<(), BackupError> {
    let Some((admin, _)) = server.postgres_admin() else {
        return Err(BackupError::NotPostgres(stanza.to_owned()));
    };
    // The file holding the last byte written; with nothing written since
    // the last switch, the one before it (archived, or on its way). With
    // archiving off, pgBackRest says what is wrong.
    let closed = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT CASE WHEN current_setting('archive_mode') <> 'off' \
               THEN pg_walfile_name(pg_switch_wal() - 1) END AS f",
        ))
        .await;
    let file = match closed {
        Ok(Some(row)) => row.try_get::<Option<String>>("", "f")?,
        Ok(None) | Err(_) => None,
    };
    let Some(file) = file else {
        return b.check(stanza).await;
    };
    let deadline = std::time::Instant::now() + ARCHIVE_WAIT;
    loop {
        let row = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT coalesce(last_archived_wal ~ '^[0-9A-F]{24}' \
                   AND left(last_archived_wal, 24) >= $1, false) AS done, \
                   coalesce(last_failed_wal = $1, false) AS failed FROM pg_stat_archiver",
                [file.clone().into()],
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("pg_stat_archiver has no row".into()))?;
        if row.try_get::<bool>("", "done")? {
            return Ok(());
        }
        if std::time::Instant::now() > deadline {
            let failed = row.try_get::<bool>("", "failed")?;
            return Err(BackupError::Tool(ToolError {
                what: "archiving the newest WAL".into(),
                detail: format!(
                    "{file} is not in the repository after {ARCHIVE_WAIT:?}{}",
                    if failed {
                        "; the archiver's last attempt failed (see the server's log)"
                    } else {
                        ""
                    }
                ),
            }));
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// How long a restore waits, once switched, for the server's archiver to
/// archive the WAL its copy wrote before putting it back at its priority.
const ARCHIVER_CATCH_UP: std::time::Duration = std::time::Duration::from_secs(30);

/// The server's WAL archiver process, where it runs (archiving is on).
pub(in crate::ssr::tenancy) async fn archiver_pid(
    admin: &sea_orm::DatabaseConnection,
) -> Option<u32> {
    let row = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT pid FROM pg_stat_activity WHERE backend_type = 'archiver'",
        ))
        .await
        .ok()??;
    u32::try_from(row.try_get::<i32>("", "pid").ok()?).ok()
}

/// Waits (at most [`ARCHIVER_CATCH_UP`]) until no WAL file of the server
/// is waiting to be archived. Where the administrator may not see the
/// archive's status (`pg_ls_archive_statusdir`: superuser or
/// `pg_monitor`), it does not wait.
pub(in crate::ssr::tenancy) async fn archiver_caught_up(admin: &sea_orm::DatabaseConnection) {
    let deadline = std::time::Instant::now() + ARCHIVER_CATCH_UP;
    loop {
        let row = admin
            .query_one_raw(sea_orm::Statement::from_string(
                sea_orm::DbBackend::Postgres,
                "SELECT NOT EXISTS (SELECT 1 FROM pg_ls_archive_statusdir() \
                   WHERE name LIKE '%.ready') AS done",
            ))
            .await;
        match row.map(|r| r.and_then(|r| r.try_get::<bool>("", "done").ok())) {
            Ok(Some(true)) => return,
            Ok(Some(false)) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Ok(Some(false)) => {
                tracing::warn!(
                    "the server's archiver is still behind {ARCHIVER_CATCH_UP:?} after a restore's copy; it is put back at its priority"
                );
                return;
            }
            Ok(None) | Err(_) => return,
        }
    }
}

/// The backups in `pgbackrest info --output=json`'s answer, oldest first.
fn parse_info(json: &str) -> Result<Vec<Backup>, BackupError> {
    let stanzas: serde_json::Value = serde_json::from_str(json)?;
    let mut out = Vec::new();
    for stanza in stanzas.as_array().into_iter().flatten() {
        for b in stanza["backup"].as_array().into_iter().flatten() {
            if b["error"].as_bool() == Some(true) {
                continue;
            }
            let time = |k: &str| {
                b["timestamp"][k]
                    .as_i64()
                    .and_then(|s| DateTime::from_timestamp(s, 0))
            };
            let (Some(started), Some(stopped)) = (time("start"), time("stop")) else {
                continue;
            };
            // pgBackRest keeps whole seconds: the backup ended within the
            // second after the one it records.
            let stopped = stopped + chrono::Duration::seconds(1);
            out.push(Backup {
                label: b["label"].as_str().unwrap_or_default().to_owned(),
                kind: b["type"].as_str().unwrap_or_default().to_owned(),
                started,
                stopped,
                size: b["info"]["size"].as_u64().unwrap_or(0),
                lsn_start: b["lsn"]["start"].as_str().map(str::to_owned),
            });
        }
    }
    out.sort_by_key(|b| b.started);
    Ok(out)
}

/// The earliest moment a database that has been on its server since
/// `since` can be restored to: the end of the first backup that began after.
pub fn earliest(backups: &[Backup], since: DateTime<Utc>) -> Option<DateTime<Utc>> {
    backups
        .iter()
        .filter(|b| b.started >= since)
        .map(|b| b.stopped)
        .min()
}

async fn show(admin: &impl ConnectionTrait, name: &str) -> Result<String, DbErr> {
    // `name` is one of the constants below.
    let row = admin
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT current_setting('{name}') AS v"),
        ))
        .await?
        .ok_or_else(|| DbErr::Custom(format!("no answer for {name}")))?;
    row.try_get("", "v")
}

/// Reads what backups need to know of `server`, and refuses a version
/// pgBackRest 2.45 cannot back up.
pub(in crate::ssr::tenancy) async fn facts(
    name: &str,
    server: &TenantServer,
) -> Result<ServerFacts, BackupError> {
    let (admin, _) = server
        .postgres_admin()
        .ok_or_else(|| BackupError::NotPostgres(name.to_owned()))?;
    let num: u32 = show(admin, "server_version_num")
        .await?
        .parse()
        .unwrap_or(0);
    let version = show(admin, "server_version").await?;
    let major = num / 10_000;
    if !SUPPORTED.contains(&major) {
        return Err(BackupError::Unsupported {
            server: name.to_owned(),
            version,
        });
    }
    let sockets = show(admin, "unix_socket_directories").await?;
    let mut replay_minimums = Vec::new();
    for name in REPLAY_MINIMUMS {
        replay_minimums.push((name, show(admin, name).await?));
    }
    Ok(ServerFacts {
        version,
        major,
        data_directory: show(admin, "data_directory").await?,
        port: show(admin, "port").await?,
        socket_dir: sockets
            .split(',')
            .map(str::trim)
            .find(|s| s.starts_with('/'))
            .map(str::to_owned),
        archive_mode: show(admin, "archive_mode").await?,
        wal_level: show(admin, "wal_level").await?,
        archive_command: show(admin, "archive_command").await?,
        replay_minimums,
    })
}

/// `[stanza]` with the keys pgBackRest needs to reach the server.
fn stanza_section(stanza: &str, f: &ServerFacts) -> String {
    let mut s = format!(
        "[{stanza}]\npg1-path={}\npg1-port={}\n",
        f.data_directory, f.port
    );
    if let Some(dir) = &f.socket_dir {
        s.push_str(&format!("pg1-socket-path={dir}\n"));
    }
    s
}

/// `config` with `section` in place of the stanza's section (added if
/// missing; a new file starts with a `[global]` repository).
fn with_section(config: Option<&str>, stanza: &str, section: &str) -> String {
    let Some(config) = config else {
        return format!("[global]\nrepo1-path=/var/lib/pgbackrest\nstart-fast=y\n\n{section}");
    };
    let header = format!("[{stanza}]");
    let mut out = String::new();
    let mut skipping = false;
    let mut placed = false;
    for line in config.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            skipping = t == header;
            if skipping {
                out.push_str(section);
                placed = true;
                continue;
            }
        }
        if !skipping {
            out.push_str(line);
            out.push('\n');
        }
    }
    if !placed {
        if !out.ends_with("\n\n") && !out.is_empty() {
            out.push('\n');
        }
        out.push_str(section);
    }
    out
}

/// A PostgreSQL string literal.
fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Services {
    /// `backup setup`: what server `name` and pgBackRest need for backups;
    /// with `write`, sets the server's settings (`ALTER SYSTEM`), writes its
    /// stanza into `ENCLAVE_PGBACKREST_CONFIG`, and, once archiving is on,
    /// creates the stanza and checks it.
    pub async fn backup_setup(&self, name: &str, write: bool) -> Result<Setup, BackupError> {
        let b = &self.backups;
        let server = self.provisioner.fleet().named(name).await?;
        let f = facts(name, &server).await?;
        let archive_command = b.archive_command(name);
        let mut settings = vec![("archive_mode", "on".to_owned())];
        if f.wal_level == "minimal" {
            settings.push(("wal_level", "replica".to_owned()));
        }
        settings.push(("archive_command", archive_command.clone()));
        // The newest minute is archived even when the company is quiet.
        settings.push(("archive_timeout", "60".to_owned()));
        let stanza = stanza_section(name, &f);
        let mut setup = Setup {
            server: name.to_owned(),
            needs_restart: f.archive_mode == "off" || f.wal_level == "minimal",
            settings,
            stanza,
            written: false,
            checked: false,
        };
        if !write {
            return Ok(setup);
        }
        let config = b.pgbackrest_config.as_ref().ok_or(BackupError::NoConfig)?;
        let (admin, _) = server
            .postgres_admin()
            .ok_or_else(|| BackupError::NotPostgres(name.to_owned()))?;
        for (key, value) in &setup.settings {
            // Keys are the constants above; values are quoted literals.
            admin
                .execute_unprepared(&format!("ALTER SYSTEM SET {key} = {}", literal(value)))
                .await?;
        }
        admin.execute_unprepared("SELECT pg_reload_conf()").await?;
        let old = match std::fs::read_to_string(config) {
            Ok(s) => Some(s),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        let new = with_section(old.as_deref(), name, &setup.stanza);
        std::fs::write(config, new)?;
        setup.written = true;
        if !setup.needs_restart {
            self.stanza_ready(name).await?;
            setup.checked = true;
        }
        Ok(setup)
    }

    /// Creates server `name`'s stanza if it is missing (harmless if it
    /// exists) and checks that archiving reaches it.
    async fn stanza_ready(&self, name: &str) -> Result<(), BackupError> {
        let b = &self.backups;
        b.run(
            "pgbackrest stanza-create",
            b.pgbackrest(name, &["stanza-create"]),
        )
        .await?;
        b.check(name).await
    }

    /// `backup run`: a backup of server `name` now, or of every PostgreSQL
    /// server (incremental, or full when the stanza has none; then the
    /// backups past the retention expire). SQLite: a snapshot of every
    /// company. Returns what was taken, one line each.
    pub async fn backup_run(&self, name: Option<&str>) -> Result<Vec<String>, BackupError> {
        let fleet = self.provisioner.fleet();
        if !fleet.first().is_postgres() {
            let taken = self.snapshot_all(true).await?;
            return Ok(vec![format!("{taken} SQLite snapshots taken")]);
        }
        let names = match name {
            Some(n) => vec![n.to_owned()],
            None => fleet.list().await?.into_iter().map(|s| s.name).collect(),
        };
        let mut done = Vec::new();
        for name in names {
            let server = fleet.named(&name).await?;
            facts(&name, &server).await?;
            self.stanza_ready(&name).await?;
            let b = &self.backups;
            let retention = format!("--repo1-retention-full={}", b.retention_full);
            let started = std::time::Instant::now();
            b.run(
                "pgbackrest backup",
                b.pgbackrest(
                    &name,
                    &["--type=incr", "--start-fast", &retention, "backup"],
                ),
            )
            .await?;
            let last = b
                .backups(&name)
                .await?
                .pop()
                .ok_or_else(|| BackupError::NoBackup(name.clone()))?;
            tracing::info!(server = %name, label = %last.label, kind = %last.kind, secs = started.elapsed().as_secs_f64(), "backup taken");
            done.push(format!(
                "{name}: {} backup {} ({} MB) in {:.1} s",
                last.kind,
                last.label,
                last.size / 1_000_000,
                started.elapsed().as_secs_f64()
            ));
        }
        Ok(done)
    }

    /// `backup list`: each PostgreSQL server's backups and how far back
    /// each of its companies goes.
    pub async fn backup_list(&self) -> Result<Vec<ServerBackups>, BackupError> {
        let fleet = self.provisioner.fleet();
        if !fleet.first().is_postgres() {
            return Err(BackupError::NotPostgres(FIRST.to_owned()));
        }
        let companies = tenants::Entity::find()
            .order_by_asc(tenants::Column::Subdomain)
            .all(&self.registry)
            .await?;
        let mut out = Vec::new();
        for server in fleet.list().await? {
            let backups = self.backups.backups(&server.name).await?;
            let mut listed = Vec::new();
            for t in companies
                .iter()
                .filter(|t| t.db_server.as_deref().unwrap_or(FIRST) == server.name)
            {
                let since = self.on_server_since(t).await?;
                listed.push((t.subdomain.clone(), earliest(&backups, since)));
            }
            out.push(ServerBackups {
                server: server.name,
                backups,
                companies: listed,
            });
        }
        Ok(out)
    }

    /// Since when company `t`'s database has been on its server: created,
    /// or moved there.
    pub(in crate::ssr::tenancy) async fn on_server_since(
        &self,
        t: &tenants::Model,
    ) -> Result<DateTime<Utc>, DbErr> {
        let mut since = t.created_at;
        if let Some(m) = tenant_moves::Entity::find_by_id(t.id)
            .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Moved))
            .one(&self.registry)
            .await?
        {
            since = since.max(m.updated_at);
        }
        Ok(since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stanza_section_is_replaced_or_added() {
        let old = "[global]\nrepo1-path=/r\n\n[default]\npg1-path=/old\n\n[second]\npg1-path=/s\n";
        let new = with_section(Some(old), "default", "[default]\npg1-path=/new\n\n");
        assert_eq!(
            new,
            "[global]\nrepo1-path=/r\n\n[default]\npg1-path=/new\n\n[second]\npg1-path=/s\n"
        );
        let added = with_section(
            Some("[global]\nrepo1-path=/r\n"),
            "third",
            "[third]\npg1-path=/t\n",
        );
        assert_eq!(added, "[global]\nrepo1-path=/r\n\n[third]\npg1-path=/t\n");
        assert!(with_section(None, "default", "[default]\n").starts_with("[global]\nrepo1-path="));
    }

    #[test]
    fn the_earliest_moment_is_the_end_of_the_first_backup_after_arrival() {
        let at = |s| DateTime::from_timestamp(s, 0).unwrap();
        let b = |start, stop| Backup {
            label: String::new(),
            kind: "full".into(),
            started: at(start),
            stopped: at(stop),
            size: 0,
            lsn_start: None,
        };
        let backups = [b(100, 110), b(200, 230), b(300, 305)];
        assert_eq!(earliest(&backups, at(50)), Some(at(110)));
        assert_eq!(earliest(&backups, at(150)), Some(at(230)));
        assert_eq!(earliest(&backups, at(301)), None);
    }

    #[test]
    fn info_gives_the_backups_oldest_first_and_skips_failed_ones() {
        let json = r#"[{"name":"default","backup":[
            {"label":"B","type":"incr","error":false,"timestamp":{"start":200,"stop":210},"info":{"size":5}},
            {"label":"A","type":"full","error":false,"timestamp":{"start":100,"stop":150},"info":{"size":9},"lsn":{"start":"0/2000028","stop":"0/2000100"}},
            {"label":"X","type":"incr","error":true,"timestamp":{"start":300,"stop":310},"info":{"size":1}}]}]"#;
        let got = parse_info(json).unwrap();
        let labels: Vec<_> = got.iter().map(|b| b.label.as_str()).collect();
        assert_eq!(labels, ["A", "B"]);
        assert_eq!(got[0].size, 9);
        assert_eq!(got[0].lsn_start.as_deref(), Some("0/2000028"));
        assert_eq!(got[1].lsn_start, None);
        assert_eq!(
            got[0].stopped.timestamp(),
            151,
            "the second after the one recorded"
        );
    }
}
