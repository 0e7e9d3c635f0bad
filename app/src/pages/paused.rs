//! The 503 page of a paused company, or of one scheduled for deletion.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::status::set_status;

/// Any path of a paused company, or of one scheduled for deletion: 503.
#[component]
pub fn Paused(name: String, deleting_until: Option<String>) -> impl IntoView {
    set_status(503);
    if let Some(until) = deleting_until {
        return view! {
            <Title text="Workspace scheduled for deletion · Enclave"/>
            <section class="card">
                <h1>"This workspace is scheduled for deletion"</h1>
                <p data-testid="deleting-until">
                    {name} " will be deleted for good on " {until}
                    ". Until then it can still be restored: please ask your administrator to contact us."
                </p>
            </section>
        }
        .into_any();
    }
    view! {
        <Title text="Workspace paused · Enclave"/>
        <section class="card">
            <h1>"This workspace is paused"</h1>
            <p>{name} " is paused for now. Please ask your administrator, or try again later."</p>
        </section>
    }
    .into_any()
}
