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
    /// Where to go once signed in: a path on this site (a handover from
    /// another of the company's addresses keeps the page asked for).
    #[serde(default)]
    next: String,
}

/// `next` if it is a path on this site, else `/`.
pub(super) fn local_path(next: &str) -> &str {
    let local = next.starts_with('/')
        && !next.starts_with("//")
        && !next.contains('\\')
        && !next.bytes().any(|b| b.is_ascii_control());
    if local {
        next
    } else {
        "/"
    }
}

/// `GET /auth/handoff?token=…[&next=/path]` on a company's site: redeems
/// the single-use token signup (or a handover from another of the
/// company's addresses) issued and signs its user in here.
pub async fn handoff(
    State(state): State<AppState>,
    Tenant(tenant): Tenant,
    session: Session,
    Query(q): Query<HandoffQuery>,
) -> Response {
    match handoff::redeem(&state.services.registry, &q.token, tenant.id()).await {
        Ok(Some(user_id)) => match start_tenant_session(&session, tenant.id(), user_id).await {
            Ok(()) => Redirect::to(local_path(&q.next)).into_response(),
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

#[cfg(test)]
mod tests {
    use super::local_path;

    #[test]
    fn only_paths_on_this_site_are_followed() {
        assert_eq!(local_path("/users?page=2"), "/users?page=2");
        assert_eq!(local_path(""), "/");
        assert_eq!(local_path("//evil.example/"), "/");
        assert_eq!(local_path("https://evil.example/"), "/");
        assert_eq!(local_path("/\\evil.example"), "/");
        assert_eq!(local_path("/a\nb"), "/");
    }
}
