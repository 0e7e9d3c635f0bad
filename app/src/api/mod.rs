//! Server functions, grouped by who calls them, and which site each is served on.
//!
//! Each is a few lines: take the request's context, call one function of
//! `ssr`, map to wire types. Authorisation is checked here, on the server,
//! for every call. The server routes [`ROOT_FNS`] on the base domain only
//! and [`TENANT_FNS`] on active companies only; a function in neither list
//! is served nowhere, so a new one must be added to one of them.
pub mod account;
pub mod addresses;
pub mod company;
pub mod platform;
pub mod signup;

use leptos::server_fn::ServerFn;

/// Server functions of the base domain: signup and the platform admin.
pub const ROOT_FNS: &[&str] = &[
    <signup::CheckSubdomain as ServerFn>::PATH,
    <signup::Signup as ServerFn>::PATH,
    <signup::CheckSignup as ServerFn>::PATH,
    <signup::VerifySignup as ServerFn>::PATH,
    <signup::FindWorkspaces as ServerFn>::PATH,
    <platform::AdminLogin as ServerFn>::PATH,
    <platform::AdminLogout as ServerFn>::PATH,
    <platform::ListTenants as ServerFn>::PATH,
    <platform::SetTenantPaused as ServerFn>::PATH,
    <platform::DeleteTenant as ServerFn>::PATH,
    <platform::UndeleteTenant as ServerFn>::PATH,
];

/// Server functions of an active company's site.
pub const TENANT_FNS: &[&str] = &[
    <account::Login as ServerFn>::PATH,
    <account::Logout as ServerFn>::PATH,
    <account::Whoami as ServerFn>::PATH,
    <account::ChangePassword as ServerFn>::PATH,
    <account::ForgotPassword as ServerFn>::PATH,
    <account::CheckResetLink as ServerFn>::PATH,
    <account::ResetPassword as ServerFn>::PATH,
    <account::CheckInvitation as ServerFn>::PATH,
    <account::AcceptInvitation as ServerFn>::PATH,
    <company::LoadDashboard as ServerFn>::PATH,
    <company::ListUsers as ServerFn>::PATH,
    <company::AddUser as ServerFn>::PATH,
    <company::SetUserRole as ServerFn>::PATH,
    <company::SetUserDisabled as ServerFn>::PATH,
    <company::RemoveUser as ServerFn>::PATH,
    <company::InviteUser as ServerFn>::PATH,
    <company::ListInvitations as ServerFn>::PATH,
    <company::ResendInvitation as ServerFn>::PATH,
    <company::RevokeInvitation as ServerFn>::PATH,
    <company::LoadAudit as ServerFn>::PATH,
    <company::RenameCompany as ServerFn>::PATH,
    <company::StartExport as ServerFn>::PATH,
    <company::LoadExports as ServerFn>::PATH,
    <addresses::LoadAddresses as ServerFn>::PATH,
    <addresses::AddDomain as ServerFn>::PATH,
    <addresses::VerifyDomain as ServerFn>::PATH,
    <addresses::RemoveDomain as ServerFn>::PATH,
    <addresses::SetPrimaryDomain as ServerFn>::PATH,
    <addresses::ChangeSubdomain as ServerFn>::PATH,
];

/// Served on every site: which site this is (pages ask for it).
pub const EVERY_SITE_FNS: &[&str] = &[<crate::site::CurrentSite as ServerFn>::PATH];
