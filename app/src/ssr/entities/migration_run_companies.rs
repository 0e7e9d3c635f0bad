use sea_orm::entity::prelude::*;

/// Registry: one company in one `migrate` run: its wave and what became of
/// it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_run_companies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub run_id: Uuid,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub subdomain: String,
    /// From 1.
    pub wave: i32,
    pub outcome: CompanyOutcome,
    /// The last migration its database has, after its step.
    pub reached: Option<String>,
    pub error: Option<String>,
    /// The database's error code (PostgreSQL's SQLSTATE, SQLite's extended
    /// result code), when the database gave one.
    pub sqlstate: Option<String>,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum CompanyOutcome {
    /// Not reached yet.
    #[sea_orm(string_value = "pending")]
    Pending,
    #[sea_orm(string_value = "migrated")]
    Migrated,
    /// Already at the target when its turn came.
    #[sea_orm(string_value = "current")]
    Current,
    #[sea_orm(string_value = "failed")]
    Failed,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
