//! `/` on the base domain: what Enclave is, and the way to signup.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::domain::subdomain::Subdomain;
use crate::site::Origin;

/// The base domain's front page: server-rendered, with one island (the
/// address preview).
#[component]
pub fn Landing(origin: Origin) -> impl IntoView {
    // Set by `/go` when the address typed below is not one a company can have.
    let go_error = move || use_query_map().read().get("company_error");

    view! {
        <Title text="Enclave: a database for every company"/>
        <section class="hero">
            <h1>"Every company gets its own database."</h1>
            <p class="lead">
                "Enclave gives each company its own workspace at its own address, "
                "backed by a database nobody else shares."
            </p>
            <AddressPreview origin=origin.clone()/>
            <p><a class="button" href="/signup">"Create your company"</a></p>
        </section>
        <section class="card" id="go">
            <h2>"Go to your company"</h2>
            <form method="get" action="/go">
                <label for="go-company">"Your company's address"</label>
                <div class="with-suffix">
                    <input id="go-company" name="company" required autocomplete="organization" spellcheck="false"/>
                    <span class="suffix">{format!(".{}", origin.base)}</span>
                </div>
                <p class="field-error" data-testid="go-error">{go_error}</p>
                <button type="submit">"Go to sign-in"</button>
            </form>
            <p class="muted"><a href="/find">"Forgot your company's address? Find it by email."</a></p>
        </section>
    }
}

/// "Try an address": the address a company would get, live as one types
/// (an island; the end-to-end test relies on it being live only once
/// hydrated).
#[island]
pub fn AddressPreview(origin: Origin) -> impl IntoView {
    let (wanted, set_wanted) = signal(String::new());
    let preview = Memo::new(move |_| {
        let wanted = wanted.get();
        if wanted.trim().is_empty() {
            return (origin.tenant_url("your-company"), None);
        }
        match Subdomain::parse(&wanted) {
            Ok(sub) => (origin.tenant_url(sub.as_str()), None),
            Err(e) => (
                origin.tenant_url(&wanted.trim().to_lowercase()),
                Some(e.to_string()),
            ),
        }
    });
    view! {
        <label for="preview-subdomain">"Try an address"</label>
        <input
            id="preview-subdomain"
            name="subdomain"
            placeholder="your-company"
            autocomplete="off"
            on:input=move |ev| set_wanted.set(event_target_value(&ev))
            prop:value=wanted
        />
        <p class="preview" data-testid="subdomain-preview">
            {move || preview.get().0}
        </p>
        <p class="field-error" data-testid="subdomain-error">
            {move || preview.get().1.unwrap_or_default()}
        </p>
    }
}
