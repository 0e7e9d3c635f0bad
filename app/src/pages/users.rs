//! `/users` on a company's site (admins): invite people, change roles, disable, remove.
use leptos::prelude::*;
use leptos_meta::Title;

use leptos_router::hooks::use_query_map;

use crate::components::{islands::provide_url_action_error, kept::kept};

use crate::api::account::whoami;
use crate::api::company::{
    list_invitations, list_users, InviteUser, RemoveUser, ResendInvitation, RevokeInvitation,
    SetUserDisabled, SetUserRole,
};
use crate::components::{guard::guard, nav::TenantNav};
use crate::domain::Role;
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};
use crate::wire::{InvitationRow, UserRow};

/// `/users`, admins only: the company's people, server-rendered, and the
/// [`UsersBoard`] island that acts on them.
#[component]
pub fn UsersPage() -> impl IntoView {
    let users = Resource::new(|| (), |_| list_users());
    let invitations = Resource::new(|| (), |_| list_invitations());
    let me = Resource::new(|| (), |_| whoami());
    let query = use_query_map();
    // A plain invitation post that succeeded (an error would carry `__err`).
    let invited = move || {
        let query = query.read();
        query.get("invited").is_some() && query.get("__err").is_none()
    };

    view! {
        <WithSite view=move |site| {
            let Site::Tenant { name, .. } = site else { return view! { <NotFoundCard/> }.into_any() };
            view! {
                <Title text=format!("Users · {name}")/>
                <Suspense>
                    {move || {
                        let name = name.clone();
                        Suspend::new(async move {
                            let me = me.await;
                            let users = users.await;
                            let invitations = invitations.await.unwrap_or_default();
                            guard(users, "/users", move |users| {
                                let me = me.ok().flatten();
                                view! {
                                    {me.map(|me| view! { <TenantNav company=name.clone() me/> })}
                                    <UsersBoard users invitations kept_email=kept("email", "")() invited=invited()/>
                                }
                            })
                        })
                    }}
                </Suspense>
            }
            .into_any()
        }/>
    }
}

