//! Backups, and one company put back to a chosen moment while the others keep serving.
//!
//! - [`pgbackrest`]: every PostgreSQL server is a pgBackRest stanza of its
//!   own name (`default`, and each `dbserver add`): continuous WAL
//!   archiving plus full and incremental backups. `backup setup` says (or
//!   writes) what the server and pgBackRest need, `backup run` takes one,
//!   `backup list` shows them and how far back each company goes.
//! - [`scratch`]: a temporary PostgreSQL cluster that pgBackRest restores
//!   one company's database into (`--db-include`, `--type=time`), outside
//!   every serving server, on a Unix socket only this process may use.
//! - [`priority`]: a restore's own work kept on the cores the companies
//!   being served leave idle.
//! - [`snapshots`]: SQLite's per-company snapshots (`VACUUM INTO`), taken
//!   on a schedule by `serve`'s housekeeping.
//! - [`restore`]: `tenant restore`, a recorded state machine like a move:
//!   the company's database at the moment is copied onto its live server
//!   (with the move's copy and verification), then either switched in
//!   (the database before is kept for `--undo`) or opened beside it as a new
//!   paused company.
pub mod pgbackrest;
pub mod priority;
pub mod restore;
pub mod scratch;
pub mod snapshots;

use std::{
    ffi::OsStr,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

/// `ENCLAVE_RESTORE_MEMORY_MB`'s default.
pub const DEFAULT_MEMORY_MB: u64 = 2048;

/// What backups and restores are configured with (see the settings' help).
#[derive(Clone, Debug)]
pub struct BackupSettings {
    /// pgBackRest's configuration file; `None`: its own default
    /// (`/etc/pgbackrest/pgbackrest.conf`).
    pub pgbackrest_config: Option<PathBuf>,
    /// The operating-system user that owns PostgreSQL's data (`postgres`):
    /// pgBackRest and the temporary cluster run as it. `None`: this
    /// process's own user.
    pub os_user: Option<String>,
    /// Where `pg_ctl` of the servers' major version is; `None`:
    /// `/usr/lib/postgresql/<major>/bin`, as Debian installs it.
    pub pg_bin: Option<PathBuf>,
    /// Full backups pgBackRest keeps (older ones, and the WAL only they
    /// need, are expired after each backup).
    pub retention_full: u32,
    /// Where temporary clusters are made, one directory per restore.
    pub scratch_dir: PathBuf,
    /// A restore whose temporary cluster needs at most this many bytes is
    /// made in memory instead, when the machine has twice that free (see
    /// [`BackupSettings::scratch_for`]); 0: never.
    pub memory_limit: u64,
    /// The cores a restore's own work runs on (a list `taskset` takes, see
    /// [`priority::restore_cores`]); `None`: every core.
    pub cores: Option<String>,
    /// How long an in-place restore keeps the database it replaced.
    pub keep: Duration,
    /// SQLite: how often each company is snapshotted (`None`: never).
    pub snapshot_every: Option<Duration>,
    /// SQLite: how long snapshots are kept (the newest always is).
    pub snapshot_keep: Duration,
    /// SQLite: `<data dir>/snapshots`.
    pub snapshot_dir: PathBuf,
}

impl BackupSettings {
    /// Defaults under `data_dir`, for tests and tools that set nothing.
    pub fn under(data_dir: &Path) -> Self {
        Self {
            pgbackrest_config: None,
            os_user: None,
            pg_bin: None,
            retention_full: 2,
            scratch_dir: data_dir.join("restores"),
            memory_limit: DEFAULT_MEMORY_MB << 20,
            cores: priority::restore_cores(None),
            keep: Duration::from_secs(7 * 86_400),
            snapshot_every: Some(Duration::from_secs(3600)),
            snapshot_keep: Duration::from_secs(7 * 86_400),
            snapshot_dir: data_dir.join("snapshots"),
        }
    }

    /// A command that runs `program` as [`BackupSettings::os_user`]: with
    /// `runuser` when this process is root, `sudo -n` otherwise, and
    /// directly when it is that user already (or none is set).
    pub(in crate::ssr::tenancy) fn command(
        &self,
        program: impl AsRef<OsStr>,
    ) -> tokio::process::Command {
        self.command_as(self.os_user.as_deref(), program)
    }

    /// A command that may act on [`BackupSettings::os_user`]'s processes
    /// (renice them, set their session groups): this process's own when it
    /// is root, which may act on any at once (no `runuser` session to set
    /// up, no kernel limit of one group change in 100 ms, which made a
    /// yield take 0.2-0.8 s); [`BackupSettings::command`] otherwise.
    pub(in crate::ssr::tenancy) fn command_over(
        &self,
        program: impl AsRef<OsStr>,
    ) -> tokio::process::Command {
        match running_as_root() {
            true => self.command_as(None, program),
            false => self.command(program),
        }
    }

    fn command_as(
        &self,
        user: Option<&str>,
        program: impl AsRef<OsStr>,
    ) -> tokio::process::Command {
        let mut cmd = match user.filter(|u| *u != own_user()) {
            Some(user) => {
                let mut c = if running_as_root() {
                    let mut c = tokio::process::Command::new("runuser");
                    c.args(["-u", user, "--"]);
                    c
                } else {
                    let mut c = tokio::process::Command::new("sudo");
                    c.args(["-n", "-u", user, "--"]);
                    c
                };
                c.arg(program);
                c
            }
            None => tokio::process::Command::new(program),
        };
        cmd.kill_on_drop(true).stdin(std::process::Stdio::null());
        cmd
    }

    /// Runs a command made by [`BackupSettings::command`]; its standard
    /// output, or an error naming `what` with the end of what it said.
    pub(in crate::ssr::tenancy) async fn run(
        &self,
        what: &str,
        mut cmd: tokio::process::Command,
    ) -> Result<String, ToolError> {
        let out = cmd.output().await.map_err(|e| ToolError {
            what: what.to_owned(),
            detail: e.to_string(),
        })?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let tail: Vec<&str> = said.lines().rev().take(12).collect();
        Err(ToolError {
            what: what.to_owned(),
            detail: format!(
                "{}: {}",
                out.status,
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            ),
        })
    }
}

/// How long each part of a restore took, logged at debug level as it
/// goes (`RUST_LOG=app::ssr::tenancy::backups=debug`).
pub(super) struct Laps(std::time::Instant);

impl Laps {
    pub(super) fn start() -> Self {
        Self(std::time::Instant::now())
    }

    /// Logs `what` with the time since the last lap.
    pub(super) fn lap(&mut self, what: &'static str) {
        tracing::debug!(
            what,
            ms = self.0.elapsed().as_millis() as u64,
            "restore: done"
        );
        self.0 = std::time::Instant::now();
    }
}

/// A program Enclave runs (pgBackRest, `pg_ctl`) failed.
#[derive(Debug, thiserror::Error)]
#[error("{what} failed ({detail})")]
pub struct ToolError {
    pub what: String,
    pub detail: String,
}

/// Whether this process runs as root (it owns `/proc/self`).
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// This process's user name (`id -un`), read once.
pub(in crate::ssr::tenancy) fn own_user() -> &'static str {
    static USER: OnceLock<String> = OnceLock::new();
    USER.get_or_init(|| {
        std::process::Command::new("id")
            .arg("-un")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| "root".to_owned())
    })
}
