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

/// Whether `err` is a database that cannot serve for a while (as
/// [`internal`] tells it), for those that must carry that through a
/// string (the session store).
pub fn is_outage(err: &sea_orm::DbErr) -> bool {
    unreachable_database(err)
}

/// Whether `err`, or a cause of it, is a database that cannot serve for a
/// while: a connection that could not be made or was lost (a server down,
/// a session ended), a write refused by a read-only database (a company
/// being moved to another server), or a company's database over one of its
/// own limits (its statement time, its connections, its file held).
fn unreachable_database(err: &(dyn std::error::Error + 'static)) -> bool {
    use sea_orm::{sqlx, DbErr, RuntimeErr};
    let mut next = Some(err);
    while let Some(e) = next {
        // The session store says so in its message (`is_outage` above).
        if let Some(tower_sessions::session::Error::Store(
            tower_sessions::session_store::Error::Backend(m),
        )) = e.downcast_ref()
        {
            if m.starts_with(crate::ssr::accounts::sessions::UNAVAILABLE) {
                return true;
            }
        }
        match e.downcast_ref::<DbErr>() {
            Some(DbErr::Conn(_) | DbErr::ConnectionAcquire(_)) => return true,
            Some(
                DbErr::Exec(RuntimeErr::SqlxError(x)) | DbErr::Query(RuntimeErr::SqlxError(x)),
            ) => {
                match &**x {
                    sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut => return true,
                    e if crate::ssr::tenancy::connections::conn::is_refused_for_now(e) => {
                        return true
                    }
                    // read_only_sql_transaction, lock_not_available,
                    // admin_shutdown
                    sqlx::Error::Database(d)
                        if matches!(d.code().as_deref(), Some("25006" | "55P03" | "57P01")) =>
                    {
                        return true
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        next = e.source();
    }
    false
}

/// The value of cookie `name` among a request's `Cookie` headers.
pub fn cookie(headers: &::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.to_owned())
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
