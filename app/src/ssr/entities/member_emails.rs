use sea_orm::entity::prelude::*;

/// Registry: which companies an email is an active user of, by a keyed
/// digest of the email (for "find your workspace"; never the address).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "member_emails")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub email_digest: String,
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
