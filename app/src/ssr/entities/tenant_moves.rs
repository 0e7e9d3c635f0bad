use sea_orm::entity::prelude::*;

/// Registry: a company's last move between database servers.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_moves")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub tenant_id: Uuid,
    pub subdomain: String,
    /// The server it was on, and the one it goes to (`db_servers` names).
    pub source: String,
    pub target: String,
    /// Last step completed.
    pub step: MoveStep,
    pub outcome: MoveOutcome,
    /// The company's connection URL on the target, sealed for the company
    /// (as `tenants.db_url`), from the moment its database exists there.
    pub target_url: Option<String>,
    /// Rows copied.
    pub rows: Option<i64>,
    /// How long the company could not write.
    pub pause_ms: Option<i64>,
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantMove")
            .field("subdomain", &self.subdomain)
            .field("source", &self.source)
            .field("target", &self.target)
            .field("step", &self.step)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The steps of a move, in order; each names what is done.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum MoveStep {
    /// Recorded; nothing made yet.
    #[sea_orm(string_value = "started")]
    Started,
    /// The database and its role exist on the target, at the latest schema.
    #[sea_orm(string_value = "created")]
    Created,
    /// The source takes no writes: new sessions are read-only, old ones ended.
    #[sea_orm(string_value = "paused")]
    Paused,
    /// Every table and sequence copied to the target.
    #[sea_orm(string_value = "copied")]
    Copied,
    /// Row counts and checksums agree, table by table.
    #[sea_orm(string_value = "verified")]
    Verified,
    /// The registry names the target: the company is served from there.
    #[sea_orm(string_value = "switched")]
    Switched,
    /// The source's database and role are dropped.
    #[sea_orm(string_value = "cleaned")]
    Cleaned,
}

/// Where a move ended (or that it has not yet).
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum MoveOutcome {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "moved")]
    Moved,
    /// Failed before the switch, and undone: the company stayed where it was.
    #[sea_orm(string_value = "undone")]
    Undone,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
