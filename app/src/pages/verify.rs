//! `/verify/{token}` on the base domain: confirming a signup's email, which creates the company.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::signup::VerifySignup;
use crate::site::Origin;

/// `/verify/{token}`: what will be created, the admin's password, chosen
/// here now that the email is proven, and one button to create it. A
/// button rather than on opening: mail scanners open links by themselves,
/// and must not create companies.
#[component]
pub fn VerifyForm(
    origin: Origin,
    pending: Resource<Result<Option<crate::wire::PendingSignup>, crate::wire::AppError>>,
) -> impl IntoView {
    let verify = ServerAction::<VerifySignup>::new();
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    // What is not about one field: a spent link, a subdomain taken meanwhile.
    let error = move || {
        verify
            .value()
            .get()
            .and_then(|r| r.err())
            .filter(|e| !matches!(e.field(), Some("password" | "confirm")))
            .map(|e| e.to_string())
    };
    let field_error = move |field: &'static str| {
        move || {
            verify
                .value()
                .get()
                .and_then(|r| r.err())
                .filter(|e| e.field() == Some(field))
                .map(|e| e.to_string())
        }
    };
    view! {
        <Title text="Confirm your email · Enclave"/>
        <section class="card narrow">
            <Suspense>
                {move || {
                    let origin = origin.clone();
                    Suspend::new(async move {
                        match pending.await {
                            Ok(Some(p)) => view! {
                                <h1>{format!("Create {}", p.company)}</h1>
                                <p data-testid="pending">
                                    "Your email " <strong>{p.email.clone()}</strong> " is confirmed. "
                                    {format!("{} will be at {}.{}, with you as its admin.", p.company, p.subdomain, origin.base)}
                                </p>
                                <ActionForm action=verify>
                                    <input type="hidden" name="token" value=token/>
                                    // Never kept after a refusal (see `server::routes::leptos`).
                                    <label for="password">"Choose a password (at least 10 characters)"</label>
                                    <input id="password" name="password" type="password" required minlength="10" autocomplete="new-password"/>
                                    <p class="field-error" data-testid="password-error">{field_error("password")}</p>
                                    <label for="confirm">"Password again"</label>
                                    <input id="confirm" name="confirm" type="password" required minlength="10" autocomplete="new-password"/>
                                    <p class="field-error" data-testid="confirm-error">{field_error("confirm")}</p>
                                    <p class="form-error" role="alert" data-testid="verify-error">{error}</p>
                                    <button type="submit">"Create my company"</button>
                                </ActionForm>
                            }
                            .into_any(),
                            Ok(None) => view! {
                                <h1>"Confirm your email"</h1>
                                <p class="form-error" role="alert" data-testid="verify-error">
                                    "This link has expired or was already used. Please sign up again."
                                </p>
                                <p><a href="/signup">"Sign up"</a></p>
                            }
                            .into_any(),
                            Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                        }
                    })
                }}
            </Suspense>
        </section>
    }
}
