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
pub fn internal(cause: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> AppError {
    let cause = cause.into();
    tracing::error!(error = %error_chain(&*cause), "request failed");
    reject(AppError::Internal)
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
