//! Route components that pick a page by the request's site (base domain or company).
use leptos::prelude::*;

use super::{
    admin::AdminPage,
    audit::AuditPage,
    dashboard::DashboardPage,
    find::FindForm,
    invite::InviteForm,
    landing::Landing,
    login::LoginForm,
    not_found::NotFoundCard,
    password::{ForgotPasswordForm, ResetPasswordForm},
    profile::ProfilePage,
    remove_user::RemoveUserPage,
    settings::SettingsPage,
    signup::SignupForm,
    users::UsersPage,
    verify::VerifyForm,
};
use crate::api::{
    account::{check_invitation, check_reset_link},
    company::load_dashboard,
    signup::check_signup,
};
use crate::site::{use_site, Site, WithSite};
use crate::wire::AppError;
use leptos_router::hooks::use_params_map;

/// The `{token}` of the route, for a resource made at route level: made
/// inside a `WithSite`, it would be made (and fetched) once for each of the
/// up to three walks of Leptos's `Suspense` on the server.
fn route_token() -> impl Fn() -> String + Copy + Send + Sync + 'static {
    let params = use_params_map();
    move || params.read().get("token").unwrap_or_default()
}

/// `/`: the landing page on the base domain, the dashboard on a subdomain.
#[component]
pub fn HomePage() -> impl IntoView {
    // Made here, not by the dashboard inside `WithSite` (see `route_token`);
    // on the base domain it asks nothing of the server.
    let site = use_site();
    let dashboard = Resource::new(
        || (),
        move |_| async move {
            match site.await {
                Ok(Site::Tenant { .. }) => load_dashboard().await,
                _ => Err(AppError::NotFound),
            }
        },
    );
    view! {
        <WithSite view=move |site| match site {
            Site::Root { origin } => view! { <Landing origin/> }.into_any(),
            _ => view! { <DashboardPage data=dashboard/> }.into_any(),
        }/>
    }
}

/// `/signup`, base domain only.
#[component]
pub fn SignupPage() -> impl IntoView {
    view! {
        <WithSite view=|site| match site {
            Site::Root { origin } => view! { <SignupForm origin/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// `/find`, base domain only.
#[component]
pub fn FindPage() -> impl IntoView {
    view! {
        <WithSite view=|site| match site {
            Site::Root { .. } => view! { <FindForm/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// `/verify/{token}`, base domain only.
#[component]
pub fn VerifyPage() -> impl IntoView {
    let pending = Resource::new(route_token(), check_signup);
    view! {
        <WithSite view=move |site| match site {
            Site::Root { origin } => view! { <VerifyForm origin pending/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// `/admin`, base domain only.
#[component]
pub fn AdminRoute() -> impl IntoView {
    view! {
        // Not inside a `WithSite`: the page makes its resources once (see
        // `tenant_only!`) and answers 404 itself off the base domain.
        <AdminPage/>
    }
}

/// `/login`, company subdomains only.
#[component]
pub fn LoginPage() -> impl IntoView {
    view! {
        <WithSite view=|site| match site {
            Site::Tenant { name, .. } => view! { <LoginForm company=name/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// `/password/forgot`, company subdomains only.
#[component]
pub fn ForgotPasswordPage() -> impl IntoView {
    view! {
        <WithSite view=|site| match site {
            Site::Tenant { name, .. } => view! { <ForgotPasswordForm company=name/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// `/password/reset/{token}`, company subdomains only.
#[component]
pub fn ResetPasswordPage() -> impl IntoView {
    let live = Resource::new(route_token(), check_reset_link);
    view! {
        <WithSite view=move |site| match site {
            Site::Tenant { name, .. } => view! { <ResetPasswordForm company=name live/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// `/invite/{token}`, company subdomains only.
#[component]
pub fn InvitePage() -> impl IntoView {
    let invitee = Resource::new(route_token(), check_invitation);
    view! {
        <WithSite view=move |site| match site {
            Site::Tenant { name, .. } => view! { <InviteForm company=name invitee/> }.into_any(),
            _ => view! { <NotFoundCard/> }.into_any(),
        }/>
    }
}

/// A company page: rendered directly, not inside a `WithSite`, so that the
/// page's resources are created once per request. Leptos's `Suspense`
/// walks its children up to three times on the server (to find resource
/// reads nested behind others), and a page made inside it made its
/// resources, and fetched them, each time. The page answers 404 itself
/// on any other site (its own `WithSite`).
macro_rules! tenant_only {
    ($(#[$doc:meta])* $name:ident => $page:ident) => {
        $(#[$doc])*
        #[component]
        pub fn $name() -> impl IntoView {
            view! { <$page/> }
        }
    };
}

tenant_only!(/// `/users`
    UsersRoute => UsersPage);
tenant_only!(/// `/profile`
    ProfileRoute => ProfilePage);
tenant_only!(/// `/settings`
    SettingsRoute => SettingsPage);
tenant_only!(/// `/audit`
    AuditRoute => AuditPage);
tenant_only!(/// `/users/remove/{id}`
    RemoveUserRoute => RemoveUserPage);
