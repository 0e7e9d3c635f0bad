//! `/settings` on a company's site (admins): the company's details, and renaming it.
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

use crate::components::kept::kept;
use leptos_router::hooks::use_query_map;

use crate::api::company::{load_dashboard, load_exports, RenameCompany, StartExport};
use crate::components::{guard::guard, nav::TenantNav};
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};

/// `/settings`, admins: the company's details and its display name.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let rename = ServerAction::<RenameCompany>::new();
    let export = ServerAction::<StartExport>::new();
    let data = Resource::new(move || rename.version().get(), |_| load_dashboard());
    let exports = Resource::new(move || export.version().get(), |_| load_exports());
    let export_error = move || {
        export
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let query = use_query_map();
    let renamed = move || query.read().get("renamed").is_some();
    let error = move || {
        rename
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
        <Suspense>
            {move || Suspend::new(async move {
                // Both read here, so the page waits for both.
                let rows = exports.await.unwrap_or_default();
                let running = rows.iter().any(|r| r.status == "running");
                guard(data.await, "/settings", move |d| {
                    if d.me.role != crate::domain::Role::Admin {
                        return guard::<(), ()>(Err(crate::wire::AppError::Forbidden), "/settings", |_| ());
                    }
                    view! {
                        <Title text=format!("Settings · {}", d.company)/>
                        <TenantNav company=d.company.clone() me=d.me.clone()/>
                        <section class="card">
                            <h1>"Company settings"</h1>
                            <dl class="details">
                                <dt>"Name"</dt><dd data-testid="company-name">{d.company.clone()}</dd>
                                <dt>"Address"</dt><dd><code>{d.subdomain.clone()}</code></dd>
                                <dt>"Users"</dt><dd>{d.users}</dd>
                            </dl>
                        </section>
                        <section class="card">
                            <h2>"Rename the company"</h2>
                            <p class="muted">"The name people see; the address stays the same."</p>
                            <ActionForm action=rename>
                                <label for="company-name">"Company name"</label>
                                <input id="company-name" name="name" required maxlength="100" value=kept("name", d.company.clone())/>
                                <p class="form-error" role="alert" data-testid="rename-error">{error}</p>
                                <Show when=renamed>
                                    <p class="notice" role="status" data-testid="renamed">"The company has its new name."</p>
                                </Show>
                                <button type="submit">"Rename"</button>
                            </ActionForm>
                        </section>
                        <section class="card" id="export">
                            <h2>"Export our data"</h2>
                            <p class="muted">"Every table of the company's data as CSV and as JSON Lines, with a manifest, in one ZIP. Passwords and sign-in tokens are left out. It is made in the background; this page follows it, and you get an email when it is ready. Admins can download it for 24 hours."</p>
                            // Followed without JavaScript: the page reloads itself.
                            <Show when=move || running>
                                <Meta http_equiv="refresh" content="2"/>
                            </Show>
                            <ul class="exports" data-testid="exports">
                                {rows.into_iter().map(|r| view! {
                                    <li data-status=r.status.clone()>
                                        <span>{format!("Asked {}: ", r.started)}</span>
                                        <strong>{r.status.clone()}</strong>
                                        <span>{format!(" — {}", r.detail)}</span>
                                        {r.download.map(|(href, until)| view! {
                                            " "<a href=href data-testid="export-download" download>"Download"</a>
                                            <span class="muted">{format!(" (until {until})")}</span>
                                        })}
                                    </li>
                                }).collect_view()}
                            </ul>
                            <ActionForm action=export>
                                <p class="form-error" role="alert" data-testid="export-error">{export_error}</p>
                                <button type="submit">"Export our data"</button>
                            </ActionForm>
                        </section>
                    }
                    .into_any()
                })
            })}
        </Suspense>
            }
            .into_any()
        }/>
    }
}
