//! Security headers on every response, and the Content-Security-Policy of pages with their script nonce.
use axum::{
    extract::Request,
    http::{
        header::{
            CONTENT_SECURITY_POLICY, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
        },
        HeaderValue,
    },
    middleware::Next,
    response::Response,
};

/// The policy of a page whose inline scripts carry `nonce`: its own
/// scripts, styles, images and requests only; the WASM compiled by the
/// browser (`wasm-unsafe-eval`); never framed, no `<base>`, no plugins.
pub fn page_policy(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; \
         base-uri 'none'; frame-ancestors 'none'"
    )
}

/// What anything that is not a page gets (JSON, redirects, assets): no
/// scripts at all, never framed.
const DEFAULT_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Adds `X-Content-Type-Options: nosniff`, `Referrer-Policy`,
/// `X-Frame-Options` (for browsers without `frame-ancestors`) and, unless
/// the page set its own, the default Content-Security-Policy.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(
        REFERRER_POLICY,
        HeaderValue::from_static("strict-origin-when-cross-origin"),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_POLICY));
    response
}
