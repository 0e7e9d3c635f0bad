//! `/settings` on a company's site (admins).
use leptos::prelude::*;
use leptos_meta::Title;

use crate::api::company::load_dashboard;
use crate::components::{guard::guard, nav::TenantNav};

/// `/settings`, admins: the company's details.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let data = Resource::new(|| (), |_| load_dashboard());
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                guard(data.await, "/settings", |d| {
                    if d.me.role != crate::domain::Role::Admin {
                        return guard::<(), ()>(Err(crate::wire::AppError::Forbidden), "/settings", |_| ());
                    }
                    view! {
                        <Title text=format!("Settings · {}", d.company)/>
                        <TenantNav company=d.company.clone() me=d.me.clone()/>
                        <section class="card">
                            <h1>"Company settings"</h1>
                            <dl class="details">
                                <dt>"Name"</dt><dd>{d.company.clone()}</dd>
                                <dt>"Address"</dt><dd><code>{d.subdomain.clone()}</code></dd>
                                <dt>"Users"</dt><dd>{d.users}</dd>
                            </dl>
                        </section>
                    }
                    .into_any()
                })
            })}
        </Suspense>
    }
}
