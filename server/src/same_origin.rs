//! Refuses state-changing requests sent from another origin (CSRF), sibling subdomains included.
use axum::{
    extract::Request,
    http::{header::HOST, HeaderMap, Method, StatusCode},
    middleware::Next,
    response::{IntoResponse, Response},
};

/// A request that is not GET, HEAD or OPTIONS, sent by a browser from a
/// page of another origin, answers 403: `Sec-Fetch-Site` other than
/// `same-origin` or `none` (typed by the person), or else an `Origin`
/// whose host is not this request's `Host`. Another company's subdomain is
/// another origin. Requests without either header (not from a browser) go
/// on; so does the platform API, which is authorised by bearer tokens that
/// a browser never sends by itself.
pub async fn refuse_cross_origin(req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if safe || req.uri().path().starts_with("/api/admin/") || is_same_origin(req.headers()) {
        return next.run(req).await;
    }
    (
        StatusCode::FORBIDDEN,
        "Forbidden: this request came from another site.\n",
    )
        .into_response()
}

fn is_same_origin(headers: &HeaderMap) -> bool {
    let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(site) = header("sec-fetch-site") {
        return matches!(site, "same-origin" | "none");
    }
    match header("origin") {
        None => true,
        Some(origin) => {
            let authority = origin.split_once("://").map(|(_, rest)| rest);
            let host = headers.get(HOST).and_then(|v| v.to_str().ok());
            matches!((authority, host), (Some(a), Some(h)) if a.eq_ignore_ascii_case(h))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_the_same_origin_passes() {
        let host = ("host", "acme.localhost:3000");
        assert!(is_same_origin(&headers(&[host])));
        assert!(is_same_origin(&headers(&[
            host,
            ("sec-fetch-site", "same-origin")
        ])));
        assert!(is_same_origin(&headers(&[
            host,
            ("origin", "http://acme.localhost:3000")
        ])));
        assert!(is_same_origin(&headers(&[
            host,
            ("origin", "https://ACME.localhost:3000")
        ])));
        for refused in [
            headers(&[host, ("sec-fetch-site", "same-site")]),
            headers(&[host, ("sec-fetch-site", "cross-site")]),
            headers(&[host, ("origin", "http://globex.localhost:3000")]),
            headers(&[host, ("origin", "http://localhost:3000")]),
            headers(&[host, ("origin", "null")]),
            headers(&[("origin", "http://acme.localhost:3000")]),
        ] {
            assert!(!is_same_origin(&refused), "{refused:?}");
        }
    }
}
