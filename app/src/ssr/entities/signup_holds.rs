use sea_orm::entity::prelude::*;

/// Registry: signups waiting for their email to be confirmed. They hold
/// nothing: the subdomain is taken, and the password chosen, only once the
/// email is proven.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "signup_holds")]
pub struct Model {
    /// BLAKE2b-512 of the link's token, hex.
    #[sea_orm(primary_key, auto_increment = false)]
    pub token_hash: String,
    pub subdomain: String,
    pub name: String,
    pub email: String,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
    /// Set while the company is being created from it.
    pub used_at: Option<DateTimeUtc>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignupHold")
            .field("subdomain", &self.subdomain)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
