//! The Leptos handlers: pages and server functions, each given the request's site and the services as context.
use ::leptos::{nonce::Nonce, prelude::provide_context};
use app::{
    island_scripts, shell,
    ssr::{context::ClientIp, secrets::random_hex, services::Services, tenancy::RequestSite},
    wire::AppError,
};
use axum::{
    extract::{Request, State},
    http::{
        header::{ACCEPT, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, LOCATION},
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
        {
            let nonce = nonce.clone();
            move || {
                provide(&site, client, &services);
                provide_context(Nonce::from_value(nonce.clone()));
            }
        },
        move || shell(options.clone()),
    );
    let response = handler(req).await.into_response();
    let (mut parts, body) = response.into_parts();
    // Rendered asynchronously, the page is already whole in memory.
    let Ok(html) = axum::body::to_bytes(body, PAGE_LIMIT).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let html = with_island_scripts(html, || {
        island_scripts(state.leptos_options.clone(), Nonce::from_value(nonce))
    });
    parts.headers.remove(CONTENT_LENGTH);
    parts.headers.insert(CONTENT_SECURITY_POLICY, policy);
    Response::from_parts(parts, axum::body::Body::from(html))
}

/// The most a rendered page may hold (the largest is a few tens of KB).
const PAGE_LIMIT: usize = 8 * 1024 * 1024;

/// `html` with the island scripts before its `</head>` if it has an island
/// (`<leptos-island`, which page text cannot contain: text is escaped), or
/// unchanged: a page without islands loads no JavaScript or WASM.
fn with_island_scripts(
    html: axum::body::Bytes,
    scripts: impl FnOnce() -> String,
) -> axum::body::Bytes {
    let has_island = find_bytes(&html, b"<leptos-island").is_some();
    let head_end = find_bytes(&html, b"</head>");
    match (has_island, head_end) {
        (true, Some(at)) => {
            let scripts = scripts();
            let mut out = Vec::with_capacity(html.len() + scripts.len());
            out.extend_from_slice(&html[..at]);
            out.extend_from_slice(scripts.as_bytes());
            out.extend_from_slice(&html[at..]);
            out.into()
        }
        _ => html,
    }
}

fn find_bytes(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
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
///
/// When such a post is refused, what was typed (passwords and other
/// secrets aside, see [`KEPT_NEVER`]) goes back with it as `keep.<field>`
/// in the query, and the form's inputs take their values from there
/// (`app::components::kept`), so nothing typed is lost.
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
    // Every server function takes a few fields: the body is read here,
    // bounded, and handed on unchanged. One that says it is larger than
    // `DRAIN_LIMIT` is refused before a byte of it is read.
    let (parts, body) = req.into_parts();
    let declared = parts
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let bytes = match declared {
        Some(n) if n > DRAIN_LIMIT as u64 => None,
        _ => read_bounded(body, FORM_LIMIT).await,
    };
    let Some(bytes) = bytes else {
        tracing::info!(
            limit = FORM_LIMIT,
            "a server function's body was too large; refused"
        );
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "The form is too large (at most 64 KiB).\n",
        )
            .into_response();
    };
    // A plain form's fields, to give back if it is refused.
    let typed = if plain_form {
        kept_fields(&bytes)
    } else {
        Vec::new()
    };
    let req = Request::from_parts(parts, axum::body::Body::from(bytes));
    let services = state.services.clone();
    let mut response =
        leptos_axum::handle_server_fns_with_context(move || provide(&site, client, &services), req)
            .await
            .into_response();
    if plain_form {
        let location = response
            .headers()
            .get(LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_owned);
        if let Some(location) = location {
            if location.contains("__err=") {
                if let Ok(with_values) = HeaderValue::from_str(&keep_in(&location, &typed)) {
                    response.headers_mut().insert(LOCATION, with_values);
                }
            }
            *response.status_mut() = StatusCode::SEE_OTHER;
        }
    }
    response
}

/// The most a plain form may send (every form here is a few fields).
const FORM_LIMIT: usize = 64 * 1024;

