//! `/login` on a company's site: the sign-in form.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::kept::kept;
use leptos_router::hooks::use_query_map;

use crate::api::account::Login;

/// `/login` on a company's subdomain.
#[component]
pub fn LoginForm(company: String) -> impl IntoView {
    let login = ServerAction::<Login>::new();
    let query = use_query_map();
    let next = move || query.read().get("next").unwrap_or_else(|| "/".into());
    let expired = move || query.read().get("handoff").is_some();
    let error = move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };

    view! {
        <Title text=format!("Sign in · {company}")/>
        <section class="card narrow">
            <h1>{format!("Sign in to {company}")}</h1>
            <Show when=expired>
                <p class="notice">"That sign-in link has expired or was already used. Please sign in."</p>
            </Show>
            <ActionForm action=login>
                <input type="hidden" name="next" value=next/>
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" required autocomplete="username" value=kept("email", "")/>
                <label for="password">"Password"</label>
                <input id="password" name="password" type="password" required autocomplete="current-password"/>
                <p class="form-error" role="alert" data-testid="login-error">{error}</p>
                <button type="submit">"Sign in"</button>
            </ActionForm>
            <p><a href="/password/forgot">"Forgot your password?"</a></p>
        </section>
    }
}
