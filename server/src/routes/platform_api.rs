//! The platform API: JSON for automation on the base domain, with a bearer token from `superadmin token create`.
//!
//! The same services as the CLI and the admin pages; every error is JSON
//! with a stable `code`:
//! `unauthorized` 401, `not_found` 404, `subdomain_taken` 409, `email_taken` 409,
//! `invalid` 422 (with `field`), `malformed` 400, `unavailable` 503,
//! `internal` 500.
use app::domain::Subdomain;
use app::ssr::{
    entities::tenants,
    http::error_chain,
    tenancy::{
        lifecycle::provisioning::{NewTenant, NewTenantField, ProvisionError},
        lifecycle::LifecycleError,
        request::directory::{self, TenantInfo},
    },
};
use axum::{
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::PlatformToken;
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

    pub(super) fn not_found(sub: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No company has the subdomain '{sub}'."),
        )
    }

    pub(super) fn conflict(code: &str, message: impl ToString) -> Self {
        Self::new(StatusCode::CONFLICT, code, message)
    }

    pub(super) fn unauthorized(message: &str) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub(super) fn internal(cause: impl std::error::Error + 'static) -> Self {
        tracing::error!(error = %error_chain(&cause), "platform API request failed");
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

/// `/api/admin/…` that is no endpoint of this site: every site but the base
/// domain, and unknown paths there.
pub async fn not_here() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "not_found",
        "The platform API is /api/admin/tenants on the base domain.",
    )
}

fn tenant_json(t: &tenants::Model) -> Json<TenantInfo> {
    Json(TenantInfo::from(t))
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
    _: PlatformToken,
    body: Bytes,
) -> ApiResult {
    let req: CreateTenant = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("Expected JSON {{name, subdomain, admin_email, admin_password}}: {e}"),
        )
    })?;
    let new = NewTenant::parse(
        &req.name,
        &req.subdomain,
        &req.admin_email,
        &req.admin_password,
    )
    .map_err(|e| {
        let field = match e.field {
            NewTenantField::Name => "name",
            NewTenantField::Subdomain => "subdomain",
            NewTenantField::AdminEmail => "admin_email",
            NewTenantField::AdminPassword => "admin_password",
        };
        ApiError::invalid(field, e)
    })?;
    match state.services.create_tenant(new).await {
        Ok(t) => Ok((StatusCode::CREATED, tenant_json(&t)).into_response()),
        Err(e @ ProvisionError::Taken(_)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "subdomain_taken", e))
        }
        Err(e) => Err(ApiError::internal(e)),
    }
}

/// `GET /api/admin/tenants`
pub async fn list_tenants(State(state): State<AppState>, _: PlatformToken) -> ApiResult {
    let all = directory::list(&state.services.registry)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(all.iter().map(TenantInfo::from).collect::<Vec<_>>()).into_response())
}

