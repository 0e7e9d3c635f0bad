//! The access-log and metrics layer: one span and one log line per request, and the status counter.
use app::ssr::tenancy::RequestSite;
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use tracing::Instrument;

use crate::{site::ClientIp, startup::AppState};

/// Runs the request in a span naming its site and client, then logs and
/// counts its status. Placed inside the site middleware, whose answer it
/// reads.
pub async fn log_and_count(State(state): State<AppState>, req: Request, next: Next) -> Response {
    // The span records its fields when made, so the label is only borrowed.
    let tenant = req
        .extensions()
        .get::<RequestSite>()
        .map_or("-", RequestSite::label);
    let client = req
        .extensions()
        .get::<ClientIp>()
        .and_then(|c| c.0)
        .map_or_else(|| "-".to_owned(), |ip| ip.to_string());
    // The path only (a query string can carry a handoff token), with any
    // token in it masked (`/password/reset/{token}`).
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %Masked(req.uri().path()),
        tenant = %tenant,
        client = %client,
    );
    let started = std::time::Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    state.services.metrics.request(response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "served"
        )
    });
    response
}

/// A path as logged: a segment that looks like a token (32 or more hex
/// digits) is written as `[token]`.
struct Masked<'a>(&'a str);

impl std::fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, segment) in self.0.split('/').enumerate() {
            if i > 0 {
                f.write_str("/")?;
            }
            if segment.len() >= 32 && segment.bytes().all(|b| b.is_ascii_hexdigit()) {
                f.write_str("[token]")?;
            } else {
                f.write_str(segment)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Masked;

    #[test]
    fn tokens_in_paths_are_masked_and_everything_else_kept() {
        let token = "ab".repeat(32);
        for (path, logged) in [
            (
                format!("/password/reset/{token}"),
                "/password/reset/[token]",
            ),
            ("/users".into(), "/users"),
            ("/".into(), "/"),
            ("/pkg/enclave.wasm".into(), "/pkg/enclave.wasm"),
            (
                format!("/a/{}/b", &token[..31]),
                &*format!("/a/{}/b", &token[..31]),
            ),
        ] {
            assert_eq!(Masked(&path).to_string(), logged);
        }
    }
}
