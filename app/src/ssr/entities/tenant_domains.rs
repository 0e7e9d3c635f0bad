use sea_orm::entity::prelude::*;

/// Registry: a company's custom domain and the state of its proof.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_domains")]
pub struct Model {
    /// Normalised: lower case, ASCII (IDNA), no trailing dot.
    #[sea_orm(primary_key, auto_increment = false)]
    pub domain: String,
    pub tenant_id: Uuid,
    /// What `_enclave-challenge.<domain>` must hold (public, not a secret).
    pub token: String,
    pub created_at: DateTimeUtc,
    /// Served while set: the record was found, and has not been missing for
    /// longer than the grace period since.
    pub verified_at: Option<DateTimeUtc>,
    /// The last time the record was found.
    pub seen_at: Option<DateTimeUtc>,
    /// A verified domain's record not found since then.
    pub missing_since: Option<DateTimeUtc>,
    pub next_check_at: DateTimeUtc,
    /// Checks in a row that did not find the record (the backoff).
    pub failures: i32,
    /// Mail links use it; at most one per company.
    pub is_primary: bool,
    /// The company's subdomain answers 308 to it (primary only).
    pub redirect: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
