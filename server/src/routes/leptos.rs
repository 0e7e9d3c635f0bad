//! The Leptos handlers: pages and server functions, each given the request's site and the services as context.
use ::leptos::{nonce::Nonce, prelude::provide_context};
use app::{
    shell,
    ssr::{context::ClientIp, secrets::random_hex, services::Services, tenancy::RequestSite},
    wire::AppError,
};
use axum::{
    extract::{Request, State},
    http::{
        header::{ACCEPT, CONTENT_SECURITY_POLICY, LOCATION},
        HeaderValue, StatusCode,
    },
    response::{IntoResponse, Response},
    Extension, Json,
};

use crate::{headers::page_policy, startup::AppState};

/// Every page (and the fallback): rendered asynchronously so a page can set
/// the HTTP status while rendering. Its inline scripts carry a fresh nonce,
/// which its Content-Security-Policy names.
pub async fn render_page(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    Extension(client): Extension<ClientIp>,
    req: Request,
) -> Response {
    let options = state.leptos_options.clone();
    let services = state.services.clone();
    let nonce = random_hex(16);
    let policy = HeaderValue::from_str(&page_policy(&nonce)).expect("hex is a valid header");
    let handler = leptos_axum::render_app_async_with_context(
        move || {
            provide(&site, client, &services);
            provide_context(Nonce::from_value(nonce.clone()));
        },
        move || shell(options.clone()),
    );
    let mut response = handler(req).await.into_response();
    response
        .headers_mut()
        .insert(CONTENT_SECURITY_POLICY, policy);
    response
}

/// `/api/{fn}`: a Leptos server function this site serves, with the same
/// context as pages.
///
/// A plain HTML form post (no JavaScript yet, or none at all) asks for
/// HTML; Leptos answers it with `Location` back to the form's page (the
/// error, if any, encoded in the query, where the page's `ServerAction`
/// finds and shows it) or on to where the function redirects. Whatever
/// status the function set (a 409, a 401), such an answer is a 303, so the
/// browser goes to that page instead of showing the error's JSON body.
pub async fn server_fn(
    State(state): State<AppState>,
    Extension(site): Extension<RequestSite>,
    Extension(client): Extension<ClientIp>,
    req: Request,
) -> Response {
    let plain_form = req
        .headers()
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"));
    let services = state.services.clone();
    let mut response =
        leptos_axum::handle_server_fns_with_context(move || provide(&site, client, &services), req)
            .await
            .into_response();
    if plain_form && response.headers().contains_key(LOCATION) {
        *response.status_mut() = StatusCode::SEE_OTHER;
    }
    response
}

/// `/api/{fn}` of a function this site does not serve (a base-domain
/// function on a company's host, or none at all): 404, in the encoding
/// server functions answer errors with.
pub async fn no_server_fn() -> Response {
    (StatusCode::NOT_FOUND, Json(AppError::NotFound)).into_response()
}

/// What pages and server functions find in context: the resolved site,
/// the client's address and the process's services. Nothing else chooses a
/// database.
fn provide(site: &RequestSite, client: ClientIp, services: &Services) {
    provide_context(site.clone());
    provide_context(client);
    provide_context(services.clone());
}
