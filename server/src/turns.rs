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
use std::{
    hash::{BuildHasher, Hasher, RandomState},
    time::Duration,
};

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
    shares: Shares<u64>,
    /// Hashes a site's key with this process's random seed: no copy of the
    /// host per request, and no one outside can make two hosts collide.
    seed: RandomState,
    wait: Duration,
}

impl Turns {
    /// `total` requests at once, each site at most a quarter of them.
    pub fn new(total: u32, wait: Duration) -> Self {
        let share = (total as usize / 4).max(1);
        Self {
            shares: Shares::new(total as usize, share, share),
            seed: RandomState::new(),
            wait,
        }
    }
}

/// The site a request names: its host, without port or trailing dot.
/// Longer than any valid host name, it is cut (it is refused later anyway).
fn site_name(req: &Request) -> &str {
    let host = req
        .headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(name, _)| name);
    host[..host.len().min(253)].trim_end_matches('.')
}

impl Turns {
    /// The site's key: its name hashed, letter case ignored.
    fn key(&self, name: &str) -> u64 {
        let mut h = self.seed.build_hasher();
        for b in name.bytes() {
            h.write_u8(b.to_ascii_lowercase());
        }
        h.finish()
    }
}

/// Serves the request once its site has a turn.
pub async fn take_turn(State(turns): State<Turns>, req: Request, next: Next) -> Response {
    let key = turns.key(site_name(&req));
    match turns.shares.enter(key, turns.wait).await {
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
    fn a_site_is_its_host_in_any_case_without_port_or_trailing_dot() {
        let turns = Turns::new(8, Duration::from_secs(1));
        let key = |host: &str| turns.key(site_name(&req(host)));
        assert_eq!(key("ACME.localhost:3000"), key("acme.localhost"));
        assert_eq!(key("acme.example.com."), key("acme.example.com"));
        assert_ne!(key("acme.localhost"), key("beta.localhost"));
        assert_eq!(site_name(&req("[::1]:3000")), "[::1]");
        assert_eq!(site_name(&req(&"a".repeat(4000))).len(), 253);
    }
}
