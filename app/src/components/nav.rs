//! The navigation bar at the top of a company's pages for a signed-in user.
use leptos::prelude::*;
use leptos_router::components::A;

use crate::api::account::Logout;
use crate::domain::Role;
use crate::wire::Me;

/// The bar at the top of a company's pages, for a signed-in user.
#[component]
pub fn TenantNav(company: String, me: Me) -> impl IntoView {
    let logout = ServerAction::<Logout>::new();
    let admin = me.role == Role::Admin;
    view! {
        <header class="nav">
            <a class="brand" href="/">{company}</a>
            <nav aria-label="Company">
                <A href="/">"Dashboard"</A>
                <Show when=move || admin>
                    <A href="/users">"Users"</A>
                    <A href="/audit">"Activity"</A>
                    <A href="/settings">"Settings"</A>
                </Show>
                <A href="/profile">"Profile"</A>
            </nav>
            <ActionForm action=logout attr:class="signout">
                <span class="who">{me.email}</span>
                <button type="submit" class="link">"Sign out"</button>
            </ActionForm>
        </header>
    }
}