/// How much of a body past `FORM_LIMIT` is still read, and thrown away,
/// before the 413: a connection closed with data unread is reset, and the
/// reset can reach the client before the answer does. A body larger than
/// this is cut off unread (a client sending one gets the reset).
const DRAIN_LIMIT: usize = 512 * 1024;

/// `body`, if it is at most `keep` bytes; read to its end (up to
/// [`DRAIN_LIMIT`]) either way, holding no more than `keep` bytes of it.
async fn read_bounded(mut body: axum::body::Body, keep: usize) -> Option<axum::body::Bytes> {
    use axum::body::HttpBody;
    let mut kept = Vec::new();
    let (mut seen, mut over) = (0usize, false);
    while let Some(frame) =
        std::future::poll_fn(|cx| std::pin::Pin::new(&mut body).poll_frame(cx)).await
    {
        let Ok(data) = frame.ok()?.into_data() else {
            continue;
        };
        seen += data.len();
        if seen > DRAIN_LIMIT {
            return None;
        }
        if seen > keep {
            over = true;
            kept = Vec::new();
        } else {
            kept.extend_from_slice(&data);
        }
    }
    (!over).then(|| kept.into())
}

/// Fields never sent back into a URL: passwords, codes, tokens.
const KEPT_NEVER: &[&str] = &["password", "current", "new", "confirm", "code", "token"];

/// The fields of a form body worth giving back (short, not secret).
fn kept_fields(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body)
        .filter(|(k, v)| {
            !KEPT_NEVER.contains(&k.as_ref()) && !k.starts_with("__") && v.len() <= 256
        })
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .take(16)
        .collect()
}

/// `location` with `keep.<field>=<value>` for each of `typed`, in place of
/// any it carried from an earlier refusal.
fn keep_in(location: &str, typed: &[(String, String)]) -> String {
    let (path, query) = location.split_once('?').unwrap_or((location, ""));
    let mut out = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in url::form_urlencoded::parse(query.as_bytes()) {
        if !k.starts_with("keep.") {
            out.append_pair(&k, &v);
        }
    }
    for (k, v) in typed {
        out.append_pair(&format!("keep.{k}"), v);
    }
    format!("{path}?{}", out.finish())
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

#[cfg(test)]
mod tests {
    use super::{keep_in, kept_fields, with_island_scripts};

    #[test]
    fn only_a_page_with_an_island_gets_the_island_scripts() {
        let scripts = || "<script>islands</script>".to_owned();
        let with = with_island_scripts(
            "<html><head><title>t</title></head><body><leptos-island data-component=\"X\">x</leptos-island></body></html>".into(),
            scripts,
        );
        assert_eq!(
            &with[..],
            b"<html><head><title>t</title><script>islands</script></head><body><leptos-island data-component=\"X\">x</leptos-island></body></html>"
        );
        // Text is escaped, so a page can only mention an island, not hold one.
        let plain = "<html><head></head><body><p>&lt;leptos-island</p></body></html>";
        let without = with_island_scripts(plain.into(), || unreachable!("no island, no scripts"));
        assert_eq!(&without[..], plain.as_bytes());
    }

    #[test]
    fn refused_forms_get_back_what_was_typed_but_never_secrets() {
        let typed = kept_fields(b"email=a%40b.test&password=hunter22&new=x&confirm=x&token=t&code=1&company=A+%26+B&__x=y");
        assert_eq!(
            typed,
            vec![
                ("email".to_owned(), "a@b.test".to_owned()),
                ("company".to_owned(), "A & B".to_owned())
            ]
        );
        let once = keep_in(
            "http://acme.localhost/login?next=%2F&__path=%2Fapi%2Flogin&__err=abc",
            &typed,
        );
        assert_eq!(
            once,
            "http://acme.localhost/login?next=%2F&__path=%2Fapi%2Flogin&__err=abc&keep.email=a%40b.test&keep.company=A+%26+B"
        );
        // A second refusal replaces what the first kept.
        let again = keep_in(&once, &[("email".into(), "c@d.test".into())]);
        assert!(again.ends_with("&keep.email=c%40d.test"), "{again}");
        assert_eq!(again.matches("keep.").count(), 1);
    }
}
