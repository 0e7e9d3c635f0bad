//! The Leptos handlers: pages and server functions, each given the request's site and the services as context.
use ::leptos::prelude::provide_context;
use app::{
    shell,
    ssr::{services::Services, tenancy::RequestSite},
    wire::AppError,
};
use axum::{
    extract::{Request, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};

use crate::startup::AppState;

/// Every page (and the fallback): rendered asynchronously so a page can set
/// the HTTP status while rendering.
pub async fn render_page(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    req: Request,
) -> Response {
    let options = state.leptos_options.clone();
    let services = state.services.clone();
    let handler = leptos_axum::render_app_async_with_context(
        move || provide(&site, &services),
        move || shell(options.clone()),
    );
    handler(req).await.into_response()
}

/// `/api/{fn}`: a Leptos server function this site serves, with the same
/// context as pages.
pub async fn server_fn(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    req: Request,
) -> impl IntoResponse {
    let services = state.services.clone();
    leptos_axum::handle_server_fns_with_context(move || provide(&site, &services), req).await
}

/// `/api/{fn}` of a function this site does not serve (a base-domain
/// function on a company's host, or none at all): 404, in the encoding
/// server functions answer errors with.
pub async fn no_server_fn() -> Response {
    (StatusCode::NOT_FOUND, Json(AppError::NotFound)).into_response()
}

/// What pages and server functions find in context: the resolved site and
/// the process's services. Nothing else chooses a database.
fn provide(site: &RequestSite, services: &Services) {
    provide_context(site.clone());
    provide_context(services.clone());
}
