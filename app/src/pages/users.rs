//! `/users` on a company's site (admins): invite people, change roles, disable, remove.
use leptos::prelude::*;
use leptos::server_fn::ServerFn;
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
    let (new_email, new_role) = (
        NodeRef::<leptos::html::Input>::new(),
        NodeRef::<leptos::html::Select>::new(),
    );
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
                        let on_role = submit_with(role, {
                            let id = u.id.clone();
                            move || SetUserRole { id: id.clone(), role: other.as_str().to_owned() }
                        });
                        let on_disable = submit_with(disable, {
                            let (id, disabled) = (u.id.clone(), !u.disabled);
                            move || SetUserDisabled { id: id.clone(), disabled }
                        });
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
                                    <form method="post" action=SetUserRole::url() on:submit=on_role>
                                        <input type="hidden" name="id" value=u.id.clone()/>
                                        <input type="hidden" name="role" value=other.as_str()/>
                                        <button type="submit" class="small">{format!("Make {}", other.as_str())}</button>
                                    </form>
                                    <form method="post" action=SetUserDisabled::url() on:submit=on_disable>
                                        <input type="hidden" name="id" value=u.id.clone()/>
                                        <input type="hidden" name="disabled" value=(!u.disabled).to_string()/>
                                        <button type="submit" class="small">{if u.disabled { "Enable" } else { "Disable" }}</button>
                                    </form>
                                    <a class="button small danger" href=format!("/users/remove/{}", u.id) on:click=ask class:hidden=asking.clone()>"Remove…"</a>
                                    <Show when=asking>
                                        <RemoveConfirm id=u.id.clone() email=email.clone() remove confirming/>
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
            <form method="post" action=InviteUser::url() node_ref=add_form on:submit=submit_with(add, move || InviteUser {
                email: new_email.get().map(|input| input.value()).unwrap_or_default(),
                role: new_role.get().map(|select| select.value()).unwrap_or_default(),
            })>
                <label for="new-email">"Email"</label>
                <input id="new-email" name="email" type="email" required value=kept_email node_ref=new_email/>
                <label for="new-role">"Role"</label>
                <select id="new-role" name="role" node_ref=new_role>
                    <option value="member" selected>"Member"</option>
                    <option value="admin">"Admin"</option>
                </select>
                <p class="form-error" role="alert">{add_error}</p>
                <Show when=sent>
                    <p class="notice" role="status">"Invitation sent."</p>
                </Show>
                <button type="submit">"Send invitation"</button>
            </form>
            {move || {
                let pending = invitations.get();
                (!pending.is_empty()).then(|| view! {
                    <h3>"Waiting to join"</h3>
                    <table class="invitations">
                        <thead><tr><th>"Email"</th><th>"Role"</th><th>"Link good until"</th><th>"Actions"</th></tr></thead>
                        <tbody>
                            {pending.into_iter().map(|i| {
                                let on_resend = submit_with(resend, {
                                    let id = i.id.clone();
                                    move || ResendInvitation { id: id.clone() }
                                });
                                let on_revoke = submit_with(revoke, {
                                    let id = i.id.clone();
                                    move || RevokeInvitation { id: id.clone() }
                                });
                                view! {
                                <tr data-invited=i.email.clone()>
                                    <td>{i.email.clone()}</td>
                                    <td>{i.role.as_str()}</td>
                                    <td class="nowrap">{i.expires.clone()}</td>
                                    <td class="actions">
                                        <form method="post" action=ResendInvitation::url() on:submit=on_resend>
                                            <input type="hidden" name="id" value=i.id.clone()/>
                                            <button type="submit" class="small">"Resend"</button>
                                        </form>
                                        <form method="post" action=RevokeInvitation::url() on:submit=on_revoke>
                                            <input type="hidden" name="id" value=i.id.clone()/>
                                            <button type="submit" class="small danger">"Revoke"</button>
                                        </form>
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
    let on_remove = submit_with(remove, {
        let id = id.clone();
        move || RemoveUser { id: id.clone() }
    });
    view! {
        <form method="post" action=RemoveUser::url() class="confirm" data-testid="remove-confirm" on:submit=on_remove>
            <input type="hidden" name="id" value=id/>
            <span>"Remove "<strong>{email.clone()}</strong>"?"</span>
            <button type="submit" class="small danger">{format!("Remove {email}")}</button>
            <button type="button" class="small" on:click=move |_| confirming.set(None)>"Cancel"</button>
        </form>
    }
}

/// A form's submit handler once hydrated: sends `action` with `input()`
/// instead of posting the page. Before hydration (and without JavaScript)
/// the form posts itself, from its hidden fields, to the same function.
/// (Not `ActionForm`: it reads the fields back with a query-string parser,
/// and follows the function's redirect with a page load; this way the
/// island is about a third smaller and stays on the page.)
fn submit_with<S>(
    action: ServerAction<S>,
    input: impl Fn() -> S + 'static,
) -> impl FnMut(leptos::ev::SubmitEvent) + 'static
where
    S: ServerFn + Clone + Send + Sync + 'static,
    S::Output: Send + Sync + 'static,
    S::Error: Send + Sync + 'static,
{
    move |ev| {
        ev.prevent_default();
        action.dispatch(input());
    }
}
