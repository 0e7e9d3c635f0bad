//! A restore's own work kept on the cores the companies being served leave idle.
//!
//! Each of its processes runs at nice 19 in a session of its own, whose
//! group also runs at nice 19. The group matters where the kernel groups
//! processes by session (`kernel.sched_autogroup_enabled`, on wherever
//! processes are not put in CPU cgroups of their own, as systemd does):
//! each session then competes with the others at its group's nice value,
//! whatever its processes' own, and every PostgreSQL server process leads
//! a session of its own. On a kernel without autogroups the group's value
//! is ignored and the processes' own does the work.
//!
//! Not `SCHED_IDLE`: the scheduler counts a core running only such work
//! as idle, wakes the served companies' processes onto it, and preempts
//! the work only at its next tick. Measured on a 2-core machine (kernel
//! 6.18), `pgbench -S` at 450 transactions/s beside two busy loops: p99
//! 0.6–0.7 ms alone, 3.1–3.9 ms beside `SCHED_IDLE` loops, 0.7–0.8 ms
//! beside loops at nice 19 in groups at nice 19. And a group's value is
//! what counts: a busy loop in a session of its own, sharing a core with a
//! normal one, took 41 % of it under `SCHED_IDLE` with its group at nice 0,
//! and 0.5 % with its group at nice 19.
use std::ffi::OsStr;
use std::path::Path;
use std::process::Stdio;

use super::BackupSettings;

/// A shell function: `yield_pid <pid>` puts the process at nice 19 and,
/// where it leads a session of its own, that session's group too. A
/// process that is gone, or a kernel without autogroups, leaves nothing to
/// do. An unprivileged user may change a group's nice value once in 100 ms
/// (`EAGAIN` otherwise), hence the retries.
const YIELD_PID: &str = r#"
yield_pid() {
  renice -n 19 -p "$1" >/dev/null 2>&1
  [ "$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f4)" = "$1" ] || return 0
  [ -e "/proc/$1/autogroup" ] || return 0
  for try in 1 2 3 4 5 6 7 8 9 10; do
    echo 19 2>/dev/null >"/proc/$1/autogroup" && return 0
    sleep 0.1
  done
}
"#;

/// `sh -c` in a new session: itself and its group at nice 19, then the
/// program (`"$@"`), which inherits its nice value.
const IDLE_SESSION: &str = r#"
yield_pid "$$"
exec "$@"
"#;

/// `bash -c`: every process of the PostgreSQL cluster whose data directory
/// is `$1` yielded as it starts (its postmaster and each child, which lead
/// sessions of their own), until standard input closes. It looks every
/// 20 ms, with bash's own `read` only (no process started per look), so a
/// new process runs at most about 20 ms at its session's first priority;
/// `pgrep` only where the kernel does not list a process's children.
const IDLE_CLUSTER: &str = r#"
seen=" "
while IFS= read -r -t 0.02 _ || [ $? -gt 128 ]; do
  pm=""
  { read -r pm <"$1/postmaster.pid"; } 2>/dev/null
  [ -n "$pm" ] || continue
  kids=""
  if [ -r "/proc/$pm/task/$pm/children" ]; then
    { read -r kids <"/proc/$pm/task/$pm/children"; } 2>/dev/null
  else
    kids=$(pgrep -P "$pm")
  fi
  for pid in $pm $kids; do
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
    /// [`BackupSettings::command`] at nice 19 (which the processes it
    /// starts inherit), in a session of its own whose group runs at nice
    /// 19: a restore's own work (pgBackRest, the temporary cluster) runs on
    /// the cores the companies being served leave idle.
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
    /// machine) at nice 19, each one's session group too. Where that cannot
    /// be done they keep their priority.
    pub(in crate::ssr::tenancy) async fn yield_processes(&self, pids: &[u32]) {
        let mut cmd = self.command_over("sh");
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
    /// own, at nice 19: a restore's copy and checksums (the restore
    /// process's own share of the work) run only on cores the companies
    /// being served leave idle, whichever process runs the restore (in the
    /// serving one, every other thread keeps its priority). Where `renice`
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

/// Puts the calling thread (and only it) at nice 19 (its process's group
/// is the serving one's, and keeps its value).
fn idle_this_thread() {
    // `/proc/thread-self` links to `<pid>/task/<tid>`.
    let Some(tid) = std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
    else {
        return;
    };
    let done = std::process::Command::new("renice")
        .args(["-n", "19", "-p", &tid])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status();
    if !done.as_ref().is_ok_and(|s| s.success()) {
        tracing::debug!(?done, "the idle thread keeps its priority");
    }
}
