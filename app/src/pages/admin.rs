//! `/admin` on the base domain: the platform admin's sign-in and list of companies.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::platform::{list_tenants, AdminLogin, AdminLogout, DeleteTenant, SetTenantPaused};
use crate::components::guard::guard;
use crate::wire::AppError;

/// `/admin` on the base domain: the platform admin's view of every company.
#[component]
pub fn AdminPage() -> impl IntoView {
    let login = ServerAction::<AdminLogin>::new();
    let logout = ServerAction::<AdminLogout>::new();
    let pause = ServerAction::<SetTenantPaused>::new();
    let delete = ServerAction::<DeleteTenant>::new();
    let tenants = Resource::new(
        move || {
            (
                login.version().get(),
                pause.version().get(),
                delete.version().get(),
            )
        },
        |_| list_tenants(),
    );
    let login_error = move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let action_error = move || {
        [pause.value().get(), delete.value().get()]
            .into_iter()
            .flatten()
            .find_map(|r| r.err())
            .map(|e| e.to_string())
    };

    view! {
        <Title text="Platform admin · Enclave"/>
        <Suspense>
            {move || Suspend::new(async move {
                match tenants.await {
                    Err(AppError::Unauthenticated) => view! {
                        <section class="card narrow">
                            <h1>"Platform admin"</h1>
                            <ActionForm action=login>
                                <label for="admin-email">"Email"</label>
                                <input id="admin-email" name="email" type="email" required autocomplete="username"/>
                                <label for="admin-password">"Password"</label>
                                <input id="admin-password" name="password" type="password" required autocomplete="current-password"/>
                                <label for="admin-code">"Authentication code (if you turned it on)"</label>
                                <input id="admin-code" name="code" inputmode="numeric" pattern="[0-9 ]*" maxlength="8" autocomplete="one-time-code"/>
                                <p class="form-error" role="alert">{login_error}</p>
                                <button type="submit">"Sign in"</button>
                            </ActionForm>
                        </section>
                    }
                    .into_any(),
                    other => guard(other, "/admin", |tenants| view! {
                        <section class="card">
                            <div class="row">
                                <h1>"Companies"</h1>
                                <ActionForm action=logout><button type="submit" class="link">"Sign out"</button></ActionForm>
                            </div>
                            <p class="form-error" role="alert" data-testid="admin-error">{action_error}</p>
                            <table class="tenants">
                                <thead><tr><th>"Name"</th><th>"Subdomain"</th><th>"Status"</th><th>"Schema"</th><th>"Created"</th><th>"Actions"</th></tr></thead>
                                <tbody>
                                    {tenants.into_iter().map(|t| {
                                        let paused = t.status == "paused";
                                        let (sub_pause, sub_delete) = (t.subdomain.clone(), t.subdomain.clone());
                                        let confirm_id = format!("confirm-{}", t.subdomain);
                                        let confirm_hint = format!("type {}", t.subdomain);
                                        view! {
                                            <tr data-subdomain=t.subdomain.clone()>
                                                <td>{t.name.clone()}</td>
                                                <td><code>{t.subdomain.clone()}</code></td>
                                                <td data-testid="status">{t.status.clone()}</td>
                                                <td><code>{t.schema_version.clone()}</code></td>
                                                <td>{t.created.clone()}</td>
                                                <td class="actions">
                                                    <ActionForm action=pause>
                                                        <input type="hidden" name="subdomain" value=sub_pause/>
                                                        <input type="hidden" name="paused" value=(!paused).to_string()/>
                                                        <button type="submit" class="small">{if paused { "Resume" } else { "Pause" }}</button>
                                                    </ActionForm>
                                                    <ActionForm action=delete attr:class="delete">
                                                        <input type="hidden" name="subdomain" value=sub_delete/>
                                                        <label class="sr-only" for=confirm_id.clone()>"Type the subdomain to delete"</label>
                                                        <input id=confirm_id name="confirm" placeholder=confirm_hint autocomplete="off"/>
                                                        <button type="submit" class="small danger">"Delete"</button>
                                                    </ActionForm>
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                        </section>
                    }),
                }
            })}
        </Suspense>
    }
}
