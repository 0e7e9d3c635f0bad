//! The site middleware: reads `Host` (and what a trusted proxy forwarded), asks the tenancy resolver, stores the answer.
use std::net::{IpAddr, SocketAddr};

pub use app::ssr::context::ClientIp;
use app::ssr::tenancy::resolve::ResolveError;
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header::HOST, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::startup::AppState;

/// Resolves the request's host to an `app::ssr::tenancy::RequestSite` and
/// stores it, with the client's address, in the request's extensions.
/// Hosts outside the base domain answer 400 here and a registry that cannot
/// be asked 503; an unknown or paused company is still rendered (404 / 503
/// pages).
pub async fn resolve_site(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let raw = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let forwarded = Forwarded::from(&req, &state.settings.trusted_proxies);
    let site = match state.resolver.resolve(raw, forwarded.scheme).await {
        Ok(site) => site,
        Err(ResolveError::BadHost(e)) => {
            return (StatusCode::BAD_REQUEST, format!("Bad request: {e}.\n")).into_response()
        }
        Err(e @ ResolveError::Lookup(_)) => {
            tracing::error!(error = %app::ssr::http::error_chain(&e), "tenant lookup failed");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable, try again shortly.\n",
            )
                .into_response();
        }
    };
    req.extensions_mut().insert(site);
    req.extensions_mut().insert(ClientIp(forwarded.client));
    next.run(req).await
}

/// What a trusted proxy says of the original request: its scheme and
/// client. From anyone else the headers are ignored.
struct Forwarded {
    scheme: &'static str,
    client: Option<IpAddr>,
}

impl Forwarded {
    fn from(req: &Request, trusted: &[IpAddr]) -> Self {
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip());
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if !peer.is_some_and(|ip| trusted.contains(&ip)) {
            return Self {
                scheme: "http",
                client: peer,
            };
        }
        let scheme = match header("x-forwarded-proto").map(str::trim) {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        // The nearest untrusted hop is the client.
        let client = header("x-forwarded-for")
            .and_then(|chain| {
                chain
                    .rsplit(',')
                    .map(str::trim)
                    .filter_map(|s| s.parse::<IpAddr>().ok())
                    .find(|ip| !trusted.contains(ip))
            })
            .or(peer);
        Self { scheme, client }
    }
}
