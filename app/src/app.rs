//! The HTML shell and the app's routes: one `<Routes>` for every kind of site.
use leptos::prelude::*;
use leptos_meta::{provide_meta_context, HashedStylesheet, MetaTags, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    ParamSegment, StaticSegment,
};

use crate::pages::{
    home::{
        AdminRoute, AuditRoute, FindPage, ForgotPasswordPage, HomePage, InvitePage, LoginPage,
        ProfileRoute, RemoveUserRoute, ResetPasswordPage, SettingsRoute, SignupPage, UsersRoute,
        VerifyPage,
    },
    not_found::NotFound,
};
use crate::site::provide_site;

/// The HTML document around [`App`]; rendered on the server only.
///
/// Islands mode: the page is plain HTML, and only `#[island]` components
/// hydrate. The scripts that load them are not here: the server adds
/// [`island_scripts`] to a page that has an island, so a page without one
/// ships no JavaScript or WASM.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    // What `HydrationScripts islands=true` would do: outside an island,
    // render no hydration markers and serialize no resources.
    if let Some(context) = Owner::current_shared_context() {
        context.set_is_hydrating(false);
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <AutoReload options=options.clone()/>
                <HashedStylesheet options id="leptos"/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

/// The `<head>` tags that load and hydrate a page's islands (Leptos's island
/// script, the JS and WASM preloads), with the page's nonce. Added by the
/// server to pages that have an island.
#[cfg(feature = "ssr")]
pub fn island_scripts(options: LeptosOptions, nonce: leptos::nonce::Nonce) -> String {
    let owner = Owner::new();
    owner.with(|| {
        provide_context(nonce);
        view! { <HydrationScripts options islands=true/> }.to_html()
    })
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    provide_site();

    view! {
        <Title text="Enclave"/>
        <Router>
            <main>
                <Routes fallback=NotFound>
                    <Route path=StaticSegment("") view=HomePage/>
                    <Route path=StaticSegment("signup") view=SignupPage/>
                    <Route path=StaticSegment("find") view=FindPage/>
                    <Route path=(StaticSegment("verify"), ParamSegment("token")) view=VerifyPage/>
                    <Route path=StaticSegment("admin") view=AdminRoute/>
                    <Route path=StaticSegment("login") view=LoginPage/>
                    <Route path=(StaticSegment("invite"), ParamSegment("token")) view=InvitePage/>
                    <Route path=(StaticSegment("password"), StaticSegment("forgot")) view=ForgotPasswordPage/>
                    <Route path=(StaticSegment("password"), StaticSegment("reset"), ParamSegment("token")) view=ResetPasswordPage/>
                    <Route path=StaticSegment("users") view=UsersRoute/>
                    <Route path=(StaticSegment("users"), StaticSegment("remove"), ParamSegment("id")) view=RemoveUserRoute/>
                    <Route path=StaticSegment("profile") view=ProfileRoute/>
                    <Route path=StaticSegment("settings") view=SettingsRoute/>
                    <Route path=StaticSegment("audit") view=AuditRoute/>
                </Routes>
            </main>
        </Router>
    }
}
