//! Tracing: human-readable by default, JSON with a setting. Each request
//! runs in a span naming its tenant (see `tenancy::layer`).
use std::io::{BufWriter, IsTerminal};

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

const DEFAULT_FILTER: &str = "info,sea_orm_migration=warn";

/// `RUST_LOG` (or the default), with SeaORM and sqlx capped at `warn`
/// whatever it says: their trace-level spans record connection options,
/// database URLs and passwords included.
pub fn filter(directives: Option<&str>) -> EnvFilter {
    let base = directives
        .and_then(|d| EnvFilter::try_new(d).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    base.add_directive("sea_orm=warn".parse().expect("valid directive"))
        .add_directive("sqlx=warn".parse().expect("valid directive"))
}

/// Installs the global subscriber once; later calls (tests build many
/// apps) are no-ops and return `None`.
///
/// Lines are formatted on the calling thread but written by a dedicated
/// one, through a buffer flushed whenever no line is waiting: a request no
/// longer pays a `write` system call for its log line, and under load many
/// lines share one. Nothing is dropped (a full queue makes callers wait).
/// Keep the guard until exit: dropping it flushes what is left.
pub fn init(format: LogFormat) -> Option<WorkerGuard> {
    let env = std::env::var("RUST_LOG").ok();
    let stdout = std::io::stdout();
    let ansi = stdout.is_terminal();
    let (writer, guard) = NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("enclave-log")
        .finish(BufWriter::new(stdout));
    let builder = fmt()
        .with_env_filter(filter(env.as_deref()))
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    installed.ok().map(|()| guard)
}
