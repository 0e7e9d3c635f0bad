use sea_orm::entity::prelude::*;

/// Registry: one row per attempt to create a tenant.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "provisioning")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub subdomain: String,
    /// Last step completed.
    pub step: Step,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub duration_ms: Option<i64>,
}

/// The steps of creating a company, in order; each names what is done.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum Step {
    #[sea_orm(string_value = "reserved")]
    Reserved,
    #[sea_orm(string_value = "database")]
    Database,
    #[sea_orm(string_value = "migrated")]
    Migrated,
    #[sea_orm(string_value = "admin")]
    Admin,
}

/// Where an attempt to create a company ended (or that it has not yet).
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Outcome {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "succeeded")]
    Succeeded,
    /// Failed, and everything done was undone.
    #[sea_orm(string_value = "undone")]
    Undone,
    /// Created, and later deleted.
    #[sea_orm(string_value = "deleted")]
    Deleted,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
