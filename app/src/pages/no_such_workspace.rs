//! The 404 page of a subdomain that no company holds.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::set_status;
use crate::site::Origin;

/// Any path on a subdomain that no company holds: 404.
#[component]
pub fn NoSuchWorkspace(subdomain: String, origin: Origin) -> impl IntoView {
    set_status(404);
    view! {
        <Title text="No such workspace · Enclave"/>
        <section class="card">
            <h1>"No such workspace"</h1>
            <p>"There is no company at " <code>{subdomain}</code> "."</p>
            <p>
                <a href=format!("{}signup", origin.root_url())>"Create a company"</a>
                " or go to "
                <a href=origin.root_url()>"Enclave's home page"</a>
                "."
            </p>
        </section>
    }
}
