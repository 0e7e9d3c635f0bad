//! `/users/remove/{id}` on a company's site (admins): "Remove this user?", asked before it is done, with or without JavaScript.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_params_map;

use crate::api::company::{list_users, RemoveUser};
use crate::components::guard::guard;
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};

/// The question, the user it is about, and the two ways out.
#[component]
pub fn RemoveUserPage() -> impl IntoView {
    let remove = ServerAction::<RemoveUser>::new();
    let params = use_params_map();
    let id = move || params.read().get("id").unwrap_or_default();
    let users = Resource::new(|| (), |_| list_users());
    let error = move || {
        remove
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    view! {
        <WithSite view=move |site| {
            if !matches!(site, Site::Tenant { .. }) {
                return view! { <NotFoundCard/> }.into_any();
            }
            view! {
        <Title text="Remove a user"/>
        <Suspense>
            {move || Suspend::new(async move {
                guard(users.await, "/users", move |users| {
                    let wanted = id();
                    match users.into_iter().find(|u| u.id == wanted) {
                        Some(u) => view! {
                            <section class="card narrow">
                                <h1>"Remove this user?"</h1>
                                <p data-testid="remove-who">
                                    <strong>{u.email.clone()}</strong>
                                    {format!(" ({}) loses access at once, and their account is deleted. What they did stays in the activity log.", u.role.as_str())}
                                </p>
                                <ActionForm action=remove>
                                    <input type="hidden" name="id" value=u.id.clone()/>
                                    <p class="form-error" role="alert" data-testid="remove-error">{error}</p>
                                    <div class="row">
                                        <a href="/users">"Cancel"</a>
                                        <button type="submit" class="danger">{format!("Remove {}", u.email)}</button>
                                    </div>
                                </ActionForm>
                            </section>
                        }
                        .into_any(),
                        None => view! {
                            <section class="card narrow">
                                <h1>"No such user"</h1>
                                <p>"They may have been removed already."</p>
                                <p><a href="/users">"Back to the users"</a></p>
                            </section>
                        }
                        .into_any(),
                    }
                })
            })}
        </Suspense>
            }
            .into_any()
        }/>
    }
}