fn lifecycle_error(e: LifecycleError) -> ApiError {
    match e {
        LifecycleError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e),
        LifecycleError::NotSettled(_) => ApiError::new(StatusCode::CONFLICT, "not_settled", e),
        LifecycleError::NotScheduled(_) => ApiError::new(StatusCode::CONFLICT, "not_scheduled", e),
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

async fn set_paused(state: AppState, raw: String, paused: bool) -> ApiResult {
    let t = state
        .services
        .set_paused(&path_subdomain(&raw)?, paused)
        .await
        .map_err(lifecycle_error)?;
    Ok(tenant_json(&t).into_response())
}

/// `POST /api/admin/tenants/{subdomain}/pause`
pub async fn pause(
    State(state): State<AppState>,
    _: PlatformToken,
    Path(sub): Path<String>,
) -> ApiResult {
    set_paused(state, sub, true).await
}

/// `POST /api/admin/tenants/{subdomain}/resume`
pub async fn resume(
    State(state): State<AppState>,
    _: PlatformToken,
    Path(sub): Path<String>,
) -> ApiResult {
    set_paused(state, sub, false).await
}

#[derive(Deserialize)]
pub struct DeleteQuery {
    /// Purge now, without the grace period.
    #[serde(default)]
    now: bool,
}

/// `DELETE /api/admin/tenants/{subdomain}` → 202 `{subdomain, status,
/// purge_after}`: closed, purged when the grace period ends;
/// `?now=true` → 200, purged, with the signed deletion receipt.
pub async fn delete(
    State(state): State<AppState>,
    _: PlatformToken,
    Path(sub): Path<String>,
    axum::extract::Query(q): axum::extract::Query<DeleteQuery>,
) -> ApiResult {
    use app::ssr::tenancy::lifecycle::offboarding::{Deleted, Deletion};
    let when = if q.now {
        Deletion::Now
    } else {
        Deletion::Grace
    };
    let done = state
        .services
        .schedule_deletion(&path_subdomain(&sub)?, when)
        .await
        .map_err(lifecycle_error)?;
    Ok(match done {
        Deleted::Scheduled { purge_after, .. } => (
            StatusCode::ACCEPTED,
            Json(json!({"subdomain": sub, "status": "deleting", "purge_after": purge_after})),
        )
            .into_response(),
        Deleted::Purged(signed) => Json(*signed).into_response(),
    })
}

/// `POST /api/admin/tenants/{subdomain}/undelete` → 200 `{id, subdomain, …}`:
/// a company scheduled for deletion, back as it was.
pub async fn undelete(
    State(state): State<AppState>,
    _: PlatformToken,
    Path(sub): Path<String>,
) -> ApiResult {
    let t = state
        .services
        .undelete(&path_subdomain(&sub)?)
        .await
        .map_err(lifecycle_error)?;
    Ok(tenant_json(&t).into_response())
}

#[derive(Deserialize)]
struct AddUser {
    email: String,
    #[serde(default)]
    role: Option<String>,
    password: String,
}

/// `POST /api/admin/tenants/{subdomain}/users` `{email, role?, password}` →
/// 201 `{id, email, role}`: a user with a password, for automation (people
/// are invited from the Users page).
pub async fn add_user(
    State(state): State<AppState>,
    _: PlatformToken,
    Path(sub): Path<String>,
    body: Bytes,
) -> ApiResult {
    use app::domain::{Email, Password, Role};
    use app::ssr::{accounts::users::UserError, tenancy::lifecycle::AddUserError};

    let sub = path_subdomain(&sub)?;
    let req: AddUser = serde_json::from_slice(&body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            format!("Expected JSON {{email, role, password}}: {e}"),
        )
    })?;
    let email = Email::parse(&req.email).map_err(|e| ApiError::invalid("email", e))?;
    let role = Role::parse(req.role.as_deref().unwrap_or("member"))
        .map_err(|e| ApiError::invalid("role", e))?;
    let password = Password::parse(&req.password).map_err(|e| ApiError::invalid("password", e))?;
    match state
        .services
        .add_user_with_password(&sub, "platform API", &email, role, password)
        .await
    {
        Ok(user) => Ok((
            StatusCode::CREATED,
            Json(json!({"id": user.id, "email": user.email, "role": user.role.as_str()})),
        )
            .into_response()),
        Err(AddUserError::Company(e)) => Err(lifecycle_error(e)),
        Err(AddUserError::User(e @ UserError::EmailTaken)) => {
            Err(ApiError::new(StatusCode::CONFLICT, "email_taken", e))
        }
        Err(AddUserError::User(UserError::Busy(_))) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "The service is busy; please try again in a moment.",
        )),
        Err(AddUserError::User(e)) => Err(ApiError::internal(e)),
    }
}

/// A company's own domains and its renames over the API.
pub mod addresses {
    use app::ssr::tenancy::domains::{rename::RenameError, Check, DomainError};

    use super::*;

