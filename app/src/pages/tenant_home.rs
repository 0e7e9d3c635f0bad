use leptos::prelude::*;
use leptos_meta::Title;

/// A company's home on its own subdomain.
#[component]
pub fn TenantHome(name: String, subdomain: String) -> impl IntoView {
    view! {
        <Title text=format!("{name} · Enclave")/>
        <section class="card">
            <h1 data-testid="company-name">{name.clone()}</h1>
            <p>"Workspace " <code>{subdomain}</code> " is ready."</p>
        </section>
    }
}
