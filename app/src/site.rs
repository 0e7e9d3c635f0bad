//! Which site a request is for, as the browser sees it: decided once on the server, carried in the SSR payload.
//!
//! The server's tenancy resolver decides it (`ssr::tenancy::request::resolve`); the
//! browser reads it from the serialized SSR data, so both render the same
//! page.
use leptos::prelude::*;
use serde::{Deserialize, Serialize};

use crate::components::status::set_status;
use crate::pages::{no_such_workspace::NoSuchWorkspace, paused::Paused};
use crate::wire::AppError;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Site {
    /// The base domain: landing, signup, platform admin.
    Root { origin: Origin },
    /// An active company.
    Tenant {
        name: String,
        subdomain: String,
        origin: Origin,
    },
    /// A well-formed subdomain that no company holds.
    UnknownTenant { subdomain: String, origin: Origin },
    /// A company whose workspace is paused, or scheduled for deletion.
    Paused {
        name: String,
        subdomain: String,
        origin: Origin,
        /// Scheduled for deletion: when it will be purged.
        deleting_until: Option<String>,
    },
}

/// How the visitor reached us: scheme and base authority (base domain plus
/// the port they used), so links to another subdomain keep working.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    pub scheme: String,
    /// e.g. `localhost:3000` or `example.com`.
    pub base: String,
}

impl Origin {
    pub fn root_url(&self) -> String {
        format!("{}://{}/", self.scheme, self.base)
    }

    pub fn tenant_url(&self, subdomain: &str) -> String {
        format!("{}://{}.{}/", self.scheme, subdomain, self.base)
    }
}

/// The request's site, from the context the server provides.
#[server(endpoint = "site")]
pub async fn current_site() -> Result<Site, AppError> {
    Ok(crate::ssr::context::request_site()?.site())
}

pub type SiteResource = Resource<Result<Site, AppError>>;

/// Loads the site once per page load: on the server from context, in the
/// browser from the serialized SSR data (no extra request).
pub fn provide_site() {
    let site: SiteResource = Resource::new_blocking(|| (), |_| current_site());
    provide_context(site);
}

/// The request's site, for a resource that depends on it.
pub fn use_site() -> SiteResource {
    expect_context::<SiteResource>()
}

/// Renders `view` for the request's site. Unknown and paused workspaces get
/// their own pages whatever the path, so no page has to remember them.
#[component]
pub fn WithSite<F, V>(view: F) -> impl IntoView
where
    F: Fn(Site) -> V + Clone + Send + Sync + 'static,
    V: IntoView + 'static,
{
    let site = use_site();
    view! {
        <Suspense>
            {move || {
                let view = view.clone();
                Suspend::new(async move {
                    match site.await {
                        Ok(Site::UnknownTenant { subdomain, origin }) => {
                            view! { <NoSuchWorkspace subdomain origin/> }.into_any()
                        }
                        Ok(Site::Paused { name, deleting_until, .. }) => {
                            view! { <Paused name deleting_until/> }.into_any()
                        }
                        Ok(site) => view(site).into_any(),
                        Err(_) => {
                            set_status(500);
                            view! {
                                <section class="card">
                                    <h1>"Something went wrong"</h1>
                                    <p>"Please try again in a moment."</p>
                                </section>
                            }
                                .into_any()
                        }
                    }
                })
            }}
        </Suspense>
    }
}