    fn domain_error(e: DomainError) -> ApiError {
        match e {
            DomainError::Name(e) => ApiError::invalid("domain", e),
            e @ DomainError::Taken(_) => ApiError::conflict("domain_taken", e),
            e @ DomainError::TooMany => ApiError::conflict("too_many_domains", e),
            e @ DomainError::NotVerified(_) => ApiError::conflict("not_verified", e),
            e @ DomainError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, "not_found", e),
            e @ DomainError::Dns(_) => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e)
            }
            DomainError::Registry(e) => ApiError::internal(e),
        }
    }

    async fn company(state: &AppState, raw: &str) -> Result<tenants::Model, ApiError> {
        let sub = path_subdomain(raw)?;
        directory::find_by_subdomain(&state.services.registry, &sub)
            .await
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::not_found(raw))
    }

    #[derive(Deserialize)]
    struct NewDomain {
        domain: String,
    }

    /// `GET /api/admin/tenants/{subdomain}/domains` → `[{domain, state, route, txt, …}]`
    pub async fn list(
        State(state): State<AppState>,
        _: PlatformToken,
        Path(sub): Path<String>,
    ) -> ApiResult {
        let t = company(&state, &sub).await?;
        let rows = state
            .services
            .domains_of(t.id)
            .await
            .map_err(domain_error)?;
        let rows: Vec<_> = rows.iter().map(|d| state.services.domain_row(d)).collect();
        Ok(Json(rows).into_response())
    }

    /// `POST /api/admin/tenants/{subdomain}/domains` `{domain}` → 201 the
    /// domain, with the records to create.
    pub async fn add(
        State(state): State<AppState>,
        _: PlatformToken,
        Path(sub): Path<String>,
        body: Bytes,
    ) -> ApiResult {
        let t = company(&state, &sub).await?;
        let req: NewDomain = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("Expected JSON {{domain}}: {e}"),
            )
        })?;
        let d = state
            .services
            .add_domain(t.id, &req.domain)
            .await
            .map_err(domain_error)?;
        Ok((StatusCode::CREATED, Json(state.services.domain_row(&d))).into_response())
    }

    /// `POST /api/admin/tenants/{subdomain}/domains/{domain}/verify` → 200
    /// `{domain, state}`: the TXT record looked up now.
    pub async fn verify(
        State(state): State<AppState>,
        _: PlatformToken,
        Path((sub, domain)): Path<(String, String)>,
    ) -> ApiResult {
        let t = company(&state, &sub).await?;
        let check = state
            .services
            .verify_domain(t.id, &domain)
            .await
            .map_err(domain_error)?;
        let body = match check {
            Check::Verified => json!({"domain": domain, "state": "verified"}),
            Check::Pending { found } => {
                json!({"domain": domain, "state": "pending", "found": found})
            }
            Check::Missing { until } => {
                json!({"domain": domain, "state": "missing", "served_until": until})
            }
            Check::Lapsed => json!({"domain": domain, "state": "lapsed"}),
        };
        Ok(Json(body).into_response())
    }

    /// `DELETE /api/admin/tenants/{subdomain}/domains/{domain}` → 204
    pub async fn remove(
        State(state): State<AppState>,
        _: PlatformToken,
        Path((sub, domain)): Path<(String, String)>,
    ) -> ApiResult {
        let t = company(&state, &sub).await?;
        state
            .services
            .remove_domain(t.id, &domain)
            .await
            .map_err(domain_error)?;
        Ok(StatusCode::NO_CONTENT.into_response())
    }

    #[derive(Deserialize)]
    struct Rename {
        to: String,
    }

    /// `POST /api/admin/tenants/{subdomain}/rename` `{to}` → 200 `{old,
    /// new, redirect_until, reserved_until}`.
    pub async fn rename(
        State(state): State<AppState>,
        _: PlatformToken,
        Path(sub): Path<String>,
        body: Bytes,
    ) -> ApiResult {
        let old = path_subdomain(&sub)?;
        let req: Rename = serde_json::from_slice(&body).map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                format!("Expected JSON {{to}}: {e}"),
            )
        })?;
        let new = Subdomain::parse(&req.to).map_err(|e| ApiError::invalid("to", e))?;
        match state
            .services
            .rename_company(&old, &new, "platform API")
            .await
        {
            Ok(r) => Ok(Json(json!({
                "old": r.old,
                "new": r.new,
                "redirect_until": r.redirect_until,
                "reserved_until": r.reserved_until,
            }))
            .into_response()),
            Err(e @ RenameError::NotFound(_)) => {
                Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", e))
            }
            Err(e @ (RenameError::Taken(_) | RenameError::Same(_))) => {
                Err(ApiError::conflict("subdomain_taken", e))
            }
            Err(e @ RenameError::NotActive) => Err(ApiError::conflict("not_settled", e)),
            Err(RenameError::Registry(e)) => Err(ApiError::internal(e)),
        }
    }
}
