//! A restore's own work kept on the cores the companies being served leave idle.
use std::ffi::OsStr;

use super::BackupSettings;

impl BackupSettings {
    /// [`BackupSettings::command`] under Linux's `SCHED_IDLE` policy
    /// (`chrt --idle 0`, which the processes it starts inherit): a
    /// restore's own work (pgBackRest, the temporary cluster) runs only on
    /// cores the companies being served leave idle, and never delays their
    /// wake-ups (a `nice`d process still does, by a scheduler slice).
    pub(in crate::ssr::tenancy) fn command_idle(
        &self,
        program: impl AsRef<OsStr>,
    ) -> tokio::process::Command {
        let mut cmd = self.command("chrt");
        cmd.args(["--idle", "0"]).arg(program);
        cmd
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
