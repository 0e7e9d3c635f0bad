use sea_orm::entity::prelude::*;

/// Registry: a renamed company's old subdomain.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "subdomain_aliases")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub subdomain: String,
    pub tenant_id: Uuid,
    pub renamed_at: DateTimeUtc,
    /// Requests to it are redirected to the company's subdomain until then.
    pub redirect_until: DateTimeUtc,
    /// No other company may take it until then.
    pub reserved_until: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
