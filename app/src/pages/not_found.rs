//! The 404 page of a path that does not exist.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::set_status;
use crate::site::WithSite;

/// No route matched: 404 (unknown and paused workspaces still show theirs).
#[component]
pub fn NotFound() -> impl IntoView {
    view! { <WithSite view=|_| view! { <NotFoundCard/> }/> }
}

/// The 404 card, for a path that exists only on the other kind of host.
#[component]
pub fn NotFoundCard() -> impl IntoView {
    set_status(404);
    view! {
        <Title text="Not found · Enclave"/>
        <section class="card">
            <h1>"Page not found"</h1>
            <p><a href="/">"Back to the start"</a></p>
        </section>
    }
}
