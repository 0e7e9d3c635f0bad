//! `/invite/{token}` on a company's site: accepting an invitation by choosing a password.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::account::AcceptInvitation;

/// `/invite/{token}`: who is invited, and their new password, twice.
#[component]
pub fn InviteForm(
    company: String,
    invitee: Resource<Result<Option<crate::wire::Invitee>, crate::wire::AppError>>,
) -> impl IntoView {
    let accept = ServerAction::<AcceptInvitation>::new();
    let params = use_params_map();
    let token = move || params.read().get("token").unwrap_or_default();
    let error = move || {
        accept
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let title = format!("Join {company}");
    view! {
        <Title text=title.clone()/>
        <section class="card narrow">
            <h1>{title}</h1>
            <Suspense>
                {move || Suspend::new(async move {
                    match invitee.await {
                        Ok(Some(who)) => view! {
                            <p data-testid="invitee">
                                "You are invited as " <strong>{who.email.clone()}</strong>
                                {format!(" ({}). Choose a password to join.", who.role.as_str())}
                            </p>
                            <ActionForm action=accept>
                                <input type="hidden" name="token" value=token/>
                                <label for="new">"Password (at least 10 characters)"</label>
                                <input id="new" name="new" type="password" required minlength="10" autocomplete="new-password"/>
                                <label for="confirm">"Password again"</label>
                                <input id="confirm" name="confirm" type="password" required autocomplete="new-password"/>
                                <p class="form-error" role="alert" data-testid="invite-error">{error}</p>
                                <button type="submit">"Join and sign in"</button>
                            </ActionForm>
                        }
                        .into_any(),
                        Ok(None) => view! {
                            <p class="form-error" role="alert" data-testid="invite-error">
                                "This invitation has expired, was revoked or was already used. Ask an admin for a new one."
                            </p>
                            <p><a href="/login">"Sign in"</a></p>
                        }
                        .into_any(),
                        Err(e) => view! { <p class="form-error" role="alert">{e.to_string()}</p> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}
