use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, Request, State},
    http::{header::HOST, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

use app::domain::Subdomain;
use app::site::{Origin, Site};
use app::ssr::entities::tenants::TenantStatus;
use app::ssr::tenancy::{RequestSite, TenantContext};

use tracing::Instrument;

use super::host::{Host, HostError, HostKind};
use crate::startup::AppState;

/// Middleware: resolves the request's `Host` to a [`RequestSite`] and stores
/// it in the request's extensions. Hosts outside the base domain answer 400
/// here; an unknown or paused company is still rendered (404 / 503 pages).
pub async fn resolve_site(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let raw = req
        .headers()
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("");
    let host = match Host::parse(raw) {
        Ok(host) => host,
        Err(e) => return bad_host(e),
    };
    let services = &state.services;
    let base = &state.settings.base_domain;
    let forwarded = Forwarded::from(&req, &state.settings.trusted_proxies);
    let origin = Origin {
        scheme: forwarded.scheme.into(),
        base: match host.port {
            Some(port) => format!("{base}:{port}"),
            None => base.clone(),
        },
    };
    let mut tenant = None;
    let site = match host.kind(base) {
        Err(e) => return bad_host(e),
        Ok(HostKind::Root) => Site::Root { origin },
        // A label no company may hold (too short, reserved, …) cannot exist.
        Ok(HostKind::Sub(label)) => match Subdomain::parse(label) {
            Err(_) => Site::UnknownTenant {
                subdomain: label.to_owned(),
                origin,
            },
            Ok(sub) => match services.directory.lookup(&sub).await {
                Ok(Some(entry)) => match entry.status {
                    TenantStatus::Active => {
                        let site = Site::Tenant {
                            name: entry.name.clone(),
                            subdomain: entry.subdomain.clone(),
                            origin,
                        };
                        tenant = Some(TenantContext::new(entry, services.pools.clone()));
                        site
                    }
                    TenantStatus::Paused => Site::Paused {
                        name: entry.name.clone(),
                        subdomain: entry.subdomain.clone(),
                        origin,
                    },
                    // Being created, failed or being deleted: not served.
                    _ => Site::UnknownTenant {
                        subdomain: sub.to_string(),
                        origin,
                    },
                },
                Ok(None) => Site::UnknownTenant {
                    subdomain: sub.to_string(),
                    origin,
                },
                Err(e) => {
                    tracing::error!(error = %e, "tenant lookup failed");
                    return (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "Service unavailable, try again shortly.\n",
                    )
                        .into_response();
                }
            },
        },
    };
    // The path only: a query string can carry a handoff token.
    let span = tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        tenant = tenant_label(&site),
        client = %forwarded.client.map_or_else(|| "-".to_owned(), |ip| ip.to_string()),
    );
    req.extensions_mut().insert(RequestSite { site, tenant });
    req.extensions_mut().insert(ClientIp(forwarded.client));
    let started = std::time::Instant::now();
    let response = next.run(req).instrument(span.clone()).await;
    services.metrics.request(response.status().as_u16());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_millis() as u64,
            "served"
        )
    });
    response
}

/// The client's address: the TCP peer, or what a trusted proxy forwarded.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

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

/// How a request's tenant shows in logs: its subdomain, or `-` for the base domain.
fn tenant_label(site: &Site) -> &str {
    match site {
        Site::Root { .. } => "-",
        Site::Tenant { subdomain, .. }
        | Site::UnknownTenant { subdomain, .. }
        | Site::Paused { subdomain, .. } => subdomain,
    }
}

fn bad_host(e: HostError) -> Response {
    (StatusCode::BAD_REQUEST, format!("Bad request: {e}.\n")).into_response()
}
