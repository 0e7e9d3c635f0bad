use sea_orm::entity::prelude::*;

/// Registry: one `migrate` run, its waves and how far it got.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "migration_runs")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub state: RunState,
    /// The tenant migration the run brings companies to.
    pub target: String,
    /// The canary as given (`3`, or `acme,globex`); `None`: no waves.
    pub canary: Option<String>,
    pub growth: f64,
    pub parallel: i32,
    pub abort_rate: f64,
    /// Waves planned.
    pub waves: i32,
    /// The last wave started, from 1.
    pub wave: i32,
    /// Why it stopped, for people.
    pub stop_reason: Option<String>,
    pub started_at: DateTimeUtc,
    /// Raised while the run is alive (its heartbeat).
    pub updated_at: DateTimeUtc,
    pub finished_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum RunState {
    /// Under way (at most one at a time).
    #[sea_orm(string_value = "running")]
    Running,
    /// Stopped after a wave whose failures passed the abort rate, or found
    /// dead: `--resume` continues it.
    #[sea_orm(string_value = "stopped")]
    Stopped,
    /// Every wave ran.
    #[sea_orm(string_value = "finished")]
    Finished,
    /// A newer run was started instead of resuming this one.
    #[sea_orm(string_value = "superseded")]
    Superseded,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
