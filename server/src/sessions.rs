//! Each request's session, kept where its site lives: a company's in its own database, the base domain's in the registry (`app::ssr::accounts::sessions`).
//!
//! tower-sessions gives a layer one store; here the layer is made per
//! request, around the store for the request's site (resolved by
//! [`crate::site`] before this runs). Making it costs one allocation.
use app::ssr::{accounts::sessions::DbSessionStore, tenancy::RequestSite};
use axum::{
    extract::{Request, State},
    middleware::Next,
    response::Response,
};
use tower::{Layer, ServiceExt};
use tower_sessions::{cookie::SameSite, Expiry, SessionManagerLayer};

use crate::startup::AppState;

/// Gives the request its session, from its site's store. Health checks
/// read no session and are given none: a balancer's probes cost no store
/// and no cookie parsing.
pub async fn give_session(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if SESSIONLESS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let store = DbSessionStore::for_site(
        req.extensions().get::<RequestSite>(),
        &state.services.registry,
    );
    let secure = state.settings.secure_cookies();
    match layer(store, secure).layer(next).oneshot(req).await {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

/// Paths whose handlers never read or write a session.
const SESSIONLESS: &[&str] = &["/api/health", "/healthz"];

/// Database-backed sessions with host-only cookies, so a session made on
/// one subdomain is never even sent to another.
/// Over https (`Secure`) the cookie is named `__Host-enclave_session`, which
/// browsers accept only from a secure origin, for `/`, with no `Domain`.
fn layer(store: DbSessionStore, secure: bool) -> SessionManagerLayer<DbSessionStore> {
    SessionManagerLayer::new(store)
        .with_name(if secure {
            "__Host-enclave_session"
        } else {
            "enclave_session"
        })
        .with_path("/")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::days(7),
        ))
}
