//! SeaORM entities, in the shape `sea-orm-cli generate entity` gives.
//! Behaviour lives in the query modules beside them, not here.
//!
//! Registry: `tenants`, `provisioning`, `platform_users`, `sessions`,
//! `handoff_tokens`, `api_tokens`, `signup_holds`, `member_emails`, `member_index`, `db_servers`, `tenant_moves`,
//! `tenant_restores`, `tenant_exports`, `tenant_tombstones`, `tenant_domains`, `subdomain_aliases`, `migration_runs`, `migration_run_companies`. Tenant databases: `tenant_users`, `audit_log`,
//! `login_failures`, `password_resets`, `invitations`.
pub mod api_tokens;
pub mod audit_log;
pub mod db_servers;
pub mod handoff_tokens;
pub mod invitations;
pub mod login_failures;
pub mod member_emails;
pub mod member_index;
pub mod migration_run_companies;
pub mod migration_runs;
pub mod password_resets;
pub mod platform_users;
pub mod provisioning;
pub mod sessions;
pub mod signup_holds;
pub mod subdomain_aliases;
pub mod tenant_domains;
pub mod tenant_exports;
pub mod tenant_moves;
pub mod tenant_restores;
pub mod tenant_tombstones;
pub mod tenant_users;
pub mod tenants;
