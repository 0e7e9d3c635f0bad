//! Schema of Enclave's two kinds of database.
//!
//! * [`RegistryMigrator`]: the one central database (tenants, platform users,
//!   provisioning records). `serve` and `migrate` run it first.
//! * [`TenantMigrator`]: every company's own database; all tenants share it.
//!
//! One migration per file: the file name is the version recorded in
//! `seaql_migrations` and in `tenants.schema_version`.
pub use sea_orm_migration::prelude::*;

mod registry;
pub(crate) mod tenant;

pub use registry::RegistryMigrator;
pub use tenant::TenantMigrator;
