//! Extractors: the request's company, and a valid platform bearer token.
use app::ssr::{
    accounts::platform::check_api_token,
    tenancy::{RequestSite, TenantContext},
};
use axum::{
    extract::FromRequestParts,
    http::{header::AUTHORIZATION, request::Parts, HeaderMap, StatusCode},
};

use super::platform_api::ApiError;
use crate::startup::AppState;

/// The request's active company. Handlers taking it are routed on
/// company sites only, so the refusal is there for completeness.
pub struct Tenant(pub TenantContext);

impl<S: Send + Sync> FromRequestParts<S> for Tenant {
    type Rejection = StatusCode;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        match parts.extensions.get::<RequestSite>() {
            Some(RequestSite::Tenant(t)) => Ok(Tenant(t.clone())),
            _ => Err(StatusCode::NOT_FOUND),
        }
    }
}

/// Proof that the request carries a live platform API token
/// (`Authorization: Bearer <token>` from `superadmin token create`).
pub struct PlatformToken;

impl FromRequestParts<AppState> for PlatformToken {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer_token(&parts.headers) else {
            return Err(ApiError::unauthorized(
                "Send `Authorization: Bearer <token>`.",
            ));
        };
        match check_api_token(&state.services.registry, token).await {
            Ok(true) => Ok(PlatformToken),
            Ok(false) => Err(ApiError::unauthorized("That token is not valid.")),
            Err(e) => Err(ApiError::internal(e)),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header, if any.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}
