use sea_orm_migration::prelude::*;

mod m20261126_000001_create_tenants;
mod m20261126_000002_create_provisioning;
mod m20261126_000003_create_platform_users;
mod m20261126_000004_create_sessions;
mod m20261126_000005_add_tenant_migration_error;
mod m20261126_000006_create_api_tokens;
mod m20261127_000007_hash_session_ids;
mod m20261127_000008_create_login_failures;
mod m20261127_000009_api_token_expiry;
mod m20261127_000010_platform_totp;
mod m20261127_000011_signup_holds_and_member_index;
mod m20261127_000012_create_db_servers;
mod m20261127_000013_create_tenant_moves;
mod m20261127_000014_directory_version;
mod m20261206_000015_sealing;
mod m20261206_000016_signups_hold_nothing;
mod m20261206_000017_company_sessions_leave;
mod m20261206_000018_migration_runs;
mod m20261206_000019_tenant_restores;
mod m20261206_000020_tenant_exports;
mod m20261206_000021_offboarding;
mod m20261207_000022_custom_domains;

/// Migrates the central registry database.
pub struct RegistryMigrator;

impl MigratorTrait for RegistryMigrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261126_000001_create_tenants::Migration),
            Box::new(m20261126_000002_create_provisioning::Migration),
            Box::new(m20261126_000003_create_platform_users::Migration),
            Box::new(m20261126_000004_create_sessions::Migration),
            Box::new(m20261126_000005_add_tenant_migration_error::Migration),
            Box::new(m20261126_000006_create_api_tokens::Migration),
            Box::new(m20261127_000007_hash_session_ids::Migration),
            Box::new(m20261127_000008_create_login_failures::Migration),
            Box::new(m20261127_000009_api_token_expiry::Migration),
            Box::new(m20261127_000010_platform_totp::Migration),
            Box::new(m20261127_000011_signup_holds_and_member_index::Migration),
            Box::new(m20261127_000012_create_db_servers::Migration),
            Box::new(m20261127_000013_create_tenant_moves::Migration),
            Box::new(m20261127_000014_directory_version::Migration),
            Box::new(m20261206_000015_sealing::Migration),
            Box::new(m20261206_000016_signups_hold_nothing::Migration),
            Box::new(m20261206_000017_company_sessions_leave::Migration),
            Box::new(m20261206_000018_migration_runs::Migration),
            Box::new(m20261206_000019_tenant_restores::Migration),
            Box::new(m20261206_000020_tenant_exports::Migration),
            Box::new(m20261206_000021_offboarding::Migration),
            Box::new(m20261207_000022_custom_domains::Migration),
        ]
    }
}
