//! A restore's own work kept on the cores the companies being served leave idle.
//!
//! Each of its processes runs at nice 19 in a session of its own, whose
//! group also runs at nice 19, and only on the restore's cores
//! (`ENCLAVE_RESTORE_CORES`, the last half by default, see
//! [`restore_cores`]): the first ones never run it, so a served request
//! that wakes finds one of them idle more often, instead of waiting for
//! restore work to reach a point where the kernel switches away from it
//! (about a millisecond in a system call or a process start, on a kernel
//! that does not preempt itself). The server's WAL archiver gets the same
//! while the copy writes WAL for it ([`BackupSettings::yield_archiver`]).
//!
//! The group matters where the kernel groups processes by session (`kernel.sched_autogroup_enabled`, on wherever
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

/// A shell function: `yield_pid <pid>` puts the process at nice 19, on
/// the restore's cores (`$RESTORE_CORES`, where set; see
/// [`restore_cores`]) and, where it leads a session of its own, that
/// session's group at nice 19 too. A process that is gone, or a kernel
/// without autogroups, leaves nothing to do. An unprivileged user may
/// change a group's nice value once in 100 ms (`EAGAIN` otherwise), hence
/// the retries.
///
/// It starts no process for one already at nice 19 (a child of a yielded
/// one: it has its parent's nice value and cores), only reads and writes
/// `/proc`: each process started costs the core it starts on about a
/// millisecond in the kernel, which a served request that wakes there
/// waits out (measured with `perf sched`: 1.2-2 ms, six of the nine
/// companies' server processes at once, behind a `sed` of the watcher).
const YIELD_PID: &str = r#"
yield_pid() {
  pid=$1
  stat=""
  { read -r stat <"/proc/$pid/stat"; } 2>/dev/null || return 0
  set -- ${stat##*) }
  # $4: its session; ${17}: its nice value.
  if [ "${17}" != 19 ]; then
    renice -n 19 -p "$pid" >/dev/null 2>&1
    [ -z "$RESTORE_CORES" ] || taskset -a -p -c "$RESTORE_CORES" "$pid" >/dev/null 2>&1
  fi
  [ "$4" = "$pid" ] || return 0
  set_group "$pid" 19
}

# set_group <pid> <nice>: the session group of process <pid> at <nice>.
set_group() {
  [ -e "/proc/$1/autogroup" ] || return 0
  for try in 1 2 3 4 5 6 7 8 9 10; do
    echo "$2" 2>/dev/null >"/proc/$1/autogroup" && return 0
    sleep 0.1
  done
}
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

/// A PostgreSQL server's WAL archiver yielded by
/// [`BackupSettings::yield_archiver`], and the cores it ran on before.
pub struct YieldedArchiver {
    pid: u32,
    cores: Option<String>,
}

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
    /// [`BackupSettings::command`] at nice 19, on the restore's cores (both
    /// of which the processes it starts inherit), in a session of its own
    /// whose group runs at nice 19: a restore's own work (pgBackRest, the
    /// temporary cluster) runs on the cores the companies being served
    /// leave idle.
    pub(in crate::ssr::tenancy) fn command_idle(
        &self,
        program: impl AsRef<OsStr>,
    ) -> tokio::process::Command {
        let mut cmd = self.command(program);
        start_yielded(&mut cmd, self.cores.as_deref(), true);
        cmd
    }

    /// The shell line that sets `$RESTORE_CORES` for [`YIELD_PID`]; empty
    /// where a restore may use every core. (A list of numbers read from
    /// the kernel: nothing in it needs quoting.)
    fn cores_line(&self) -> String {
        match &self.cores {
            Some(cores) => format!("RESTORE_CORES='{cores}'\n"),
            None => String::new(),
        }
    }

    /// Puts processes `pids` (server processes of a PostgreSQL on this
    /// machine) at nice 19, each one's session group too. Where that cannot
    /// be done they keep their priority.
    pub(in crate::ssr::tenancy) async fn yield_processes(&self, pids: &[u32]) {
        let mut cmd = self.command_over("sh");
        start_yielded(&mut cmd, self.cores.as_deref(), false);
        cmd.arg("-c")
            .arg(format!(
                "{}{YIELD_PID}for pid; do yield_pid \"$pid\"; done",
                self.cores_line()
            ))
            .arg("sh")
            .args(pids.iter().map(u32::to_string));
        if let Err(e) = self.run("yielding the cores", cmd).await {
            tracing::debug!(error = %e, "server processes keep their priority");
        }
    }

    /// Puts the session group of the server's WAL archiver `pid` (it and
    /// the `archive_command` it runs) at nice 19, on the restore's cores,
    /// while a restore's copy writes WAL that it archives: the companies
    /// served there keep the cores, and the WAL waits. The archiver's own
    /// nice value is left alone: the group's is what counts, and an
    /// unprivileged user can set it back (see
    /// [`BackupSettings::restore_archiver`]). `None` where `pid` is no
    /// archiver of this machine (the server runs elsewhere).
    pub(in crate::ssr::tenancy) async fn yield_archiver(
        &self,
        pid: u32,
    ) -> Option<YieldedArchiver> {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
        let title = String::from_utf8_lossy(&cmdline);
        if !(title.starts_with("postgres:") && title.contains("archiver")) {
            return None;
        }
        let cores = cores_allowed(&pid.to_string());
        let mut cmd = self.command_over("sh");
        start_yielded(&mut cmd, self.cores.as_deref(), false);
        cmd.arg("-c")
            .arg(format!(
                "{}{YIELD_PID}set_group \"$1\" 19\n\
                 [ -z \"$RESTORE_CORES\" ] || taskset -a -p -c \"$RESTORE_CORES\" \"$1\" >/dev/null 2>&1",
                self.cores_line()
            ))
            .arg("sh")
            .arg(pid.to_string());
        if let Err(e) = self.run("yielding the archiver", cmd).await {
            tracing::debug!(error = %e, "the archiver keeps its priority");
        }
        Some(YieldedArchiver { pid, cores })
    }

    /// Puts the archiver back: its group at nice 0 (a server process's
    /// own, which nothing else sets), on the cores it had.
    pub(in crate::ssr::tenancy) async fn restore_archiver(&self, a: YieldedArchiver) {
        let mut cmd = self.command_over("sh");
        start_yielded(&mut cmd, self.cores.as_deref(), false);
        cmd.arg("-c")
            .arg(format!(
                "{YIELD_PID}set_group \"$1\" 0\n\
                 [ -z \"$2\" ] || taskset -a -p -c \"$2\" \"$1\" >/dev/null 2>&1"
            ))
            .arg("sh")
            .arg(a.pid.to_string())
            .arg(a.cores.unwrap_or_default());
        if let Err(e) = self.run("putting the archiver back", cmd).await {
            tracing::warn!(error = %e, "the archiver's priority could not be put back");
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
            .arg(format!("{}{YIELD_PID}{IDLE_CLUSTER}", self.cores_line()))
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
    /// own, at nice 19 and on the restore's cores: a restore's copy and
    /// checksums (the restore process's own share of the work) run only on
    /// cores the companies being served leave idle, whichever process runs
    /// the restore (in the serving one, every other thread keeps its
    /// priority). Where the kernel refuses, the thread keeps its priority
    /// and the work runs as it is.
    pub(in crate::ssr::tenancy) async fn on_idle_cores<T: Send + 'static>(
        &self,
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> std::io::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        let cores = self.cores.clone();
        std::thread::Builder::new()
            .name("enclave-idle".into())
            .spawn(move || {
                idle_this_thread(cores.as_deref());
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

/// Makes the process `cmd` starts yield from its first instruction, and so
/// every process it starts (`runuser`'s child, `pg_ctl`'s server): nice
/// 19, on `cores` where given, and with `own_session`, in a session of its
/// own whose group is at nice 19. Done between fork and exec, with system
/// calls only: no process is started to do it (each costs the core it
/// starts on about a millisecond in the kernel, which a served request
/// waking there waits out; `perf sched` showed the nine companies' server
/// processes waiting 1-4 ms behind `setsid`, `sh`, `renice`, `sed`).
/// What cannot be set is left as it was.
fn start_yielded(cmd: &mut tokio::process::Command, cores: Option<&str>, own_session: bool) {
    // Made before the fork: the child only copies it.
    let mask = cores.map(cpu_set);
    let group = c"/proc/self/autogroup";
    // SAFETY: the closure runs in the child between fork and exec; it only
    // makes system calls that are async-signal-safe (setsid, setpriority,
    // sched_setaffinity, open, write, nanosleep, close) on memory made
    // before the fork, and allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            if own_session {
                libc::setsid();
            }
            libc::setpriority(libc::PRIO_PROCESS as _, 0, 19);
            if let Some(set) = &mask {
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set);
            }
            if own_session {
                let fd = libc::open(group.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
                if fd >= 0 {
                    // One group change in 100 ms for an unprivileged user.
                    for _ in 0..10 {
                        if libc::write(fd, b"19".as_ptr().cast(), 2) == 2 {
                            break;
                        }
                        let pause = libc::timespec {
                            tv_sec: 0,
                            tv_nsec: 100_000_000,
                        };
                        libc::nanosleep(&pause, std::ptr::null_mut());
                    }
                    libc::close(fd);
                }
            }
            Ok(())
        });
    }
}

/// The kernel's set of the cores in `list` (`1,2,3`).
fn cpu_set(list: &str) -> libc::cpu_set_t {
    // SAFETY: a `cpu_set_t` is plain bits; zeroed is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for cpu in list
        .split(',')
        .filter_map(|c| c.trim().parse::<usize>().ok())
    {
        if cpu < libc::CPU_SETSIZE as usize {
            // SAFETY: `cpu` is within the set, checked above.
            unsafe { libc::CPU_SET(cpu, &mut set) };
        }
    }
    set
}

/// Puts the calling thread (and only it) at nice 19 (its process's group
/// is the serving one's, and keeps its value), on `cores` where given. On
/// Linux a thread has a nice value and cores of its own.
fn idle_this_thread(cores: Option<&str>) {
    // SAFETY: system calls on the calling thread, with a set made here.
    unsafe {
        let tid = libc::gettid();
        if libc::setpriority(libc::PRIO_PROCESS as _, tid as _, 19) != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "the idle thread keeps its priority"
            );
        }
        if let Some(set) = cores.map(cpu_set) {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                tracing::debug!(
                    error = %std::io::Error::last_os_error(),
                    "the idle thread may run on every core"
                );
            }
        }
    }
}

