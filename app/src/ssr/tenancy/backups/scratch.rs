//! A temporary PostgreSQL cluster holding one company's database as it was at a moment, restored by pgBackRest outside every serving server.
//!
//! `<ENCLAVE_RESTORE_DIR>/<restore id>/`, or `/dev/shm/enclave-restores/<restore id>/`
//! in memory where it fits (see [`BackupSettings::scratch_for`]), holds
//! `data/` (what pgBackRest restores, owned by the server's operating-system
//! user) and `conf/` (its `pg_hba.conf` and `pg_ident.conf`); its socket is in
//! `$TMPDIR/enclave-restore-<id>/` (a socket's path is short). The cluster listens on
//! no TCP port: only on a Unix socket there, with `peer` authentication
//! mapped so that only this process's user (and the server's own) may
//! connect, as the superuser or as the company's role. Archiving is off
//! (`--archive-mode=off`), so it never writes into the repository.
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use secrecy::SecretString;

use super::pgbackrest::{BackupError, ServerFacts};
use super::priority::IdleCluster;
use super::{own_user, BackupSettings, Laps, ToolError};

/// How long the cluster may take to replay the WAL up to the moment.
const RECOVERY_WAIT: Duration = Duration::from_secs(30 * 60);
/// The socket's port number (there is no TCP listener).
const PORT: u16 = 5432;

/// A tmpfs every Linux mounts: a restore made there writes nothing to the
/// disks the served companies use.
const IN_MEMORY: &str = "/dev/shm";

impl BackupSettings {
    /// Where a restore whose temporary cluster needs about `needed` bytes
    /// (`None`: unknown) makes it: in memory, under [`IN_MEMORY`], when that
    /// is at most [`BackupSettings::memory_limit`] and both the tmpfs and
    /// the machine have twice that free; under `scratch_dir` otherwise.
    /// Buffered writes to a disk cost the companies served beside them
    /// however low the writer's priority (their p99 beside two writers at
    /// nice 19: 3.8-16 ms to files, 1.1-2.1 ms to tmpfs, 0.5-1.0 ms alone).
    pub fn scratch_for(&self, needed: Option<u64>) -> PathBuf {
        let memory = Path::new(IN_MEMORY);
        let in_memory = needed.is_some_and(|n| {
            fits_in_memory(n, self.memory_limit, tmpfs_free(memory), mem_available())
        });
        if in_memory {
            memory.join("enclave-restores")
        } else {
            self.scratch_dir.clone()
        }
    }
}

fn fits_in_memory(
    needed: u64,
    limit: u64,
    tmpfs_free: Option<u64>,
    available: Option<u64>,
) -> bool {
    let twice = needed.saturating_mul(2);
    limit > 0
        && needed <= limit
        && tmpfs_free.is_some_and(|f| f >= twice)
        && available.is_some_and(|a| a >= twice)
}

/// The bytes free on `dir` if it is a tmpfs.
fn tmpfs_free(dir: &Path) -> Option<u64> {
    const TMPFS_MAGIC: i64 = 0x0102_1994;
    let fs = rustix::fs::statfs(dir).ok()?;
    #[allow(clippy::unnecessary_cast)] // the fields' types differ by platform
    (fs.f_type as i64 == TMPFS_MAGIC)
        .then(|| (fs.f_bavail as u64).saturating_mul(fs.f_bsize as u64))
}

