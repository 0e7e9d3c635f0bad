//! A restore's own work kept on the cores the companies being served leave idle.
//!
//! Linux's `SCHED_IDLE` policy alone is not enough where the kernel groups
//! processes by session (`kernel.sched_autogroup_enabled`, on wherever
//! processes are not put in CPU cgroups of their own, as systemd does):
//! each session is then one group, competing with the others at its own
//! nice value whatever its processes' policy, and every PostgreSQL server
//! process leads a session of its own. So each process yielded here is
//! also put in a session of its own, whose group runs at nice 19 (measured
//! on a 2-core machine: a busy loop under `SCHED_IDLE` in its own session
//! took 41 % of a core shared with a normal one, and 0.5 % once its group
//! was at nice 19). On a kernel without autogroups the nice value is
//! ignored and the policy does the work.
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use super::BackupSettings;

/// A shell function: `yield_pid <pid>` puts the process under `SCHED_IDLE`
/// and, where it leads a session of its own, that session's group at nice
/// 19. A process that is gone, or a kernel without autogroups, leaves
/// nothing to do. An unprivileged user may change a group's nice value
/// once in 100 ms (`EAGAIN` otherwise), hence the retries.
const YIELD_PID: &str = r#"
yield_pid() {
  chrt --idle -p 0 "$1" >/dev/null 2>&1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f4)" = "$1" ] || return 0
  [ -e "/proc/$1/autogroup" ] || return 0
  for try in 1 2 3 4 5 6 7 8 9 10; do
    echo 19 2>/dev/null >"/proc/$1/autogroup" && return 0
    sleep 0.1
  done
}
"#;

/// `sh -c` in a new session: its group at nice 19, then the program
/// (`"$@"`) under `SCHED_IDLE`.
const IDLE_SESSION: &str = r#"
yield_pid "$$"
exec chrt --idle 0 "$@"
"#;

/// `bash -c`: every process of the PostgreSQL cluster whose data directory
/// is `$1` yielded as it starts (its postmaster and each child, which lead
/// sessions of their own), until standard input closes.
const IDLE_CLUSTER: &str = r#"
seen=" "
while IFS= read -r -t 0.2 _ || [ $? -gt 128 ]; do
  pm=$(head -n 1 "$1/postmaster.pid" 2>/dev/null) || continue
  [ -n "$pm" ] || continue
  for pid in $pm $(pgrep -P "$pm"); do
    case "$seen" in *" $pid "*) continue ;; esac
    seen="$seen$pid "
    yield_pid "$pid"
  done
done
"#;

/// The processes of a cluster kept yielded (see
/// [`BackupSettings::keep_cluster_idle`]) until this is dropped.
pub struct IdleCluster(Option<tokio::process::Child>);

impl Drop for IdleCluster {
    fn drop(&mut self) {
        // Its standard input closes with it: the loop ends.
        if let Some(child) = self.0.as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl BackupSettings {
    /// [`BackupSettings::command`] in a session of its own, whose group
    /// runs at nice 19, under `SCHED_IDLE` (which the processes it starts
    /// inherit): a restore's own work (pgBackRest, the temporary cluster)
    /// runs only on cores the companies being served leave idle, and never
    /// delays their wake-ups.
    pub(in crate::ssr::tenancy) fn command_idle(
        &self,
        program: impl AsRef<OsStr>,
    ) -> tokio::process::Command {
        let mut cmd = self.command("setsid");
        cmd.args(["--wait", "sh", "-c"])
            .arg(format!("{YIELD_PID}{IDLE_SESSION}"))
            .arg("sh")
            .arg(program);
        cmd
    }

    /// Puts processes `pids` (server processes of a PostgreSQL on this
    /// machine) under `SCHED_IDLE`, each one's session group at nice 19.
    /// Where that cannot be done they keep their priority.
    pub(in crate::ssr::tenancy) async fn yield_processes(&self, pids: &[u32]) {
        let mut cmd = self.command("sh");
        cmd.arg("-c")
            .arg(format!("{YIELD_PID}for pid; do yield_pid \"$pid\"; done"))
            .arg("sh")
            .args(pids.iter().map(u32::to_string));
        if let Err(e) = self.run("yielding the cores", cmd).await {
            tracing::debug!(error = %e, "server processes keep their priority");
        }
    }

    /// Keeps every process of the cluster in `data` (the temporary one a
    /// restore starts) yielded, as [`BackupSettings::yield_processes`]
    /// does, from its start (recovery's replay included) until the
    /// returned guard is dropped. Each of them starts a session of its own,
    /// so the group that starts the cluster cannot hold them.
    pub(in crate::ssr::tenancy) fn keep_cluster_idle(&self, data: &Path) -> IdleCluster {
        let mut cmd = self.command_idle("bash");
        cmd.arg("-c")
            .arg(format!("{YIELD_PID}{IDLE_CLUSTER}"))
            .arg("bash")
            .arg(data)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        match cmd.spawn() {
            Ok(child) => IdleCluster(Some(child)),
            Err(e) => {
                tracing::debug!(error = %e, "the temporary cluster keeps its priority");
                IdleCluster(None)
            }
        }
    }

    /// Runs `work` to its end on a thread of its own, with a runtime of its
    /// own, under `SCHED_IDLE`: a restore's copy and checksums (the restore
    /// process's own share of the work) run only on cores the companies
    /// being served leave idle, whichever process runs the restore (in the
    /// serving one, every other thread keeps its priority). Where `chrt`
    /// cannot run, the thread keeps its priority and the work runs as it is.
    pub(in crate::ssr::tenancy) async fn on_idle_cores<T: Send + 'static>(
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        std::thread::Builder::new()
            .name("enclave-idle".into())
            .spawn(move || {
                idle_this_thread();
                let ran = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map(|runtime| runtime.block_on(work));
                let _ = done.send(ran);
            })?;
        result
            .await
            .map_err(|_| std::io::Error::other("the idle thread stopped"))?
    }
}

/// Puts the calling thread (and only it) under `SCHED_IDLE`.
fn idle_this_thread() {
    // `/proc/thread-self` links to `<pid>/task/<tid>`.
    let Some(tid) = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        return;
    };
    let done = std::process::Command::new("chrt")
        .args(["--idle", "-p", "0", &tid])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !done.as_ref().is_ok_and(|s| s.success()) {
        tracing::debug!(?done, "the idle thread keeps its priority");
    }
}
