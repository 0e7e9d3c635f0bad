//! The site middleware: reads `Host` (and what a trusted proxy forwarded), asks the tenancy resolver, stores the answer.
use std::net::{IpAddr, SocketAddr};

pub use app::ssr::context::ClientIp;
use app::ssr::tenancy::{request::resolve::ResolveError, RequestSite};
use axum::{
    extract::{ConnectInfo, Request, State},
    http::{
        header::{HOST, RETRY_AFTER},
        StatusCode,
    },
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
        Err(ResolveError::NewerSchema(_)) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, "30")],
                "This company is being upgraded; please try again in a moment.\n",
            )
                .into_response()
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
    // One company's flood is refused before it costs anything more: past
    // its rate, or with its line for a connection full. A company's 503 is
    // never answered sooner than `REFUSAL_PACE` after the request came.
    let started = tokio::time::Instant::now();
    let is_company = matches!(site, RequestSite::Tenant(_));
    if let RequestSite::Tenant(t) = &site {
        if let Some(Err(retry_after)) = state
            .services
            .company_rate
            .as_ref()
            .map(|r| r.check(&t.id()))
        {
            return (
                StatusCode::TOO_MANY_REQUESTS,
                [(RETRY_AFTER, retry_after.to_string())],
                "Too many requests for this company right now; please try again in a moment.\n",
            )
                .into_response();
        }
        if state.services.pools.line_full(t.id()) {
            tokio::time::sleep_until(started + REFUSAL_PACE).await;
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, "1")],
                "This company is busy right now; please try again in a moment.\n",
            )
                .into_response();
        }
    }
    req.extensions_mut().insert(site);
    req.extensions_mut().insert(ClientIp(forwarded.client));
    let response = next.run(req).await;
    if is_company && response.status() == StatusCode::SERVICE_UNAVAILABLE {
        tokio::time::sleep_until(started + REFUSAL_PACE).await;
    }
    response
}

/// The least time a company's 503 takes (its line full, its connection
/// busy, its statement over time). A client that asks again at once,
/// heedless of `Retry-After`, then asks a few times a second, not
/// thousands, and its refusals stop costing the other companies their
/// CPU. Each paced refusal holds one of its own site's turns (`turns.rs`),
/// so they are bounded too: a quarter of the process's request slots.
pub const REFUSAL_PACE: std::time::Duration = std::time::Duration::from_millis(250);

/// What a trusted proxy says of the original request: its scheme and
/// client. From anyone else the headers are ignored.
struct Forwarded {
    scheme: &'static str,
    client: Option<IpAddr>,
}

impl Forwarded {
    fn from(req: &Request, trusted: &[IpAddr]) -> Self {
        // `::ffff:a.b.c.d` (a dual-stack socket's IPv4 client) is a.b.c.d.
        let peer = req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical());
        let is_trusted = |ip: &IpAddr| trusted.iter().any(|t| t.to_canonical() == *ip);
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        if !peer.as_ref().is_some_and(is_trusted) {
            if peer.is_some_and(|ip| ip.is_loopback())
                && req.headers().contains_key("x-forwarded-for")
            {
                warn_untrusted_local_proxy();
            }
            return Self {
                scheme: "http",
                client: peer,
            };
        }
        let scheme = match header("x-forwarded-proto").map(str::trim) {
            Some(p) if p.eq_ignore_ascii_case("https") => "https",
            _ => "http",
        };
        Self {
            scheme,
            client: forwarded_client(req, is_trusted).or(peer),
        }
    }
}

/// The client a trusted proxy names: walking `X-Forwarded-For` from the
/// nearest hop (every line of it, in order, as one list), the first entry
/// that is not a trusted proxy. An entry that is not an address stops the
/// walk: what stands left of it came from whoever wrote it, so no address
/// further left is believed, and the client counts as the proxy itself
/// (`None` here), as when no header came.
fn forwarded_client(req: &Request, is_trusted: impl Fn(&IpAddr) -> bool) -> Option<IpAddr> {
    let lines: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .iter()
        .map(|v| v.to_str().unwrap_or("?"))
        .collect();
    for entry in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        let ip = entry.trim().parse::<IpAddr>().ok()?.to_canonical();
        if !is_trusted(&ip) {
            return Some(ip);
        }
    }
    None
}

/// A proxy on this machine that is not trusted makes every client look like
/// loopback: one quota and one throttle for everyone. Said once per process.
fn warn_untrusted_local_proxy() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        tracing::warn!(
            "a proxy on this machine forwards requests (X-Forwarded-For) but is not in \
             ENCLAVE_TRUSTED_PROXIES: every client looks like 127.0.0.1 and shares one \
             sign-in throttle and signup quota; add its address"
        )
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forwarded(peer: &str, lines: &[&str], trusted: &[&str]) -> Option<IpAddr> {
        let mut req = Request::new(axum::body::Body::empty());
        for l in lines {
            req.headers_mut()
                .append("x-forwarded-for", l.parse().unwrap());
        }
        req.extensions_mut()
            .insert(ConnectInfo::<SocketAddr>(peer.parse().unwrap()));
        let trusted: Vec<IpAddr> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        Forwarded::from(&req, &trusted).client
    }

    #[test]
    fn every_line_of_x_forwarded_for_is_read_nearest_hop_first() {
        // Two lines: the proxy appended its own on a second line.
        assert_eq!(
            forwarded(
                "10.0.0.1:1",
                &["198.51.100.7", "203.0.113.5, 10.0.0.2"],
                &["10.0.0.1", "10.0.0.2"]
            ),
            Some("203.0.113.5".parse().unwrap())
        );
    }

    #[test]
    fn an_entry_that_is_not_an_address_stops_the_walk() {
        // Left of the junk is whatever the client wrote: not believed; the
        // client counts as the proxy.
        assert_eq!(
            forwarded(
                "10.0.0.1:1",
                &["203.0.113.5, junk, 10.0.0.2"],
                &["10.0.0.1", "10.0.0.2"]
            ),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(
            forwarded(
                "10.0.0.1:1",
                &["203.0.113.5, junk, 198.51.100.9"],
                &["10.0.0.1"]
            ),
            Some("198.51.100.9".parse().unwrap())
        );
    }

    #[test]
    fn ipv4_mapped_addresses_are_their_ipv4_address() {
        assert_eq!(
            forwarded(
                "[::ffff:10.0.0.1]:1",
                &["::ffff:203.0.113.5"],
                &["10.0.0.1"]
            ),
            Some("203.0.113.5".parse().unwrap())
        );
        assert_eq!(
            forwarded("[::ffff:198.51.100.3]:1", &[], &[]),
            Some("198.51.100.3".parse().unwrap())
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            forwarded("192.0.2.1:1", &["203.0.113.5"], &["10.0.0.1"]),
            Some("192.0.2.1".parse().unwrap())
        );
    }
}
