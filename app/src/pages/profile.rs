//! `/profile` on a company's site: who you are, and changing your password.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::account::{whoami, ChangePassword};
use crate::components::{guard::guard, nav::TenantNav};
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};

/// `/profile`: who you are here, and your password.
#[component]
pub fn ProfilePage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let me = Resource::new(|| (), |_| whoami());
    let query = use_query_map();
    let outcome = move || match change.value().get() {
        Some(Ok(())) => Some(("notice", "Password changed.".to_string())),
        Some(Err(e)) => Some(("form-error", e.to_string())),
        None if query.read().get("changed").is_some() => {
            Some(("notice", "Password changed.".to_string()))
        }
        None => None,
    };
    view! {
        <WithSite view=move |site| {
            let Site::Tenant { name, .. } = site else { return view! { <NotFoundCard/> }.into_any() };
            view! {
                <Suspense>
                    {move || {
                        let name = name.clone();
                        Suspend::new(async move {
                            let me = me.await.and_then(|m| m.ok_or(crate::wire::AppError::Unauthenticated));
                            guard(me, "/profile", move |me| view! {
                                <Title text=format!("Profile · {name}")/>
                                <TenantNav company=name.clone() me=me.clone()/>
                                <section class="card">
                                    <h1>"Your profile"</h1>
                                    <p>"Email: " <strong>{me.email.clone()}</strong></p>
                                    <p>"Role: " {me.role.as_str()}</p>
                                </section>
                                <section class="card">
                                    <h2>"Change your password"</h2>
                                    <ActionForm action=change>
                                        <label for="current">"Current password"</label>
                                        <input id="current" name="current" type="password" required autocomplete="current-password"/>
                                        <label for="new">"New password (at least 10 characters)"</label>
                                        <input id="new" name="new" type="password" required minlength="10" autocomplete="new-password"/>
                                        <label for="confirm">"New password again"</label>
                                        <input id="confirm" name="confirm" type="password" required autocomplete="new-password"/>
                                        {move || outcome().map(|(class, text)| view! { <p class=class role="status">{text}</p> })}
                                        <button type="submit">"Change password"</button>
                                    </ActionForm>
                                </section>
                            })
                        })
                    }}
                </Suspense>
            }
            .into_any()
        }/>
    }
}
