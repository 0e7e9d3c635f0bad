//! Health checks (`/healthz` of the base domain, `/api/health` of a company) and `/metrics`.
use app::ssr::tenancy::RequestSite;
use axum::{
    extract::State,
    http::{header::RETRY_AFTER, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use sea_orm::ConnectionTrait;
use serde_json::json;

use super::extract::{PlatformToken, Tenant};
use super::platform_api::ApiError;
use crate::site::ClientIp;
use crate::startup::AppState;

/// `GET /healthz` (base domain): whether the registry answers, and
/// whether each database server does. Always 200 while this instance
/// serves: with the registry down, companies already known are still
/// served from memory (`status: degraded`, `registry: unavailable`), so a
/// load balancer must not take the instance out for it. A server down
/// takes only its companies out; how many companies each holds is in
/// `/metrics`, which is not public.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let registry = match state.services.registry.ping().await {
        Ok(()) => {
            state.services.directory.registry_answered();
            true
        }
        Err(e) => {
            tracing::error!(error = %e, "registry health check failed");
            false
        }
    };
    let servers: Vec<_> = server_health(&state)
        .await
        .iter()
        .map(|s| {
            json!({
                "name": s.name,
                "status": if s.up { "ok" } else { "unavailable" },
            })
        })
        .collect();
    Json(json!({
        "status": if registry { "ok" } else { "degraded" },
        "registry": if registry { "ok" } else { "unavailable" },
        "servers": servers,
    }))
    .into_response()
}

/// `GET /api/health` on a company's host: one query on its own database.
pub async fn tenant_health(Tenant(tenant): Tenant) -> Response {
    let sub = tenant.subdomain();
    let checked = match tenant.db().await {
        Ok(db) => db
            .conn()
            .execute_unprepared("SELECT 1")
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        Err(e) => Err(app::ssr::http::error_chain(&e)),
    };
    match checked {
        Ok(()) => Json(json!({"tenant": sub, "status": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(tenant = %sub, error = %e, "tenant health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                [(RETRY_AFTER, "1")],
                Json(json!({"tenant": sub, "status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// `GET /api/health` on a paused company (503) or an unknown one (404).
pub async fn unserved_health(Extension(site): Extension<RequestSite>) -> Response {
    match site {
        RequestSite::Paused {
            deleting_until: Some(_),
            ..
        } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "deleting"})),
        )
            .into_response(),
        RequestSite::Paused { .. } => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": "paused"})),
        )
            .into_response(),
        _ => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no_such_workspace"})),
        )
            .into_response(),
    }
}

/// `GET /metrics`: Prometheus text format, for callers with a platform API
/// token, or on this machine when no trusted proxy is configured (a proxy
/// on this machine would make every visitor look local).
pub async fn metrics(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    token: Result<PlatformToken, ApiError>,
) -> Response {
    let local =
        state.settings.trusted_proxies.is_empty() && client.0.is_some_and(|ip| ip.is_loopback());
    if !local && token.is_err() {
        return (
            StatusCode::UNAUTHORIZED,
            "Metrics are served to loopback callers or with a bearer token.\n",
        )
            .into_response();
    }
    let servers = server_health(&state).await;
    let body = state
        .services
        .metrics
        .render(&state.services.pools.stats(), &servers);
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}

/// Whether each database server answers (none listed if the registry
/// cannot say which there are).
async fn server_health(state: &AppState) -> Vec<app::ssr::tenancy::servers::fleet::ServerHealth> {
    state
        .services
        .provisioner
        .fleet()
        .health()
        .await
        .unwrap_or_default()
}
