//! The 503 page of a paused company.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::set_status;

/// Any path of a paused company: 503.
#[component]
pub fn Paused(name: String) -> impl IntoView {
    set_status(503);
    view! {
        <Title text="Workspace paused · Enclave"/>
        <section class="card">
            <h1>"This workspace is paused"</h1>
            <p>{name} " is paused for now. Please ask your administrator, or try again later."</p>
        </section>
    }
}
