//! The request-concurrency limit, divided fairly by the site a request names.
//!
//! `ENCLAVE_MAX_CONCURRENT_REQUESTS` requests are served at once. Each site
//! (the request's host: one company, or the base domain) holds at most a
//! quarter of them and may have as many again waiting for its own share;
//! past that a request is answered 503 with `Retry-After` at once. A request
//! waiting for its site's share holds none of the shared slots, so one
//! company flooded with requests leaves three quarters of the process to the
//! others (see `app::ssr::shares`). The host is read as it came, without
//! asking the registry, so the limit holds before anything else is spent.
use std::time::Duration;

use app::ssr::shares::{Refused, Shares};
use axum::{
    extract::{Request, State},
    http::{header::HOST, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// The shared request slots, with their wait.
#[derive(Clone)]
pub struct Turns {
    shares: Shares<Box<str>>,
    wait: Duration,
}

impl Turns {
    /// `total` requests at once, each site at most a quarter of them.
    pub fn new(total: u32, wait: Duration) -> Self {
        let share = (total as usize / 4).max(1);
        Self {
            shares: Shares::new(total as usize, share, share),
            wait,
        }
    }
}

/// The site a request names, as a key: its host, lower case, without port.
/// Longer than any valid host name, it is cut (it is refused later anyway).
fn site_key(req: &Request) -> Box<str> {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
    let host = &host[..host.len().min(253)];
    host.trim_end_matches('.').to_ascii_lowercase().into()
}

/// Serves the request once its site has a turn.
pub async fn take_turn(State(turns): State<Turns>, req: Request, next: Next) -> Response {
    match turns.shares.enter(site_key(&req), turns.wait).await {
        Ok(_turn) => next.run(req).await,
        Err(Refused::Full | Refused::Timeout) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many requests for this site right now; please try again in a moment.\n",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str) -> Request {
        Request::builder()
            .header(HOST, host)
            .body(axum::body::Body::empty())
            .unwrap()
    }

    #[test]
    fn a_site_is_its_host_in_lower_case_without_port_or_trailing_dot() {
        assert_eq!(&*site_key(&req("ACME.localhost:3000")), "acme.localhost");
        assert_eq!(&*site_key(&req("acme.example.com.")), "acme.example.com");
        assert_eq!(&*site_key(&req("[::1]:3000")), "[::1]");
        assert_eq!(site_key(&req(&"a".repeat(4000))).len(), 253);
    }
}
