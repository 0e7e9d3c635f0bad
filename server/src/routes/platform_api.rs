//! The platform API: JSON for automation on the base domain, with a bearer
//! token from `superadmin token create`. The same services as the CLI and
//! the admin pages; every error is JSON with a stable `code`:
//! `unauthorized` 401, `not_found` 404, `subdomain_taken` 409,
//! `invalid` 422 (with `field`), `malformed` 400, `unavailable` 503,
//! `internal` 500.
use app::domain::{CompanyName, Email, Password, Subdomain};
use app::site::Site;
use app::ssr::{
    entities::tenants,
    platform::check_api_token,
    provisioning::{NewTenant, ProvisionError},
    registry,
    services::LifecycleError,
    tenancy::RequestSite,
};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::{header::AUTHORIZATION, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Extension, Json,
};
use sea_orm::ActiveEnum;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::startup::AppState;

pub struct ApiError {
    status: StatusCode,
    body: Value,
}

impl ApiError {
    fn new(status: StatusCode, code: &str, message: impl ToString) -> Self {
        Self {
            status,
            body: json!({"error": {"code": code, "message": message.to_string()}}),
        }
    }

    fn invalid(field: &str, message: impl ToString) -> Self {
        let mut e = Self::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", message);
        e.body["error"]["field"] = json!(field);
        e
    }

    fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "platform API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

/// Base domain and a valid token, or the error to answer with.
async fn authorise(
    state: &AppState,
    site: &RequestSite,
    headers: &HeaderMap,
) -> Result<(), ApiError> {
    if !matches!(site.site, Site::Root { .. }) {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The platform API is on the base domain.",
        ));
    }
    let Some(token) = bearer_token(headers) else {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Send `Authorization: Bearer <token>`.",
        ));
    };
    match check_api_token(&state.services.registry, token).await {
        Ok(true) => Ok(()),
        Ok(false) => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "That token is not valid.",
        )),
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// The token of an `Authorization: Bearer <token>` header, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

fn tenant_json(t: &tenants::Model) -> Value {
    json!({
        "id": t.id,
        "name": t.name,
        "subdomain": t.subdomain,
        "status": t.status.to_value(),
        "schema_version": t.schema_version,
        "created_at": t.created_at,
    })
}

#[derive(Deserialize)]
struct CreateTenant {
    name: String,
    subdomain: String,
    admin_email: String,
    admin_password: String,
}

/// `POST /api/admin/tenants` → 201 `{id, subdomain, …}`.
pub async fn create_tenant(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    authorise(&state, &site, &headers).await?;
    let req: CreateTenant = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("Expected JSON {{name, subdomain, admin_email, admin_password}}: {e}"),
        )
    })?;
    let new = NewTenant {
        name: CompanyName::parse(&req.name).map_err(|e| ApiError::invalid("name", e))?,
        subdomain: Subdomain::parse(&req.subdomain)
            .map_err(|e| ApiError::invalid("subdomain", e))?,
        admin_email: Email::parse(&req.admin_email)
            .map_err(|e| ApiError::invalid("admin_email", e))?,
        admin_password: Password::parse(&req.admin_password)
            .map_err(|e| ApiError::invalid("admin_password", e))?,
    };
    match state.services.create_tenant(new).await {
        Ok(t) => Ok((StatusCode::CREATED, Json(tenant_json(&t))).into_response()),
        Err(e @ ProvisionError::Taken(_)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "subdomain_taken", e))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `GET /api/admin/tenants`
pub async fn list_tenants(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    headers: HeaderMap,
) -> ApiResult {
    authorise(&state, &site, &headers).await?;
    let all = registry::list_tenants(&state.services.registry)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(all.iter().map(tenant_json).collect::<Vec<_>>()).into_response())
}

fn lifecycle_error(e: LifecycleError) -> ApiError {
    match e {
        LifecycleError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e),
        LifecycleError::NotSettled(_) => ApiError::new(StatusCode::CONFLICT, "not_settled", e),
        other => ApiError::internal(other),
    }
}

fn path_subdomain(raw: &str) -> Result<Subdomain, ApiError> {
    Subdomain::parse(raw).map_err(|_| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No company has the subdomain '{raw}'."),
        )
    })
}

async fn set_paused(
    state: AppState,
    site: RequestSite,
    headers: HeaderMap,
    raw: String,
    paused: bool,
) -> ApiResult {
    authorise(&state, &site, &headers).await?;
    let t = state
        .services
        .set_paused(&path_subdomain(&raw)?, paused)
        .await
        .map_err(lifecycle_error)?;
    Ok(Json(tenant_json(&t)).into_response())
}

/// `POST /api/admin/tenants/{subdomain}/pause`
pub async fn pause(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> ApiResult {
    set_paused(state, site, headers, sub, true).await
}

/// `POST /api/admin/tenants/{subdomain}/resume`
pub async fn resume(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> ApiResult {
    set_paused(state, site, headers, sub, false).await
}

/// `DELETE /api/admin/tenants/{subdomain}` → 204.
pub async fn delete(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    headers: HeaderMap,
    Path(sub): Path<String>,
) -> ApiResult {
    authorise(&state, &site, &headers).await?;
    state
        .services
        .delete_tenant(&path_subdomain(&sub)?)
        .await
        .map_err(lifecycle_error)?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
