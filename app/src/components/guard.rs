//! `guard`: renders loaded data, or what a failed load means to the person (sign in, not allowed, error).
use leptos::prelude::*;
use leptos_router::components::Redirect;

use super::status::set_status;
use crate::wire::AppError;

/// Renders loaded data, or what a failed load means to the person: sign in
/// first (back to `here` after), not allowed (403), or an error message.
pub fn guard<T, V>(loaded: Result<T, AppError>, here: &str, ok: impl FnOnce(T) -> V) -> AnyView
where
    V: IntoView + 'static,
{
    match loaded {
        Ok(data) => ok(data).into_any(),
        Err(AppError::Unauthenticated) => {
            let path = format!("/login?next={}", urlencode(here));
            view! { <Redirect path/> }.into_any()
        }
        Err(AppError::Forbidden) => {
            set_status(403);
            view! {
                <section class="card">
                    <h1>"Admins only"</h1>
                    <p>"This page is for the company's admins."</p>
                    <p><a href="/">"Back to the dashboard"</a></p>
                </section>
            }
            .into_any()
        }
        Err(e) => {
            set_status(e.status());
            view! {
                <section class="card">
                    <h1>"Something went wrong"</h1>
                    <p role="alert">{e.to_string()}</p>
                </section>
            }
            .into_any()
        }
    }
}

fn urlencode(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
