//! The services one process shares between its web handlers, server functions and CLI commands.
//!
//! Built once at startup (`server::startup`) and provided to every request
//! as context. Their company lifecycle (create, pause, resume, delete,
//! recover) is in `tenancy::lifecycle`, moving one in `tenancy::servers::moves`.
use std::time::Duration;

use sea_orm::DatabaseConnection;

use super::limits::ClientRateLimit;
use super::metrics::Metrics;
use super::tenancy::{
    connections::pools::TenantPools, lifecycle::provisioning::Provisioner,
    request::directory::Directory,
};

#[derive(Clone)]
pub struct Services {
    pub registry: DatabaseConnection,
    pub directory: Directory,
    pub pools: TenantPools,
    pub provisioner: Provisioner,
    /// A creation stalled this long is presumed dead and undone.
    pub provisioning_timeout: Duration,
    pub metrics: Metrics,
    /// Companies a client address may create through signup in an hour.
    pub signups: ClientRateLimit,
    /// "Find your workspace" requests a client address may make in an hour.
    pub finds: ClientRateLimit,
    /// … and that may be made for one email (a keyed digest), from anywhere.
    pub finds_per_email: super::limits::KeyRateLimit,
    /// Where people reach Enclave (`ENCLAVE_PUBLIC_URL`): every link in
    /// mail is made from it, never from a request's `Host` or scheme.
    pub public: crate::site::Origin,
    /// Requests one company's site may take in a second
    /// (`ENCLAVE_COMPANY_REQUESTS_PER_SECOND`); `None`: no limit.
    pub company_rate: Option<super::limits::KeyRateLimit<uuid::Uuid>>,
    /// Whether cookies are `Secure` (`ENCLAVE_SECURE_COOKIES`), for those
    /// set outside the session layer.
    pub secure_cookies: bool,
    /// Invitations (sent or sent again) one company may mail in a day.
    pub invitations_per_day: u32,
    /// Seals and opens stored secrets (a platform admin's TOTP secret).
    pub cipher: super::secrets::Cipher,
    /// Sends email off the request path (SMTP, or the outbox directory).
    pub mailer: super::mail::Mailer,
    /// Tests: deletions "die" after this step.
    pub delete_crash_after: Option<super::tenancy::lifecycle::DeleteStep>,
    /// Tests: moves "die" after this step.
    pub move_crash_after: Option<super::entities::tenant_moves::MoveStep>,
    /// Backups, snapshots and restores (see `tenancy::backups`).
    pub backups: std::sync::Arc<super::tenancy::backups::BackupSettings>,
    /// Where admins' exports wait to be downloaded (`<data dir>/exports`).
    pub exports_dir: std::path::PathBuf,
    /// Deletion's grace period, reserved subdomains, receipts.
    pub offboarding: std::sync::Arc<super::tenancy::lifecycle::offboarding::OffboardingSettings>,
    /// Tests: restores "die" after this step.
    pub restore_crash_after: Option<super::entities::tenant_restores::RestoreStep>,
    /// Verified custom domains and old subdomains, in memory.
    pub addresses: super::tenancy::domains::Addresses,
    /// How custom domains are checked and renames kept.
    pub domains: std::sync::Arc<super::tenancy::domains::DomainSettings>,
}
