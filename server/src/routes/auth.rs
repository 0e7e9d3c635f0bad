//! The signup handoff: a plain route that writes the session and redirects, so the session is saved first.
use app::ssr::accounts::{auth::start_tenant_session, handoff};
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
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
