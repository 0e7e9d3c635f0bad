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
    // The path only: a query string can carry a handoff token.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
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
