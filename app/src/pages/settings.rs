//! `/settings` on a company's site (admins): the company's details, its name, its address and domains, and exports.
use leptos::prelude::*;
use leptos_meta::{Meta, Title};

use crate::components::kept::kept;
use leptos_router::hooks::use_query_map;

use crate::api::addresses::{
    load_addresses, AddDomain, ChangeSubdomain, RemoveDomain, SetPrimaryDomain, VerifyDomain,
};
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
    let change = ServerAction::<ChangeSubdomain>::new();
    let add = ServerAction::<AddDomain>::new();
    let verify = ServerAction::<VerifyDomain>::new();
    let remove = ServerAction::<RemoveDomain>::new();
    let primary = ServerAction::<SetPrimaryDomain>::new();
    let addresses = Resource::new(
        move || {
            (
                add.version().get(),
                verify.version().get(),
                remove.version().get(),
                primary.version().get(),
            )
        },
        |_| load_addresses(),
    );
    macro_rules! failed {
        ($a:expr) => {
            move || {
                $a.value()
                    .get()
                    .and_then(|r| r.err())
                    .map(|e| e.to_string())
            }
        };
    }
    let change_error = failed!(change);
    let domain_error = move || {
        failed!(add)()
            .or_else(failed!(verify))
            .or_else(failed!(remove))
            .or_else(failed!(primary))
    };
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
                let addrs = addresses.await.ok();
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
                        {addrs.map(|a| view! { <AddressCards a change add verify remove primary change_error domain_error/> })}
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

/// The company's subdomain (changed here) and its own domains.
#[component]
fn AddressCards<C, D>(
    a: crate::wire::Addresses,
    change: ServerAction<ChangeSubdomain>,
    add: ServerAction<AddDomain>,
    verify: ServerAction<VerifyDomain>,
    remove: ServerAction<RemoveDomain>,
    primary: ServerAction<SetPrimaryDomain>,
    change_error: C,
    domain_error: D,
) -> impl IntoView
where
    C: Fn() -> Option<String> + Send + Sync + Copy + 'static,
    D: Fn() -> Option<String> + Send + Sync + Copy + 'static,
{
    let query = use_query_map();
    let changed = query.read_untracked().get("address").is_some();
    let notice = query
        .read_untracked()
        .get("domain")
        .map(|what| match what.as_str() {
            "added" => "Domain added. Create the two DNS records below, then verify it.",
            "verified" => "Verified: the domain is served.",
            "removed" => "Domain removed: it is no longer served.",
            _ => "The primary address is saved.",
        });
    let verified: Vec<String> = a
        .domains
        .iter()
        .filter(|d| d.state != "pending")
        .map(|d| d.domain.clone())
        .collect();
    let current_primary = a
        .domains
        .iter()
        .find(|d| d.primary)
        .map(|d| d.domain.clone());
    let redirecting = a.domains.iter().any(|d| d.primary && d.redirect);
    view! {
        <section class="card" id="address">
            <h2>"Change the address"</h2>
            <p class="muted">
                "The company is at "<a href=a.primary_url.clone() data-testid="primary-url">{a.primary_url.clone()}</a>
                ". A new subdomain takes effect at once; every link to the old one keeps working for 90 days, and no one else can take it for 180. People signed in stay signed in."
            </p>
            <ActionForm action=change>
                <label for="new-subdomain">"Subdomain"</label>
                <input id="new-subdomain" name="subdomain" required minlength="3" maxlength="63" pattern="[a-zA-Z0-9-]+" value=kept("subdomain", a.subdomain.clone())/>
                <p class="form-error" role="alert" data-testid="subdomain-error">{change_error}</p>
                {changed.then(|| view! { <p class="notice" role="status" data-testid="address-changed">"The company has its new address."</p> })}
                <button type="submit">"Change the address"</button>
            </ActionForm>
        </section>
        <section class="card" id="domains">
            <h2>"Your own domain"</h2>
            <p class="muted">"Serve the company at a domain of your own, such as app.example.com. Add it, create the DNS records shown, and verify: it is served, with HTTPS, once its TXT record proves it is yours."</p>
            <p class="form-error" role="alert" data-testid="domain-error">{domain_error}</p>
            {notice.map(|n| view! { <p class="notice" role="status" data-testid="domain-notice">{n}</p> })}
            <ul class="domains" data-testid="domains">
                {a.domains.into_iter().map(|d| {
                    let name = d.domain.clone();
                    let name2 = d.domain.clone();
                    view! {
                        <li data-domain=d.domain.clone() data-state=d.state.clone()>
                            <strong>{d.domain.clone()}</strong>
                            {(d.state != "pending").then(|| view! {
                                " "<a href=format!("/auth/over?to={}", d.domain) data-testid="open-domain">"Open"</a>
                            })}
                            <span class="muted">{match d.state.as_str() {
                                "verified" => " — verified, served".to_owned(),
                                "missing" => " — served, but its TXT record is gone: publish it again".to_owned(),
                                _ => " — not served until verified".to_owned(),
                            }}{d.primary.then_some(" (primary)")}</span>
                            <table class="records">
                                <tr><th>"Name"</th><th>"Type"</th><th>"Value"</th></tr>
                                <tr><td><code>{d.domain.clone()}</code></td><td>{d.route.0.clone()}</td><td><code>{d.route.1.clone()}</code></td></tr>
                                <tr><td><code>{d.txt.0.clone()}</code></td><td>"TXT"</td><td><code data-testid="txt-value">{d.txt.1.clone()}</code></td></tr>
                            </table>
                            <ActionForm action=verify>
                                <input type="hidden" name="domain" value=name/>
                                <button type="submit">"Verify now"</button>
                            </ActionForm>
                            <ActionForm action=remove>
                                <input type="hidden" name="domain" value=name2/>
                                <button type="submit" class="secondary">"Remove"</button>
                            </ActionForm>
                        </li>
                    }
                }).collect_view()}
            </ul>
            <ActionForm action=add>
                <label for="new-domain">"Domain"</label>
                <input id="new-domain" name="domain" required maxlength="253" placeholder="app.example.com" value=kept("domain", String::new())/>
                <button type="submit">"Add the domain"</button>
            </ActionForm>
            {(!verified.is_empty()).then(|| view! {
                <ActionForm action=primary>
                    <label for="primary-domain">"Primary address (links in mail)"</label>
                    <select id="primary-domain" name="domain">
                        <option value="" selected=current_primary.is_none()>"the subdomain"</option>
                        {verified.into_iter().map(|d| {
                            let selected = current_primary.as_deref() == Some(d.as_str());
                            view! { <option value=d.clone() selected=selected>{d.clone()}</option> }
                        }).collect_view()}
                    </select>
                    <label class="check"><input type="checkbox" name="redirect" value="on" checked=redirecting/>" Send visitors of the subdomain to it"</label>
                    <button type="submit">"Save"</button>
                </ActionForm>
            })}
        </section>
    }
}
