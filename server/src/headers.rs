//! Security headers on every response, the Content-Security-Policy of pages with their script nonce, and how long each answer may be cached.
use axum::{
    extract::Request,
    http::{
        header::{
            CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, RETRY_AFTER,
            X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
        },
        HeaderValue, StatusCode,
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
    let cache = cache_policy(req.uri().path());
    let mut response = next.run(req).await;
    let status = response.status();
    let headers = response.headers_mut();
    let page = headers
        .get(CONTENT_TYPE)
        .is_some_and(|t| t.as_bytes().starts_with(b"text/html"));
    match cache {
        Some(policy) if status.is_success() || status.as_u16() == 304 => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static(policy));
        }
        // Pages differ per person and change with every action: kept by
        // the browser only to be asked for again.
        _ if page => {
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
        }
        _ => {}
    }
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Unless the answer set a stricter one (one-time links: `no-referrer`).
    headers
        .entry(REFERRER_POLICY)
        .or_insert(HeaderValue::from_static("strict-origin-when-cross-origin"));
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Every 503 is a moment's refusal (a company's line full, a budget
    // spent, a database unreachable): say when to come back.
    if status == StatusCode::SERVICE_UNAVAILABLE {
        headers
            .entry(RETRY_AFTER)
            .or_insert(HeaderValue::from_static("1"));
    }
    headers
        .entry(CONTENT_SECURITY_POLICY)
        .or_insert(HeaderValue::from_static(DEFAULT_POLICY));
    response
}

/// Assets under `/pkg/`: a name with its content's hash in it
/// (`enclave.<hash>.wasm`, as cargo-leptos names them with `hash-files`)
/// never changes, so it is kept for a year; any other asset is checked
/// again on each use (`Last-Modified`).
fn cache_policy(path: &str) -> Option<&'static str> {
    let file = path.strip_prefix("/pkg/")?;
    let parts: Vec<&str> = file.split('.').collect();
    let hashed = parts.len() >= 3
        && parts[1..parts.len() - 1].iter().any(|p| {
            p.len() >= 8
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    Some(if hashed {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    })
}

#[cfg(test)]
mod tests {
    use super::cache_policy;

    #[test]
    fn hashed_assets_are_kept_a_year_and_the_rest_revalidated() {
        assert_eq!(
            cache_policy("/pkg/enclave.Ab3_x-9Zq1w2e3r4.wasm"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(
            cache_policy("/pkg/enclave.Ab3_x-9Zq1w2e3r4.wasm.br"),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(cache_policy("/pkg/enclave.wasm"), Some("no-cache"));
        assert_eq!(cache_policy("/pkg/enclave.css"), Some("no-cache"));
        assert_eq!(cache_policy("/users"), None);
        assert_eq!(cache_policy("/favicon.svg"), None);
    }
}
