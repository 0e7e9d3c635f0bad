//! `/` on a company's site, signed in: the company at a glance.
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::{guard::guard, nav::TenantNav};
use crate::wire::{AppError, Dashboard};

/// `/` on a company's subdomain, signed in: the company at a glance.
#[component]
pub fn DashboardPage(data: Resource<Result<Dashboard, AppError>>) -> impl IntoView {
    view! {
        <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
            {move || Suspend::new(async move {
                guard(data.await, "/", |d| {
                    let admin = d.me.role == crate::domain::Role::Admin;
                    view! {
                    <Title text=format!("{} · Enclave", d.company)/>
                    <TenantNav company=d.company.clone() me=d.me.clone()/>
                    <section class="card">
                        <h1 data-testid="company-name">{d.company.clone()}</h1>
                        <p class="lead">"Signed in as " <strong data-testid="me">{d.me.email.clone()}</strong>
                            " (" {d.me.role.as_str()} ")"</p>
                        <dl class="stats">
                            <div><dt>"Users"</dt><dd data-testid="user-count">{d.users}</dd></div>
                            <div><dt>"Admins"</dt><dd>{d.admins}</dd></div>
                            <div><dt>"Disabled"</dt><dd>{d.disabled}</dd></div>
                        </dl>
                    </section>
                    {admin.then(|| view! {
                        <section class="card">
                            <div class="row">
                                <h2>"Recent activity"</h2>
                                <a href="/audit">"See all"</a>
                            </div>
                            <ul class="audit" data-testid="audit">
                                {d.recent.into_iter().map(|a| view! {
                                    <li><span class="when">{a.at}</span> " " <strong>{a.actor}</strong> ": " {a.detail}</li>
                                }).collect_view()}
                            </ul>
                        </section>
                    })}
                    }
                })
            })}
        </Suspense>
    }
}
