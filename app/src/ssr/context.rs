//! Every accessor of what the request handlers provide as Leptos context, in one place.
//!
//! The server's page and server-function handlers provide the request's
//! [`RequestSite`] and the process's [`Services`]; leptos_axum provides the
//! response options and the request parts (the session).
use std::net::IpAddr;

use leptos::prelude::use_context;
use leptos_axum::ResponseOptions;
use tower_sessions::Session;

use super::http::{internal, reject};
use super::services::Services;
use super::tenancy::{RequestSite, TenantContext};
use crate::site::Origin;
use crate::wire::AppError;

/// The client's address: the TCP peer, or what a trusted proxy forwarded.
/// The server's site middleware finds it; handlers provide it.
#[derive(Clone, Copy, Debug)]
pub struct ClientIp(pub Option<IpAddr>);

/// The client's address, if known.
pub fn client_ip() -> Option<IpAddr> {
    use_context::<ClientIp>().and_then(|c| c.0)
}

/// The client as throttles key it ([`super::limits::client_block`]: an
/// IPv6 client by its /64): empty when unknown.
pub fn client() -> String {
    client_ip().map_or_else(String::new, |ip| {
        super::limits::client_block(ip).to_string()
    })
}

pub fn services() -> Result<Services, AppError> {
    use_context::<Services>().ok_or_else(|| internal("no services in context"))
}

pub fn request_site() -> Result<RequestSite, AppError> {
    use_context::<RequestSite>().ok_or_else(|| internal("request was not resolved to a site"))
}

pub async fn session() -> Result<Session, AppError> {
    leptos_axum::extract::<Session>().await.map_err(internal)
}

/// This request's active company, or 404 elsewhere.
pub fn tenant() -> Result<TenantContext, AppError> {
    match request_site()? {
        RequestSite::Tenant(tenant) => Ok(tenant),
        _ => Err(reject(AppError::NotFound)),
    }
}

/// How the base domain was reached. Root-only server functions are routed
/// for the base domain alone (see `server::startup`), so elsewhere this is
/// a bug, not a visitor's mistake.
pub fn root_origin() -> Result<Origin, AppError> {
    match request_site()? {
        RequestSite::Root { origin } => Ok(origin),
        other => Err(internal(format!(
            "a base-domain function was called for '{}'",
            other.label()
        ))),
    }
}

/// The value of the request's cookie `name`, if it sent one.
pub fn request_cookie(name: &str) -> Option<String> {
    super::http::cookie(&use_context::<::http::request::Parts>()?.headers, name)
}

/// Adds a `Set-Cookie` to the response being answered.
pub fn set_cookie(cookie: &str) {
    if let (Some(response), Ok(value)) = (
        use_context::<ResponseOptions>(),
        ::http::HeaderValue::from_str(cookie),
    ) {
        response.append_header(::http::header::SET_COOKIE, value);
    }
}

/// Sets the HTTP status of the response being rendered or answered.
pub fn set_status(code: u16) {
    if let (Some(response), Ok(status)) = (
        use_context::<ResponseOptions>(),
        ::http::StatusCode::from_u16(code),
    ) {
        response.set_status(status);
    }
}
