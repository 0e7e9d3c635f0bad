use sea_orm::entity::prelude::*;

/// Registry: one row per company.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenants")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    #[sea_orm(unique)]
    pub subdomain: String,
    pub db_name: String,
    /// Encrypted connection URL (see `ssr::secrets`); never plaintext.
    pub db_url: Option<String>,
    pub db_server: Option<String>,
    pub status: TenantStatus,
    pub admin_user_id: Option<Uuid>,
    pub schema_version: Option<String>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// The last error `migrate` met on this tenant; cleared on success.
    pub last_migration_error: Option<String>,
    /// When its deletion was asked for (status `deleting`).
    pub deleted_at: Option<DateTimeUtc>,
    /// The end of its grace period: housekeeping purges it then.
    pub purge_after: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum TenantStatus {
    #[sea_orm(string_value = "provisioning")]
    Provisioning,
    #[sea_orm(string_value = "active")]
    Active,
    #[sea_orm(string_value = "paused")]
    Paused,
    #[sea_orm(string_value = "failed")]
    Failed,
    #[sea_orm(string_value = "deleting")]
    Deleting,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
