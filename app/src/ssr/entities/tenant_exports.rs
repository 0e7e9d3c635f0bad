use sea_orm::entity::prelude::*;

/// Registry: one export a company admin asked for on the settings page.
/// Its file is `<data dir>/exports/<id>.zip`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_exports")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    /// The admin's email: who may be told it is ready.
    pub requested_by: String,
    pub status: ExportStatus,
    pub tables_done: i64,
    pub tables_total: i64,
    pub rows: i64,
    pub bytes: Option<i64>,
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// Ready: the file may be downloaded until then.
    pub expires_at: Option<DateTimeUtc>,
    /// Made for a deletion: the digest of its download link's token.
    pub link_digest: Option<String>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ExportStatus {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "ready")]
    Ready,
    #[sea_orm(string_value = "failed")]
    Failed,
    /// Past its time: the file is gone.
    #[sea_orm(string_value = "expired")]
    Expired,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
