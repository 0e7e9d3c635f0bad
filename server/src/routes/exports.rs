//! Archives of a company's data, as files: an admin's download on the company's site, and the platform API's export.
use app::domain::{Role, Subdomain};
use app::ssr::accounts::auth::user_in;
use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use serde::Deserialize;
use tower_sessions::Session;
use uuid::Uuid;

use super::extract::{PlatformToken, Tenant};
use super::platform_api::ApiError;
use crate::startup::AppState;

/// A plain page of one sentence (a browser never shows JSON).
fn say(status: StatusCode, text: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("{text}\n"),
    )
        .into_response()
}

/// The archive at `path`, streamed, as `name`. It is a company's data:
/// no cache keeps it.
async fn send_file(path: &std::path::Path, name: &str) -> std::io::Result<Response> {
    let file = tokio::fs::File::open(path).await?;
    let len = file.metadata().await?.len();
    let body = Body::from_stream(tokio_util::io::ReaderStream::with_capacity(file, 1 << 16));
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_owned()),
            (header::CONTENT_LENGTH, len.to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{name}\""),
            ),
            (header::CACHE_CONTROL, "private, no-store".to_owned()),
        ],
        body,
    )
        .into_response())
}

/// `GET /exports/{id}` on a company's site: an export its admins asked for,
/// to that company's signed-in admins, for its day.
pub async fn download(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    session: Session,
    Path(id): Path<String>,
) -> Response {
    let gone = "This export cannot be downloaded: its 24 hours are over, or there is no such export here. Ask for a new one on the settings page.";
    let Ok(id) = Uuid::parse_str(&id) else {
        return say(StatusCode::NOT_FOUND, gone);
    };
    let company = tenant.id();
    let sub = tenant.subdomain().to_owned();
    match user_in(&session, tenant).await {
        Ok(Some(u)) if u.role == Role::Admin => {}
        Ok(Some(_)) => {
            return say(
                StatusCode::FORBIDDEN,
                "Only the company's admins can download its exports.",
            )
        }
        Ok(None) => return Redirect::to(&format!("/login?next=%2Fexports%2F{id}")).into_response(),
        Err(_) => {
            return say(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy; please try again in a moment.",
            )
        }
    }
    let found = state
        .services
        .export_download(company, id)
        .await
        .map(|p| p.map(|p| (p, sub)));
    answer(found, gone).await
}

/// The export a lookup found (its file and company), or why not.
async fn answer(
    found: Result<Option<(std::path::PathBuf, String)>, sea_orm::DbErr>,
    gone: &str,
) -> Response {
    let (path, sub) = match found {
        Ok(Some(found)) => found,
        Ok(None) => return say(StatusCode::NOT_FOUND, gone),
        Err(e) => {
            tracing::error!(error = %e, "export lookup failed");
            return say(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is busy; please try again in a moment.",
            );
        }
    };
    let name = format!("{sub}-export-{}.zip", chrono::Utc::now().format("%Y%m%d"));
    match send_file(&path, &name).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(error = %e, "export file unreadable");
            say(StatusCode::NOT_FOUND, gone)
        }
    }
}

/// `GET /exports/download/{token}` on the base domain: the export made
/// for the admins of a company scheduled for deletion, until its purge.
/// Mailed with the token in the path, which `link_tokens.rs` swaps for a
/// cookie on the first view, as for every emailed link.
pub async fn deletion_download(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    let gone = "This link no longer works: the company was purged, brought back, or the link is not one of ours.";
    if !app::ssr::secrets::is_token(&token) {
        return say(StatusCode::NOT_FOUND, gone);
    }
    answer(state.services.export_by_link(&token).await, gone).await
}

#[derive(Deserialize)]
pub struct ExportQuery {
    /// `true`: password hashes, token digests and sessions included.
    #[serde(default)]
    credentials: bool,
}

/// `GET /api/admin/tenants/{subdomain}/export[?credentials=true]` → the
/// archive (`application/zip`), as `tenant export` writes it.
pub async fn platform_export(
    State(state): State<AppState>,
    _: PlatformToken,
    Path(raw): Path<String>,
    Query(q): Query<ExportQuery>,
) -> Result<Response, ApiError> {
    let sub = Subdomain::parse(&raw).map_err(|_| ApiError::not_found(&raw))?;
    let services = &state.services;
    tokio::fs::create_dir_all(&services.exports_dir)
        .await
        .map_err(ApiError::internal)?;
    let path = services.export_path(Uuid::new_v4());
    let done = services
        .export_tenant(&sub, &path, q.credentials, "platform")
        .await;
    match done {
        Ok(_) => {}
        Err(app::ssr::tenancy::portability::PortError::NotFound(_)) => {
            return Err(ApiError::not_found(&raw))
        }
        Err(e @ app::ssr::tenancy::portability::PortError::NotSettled(_)) => {
            return Err(ApiError::conflict("not_settled", e))
        }
        Err(e) => return Err(ApiError::internal(e)),
    }
    let name = format!("{sub}-export-{}.zip", chrono::Utc::now().format("%Y%m%d"));
    let res = send_file(&path, &name).await.map_err(ApiError::internal);
    // The open file streams on; the name goes now.
    let _ = tokio::fs::remove_file(&path).await;
    res
}