/// The cores a restore's own work runs on, as a list `taskset` takes: the
/// last `wanted` of those this process may use (`None`: half of them, at
/// least one), so the first ones never run it; `None` where that is all of
/// them (one core, or `wanted` 0 or at least their number).
pub fn restore_cores(wanted: Option<u32>) -> Option<String> {
    cores_of(&cores_allowed("self")?, wanted)
}

/// The cores process `pid` (a number, or `self`) may run on, as the kernel
/// lists them (`0-3,8`).
fn cores_allowed(pid: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .map(|l| l.trim().to_owned())
}

/// [`restore_cores`] of the kernel's list `list` (`0-3,8`).
fn cores_of(list: &str, wanted: Option<u32>) -> Option<String> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|p| !p.is_empty()) {
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u32, u32) = (a.trim().parse().ok()?, b.trim().parse().ok()?);
        cpus.extend(a..=b.min(a.saturating_add(65_535)));
    }
    let n = match wanted {
        Some(0) => return None,
        Some(n) => n as usize,
        None => (cpus.len() / 2).max(1),
    };
    if n >= cpus.len() {
        return None;
    }
    let last: Vec<String> = cpus[cpus.len() - n..].iter().map(u32::to_string).collect();
    Some(last.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_restore_runs_on_the_last_cores_and_leaves_the_first() {
        assert_eq!(cores_of("0-1", None).as_deref(), Some("1"));
        assert_eq!(cores_of("0-7", None).as_deref(), Some("4,5,6,7"));
        assert_eq!(cores_of("0-2", None).as_deref(), Some("2"));
        assert_eq!(cores_of("0,2,4-5\n", Some(2)).as_deref(), Some("4,5"));
        // One core, all of them, or 0: no pinning.
        assert_eq!(cores_of("0", None), None);
        assert_eq!(cores_of("0-3", Some(4)), None);
        assert_eq!(cores_of("0-3", Some(0)), None);
        assert_eq!(cores_of("nonsense", None), None);
    }
}