/// The users and invitations tables and the invitation form: an island.
/// Each action is a plain form that works before hydration and without
/// JavaScript (the server answers with this page and its outcome); once
/// hydrated, the tables change in place and Remove asks inline (the
/// no-JavaScript way is the `/users/remove/{id}` page).
#[island]
pub fn UsersBoard(
    users: Vec<UserRow>,
    invitations: Vec<InvitationRow>,
    /// The email a refused invitation had typed.
    kept_email: String,
    /// A plain invitation post succeeded.
    invited: bool,
) -> impl IntoView {
    provide_url_action_error();
    let add = ServerAction::<InviteUser>::new();
    let resend = ServerAction::<ResendInvitation>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let role = ServerAction::<SetUserRole>::new();
    let disable = ServerAction::<SetUserDisabled>::new();
    let remove = ServerAction::<RemoveUser>::new();
    let users = RwSignal::new(users);
    let invitations = RwSignal::new(invitations);
    // The user whose removal is being asked about.
    let confirming = RwSignal::new(None::<String>);

    // After each action, both lists are fetched again.
    Effect::new(move |seen: Option<usize>| {
        let now = add.version().get()
            + resend.version().get()
            + revoke.version().get()
            + role.version().get()
            + disable.version().get()
            + remove.version().get();
        if seen.is_some_and(|seen| seen != now) {
            confirming.set(None);
            leptos::task::spawn_local(async move {
                if let Ok(fresh) = list_users().await {
                    users.set(fresh);
                }
                if let Ok(fresh) = list_invitations().await {
                    invitations.set(fresh);
                }
            });
        }
        now
    });
    let last_error = move || {
        [
            add.value().get().map(|r| r.map(|_| ())),
            role.value().get().map(|r| r.map(|_| ())),
            disable.value().get().map(|r| r.map(|_| ())),
            remove.value().get(),
            resend.value().get().map(|r| r.map(|_| ())),
            revoke.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(|r| r.err())
        .map(|e| e.to_string())
    };
    let add_error = move || {
        add.value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let sent = move || match add.value().get() {
        Some(result) => result.is_ok(),
        None => invited,
    };
    // A user added: the form starts over for the next one.
    let add_form = NodeRef::<leptos::html::Form>::new();
    Effect::new(move |_| {
        if matches!(add.value().get(), Some(Ok(_))) {
            if let Some(form) = add_form.get() {
                form.reset();
            }
        }
    });

    view! {
        <section class="card">
            <h1>"Users"</h1>
            <p class="form-error" role="alert" data-testid="users-error">{last_error}</p>
            <table class="users">
                <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th>"Actions"</th></tr></thead>
                <tbody>
                    {move || users.get().into_iter().map(|u| {
                        let other = if u.role == Role::Admin { Role::Member } else { Role::Admin };
                        // Each form's children own their copy.
                        let (id_role, id_disable, id_remove) = (u.id.clone(), u.id.clone(), u.id.clone());
                        let email = u.email.clone();
                        let asking = {
                            let id = u.id.clone();
                            move || confirming.get().as_deref() == Some(id.as_str())
                        };
                        let ask = {
                            let id = u.id.clone();
                            move |ev: leptos::ev::MouseEvent| {
                                ev.prevent_default();
                                confirming.set(Some(id.clone()));
                            }
                        };
                        view! {
                            <tr data-email=u.email.clone()>
                                <td>{u.email.clone()}</td>
                                <td>{u.role.as_str()}</td>
                                <td>{if u.disabled { "disabled" } else { "active" }}</td>
                                <td class="actions">
                                    <ActionForm action=role>
                                        <input type="hidden" name="id" value=id_role/>
                                        <input type="hidden" name="role" value=other.as_str()/>
                                        <button type="submit" class="small">{format!("Make {}", other.as_str())}</button>
                                    </ActionForm>
                                    <ActionForm action=disable>
                                        <input type="hidden" name="id" value=id_disable/>
                                        <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                                        <button type="submit" class="small">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                    </ActionForm>
                                    <a class="button small danger" href=format!("/users/remove/{}", u.id) on:click=ask class:hidden=asking.clone()>"Remove…"</a>
                                    <Show when=asking>
                                        <RemoveConfirm id=id_remove.clone() email=email.clone() remove confirming/>
                                    </Show>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Invite someone"</h2>
            <p class="muted">"They get an email with a link to choose their password; it works once, for 7 days."</p>
            <ActionForm action=add node_ref=add_form>
                <label for="new-email">"Email"</label>
                <input id="new-email" name="email" type="email" required value=kept_email/>
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role">
                    <option value="member" selected>"Member"</option>
                    <option value="admin">"Admin"</option>
                </select>
                <p class="form-error" role="alert">{add_error}</p>
                <Show when=sent>
                    <p class="notice" role="status">"Invitation sent."</p>
                </Show>
                <button type="submit">"Send invitation"</button>
            </ActionForm>
            {move || {
                let pending = invitations.get();
                (!pending.is_empty()).then(|| view! {
                    <h3>"Waiting to join"</h3>
                    <table class="invitations">
                        <thead><tr><th>"Email"</th><th>"Role"</th><th>"Link good until"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {pending.into_iter().map(|i| {
                                let (id_resend, id_revoke) = (i.id.clone(), i.id.clone());
                                view! {
                                <tr data-invited=i.email.clone()>
                                    <td>{i.email.clone()}</td>
                                    <td>{i.role.as_str()}</td>
                                    <td class="nowrap">{i.expires.clone()}</td>
                                    <td class="actions">
                                        <ActionForm action=resend>
                                            <input type="hidden" name="id" value=id_resend/>
                                            <button type="submit" class="small">"Resend"</button>
                                        </ActionForm>
                                        <ActionForm action=revoke>
                                            <input type="hidden" name="id" value=id_revoke/>
                                            <button type="submit" class="small danger">"Revoke"</button>
                                        </ActionForm>
                                    </td>
                                </tr>
                                }
                            }).collect_view()}
                        </tbody>
                    </table>
                })
            }}
        </section>
    }
}

/// "Remove x?" in the row, once its Remove… was clicked (island only).
#[component]
fn RemoveConfirm(
    id: String,
    email: String,
    remove: ServerAction<RemoveUser>,
    confirming: RwSignal<Option<String>>,
) -> impl IntoView {
    view! {
        <ActionForm action=remove attr:class="confirm" attr:data-testid="remove-confirm">
            <input type="hidden" name="id" value=id/>
            <span>"Remove "<strong>{email.clone()}</strong>"?"</span>
            <button type="submit" class="small danger">{format!("Remove {email}")}</button>
            <button type="button" class="small" on:click=move |_| confirming.set(None)>"Cancel"</button>
        </ActionForm>
    }
}