/// The machine's memory available without swapping (`MemAvailable`).
fn mem_available() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb = info
        .lines()
        .find_map(|l| l.strip_prefix("MemAvailable:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse::<u64>()
        .ok()?;
    Some(kb.saturating_mul(1024))
}

/// One restore's temporary cluster (see the module's doc).
#[derive(Clone, Debug)]
pub struct Scratch {
    pub dir: PathBuf,
}

impl Scratch {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// The socket's directory: under the system's temporary directory, as
    /// a socket's path may not exceed 107 bytes.
    fn socket(&self) -> PathBuf {
        let name = self
            .dir
            .file_name()
            .map(|n| n.to_string_lossy().chars().take(16).collect::<String>())
            .unwrap_or_default();
        std::env::temp_dir().join(format!("enclave-restore-{name}"))
    }

    /// The superuser's URL (`postgres`), over the socket.
    pub fn admin_url(&self) -> SecretString {
        self.url("postgres", "postgres")
    }

    /// Role `role`'s URL for database `db`, over the socket.
    pub fn role_url(&self, role: &str, db: &str) -> SecretString {
        self.url(role, db)
    }

    fn url(&self, user: &str, db: &str) -> SecretString {
        SecretString::from(format!(
            "postgres://{user}@localhost:{PORT}/{db}?host={}&sslmode=disable",
            self.socket().display()
        ))
    }

    /// Restores database `db` of stanza `stanza` as it was at `at` into
    /// this directory, and starts it; returns once it has replayed up to
    /// the moment and been promoted. `roles` may connect besides the
    /// superuser. The cluster's processes stay on idle cores (see
    /// [`BackupSettings::keep_cluster_idle`]) while the returned guard lives.
    pub async fn restore_and_start(
        &self,
        b: &BackupSettings,
        stanza: &str,
        facts: &ServerFacts,
        db: &str,
        at: DateTime<Utc>,
        roles: &[&str],
    ) -> Result<IdleCluster, BackupError> {
        let mut laps = Laps::start();
        self.prepare(b).await?;
        // pgBackRest reads `YYYY-MM-DD HH:MM:SS.fff+00` (milliseconds at
        // most when it picks the backup itself): rounded up, so that what
        // was committed by the moment asked for is in.
        let target = format!("--target={}+00", target_time(at));
        let data = format!("--pg1-path={}", self.data().display());
        let include = format!("--db-include={db}");
        b.run(
            "pgbackrest restore",
            b.pgbackrest_idle(
                stanza,
                &[
                    &data,
                    "--type=time",
                    &target,
                    "--target-action=promote",
                    &include,
                    "--archive-mode=off",
                    "--log-level-file=off",
                    // Writes of 64 KiB, not 1 MiB: each one holds a core
                    // for less (the served companies' p99 beside two
                    // writers of 1 MiB at nice 19: 4.2 ms; of 64 KiB:
                    // 1.6-2.5 ms; alone 0.6-1.8 ms).
                    "--buffer-size=64KiB",
                    "restore",
                ],
            ),
        )
        .await?;
        laps.lap("pgbackrest restore");
        self.write_access(roles)?;
        // A server configured outside its data directory (Debian's
        // /etc/postgresql) leaves none: the defaults and the options below do.
        let mut touch = b.command("touch");
        touch.arg(self.data().join("postgresql.conf"));
        b.run("touch postgresql.conf", touch).await?;
        let conf = self.dir.join("conf");
        let mut opts = format!(
            "-p {PORT} -k '{}' -c listen_addresses='' -c archive_mode=off \
             -c hba_file='{}' -c ident_file='{}' \
             -c shared_preload_libraries='' -c log_destination=stderr -c logging_collector=off",
            self.socket().display(),
            conf.join("pg_hba.conf").display(),
            conf.join("pg_ident.conf").display()
        );
        // Replay refuses to run below the server's own (numbers, read from it).
        for (name, value) in &facts.replay_minimums {
            if value.chars().all(|c| c.is_ascii_digit()) {
                opts.push_str(&format!(" -c {name}={value}"));
            }
        }
        let pg_ctl = pg_bin(b, facts).join("pg_ctl");
        // Each of the cluster's processes leads a session of its own: kept
        // on idle cores one by one as they start, replay's included.
        let idle = b.keep_cluster_idle(&self.data());
        let mut start = b.command_idle(&pg_ctl);
        start
            .arg("-D")
            .arg(self.data())
            .args(["-o", &opts, "-l"])
            .arg(self.data().join("restore.log"))
            .args(["-w", "-t", "600", "start"]);
        if let Err(e) = b.run("pg_ctl start", start).await {
            return Err(self.failed(b, e).await);
        }
        laps.lap("pg_ctl start");
        self.promoted(b).await?;
        laps.lap("replayed and promoted");
        Ok(idle)
    }

    /// Waits until recovery has reached the moment and the cluster takes
    /// writes (the company's migrations may need to run on it): asks every
    /// 20 ms on one session, and whether the server still runs every 0.2 s.
    async fn promoted(&self, b: &BackupSettings) -> Result<(), BackupError> {
        let deadline = Instant::now() + RECOVERY_WAIT;
        let url = self.admin_url();
        let mut session = None;
        let mut asked = 0u64;
        loop {
            asked += 1;
            let state = async {
                if session.is_none() {
                    session =
                        Some(crate::ssr::tenancy::servers::databases::connect_once(&url).await?);
                }
                let db = session.as_ref().expect("connected above");
                let row = sea_orm::ConnectionTrait::query_one_raw(
                    db,
                    sea_orm::Statement::from_string(
                        sea_orm::DbBackend::Postgres,
                        "SELECT pg_is_in_recovery() AS r",
                    ),
                )
                .await?;
                let r: bool = row.map(|r| r.try_get("", "r")).transpose()?.unwrap_or(true);
                Ok::<bool, sea_orm::DbErr>(r)
            }
            .await;
            match state {
                Ok(false) => {
                    if let Some(db) = session.take() {
                        let _ = db.close().await;
                    }
                    return Ok(());
                }
                Ok(true) => {}
                Err(_) => session = None,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            if asked % 10 != 0 {
                continue;
            }
            let alive = b.run("pg_ctl status", self.pg_ctl_status(b)).await.is_ok();
            if !alive || Instant::now() > deadline {
                let e = ToolError {
                    what: "recovery to the moment".into(),
                    detail: if alive {
                        format!("not done within {RECOVERY_WAIT:?}")
                    } else {
                        "the temporary server stopped".into()
                    },
                };
                return Err(self.failed(b, e).await);
            }
        }
    }

    fn pg_ctl_status(&self, b: &BackupSettings) -> tokio::process::Command {
        // Any pg_ctl reads the pid file; the PATH's is enough.
        let mut c = b.command("sh");
        c.arg("-c")
            .arg("test -f \"$1/postmaster.pid\" && kill -0 \"$(head -1 \"$1/postmaster.pid\")\"")
            .arg("sh")
            .arg(self.data());
        c
    }

    /// `e`, with the end of the temporary server's log.
    async fn failed(&self, b: &BackupSettings, e: ToolError) -> BackupError {
        let mut tail = b.command("tail");
        tail.args(["-n", "8"]).arg(self.data().join("restore.log"));
        let log = b.run("tail", tail).await.unwrap_or_default();
        BackupError::Tool(ToolError {
            what: e.what,
            detail: format!("{}\n{}", e.detail, log.trim_end()),
        })
    }

    /// The directory, its `socket/` open to the server's user (`peer`
    /// authentication decides who may connect, not the directory's rights).
    async fn prepare(&self, b: &BackupSettings) -> Result<(), BackupError> {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(&self.dir)?;
        std::fs::create_dir_all(self.dir.join("conf"))?;
        std::fs::create_dir_all(self.socket())?;
        std::fs::set_permissions(self.socket(), std::fs::Permissions::from_mode(0o1777))?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o755))?;
        if let Some(user) = b.os_user.as_deref().filter(|u| *u != own_user()) {
            // pgBackRest, as the server's user, makes `data/` here.
            let mut chown = tokio::process::Command::new("chown");
            chown.arg(user).arg(&self.dir);
            if b.run("chown", chown).await.is_err() {
                std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o1777))?;
            }
        }
        Ok(())
    }

    /// `pg_hba.conf` and `pg_ident.conf`: over the socket only, `peer`,
    /// this process's user as the superuser or as `roles`.
    fn write_access(&self, roles: &[&str]) -> std::io::Result<()> {
        let conf = self.dir.join("conf");
        std::fs::write(conf.join("pg_hba.conf"), "local all all peer map=enclave\n")?;
        let server_user = "postgres";
        let mut ident = String::new();
        for os in [own_user(), server_user] {
            for role in std::iter::once(server_user).chain(roles.iter().copied()) {
                ident.push_str(&format!("enclave {os} {role}\n"));
            }
        }
        std::fs::write(conf.join("pg_ident.conf"), ident)
    }

    /// Stops the cluster (if it runs) and removes the directory, at nice 19
    /// as the rest of a restore's own work (see
    /// [`BackupSettings::command_idle`]). Harmless to repeat, so recovery
    /// can always call it.
    pub async fn remove(&self, b: &BackupSettings, facts_major: Option<u32>) {
        if self.data().join("postmaster.pid").exists() || !self.data().exists() {
            let pg_ctl = match (&b.pg_bin, facts_major) {
                (Some(bin), _) => bin.join("pg_ctl"),
                (None, Some(major)) => debian_bin(major).join("pg_ctl"),
                (None, None) => PathBuf::from("pg_ctl"),
            };
            let mut stop = b.command_idle(pg_ctl);
            stop.arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"]);
            let _ = b.run("pg_ctl stop", stop).await;
        }
        if self.data().exists() {
            let mut rm = b.command_idle("rm");
            rm.arg("-rf").arg(self.data());
            if let Err(e) = b.run("rm", rm).await {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a restore's data");
            }
        }
        let _ = std::fs::remove_dir_all(self.socket());
        if let Err(e) = std::fs::remove_dir_all(&self.dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!(dir = %self.dir.display(), error = %e, "cannot remove a restore's directory");
            }
        }
    }
}

