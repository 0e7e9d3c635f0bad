//! `/admin` on the base domain: the platform admin's sign-in and list of companies (searched, filtered, sorted and paged by the query string).
use leptos::prelude::*;
use leptos_meta::Title;

use crate::components::kept::kept;
use leptos_router::hooks::use_query_map;

use crate::api::platform::{
    list_tenants, AdminLogin, AdminLogout, DeleteTenant, SetTenantPaused, UndeleteTenant,
};
use crate::components::guard::guard;
use crate::pages::not_found::NotFoundCard;
use crate::site::{Site, WithSite};
use crate::wire::AppError;

/// Percent-encodes a query-string value.
fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// `/admin` on the base domain: the platform admin's view of every company.
#[component]
pub fn AdminPage() -> impl IntoView {
    let login = ServerAction::<AdminLogin>::new();
    let logout = ServerAction::<AdminLogout>::new();
    let pause = ServerAction::<SetTenantPaused>::new();
    let delete = ServerAction::<DeleteTenant>::new();
    let undelete = ServerAction::<UndeleteTenant>::new();
    // The list is what the query string asks: search, status, sort, page.
    let query = use_query_map();
    let param = move |k: &str| query.read().get(k).unwrap_or_default();
    let tenants = Resource::new(
        move || {
            (
                login.version().get(),
                pause.version().get(),
                delete.version().get() + undelete.version().get(),
                (
                    param("q"),
                    param("status"),
                    param("schema"),
                    param("sort"),
                    param("page"),
                ),
            )
        },
        |(_, _, _, (q, status, schema, sort, page))| {
            list_tenants(q, status, schema, sort, page.parse().unwrap_or(1))
        },
    );
    let login_error = move || {
        login
            .value()
            .get()
            .and_then(|r| r.err())
            .map(|e| e.to_string())
    };
    let action_error = move || {
        [
            pause.value().get(),
            delete.value().get(),
            undelete.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(|r| r.err())
        .map(|e| e.to_string())
    };

    view! {
        <WithSite view=move |site| {
            if !matches!(site, Site::Root { .. }) {
                return view! { <NotFoundCard/> }.into_any();
            }
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
                                <input id="admin-email" name="email" type="email" required autocomplete="username" value=kept("email", "")/>
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
                    other => guard(other, "/admin", move |listing| {
                        let (q, status, schema, sort) =
                            (param("q"), param("status"), param("schema"), param("sort"));
                        // A link to another page of the same list.
                        let page_href = {
                            let (q, status, schema, sort) =
                                (q.clone(), status.clone(), schema.clone(), sort.clone());
                            move |page: u64| {
                                let mut url = String::from("/admin?");
                                for (k, v) in
                                    [("q", &q), ("status", &status), ("schema", &schema), ("sort", &sort)]
                                {
                                    if !v.is_empty() {
                                        url.push_str(&format!("{k}={}&", encode(v)));
                                    }
                                }
                                url.push_str(&format!("page={page}"));
                                url
                            }
                        };
                        let (page, pages, total) = (listing.page, listing.pages, listing.total);
                        let option = |value: &'static str, label: &'static str, current: &str| {
                            let selected = value == current;
                            view! { <option value=value selected=selected>{label}</option> }
                        };
                        view! {
                        <section class="card wide">
                            <div class="row">
                                <h1>"Companies"</h1>
                                <ActionForm action=logout><button type="submit" class="link">"Sign out"</button></ActionForm>
                            </div>
                            <form method="get" action="/admin" class="filters" role="search">
                                <label for="tenant-q">"Search"</label>
                                <input id="tenant-q" name="q" type="search" value=q.clone() placeholder="Name or subdomain" maxlength="100"/>
                                <label for="tenant-status">"Status"</label>
                                <select id="tenant-status" name="status">
                                    {option("", "Any", &status)}
                                    {option("active", "Active", &status)}
                                    {option("paused", "Paused", &status)}
                                    {option("provisioning", "Provisioning", &status)}
                                    {option("failed", "Failed", &status)}
                                    {option("deleting", "Deleting", &status)}
                                </select>
                                <label for="tenant-schema">"Schema"</label>
                                <select id="tenant-schema" name="schema">
                                    {option("", "Any", &schema)}
                                    {option("behind", "Behind", &schema)}
                                    {option("failed", "Migration failed", &schema)}
                                </select>
                                <label for="tenant-sort">"Sort"</label>
                                <select id="tenant-sort" name="sort">
                                    {option("name", "Name", &sort)}
                                    {option("subdomain", "Subdomain", &sort)}
                                    {option("newest", "Newest first", &sort)}
                                    {option("oldest", "Oldest first", &sort)}
                                    {option("status", "Status", &sort)}
                                </select>
                                <button type="submit" class="small">"Show"</button>
                            </form>
                            <p class="form-error" role="alert" data-testid="admin-error">{action_error}</p>
                            <p class="muted" data-testid="tenant-count">
                                {format!("{total} compan{} · page {page} of {pages}", if total == 1 { "y" } else { "ies" })}
                            </p>
                            <table class="tenants">
                                <thead><tr><th>"Name"</th><th>"Subdomain"</th><th>"Status"</th><th>"Server"</th><th>"Schema"</th><th>"Created"</th><th>"Actions"</th></tr></thead>
                                <tbody>
                                    {listing.rows.into_iter().map(|t| {
                                        let paused = t.status == "paused";
                                        let scheduled = t.purge_after.is_some();
                                        let sub_undelete = t.subdomain.clone();
                                        let (sub_pause, sub_delete) = (t.subdomain.clone(), t.subdomain.clone());
                                        let confirm_id = format!("confirm-{}", t.subdomain);
                                        let confirm_hint = format!("type {}", t.subdomain);
                                        view! {
                                            <tr data-subdomain=t.subdomain.clone()>
                                                <td class="name">{t.name.clone()}</td>
                                                <td><code>{t.subdomain.clone()}</code>
                                                    {t.restore.clone().map(|(label, detail)| view! { " " <span class="badge" title=detail data-testid="restore">{label}</span> })}
                                                    {t.purge_after.clone().map(|p| view! { " " <span class="badge danger" data-testid="purge-after" title="Purged then; Undelete brings it back until then">{format!("deleted; purged {p}")}</span> })}
                                                </td>
                                                <td data-testid="status">{t.status.clone()}</td>
                                                <td data-testid="server">{t.server.clone()}</td>
                                                <td>
                                                    <abbr title=t.schema_version.clone() data-testid="schema">{t.schema.clone()}</abbr>
                                                    {t.migration_error.clone().map(|e| view! { " " <span class="badge danger" title=e data-testid="migration-failed">"migration failed"</span> })}
                                                </td>
                                                <td class="nowrap">{t.created.clone()}</td>
                                                <td class="actions">
                                                    {scheduled.then(|| view! {
                                                        <ActionForm action=undelete>
                                                            <input type="hidden" name="subdomain" value=sub_undelete/>
                                                            <button type="submit" class="small">"Undelete"</button>
                                                        </ActionForm>
                                                    })}
                                                    {(!scheduled).then(|| view! {
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
                                                    })}
                                                </td>
                                            </tr>
                                        }
                                    }).collect_view()}
                                </tbody>
                            </table>
                            <nav class="pager" aria-label="Pages">
                                {(page > 1).then(|| view! { <a href=page_href(page - 1) rel="prev">"← Previous"</a> })}
                                {(page < pages).then(|| view! { <a href=page_href(page + 1) rel="next">"Next →"</a> })}
                            </nav>
                        </section>
                        }
                    }),
                }
            })}
        </Suspense>
            }
            .into_any()
        }/>
    }
}
