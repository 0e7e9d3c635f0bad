//! Plain redirects: the signup handoff (writes the session first) and "go to your company".
use app::domain::Subdomain;
use app::ssr::{
    accounts::{auth::start_tenant_session, handoff},
    tenancy::RequestSite,
};
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use serde::Deserialize;
use tower_sessions::Session;

use super::extract::Tenant;
use crate::startup::AppState;

#[derive(Deserialize)]
pub struct HandoffQuery {
    #[serde(default)]
    token: String,
}

/// `GET /auth/handoff?token=…` on a company's subdomain: redeems the
/// single-use token signup issued and signs its admin in here.
pub async fn handoff(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    session: Session,
    Query(q): Query<HandoffQuery>,
) -> Response {
    match handoff::redeem(&state.services.registry, &q.token, tenant.id()).await {
        Ok(Some(user_id)) => match start_tenant_session(&session, tenant.id(), user_id).await {
            Ok(()) => Redirect::to("/").into_response(),
            Err(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong.\n").into_response()
            }
        },
        Ok(None) => Redirect::to("/login?handoff=expired").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "handoff redemption failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable, try again shortly.\n",
            )
                .into_response()
        }
    }
}

#[derive(Deserialize)]
pub struct GoQuery {
    #[serde(default)]
    company: String,
}

/// `GET /go?company=acme` on the base domain: on to that company's sign-in
/// page, as a plain form (no JavaScript). Whether the company exists is not
/// looked up here: its host says so itself, and this cannot be used to
/// probe the registry. An address no company can have goes back to the
/// landing page, which shows why.
pub async fn go(Extension(site): Extension<RequestSite>, Query(q): Query<GoQuery>) -> Response {
    let RequestSite::Root { origin } = site else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match Subdomain::parse(&q.company) {
        Ok(sub) => {
            Redirect::to(&format!("{}login", origin.tenant_url(sub.as_str()))).into_response()
        }
        Err(e) => {
            let message: String =
                url::form_urlencoded::byte_serialize(e.to_string().as_bytes()).collect();
            Redirect::to(&format!("/?company_error={message}#go")).into_response()
        }
    }
}
