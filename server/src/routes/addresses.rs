//! A company's other addresses: the 308 from an old one (a renamed subdomain, or a subdomain that sends people to its own domain), with a signed-in person handed over; and Caddy's `ask`, on its own loopback listener.
use app::ssr::{
    accounts::{auth::signed_in_at, handoff},
    tenancy::{domains::addresses::domain_url, RequestSite},
};
use axum::{
    extract::{Query, Request, State},
    http::{
        header::{CACHE_CONTROL, LOCATION, REFERRER_POLICY},
        Method, StatusCode,
    },
    response::{IntoResponse, Response},
    routing::get,
    Router,
};
use serde::Deserialize;
use tower_sessions::Session;

use super::extract::Tenant;
use crate::startup::AppState;

/// Every path of a [`RequestSite::Moved`] host: 308 to the same path and
/// query at its new address. A person signed in here, following a link
/// (`GET`), goes by way of the new address's `/auth/handoff` with a
/// one-time token, so they arrive signed in; that answer is not kept.
pub async fn moved(State(state): State<AppState>, req: Request) -> Response {
    let Some(RequestSite::Moved {
        to,
        max_age,
        company,
        ..
    }) = req.extensions().get::<RequestSite>()
    else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let here = req
        .uri()
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let plain = format!("{}{}", to.trim_end_matches('/'), here);
    let follows_link = matches!(*req.method(), Method::GET | Method::HEAD);
    if let (true, Some(company), Some(session)) =
        (follows_link, company, req.extensions().get::<Session>())
    {
        if let Some(location) = handover(&state, session, company.id(), to, &here).await {
            return (
                StatusCode::PERMANENT_REDIRECT,
                [(LOCATION, location), (CACHE_CONTROL, "no-store".to_owned())],
            )
                .into_response();
        }
    }
    // A one-time link mailed before the move goes on whole, in an answer
    // no browser keeps and whose address is not passed on.
    if crate::link_tokens::carries_token(req.uri().path()) {
        return (
            StatusCode::PERMANENT_REDIRECT,
            [
                (LOCATION, plain),
                (CACHE_CONTROL, "no-store".to_owned()),
                (REFERRER_POLICY, "no-referrer".to_owned()),
            ],
        )
            .into_response();
    }
    (
        StatusCode::PERMANENT_REDIRECT,
        [
            (LOCATION, plain),
            (CACHE_CONTROL, format!("max-age={max_age}")),
        ],
    )
        .into_response()
}

/// Where a person signed in at company `company` in `session` goes to be
/// signed in at its address `to` (`https://host/`) and land on `next`:
/// that address's `/auth/handoff` with a one-time token. `None` when no
/// one is signed in here, or the registry could not issue the token
/// (they sign in again there).
async fn handover(
    state: &AppState,
    session: &Session,
    company: uuid::Uuid,
    to: &str,
    next: &str,
) -> Option<String> {
    let user = signed_in_at(session, company).await?;
    match handoff::issue(&state.services.registry, company, user).await {
        Ok(token) => {
            let next: String = url::form_urlencoded::byte_serialize(next.as_bytes()).collect();
            Some(format!("{to}auth/handoff?token={token}&next={next}"))
        }
        Err(e) => {
            tracing::warn!(error = %e, "handover to another address not issued");
            None
        }
    }
}

#[derive(Deserialize)]
pub struct OverQuery {
    #[serde(default)]
    to: String,
    #[serde(default)]
    next: String,
}

/// `GET /auth/over?to=<subdomain or domain>[&next=/path]` on a company's
/// site: on to another of its own addresses (its subdomain, or one of its
/// verified domains), a person signed in here signed in there too, with a
/// one-time token. Any other `to` is 404: this leads nowhere else.
pub async fn over(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    session: Session,
    Query(q): Query<OverQuery>,
) -> Response {
    let to = q.to.trim().trim_end_matches('.').to_ascii_lowercase();
    let target = if to == tenant.subdomain() {
        tenant.origin().tenant_url(tenant.subdomain())
    } else if state.services.addresses.domain(&to).as_deref() == Some(tenant.subdomain()) {
        domain_url(tenant.origin(), &to)
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let next = super::auth::local_path(&q.next);
    let location = match handover(&state, &session, tenant.id(), &target, next).await {
        Some(location) => location,
        None => format!("{}{}", target.trim_end_matches('/'), next),
    };
    (
        StatusCode::SEE_OTHER,
        [(LOCATION, location), (CACHE_CONTROL, "no-store".to_owned())],
    )
        .into_response()
}

#[derive(Deserialize)]
pub struct AskQuery {
    #[serde(default)]
    domain: String,
}

/// Caddy's on-demand TLS `ask`: 200 for a verified custom domain, 404 for
/// anything else. Answered from memory (`Addresses`), so it keeps the
/// last known set while the registry is down.
async fn ask(State(state): State<AppState>, Query(q): Query<AskQuery>) -> StatusCode {
    let name = q.domain.trim().trim_end_matches('.').to_ascii_lowercase();
    if name.len() <= 253 && state.services.addresses.is_served(&name) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

/// The `ask` listener's routes: `GET /ask?domain=…` and nothing else.
pub fn ask_routes(state: AppState) -> Router {
    Router::new().route("/ask", get(ask)).with_state(state)
}
