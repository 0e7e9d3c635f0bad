//! `/find` on the base domain: "find your workspace", by email.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::kept::kept;
use leptos_router::hooks::use_query_map;

use crate::api::signup::FindWorkspaces;

/// `/find`: an email in; a message listing its companies' sign-in links
/// out, and the same answer on the page whatever was found.
#[component]
pub fn FindForm() -> impl IntoView {
    let find = ServerAction::<FindWorkspaces>::new();
    let query = use_query_map();
    let sent = move || query.read().get("sent").is_some();
    let error = move || {
        find.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <Title text="Find your company · Enclave"/>
        <section class="card narrow">
            <h1>"Find your company"</h1>
            <Show
                when=sent
                fallback=move || view! {
                    <p>"Forgot your company's address? Type your email: we will send you a link to sign in to each company where you have an account."</p>
                    <ActionForm action=find>
                        <label for="find-email">"Your email"</label>
                        <input id="find-email" name="email" type="email" required autocomplete="email" value=kept("email", "")/>
                        <p class="form-error" role="alert" data-testid="find-error">{error}</p>
                        <button type="submit">"Email me my companies"</button>
                    </ActionForm>
                }
            >
                <p class="notice" role="status" data-testid="find-sent">
                    "If that email has an account with any company here, a message listing them is on its way."
                </p>
            </Show>
            <p><a href="/">"Back to the start"</a></p>
        </section>
    }
}
