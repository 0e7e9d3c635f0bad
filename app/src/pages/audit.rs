//! `/audit` on a company's site (admins): the whole audit log, newest first, 50 a page.
use leptos::prelude::*;
use leptos_meta::Title;
use leptos_router::hooks::use_query_map;

use crate::api::{account::whoami, company::load_audit};
use crate::components::{guard::guard, nav::TenantNav};
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};

/// `/audit`, admins only: who did what, page by page (`?page=N`).
#[component]
pub fn AuditPage() -> impl IntoView {
    let query = use_query_map();
    let page = move || {
        query
            .read()
            .get("page")
            .and_then(|p| p.parse::<u64>().ok())
            .unwrap_or(1)
    };
    let log = Resource::new(page, load_audit);
    let me = Resource::new(|| (), |_| whoami());
    view! {
        <WithSite view=move |site| {
            let Site::Tenant { name, .. } = site else { return view! { <NotFoundCard/> }.into_any() };
            view! {
                <Title text=format!("Activity · {name}")/>
                <Suspense>
                    {move || {
                        let name = name.clone();
                        Suspend::new(async move {
                            let me = me.await.ok().flatten();
                            guard(log.await, "/audit", move |log| view! {
                                {me.map(|me| view! { <TenantNav company=name.clone() me/> })}
                                <section class="card">
                                    <h1>"Activity"</h1>
                                    <p class="muted" data-testid="audit-count">
                                        {format!("{} entries · page {} of {}", log.total, log.page, log.pages)}
                                    </p>
                                    <ul class="audit" data-testid="audit">
                                        {log.rows.into_iter().map(|a| view! {
                                            <li><span class="when">{a.at}</span> " " <strong>{a.actor}</strong> ": " {a.detail}</li>
                                        }).collect_view()}
                                    </ul>
                                    <nav class="pager" aria-label="Pages">
                                        {(log.page > 1).then(|| view! { <a href=format!("/audit?page={}", log.page - 1) rel="prev">"← Newer"</a> })}
                                        {(log.page < log.pages).then(|| view! { <a href=format!("/audit?page={}", log.page + 1) rel="next">"Older →"</a> })}
                                    </nav>
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
