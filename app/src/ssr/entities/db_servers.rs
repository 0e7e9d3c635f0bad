use sea_orm::entity::prelude::*;

/// Registry: the PostgreSQL servers company databases are placed on.
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "db_servers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub name: String,
    /// The administrator's URL, sealed for `id` (see `ssr::secrets`).
    pub admin_url: String,
    /// How many companies it should hold; `None`: no limit.
    pub capacity: Option<i32>,
    pub state: ServerState,
    pub created_at: DateTimeUtc,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DbServer")
            .field("name", &self.name)
            .field("capacity", &self.capacity)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ServerState {
    /// New companies may be placed on it.
    #[sea_orm(string_value = "active")]
    Active,
    /// Keeps its companies, takes no new ones.
    #[sea_orm(string_value = "draining")]
    Draining,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Draining => "draining",
        }
    }
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
