use sea_orm::entity::prelude::*;

/// Registry: one restore of a company to a moment (`tenant restore`).
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "tenant_restores")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub tenant_id: Uuid,
    pub subdomain: String,
    /// The company's server (`db_servers` name, or `default`).
    pub server: String,
    /// The moment asked for.
    pub target_time: DateTimeUtc,
    /// Beside: the new, paused company's subdomain and id; in place: none.
    pub as_subdomain: Option<String>,
    pub new_tenant_id: Option<Uuid>,
    /// Last step completed.
    pub step: RestoreStep,
    pub outcome: RestoreOutcome,
    /// The scratch directory of the temporary cluster (PostgreSQL).
    pub scratch: Option<String>,
    /// In place: the database (PostgreSQL) or file name (SQLite) the company
    /// had before, kept until `kept_until` for `--undo`.
    pub kept: Option<String>,
    pub kept_until: Option<DateTimeUtc>,
    /// SQLite: the snapshot's moment (the latest at or before the target).
    pub restored_from: Option<DateTimeUtc>,
    pub rows: Option<i64>,
    /// How long the company could not write (in place: the switch).
    pub pause_ms: Option<i64>,
    /// In place: when the company's database last changed for this restore
    /// (the switch, or an `--undo`): a backup taken before cannot restore
    /// a moment after.
    pub switched_at: Option<DateTimeUtc>,
    pub error: Option<String>,
    pub started_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantRestore")
            .field("subdomain", &self.subdomain)
            .field("target_time", &self.target_time)
            .field("as_subdomain", &self.as_subdomain)
            .field("step", &self.step)
            .field("outcome", &self.outcome)
            .finish_non_exhaustive()
    }
}

/// The steps of a restore, in order; each names what is done.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RestoreStep {
    /// Recorded; nothing made yet.
    #[sea_orm(string_value = "started")]
    Started,
    /// The company's database at the moment is up outside every serving
    /// server (PostgreSQL: a temporary cluster; SQLite: a snapshot's copy),
    /// at the latest schema.
    #[sea_orm(string_value = "recovered")]
    Recovered,
    /// The new database exists on the company's server, at the latest schema.
    #[sea_orm(string_value = "created")]
    Created,
    /// Row counts and checksums of the copy agree with the recovered one.
    #[sea_orm(string_value = "verified")]
    Verified,
    /// In place: the company is served from the restored database; beside:
    /// the new company exists, paused.
    #[sea_orm(string_value = "switched")]
    Switched,
    /// The temporary cluster is stopped and its directory removed.
    #[sea_orm(string_value = "cleaned")]
    Cleaned,
}

/// Where a restore ended (or that it has not yet).
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RestoreOutcome {
    #[sea_orm(string_value = "running")]
    Running,
    #[sea_orm(string_value = "restored")]
    Restored,
    /// Failed before the switch, and undone: the company is as it was.
    #[sea_orm(string_value = "undone")]
    Undone,
    /// `--undo`: the database from before the restore is back.
    #[sea_orm(string_value = "reverted")]
    Reverted,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
