//! `/signup` on the base domain: create a company and its first admin.
use std::time::Duration;

use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::kept::kept;
use leptos_router::hooks::use_query_map;

use crate::api::signup::{check_subdomain, Signup};
use crate::domain::Subdomain;
use crate::site::Origin;
use crate::wire::SubdomainCheck;

/// `/signup` on the base domain: create a company and its first admin.
/// A plain form, server-rendered; the address field is an island that
/// checks the subdomain while typing.
#[component]
pub fn SignupForm(origin: Origin) -> impl IntoView {
    let signup = ServerAction::<Signup>::new();
    let error = move || signup.value().get().and_then(|r| r.err());
    let field_error = move |field: &'static str| {
        move || {
            error()
                .filter(|e| e.field() == Some(field))
                .map(|e| e.to_string())
        }
    };
    let form_error = move || {
        error()
            .filter(|e| e.field().is_none())
            .map(|e| e.to_string())
    };

    let suffix = format!(".{}", origin.base);
    let query = use_query_map();
    let sent = move || query.read().get("sent").is_some();
    view! {
        <Title text="Create your company · Enclave"/>
        <Show when=sent>
            <section class="card narrow" data-testid="signup-sent">
                <h1>"Check your inbox"</h1>
                <p>"We sent you a link to confirm your email. Open it within an hour to choose your password and create your company. The address is yours once the company is created."</p>
                <p class="muted">"Nothing there? Look in your spam folder, or "<a href="/signup">"sign up again"</a>"."</p>
            </section>
        </Show>
        <section class="card" class:hidden=sent>
            <h1>"Create your company"</h1>
            <ActionForm action=signup attr:novalidate=true>
                <label for="company">"Company name"</label>
                <input id="company" name="company" required maxlength="100" autocomplete="organization" value=kept("company", "")/>
                <p class="field-error" data-testid="company-error">{field_error("company")}</p>

                <label for="subdomain">"Address"</label>
                <SubdomainField value=kept("subdomain", "")() suffix/>
                <p class="field-error" data-testid="subdomain-error">{field_error("subdomain")}</p>

                <label for="email">"Your email"</label>
                <input id="email" name="email" type="email" required autocomplete="email" value=kept("email", "")/>
                <p class="field-error" data-testid="email-error">{field_error("email")}</p>
                <p class="muted">"You choose your password after confirming your email."</p>

                <p class="form-error" role="alert">{form_error}</p>
                <button type="submit">"Create company"</button>
            </ActionForm>
        </section>
    }
}

/// The subdomain input and its live check ("Available", "Taken", or what
/// is wrong with it): an island inside the plain signup form.
#[island]
pub fn SubdomainField(value: String, suffix: String) -> impl IntoView {
    let (check, set_check) = signal(None::<SubdomainCheck>);
    let typed = StoredValue::new(0u64);

    let on_input = move |ev| {
        let value = event_target_value(&ev);
        let n = typed.get_value() + 1;
        typed.set_value(n);
        if value.trim().is_empty() {
            set_check.set(None);
            return;
        }
        if let Err(e) = Subdomain::parse(&value) {
            set_check.set(Some(SubdomainCheck::Invalid(e.to_string())));
            return;
        }
        // Ask the server only once typing pauses, and keep only the answer
        // for what is in the box now.
        set_timeout(
            move || {
                if typed.get_value() != n {
                    return;
                }
                leptos::task::spawn_local(async move {
                    if let Ok(answer) = check_subdomain(value).await {
                        if typed.get_value() == n {
                            set_check.set(Some(answer));
                        }
                    }
                });
            },
            Duration::from_millis(300),
        );
    };

    view! {
        <div class="with-suffix">
            <input
                id="subdomain"
                name="subdomain"
                value=value
                required
                autocomplete="off"
                spellcheck="false"
                on:input=on_input
            />
            <span class="suffix">{suffix}</span>
        </div>
        <p class="field-status" data-testid="subdomain-status" aria-live="polite">
            {move || match check.get() {
                Some(SubdomainCheck::Available) => "Available".to_string(),
                Some(SubdomainCheck::Taken) => "Taken: choose another".to_string(),
                Some(SubdomainCheck::Invalid(message)) => message,
                None => String::new(),
            }}
        </p>
    }
}
