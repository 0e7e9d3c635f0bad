//! One-time links without their token in the address bar: the first view
//! of `/password/reset/{token}`, `/invite/{token}`, `/verify/{token}` or
//! `/exports/download/{token}`
//! swaps the token for a cookie and redirects to the clean address.
//!
//! A token in a URL outlives the request: it stays in the browser's
//! history, goes out as `Referer` with the page's own asset requests and
//! its links, and lands in every proxy's access log. So the first `GET`
//! sets `enclave_link` (HttpOnly, only for that path, for 30 minutes;
//! SameSite=Lax, as a Strict cookie is not sent on the redirect of a
//! navigation that began in a webmail) and answers 303 to `/password/reset` (and the like); the
//! clean address is served as if the token were in it, so the pages and
//! their forms are unchanged. The answer that carries the token says
//! `Referrer-Policy: no-referrer`; the clean pages `same-origin`, so no
//! `Referer` leaves the site, while their own form posts still name the
//! page (a refused plain post, without JavaScript, goes back to it by its
//! `Referer`). The example proxy configurations mask what reaches their
//! log before the swap.
use app::ssr::{http::cookie, secrets::is_token};
use axum::{
    extract::{Request, State},
    http::{
        header::{LOCATION, REFERRER_POLICY, SET_COOKIE},
        HeaderValue, Method, StatusCode, Uri,
    },
    middleware::Next,
    response::{IntoResponse, Response},
};

use crate::startup::AppState;

/// The paths whose last segment is a one-time token.
const LINKS: &[&str] = &["/password/reset", "/invite", "/verify", "/exports/download"];
const COOKIE_NAME: &str = "enclave_link";

/// Which link `path` is: its clean path, and the token if it carries one.
fn link(path: &str) -> Option<(&'static str, Option<&str>)> {
    LINKS.iter().find_map(|clean| {
        let rest = path.strip_prefix(clean)?;
        match rest {
            "" => Some((*clean, None)),
            _ => rest
                .strip_prefix('/')
                .filter(|t| !t.is_empty() && !t.contains('/'))
                .map(|t| (*clean, Some(t))),
        }
    })
}

/// Whether `path` is a one-time link with its token.
pub fn carries_token(path: &str) -> bool {
    matches!(link(path), Some((_, Some(_))))
}

/// The token the cookie holds for this request, if any: only what a token
/// is, so nothing else is put into the path.
fn cookie_token(req: &Request) -> Option<String> {
    cookie(req.headers(), COOKIE_NAME).filter(|t| is_token(t))
}

pub async fn swap_for_cookie(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    // An old address passes its links on as they came (`routes::addresses`
    // `moved`): the new host makes the swap, where the cookie will be read.
    let moved = matches!(
        req.extensions().get::<app::ssr::tenancy::RequestSite>(),
        Some(app::ssr::tenancy::RequestSite::Moved { .. })
    );
    let Some((clean, token)) = link(req.uri().path()).filter(|_| !moved) else {
        return next.run(req).await;
    };
    if req.method() == Method::GET {
        if let Some(token) = token.filter(|t| is_token(t)) {
            let secure = if state.settings.secure_cookies() {
                "; Secure"
            } else {
                ""
            };
            let cookie = format!(
                "{COOKIE_NAME}={token}; Path={clean}; Max-Age=1800; HttpOnly; SameSite=Lax{secure}"
            );
            let mut res = (StatusCode::SEE_OTHER, [(LOCATION, clean)]).into_response();
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            res.headers_mut()
                .insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            return res;
        }
        if token.is_none() {
            // The clean address: served as the link it stands for (an
            // unknown token when there is no cookie, which the page
            // answers as an expired link).
            let token = cookie_token(&req).unwrap_or_else(|| "0".into());
            let query = req.uri().query().map_or(String::new(), |q| format!("?{q}"));
            if let Ok(uri) = format!("{clean}/{token}{query}").parse::<Uri>() {
                *req.uri_mut() = uri;
            }
        }
    }
    let mut res = next.run(req).await;
    res.headers_mut()
        .insert(REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_link_paths_are_told_apart_from_the_rest() {
        assert_eq!(
            link("/password/reset/abc123"),
            Some(("/password/reset", Some("abc123")))
        );
        assert_eq!(link("/password/reset"), Some(("/password/reset", None)));
        assert_eq!(link("/invite/ff"), Some(("/invite", Some("ff"))));
        assert_eq!(link("/verify"), Some(("/verify", None)));
        assert_eq!(link("/password/forgot"), None);
        assert_eq!(link("/inviter/ab"), None);
        assert_eq!(link("/invite/a/b"), None);
        assert_eq!(link("/users"), None);
    }
}
