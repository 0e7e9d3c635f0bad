use sea_orm_migration::prelude::*;

mod m20261126_000001_create_users;
mod m20261126_000002_create_audit_log;
pub(crate) mod m20261126_000003_create_login_failures;
pub(crate) mod m20261127_000004_login_failures_by_client;
mod m20261127_000005_create_password_resets;
mod m20261127_000006_create_invitations;
mod m20261206_000007_create_sessions;
mod m20261206_000008_audit_log_by_action;

/// Migrates one company's database. Every tenant database runs the same list.
pub struct TenantMigrator;

impl MigratorTrait for TenantMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_users::Migration),
            Box::new(m20261126_000002_create_audit_log::Migration),
            Box::new(m20261126_000003_create_login_failures::Migration),
            Box::new(m20261127_000004_login_failures_by_client::Migration),
            Box::new(m20261127_000005_create_password_resets::Migration),
            Box::new(m20261127_000006_create_invitations::Migration),
            Box::new(m20261206_000007_create_sessions::Migration),
            Box::new(m20261206_000008_audit_log_by_action::Migration),
        ]
    }
}
