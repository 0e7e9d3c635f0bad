//! How errors become responses: the status of an expected refusal, and unexpected errors logged with their cause chain.
pub use super::context::set_status;
use crate::wire::AppError;

/// Sets the status `err` maps to and returns it, for `Err(reject(..))`.
pub fn reject(err: AppError) -> AppError {
    set_status(err.status());
    err
}

/// An unexpected failure: the cause, with its whole chain, goes to the log;
/// the person sees an opaque message.
///
/// A database that cannot be reached (its server down or refusing) is not
/// a bug but an outage: 503, so the person is told to try again.
pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> AppError {
    let cause = cause.into();
    if unreachable_database(&*cause) {
        tracing::warn!(error = %error_chain(&*cause), "database unreachable");
        return reject(AppError::Unavailable);
    }
    tracing::error!(error = %error_chain(&*cause), "request failed");
    reject(AppError::Internal)
}

/// Whether `err`, or a cause of it, is a connection that could not be made
/// or had.
fn unreachable_database(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(err);
    while let Some(e) = next {
        if matches!(
            e.downcast_ref::<sea_orm::DbErr>(),
            Some(sea_orm::DbErr::Conn(_) | sea_orm::DbErr::ConnectionAcquire(_))
        ) {
            return true;
        }
        next = e.source();
    }
    false
}

/// `err` and each of its causes, joined by `: `, for logs and records.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn the_chain_names_every_cause_in_order() {
        let e = Outer(std::io::Error::other("inner"));
        assert_eq!(error_chain(&e), "outer: inner");
    }
}
