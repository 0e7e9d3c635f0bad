//! Plain routes that write the session: they answer with a redirect and
//! nothing streams, so the session is saved before the response leaves.
use app::ssr::{auth::start_tenant_session, handoff, tenancy::RequestSite};
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    Extension,
};
use serde::Deserialize;
use tower_sessions::Session;

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
    Extension(site): Extension<RequestSite>,
    session: Session,
    Query(q): Query<HandoffQuery>,
) -> Response {
    let Some(tenant) = site.tenant else {
        return (StatusCode::NOT_FOUND, "No such workspace.\n").into_response();
    };
    match handoff::redeem(&state.services.registry, &q.token, tenant.entry.id).await {
        Ok(Some(user_id)) => match start_tenant_session(&session, tenant.entry.id, user_id).await {
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

/// `GET /logout`: ends the session here and goes to the sign-in page.
pub async fn logout(session: Session) -> Response {
    if let Err(e) = session.flush().await {
        tracing::error!(error = %e, "cannot end session");
    }
    Redirect::to("/login").into_response()
}