/// `at` as pgBackRest's `--target`, to the millisecond, rounded up.
pub fn target_time(at: DateTime<Utc>) -> String {
    let up = at + chrono::Duration::microseconds(999);
    let ms = up.timestamp_subsec_millis();
    format!("{}.{ms:03}", up.format("%Y-%m-%d %H:%M:%S"))
}

/// Where the binaries of the server's major version are.
fn pg_bin(b: &BackupSettings, facts: &ServerFacts) -> PathBuf {
    b.pg_bin.clone().unwrap_or_else(|| debian_bin(facts.major))
}

fn debian_bin(major: u32) -> PathBuf {
    Path::new("/usr/lib/postgresql")
        .join(major.to_string())
        .join("bin")
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_restore_goes_to_memory_only_within_the_limit_with_twice_its_need_free() {
        let fits = super::fits_in_memory;
        let gb = 1u64 << 30;
        assert!(fits(gb, 2 * gb, Some(2 * gb), Some(2 * gb)));
        assert!(!fits(gb, 0, Some(9 * gb), Some(9 * gb)), "0: never");
        assert!(
            !fits(3 * gb, 2 * gb, Some(9 * gb), Some(9 * gb)),
            "over the limit"
        );
        assert!(
            !fits(gb, 2 * gb, Some(2 * gb - 1), Some(9 * gb)),
            "the tmpfs is short"
        );
        assert!(
            !fits(gb, 2 * gb, Some(9 * gb), Some(2 * gb - 1)),
            "the machine is short"
        );
        assert!(!fits(gb, 2 * gb, None, Some(9 * gb)), "no tmpfs");
        assert!(!fits(
            u64::MAX,
            u64::MAX,
            Some(u64::MAX),
            Some(u64::MAX - 1)
        ));
    }

    #[test]
    fn memory_available_is_read_from_the_kernel() {
        assert!(super::mem_available().is_some_and(|b| b > 0));
        // /dev/shm is a tmpfs on Linux; /proc is not one.
        assert!(super::tmpfs_free(std::path::Path::new(super::IN_MEMORY)).is_some_and(|b| b > 0));
        assert_eq!(super::tmpfs_free(std::path::Path::new("/proc")), None);
    }

    #[test]
    fn the_target_is_rounded_up_to_the_millisecond() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-06T14:01:00.356001Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(super::target_time(at), "2026-12-06 14:01:00.357");
        let exact = chrono::DateTime::parse_from_rfc3339("2026-12-06T14:01:00.356Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        assert_eq!(super::target_time(exact), "2026-12-06 14:01:00.356");
    }
}
