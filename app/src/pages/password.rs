//! `/password/forgot` and `/password/reset/{token}` on a company's site: asking for a reset link, and choosing a new password with it.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::kept::kept;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::api::account::{ForgotPassword, ResetPassword};

/// `/password/forgot`: an email in, the same answer out whether or not it
/// has an account here.
#[component]
pub fn ForgotPasswordForm(company: String) -> impl IntoView {
    let forgot = ServerAction::<ForgotPassword>::new();
    let query = use_query_map();
    let sent = move || query.read().get("sent").is_some();
    let error = move || {
        forgot
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <Title text=format!("Forgot your password? · {company}")/>
        <section class="card narrow">
            <h1>"Forgot your password?"</h1>
            <Show
                when=sent
                fallback=move || view! {
                    <p>"Type the email you sign in with. If it has an account here, we will send it a link to choose a new password."</p>
                    <ActionForm action=forgot>
                        <label for="email">"Email"</label>
                        <input id="email" name="email" type="email" required autocomplete="username" value=kept("email", "")/>
                        <p class="form-error" role="alert" data-testid="forgot-error">{error}</p>
                        <button type="submit">"Send me a link"</button>
                    </ActionForm>
                }
            >
                <p class="notice" role="status" data-testid="forgot-sent">
                    "If that email has an account here, a link to choose a new password is on its way. It works once, for 30 minutes."
                </p>
            </Show>
            <p><a href="/login">"Back to sign in"</a></p>
        </section>
    }
}

/// `/password/reset/{token}`: the new password, twice.
#[component]
pub fn ResetPasswordForm(
    company: String,
    live: Resource<Result<bool, crate::wire::AppError>>,
) -> impl IntoView {
    let reset = ServerAction::<ResetPassword>::new();
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let error = move || {
        reset
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <Title text=format!("Choose a new password · {company}")/>
        <section class="card narrow">
            <h1>"Choose a new password"</h1>
            <Suspense>
                {move || Suspend::new(async move {
                    match live.await {
                        Ok(true) => view! {
                            <ActionForm action=reset>
                                <input type="hidden" name="token" value=token/>
                                <label for="new">"New password (at least 10 characters)"</label>
                                <input id="new" name="new" type="password" required minlength="10" autocomplete="new-password"/>
                                <label for="confirm">"New password again"</label>
                                <input id="confirm" name="confirm" type="password" required autocomplete="new-password"/>
                                <p class="form-error" role="alert" data-testid="reset-error">{error}</p>
                                <button type="submit">"Set password and sign in"</button>
                            </ActionForm>
                        }
                        .into_any(),
                        Ok(false) => view! {
                            <p class="form-error" role="alert" data-testid="reset-error">
                                "This link has expired or was already used."
                            </p>
                            <p><a href="/password/forgot">"Ask for a new link"</a></p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
