//! Tracing: human-readable by default, JSON with a setting. Each request
//! runs in a span naming its tenant (see `tenancy::layer`).
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
/// apps) are no-ops.
pub fn init(format: LogFormat) {
    let env = std::env::var("RUST_LOG").ok();
    let builder = fmt()
        .with_env_filter(filter(env.as_deref()))
        .with_target(false);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
