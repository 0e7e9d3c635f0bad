//! `/users` on a company's site (admins): invite people, change roles, disable, remove.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::kept::kept;

use crate::api::account::whoami;
use crate::api::company::{
    list_invitations, list_users, InviteUser, RemoveUser, ResendInvitation, RevokeInvitation,
    SetUserDisabled, SetUserRole,
};
use crate::components::{guard::guard, nav::TenantNav};
use crate::domain::Role;
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};

/// `/users`, admins only: invite people, change roles, disable, remove.
#[component]
pub fn UsersPage() -> impl IntoView {
    let add = ServerAction::<InviteUser>::new();
    let resend = ServerAction::<ResendInvitation>::new();
    let revoke = ServerAction::<RevokeInvitation>::new();
    let role = ServerAction::<SetUserRole>::new();
    let disable = ServerAction::<SetUserDisabled>::new();
    let remove = ServerAction::<RemoveUser>::new();
    let users = Resource::new(
        move || {
            (
                add.version().get(),
                role.version().get(),
                disable.version().get(),
                remove.version().get(),
            )
        },
        |_| list_users(),
    );
    let invitations = Resource::new(
        move || {
            (
                add.version().get(),
                resend.version().get(),
                revoke.version().get(),
            )
        },
        |_| list_invitations(),
    );
    let me = Resource::new(|| (), |_| whoami());
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
                            let pending = invitations.await.unwrap_or_default();
                            guard(users, "/users", move |users| {
                                let me = me.ok().flatten();
                                view! {
                                    {me.map(|me| view! { <TenantNav company=name.clone() me/> })}
                                    <section class="card">
                                        <h1>"Users"</h1>
                                        <p class="form-error" role="alert" data-testid="users-error">{last_error}</p>
                                        <table class="users">
                                            <thead><tr><th>"Email"</th><th>"Role"</th><th>"Status"</th><th>"Actions"</th></tr></thead>
                                            <tbody>
                                                {users.into_iter().map(|u| {
                                                    let other = if u.role == Role::Admin { Role::Member } else { Role::Admin };
                                                    let (id_role, id_disable, id_remove) = (u.id.clone(), u.id.clone(), u.id.clone());
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
                                                                <a class="button small danger" href=format!("/users/remove/{id_remove}")>"Remove…"</a>
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
                                            <input id="new-email" name="email" type="email" required value=kept("email", "")/>
                                            <label for="new-role">"Role"</label>
                                            <select id="new-role" name="role">
                                                <option value="member" selected>"Member"</option>
                                                <option value="admin">"Admin"</option>
                                            </select>
                                            <p class="form-error" role="alert">{add_error}</p>
                                            {move || matches!(add.value().get(), Some(Ok(_))).then(|| view! {
                                                <p class="notice" role="status">"Invitation sent."</p>
                                            })}
                                            <button type="submit">"Send invitation"</button>
                                        </ActionForm>
                                        {(!pending.is_empty()).then(|| view! {
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
                                        })}
                                    </section>
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
