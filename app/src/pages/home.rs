use leptos::prelude::*;

use super::{landing::Landing, tenant_home::TenantHome};
use crate::site::{Site, WithSite};

/// `/`: the landing page on the base domain, the company's home on a subdomain.
#[component]
pub fn HomePage() -> impl IntoView {
    view! {
        <WithSite view=|site| match site {
            Site::Root { origin } => view! { <Landing origin/> }.into_any(),
            Site::Tenant { name, subdomain, .. } => {
                view! { <TenantHome name subdomain/> }.into_any()
            }
            _ => ().into_any(),
        }/>
    }
}
