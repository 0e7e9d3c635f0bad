use sea_orm::entity::prelude::*;

/// Registry: what is left of a purged company.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_tombstones")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    /// SHA-256 of its subdomain (hex): the name stays reserved, unnamed.
    pub subdomain_digest: String,
    pub created_at: DateTimeUtc,
    pub deleted_at: DateTimeUtc,
    pub purged_at: DateTimeUtc,
    pub reserved_until: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
