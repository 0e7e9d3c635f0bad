use app::{site::Site, ssr::tenancy::RequestSite};
use axum::{
    extract::State,
    http::{header::RETRY_AFTER, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use sea_orm::ConnectionTrait;
use serde_json::json;

use crate::startup::AppState;
use crate::tenancy::layer::ClientIp;

/// `GET /healthz` on the base domain: 200 when the registry answers.
pub async fn healthz(
    State(state): State<AppState>,
    Extension(req): Extension<RequestSite>,
) -> Response {
    if !matches!(req.site, Site::Root { .. }) {
        return (StatusCode::NOT_FOUND, Json(json!({"error": "not_found"}))).into_response();
    }
    match state.services.registry.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "registry health check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "unavailable"})),
            )
                .into_response()
        }
    }
}

/// `GET /api/health` on a company's host: one query on its own database.
pub async fn tenant_health(Extension(req): Extension<RequestSite>) -> Response {
    let tenant = match (&req.site, &req.tenant) {
        (_, Some(tenant)) => tenant,
        (Site::Paused { .. }, _) => {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"error": "paused"})),
            )
                .into_response()
        }
        _ => {
            return (
                StatusCode::NOT_FOUND,
                Json(json!({"error": "no_such_workspace"})),
            )
                .into_response()
        }
    };
    let sub = &tenant.entry.subdomain;
    let checked = match tenant.db().await {
        Ok(db) => db
            .conn()
            .execute_unprepared("SELECT 1")
            .await
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    match checked {
        Ok(_) => Json(json!({"tenant": sub, "status": "ok"})).into_response(),
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

/// `GET /metrics`: Prometheus text format, for callers on this machine or
/// with a platform API token.
pub async fn metrics(
    State(state): State<AppState>,
    Extension(client): Extension<ClientIp>,
    headers: axum::http::HeaderMap,
) -> Response {
    let local = client.0.is_some_and(|ip| ip.is_loopback());
    if !local {
        let allowed = match super::platform_api::bearer_token(&headers) {
            Some(t) => app::ssr::platform::check_api_token(&state.services.registry, t)
                .await
                .unwrap_or(false),
            None => false,
        };
        if !allowed {
            return (
                StatusCode::UNAUTHORIZED,
                "Metrics are served to loopback callers or with a bearer token.\n",
            )
                .into_response();
        }
    }
    let body = state.services.metrics.render(&state.services.pools.stats());
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
