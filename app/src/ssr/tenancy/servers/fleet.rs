//! The database servers companies are placed on: the first one (`ENCLAVE_TENANT_DB_URL`, or the SQLite directory), named `default`, and the PostgreSQL servers added with `server dbserver add`.
//!
//! A company's row names its server (`tenants.db_server`; the registry
//! migration that made servers named every earlier company's `default`),
//! and any name that is not an added server's means the first. An added server's administrator
//! URL is stored sealed for its row's id, like company credentials, and its
//! administrator pool is opened on first use.
use std::{collections::HashMap, sync::Arc};

use chrono::Utc;
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use secrecy::SecretString;
use uuid::Uuid;

use crate::ssr::entities::{
    db_servers::{self, ServerState},
    tenant_moves::{self, MoveOutcome},
    tenants,
};
use crate::ssr::secrets::Cipher;
use crate::ssr::tenancy::servers::databases::{TenantServer, TenantServerError};

/// The first server's name.
pub const FIRST: &str = "default";

/// Connections an added server's administrator pool may hold (see
/// [`TenantServer::postgres`]).
const ADMIN_CONNECTIONS: u32 = 4;

#[derive(Clone)]
pub struct Fleet {
    registry: DatabaseConnection,
    cipher: Cipher,
    first: TenantServer,
    /// Whether added servers copy new databases from a template, as the
    /// first does (`ENCLAVE_TENANT_TEMPLATE`).
    use_template: bool,
    opened: Arc<tokio::sync::Mutex<HashMap<String, TenantServer>>>,
    /// The last health check and when it finished: `/healthz` is public, so
    /// the servers are asked at most once per [`HEALTH_TIMEOUT`], however
    /// often it is called (callers meanwhile wait for, and share, one check).
    health: Arc<tokio::sync::Mutex<Option<LastCheck>>>,
}

/// When the servers were last asked, and what they answered.
type LastCheck = (std::time::Instant, Vec<ServerHealth>);

/// A server as `dbserver list` shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerInfo {
    pub name: String,
    /// Host and port (no credentials), or `sqlite`.
    pub address: String,
    pub companies: u64,
    /// Companies it should hold; `None`: no limit.
    pub capacity: Option<u32>,
    pub state: &'static str,
    /// Connections open to company databases on it, from every instance
    /// (read from the server by [`Fleet::count_connections`]; `None`
    /// until then, or if it did not answer).
    pub open_connections: Option<u64>,
}

/// A server as `/healthz` and `/metrics` report it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerHealth {
    pub name: String,
    pub companies: u64,
    /// Answered its administrator within [`HEALTH_TIMEOUT`].
    pub up: bool,
}

/// How long a health check waits for a server.
pub const HEALTH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
pub enum FleetError {
    #[error("a server name is 1 to 63 lower-case letters, digits and hyphens")]
    BadName,
    #[error("there is already a server named '{0}'")]
    Exists(String),
    #[error("there is no server named '{0}'")]
    NoSuchServer(String),
    #[error(
        "servers can be added only when companies live on PostgreSQL (set ENCLAVE_TENANT_DB_URL)"
    )]
    NotPostgres,
    #[error("the first server is the one ENCLAVE_TENANT_DB_URL names; it cannot be removed")]
    FirstServer,
    #[error("'{name}' still holds {companies} {} (or moves under way); move or delete them first", if *.companies == 1 { "company" } else { "companies" })]
    NotEmpty { name: String, companies: u64 },
    #[error("'{0}' is draining: it takes no companies")]
    Draining(String),
    #[error("no server can take a new company: every one is draining or full")]
    Full,
    #[error("the stored administrator URL of server '{0}' cannot be opened (is ENCLAVE_SECRET_KEY the one it was added with?)")]
    Sealed(String),
    #[error(transparent)]
    Server(#[from] TenantServerError),
    #[error("the registry")]
    Db(#[from] DbErr),
}

#[derive(FromQueryResult)]
struct Count {
    db_server: Option<String>,
    n: i64,
}

impl Fleet {
    pub fn new(
        registry: DatabaseConnection,
        cipher: Cipher,
        first: TenantServer,
        use_template: bool,
    ) -> Self {
        Self {
            registry,
            cipher,
            first,
            use_template,
            opened: Arc::default(),
            health: Arc::default(),
        }
    }

    /// The first server: `ENCLAVE_TENANT_DB_URL`, or the SQLite directory.
    pub fn first(&self) -> &TenantServer {
        &self.first
    }

    /// The server a company's `db_server` names (see the module's doc).
    pub async fn server(&self, name: Option<&str>) -> Result<TenantServer, FleetError> {
        let Some(name) = name.filter(|n| *n != FIRST) else {
            return Ok(self.first.clone());
        };
        let mut opened = self.opened.lock().await;
        if let Some(server) = opened.get(name) {
            return Ok(server.clone());
        }
        let Some(row) = self.find(name).await? else {
            return Ok(self.first.clone());
        };
        let server = self.open(&row).await?;
        opened.insert(name.to_owned(), server.clone());
        Ok(server)
    }

    /// The server named `name`, whatever its state; unlike [`Fleet::server`],
    /// a name that is not a server's is an error (a move's record names both
    /// its servers, and nothing may be dropped on a server it does not name).
    pub async fn named(&self, name: &str) -> Result<TenantServer, FleetError> {
        if name == FIRST {
            return Ok(self.first.clone());
        }
        if self.find(name).await?.is_none() {
            return Err(FleetError::NoSuchServer(name.to_owned()));
        }
        self.server(Some(name)).await
    }

    /// The server named `name`, which must exist and take companies: where
    /// a company may be moved to.
    pub async fn target(&self, name: &str) -> Result<TenantServer, FleetError> {
        let row = self.find(name).await?;
        if name == FIRST {
            if row.is_some_and(|r| r.state != ServerState::Active) {
                return Err(FleetError::Draining(name.to_owned()));
            }
            return Ok(self.first.clone());
        }
        let row = row.ok_or_else(|| FleetError::NoSuchServer(name.to_owned()))?;
        if row.state != ServerState::Active {
            return Err(FleetError::Draining(name.to_owned()));
        }
        self.server(Some(name)).await
    }

    async fn open(&self, row: &db_servers::Model) -> Result<TenantServer, FleetError> {
        let url = self
            .cipher
            .decrypt(row.id, &row.admin_url)
            .map_err(|_| FleetError::Sealed(row.name.clone()))?;
        Ok(TenantServer::postgres(&url, self.use_template)
            .await?
            .with_limits(self.first.limits()))
    }

    /// Where a new company goes, among the active servers with room (a
    /// capacity is a hard limit): when every one has a capacity, the one with
    /// the most free; otherwise (the first server has none) the one with the
    /// fewest companies. Returns its name and the server.
    pub async fn place(&self) -> Result<(String, TenantServer), FleetError> {
        if !self.first.is_postgres() {
            return Ok((FIRST.to_owned(), self.first.clone()));
        }
        let best = pick(self.list().await?).ok_or(FleetError::Full)?;
        let server = self.server(Some(&best)).await?;
        Ok((best, server))
    }

    /// Whether each server answers its administrator, all asked at once,
    /// each given [`HEALTH_TIMEOUT`] (opening its pool included); an answer
    /// younger than that is given again.
    pub async fn health(&self) -> Result<Vec<ServerHealth>, FleetError> {
        let mut last = self.health.lock().await;
        if let Some((at, health)) = last.as_ref() {
            if at.elapsed() < HEALTH_TIMEOUT {
                return Ok(health.clone());
            }
        }
        let health = self.check().await?;
        *last = Some((std::time::Instant::now(), health.clone()));
        Ok(health)
    }

    async fn check(&self) -> Result<Vec<ServerHealth>, FleetError> {
        let servers = self.list().await?;
        let mut checks = tokio::task::JoinSet::new();
        for (at, s) in servers.iter().enumerate() {
            let (fleet, name) = (self.clone(), s.name.clone());
            checks.spawn(async move {
                let up = tokio::time::timeout(HEALTH_TIMEOUT, async {
                    match fleet.server(Some(&name)).await {
                        Ok(server) => server.ping().await,
                        Err(_) => false,
                    }
                })
                .await
                .unwrap_or(false);
                (at, up)
            });
        }
        let mut up = vec![false; servers.len()];
        while let Some(done) = checks.join_next().await {
            if let Ok((at, answered)) = done {
                up[at] = answered;
            }
        }
        Ok(servers
            .into_iter()
            .zip(up)
            .map(|(s, up)| ServerHealth {
                name: s.name,
                companies: s.companies,
                up,
            })
            .collect())
    }

    /// Each added server's open budget, derived as the first server's is
    /// (`server::startup`): what it accepts from roles that are not
    /// superusers, less `reserve`, shared among `instances`, less its
    /// administrator pool. A server that does not answer within
    /// [`HEALTH_TIMEOUT`] is left out (asked again next time).
    pub async fn budgets(&self, reserve: u32, instances: u32) -> Vec<(String, u32)> {
        let Ok(rows) = db_servers::Entity::find().all(&self.registry).await else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for row in rows.into_iter().filter(|r| r.name != FIRST) {
            let capacity = tokio::time::timeout(HEALTH_TIMEOUT, async {
                let server = self.server(Some(&row.name)).await.ok()?;
                server.connection_capacity().await.ok().flatten()
            })
            .await
            .ok()
            .flatten();
            if let Some(capacity) = capacity {
                let share = capacity.saturating_sub(reserve) / instances.max(1);
                out.push((row.name, share.saturating_sub(ADMIN_CONNECTIONS).max(1)));
            }
        }
        out
    }

    /// Every server, the first one first, with its companies counted.
    pub async fn list(&self) -> Result<Vec<ServerInfo>, FleetError> {
        let (marks, rows): (Vec<_>, Vec<_>) = db_servers::Entity::find()
            .order_by_asc(db_servers::Column::Name)
            .all(&self.registry)
            .await?
            .into_iter()
            .partition(|r| r.name == FIRST);
        // The first server's row, if any, only says it is draining.
        let first_state = marks.first().map_or(ServerState::Active, |r| r.state);
        let counts = tenants::Entity::find()
            .select_only()
            .column(tenants::Column::DbServer)
            .column_as(tenants::Column::Id.count(), "n")
            .group_by(tenants::Column::DbServer)
            .into_model::<Count>()
            .all(&self.registry)
            .await?;
        let mut first = 0;
        let mut by_name: HashMap<String, u64> = HashMap::new();
        for c in counts {
            let n = c.n.max(0) as u64;
            match c.db_server {
                Some(name) if rows.iter().any(|r| r.name == name) => {
                    by_name.insert(name, n);
                }
                _ => first += n,
            }
        }
        let mut out = vec![ServerInfo {
            name: FIRST.to_owned(),
            address: self.first.address(),
            companies: first,
            capacity: None,
            state: first_state.as_str(),
            open_connections: None,
        }];
        for row in rows {
            let address = match self.cipher.decrypt(row.id, &row.admin_url) {
                Ok(url) => address_of(&url),
                Err(_) => "(sealed with another key)".to_owned(),
            };
            out.push(ServerInfo {
                companies: by_name.get(&row.name).copied().unwrap_or(0),
                address,
                capacity: row.capacity.map(|c| c.max(0) as u32),
                state: row.state.as_str(),
                open_connections: None,
                name: row.name,
            });
        }
        Ok(out)
    }

    /// Fills in each server's open connections to company databases, as
    /// the server counts them (every instance's), each asked at once and
    /// given [`HEALTH_TIMEOUT`].
    pub async fn count_connections(&self, servers: &mut [ServerInfo]) {
        let mut asks = tokio::task::JoinSet::new();
        for (at, s) in servers.iter().enumerate() {
            let (fleet, name) = (self.clone(), s.name.clone());
            asks.spawn(async move {
                let n = tokio::time::timeout(HEALTH_TIMEOUT, async {
                    fleet
                        .server(Some(&name))
                        .await
                        .ok()?
                        .company_connections()
                        .await
                        .ok()
                })
                .await
                .ok()
                .flatten();
                (at, n)
            });
        }
        while let Some(Ok((at, n))) = asks.join_next().await {
            servers[at].open_connections = n;
        }
    }

    /// Adds a PostgreSQL server after connecting to it as its administrator.
    /// Returns its isolation warnings (see
    /// [`TenantServer::isolation_warnings`]).
    pub async fn add(
        &self,
        name: &str,
        admin_url: &SecretString,
        capacity: Option<u32>,
    ) -> Result<Vec<String>, FleetError> {
        if !self.first.is_postgres() {
            return Err(FleetError::NotPostgres);
        }
        let valid = !name.is_empty()
            && name.len() <= 63
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !valid {
            return Err(FleetError::BadName);
        }
        if name == FIRST || self.find(name).await?.is_some() {
            return Err(FleetError::Exists(name.to_owned()));
        }
        let server = TenantServer::postgres(admin_url, self.use_template)
            .await?
            .with_limits(self.first.limits());
        // Reached and answering as an administrator, or refused here.
        server
            .connection_capacity()
            .await
            .map_err(TenantServerError::from)?;
        let id = Uuid::new_v4();
        db_servers::ActiveModel {
            id: Set(id),
            name: Set(name.to_owned()),
            admin_url: Set(self.cipher.encrypt(id, admin_url)),
            capacity: Set(capacity.map(|c| c.min(i32::MAX as u32) as i32)),
            state: Set(ServerState::Active),
            created_at: Set(Utc::now()),
        }
        .insert(&self.registry)
        .await?;
        let warnings = server.isolation_warnings().await;
        self.opened.lock().await.insert(name.to_owned(), server);
        Ok(warnings)
    }

    /// Takes no new companies on `name` from now on; keeps its companies.
    /// The first server's state is kept in a row of its name that holds
    /// no URL of its own (`ENCLAVE_TENANT_DB_URL` stays its URL).
    pub async fn drain(&self, name: &str) -> Result<(), FleetError> {
        self.set_state(name, ServerState::Draining).await
    }

    /// Places new companies on `name` again, after a drain.
    pub async fn activate(&self, name: &str) -> Result<(), FleetError> {
        self.set_state(name, ServerState::Active).await
    }

    async fn set_state(&self, name: &str, state: ServerState) -> Result<(), FleetError> {
        if name == FIRST {
            if !self.first.is_postgres() {
                return Err(FleetError::NotPostgres);
            }
            match self.find(FIRST).await? {
                Some(row) => {
                    let mut row: db_servers::ActiveModel = row.into();
                    row.state = Set(state);
                    row.update(&self.registry).await?;
                }
                None => {
                    let id = Uuid::new_v4();
                    db_servers::ActiveModel {
                        id: Set(id),
                        name: Set(FIRST.to_owned()),
                        admin_url: Set(self.cipher.encrypt(id, &SecretString::from(""))),
                        capacity: Set(None),
                        state: Set(state),
                        created_at: Set(Utc::now()),
                    }
                    .insert(&self.registry)
                    .await?;
                }
            }
            return Ok(());
        }
        let row = self.added(name).await?;
        let mut row: db_servers::ActiveModel = row.into();
        row.state = Set(state);
        row.update(&self.registry).await?;
        Ok(())
    }

    /// Forgets `name`, which must hold no company.
    pub async fn remove(&self, name: &str) -> Result<(), FleetError> {
        let row = self.added(name).await?;
        let companies = tenants::Entity::find()
            .filter(tenants::Column::DbServer.eq(name))
            .count(&self.registry)
            .await?;
        let moving = tenant_moves::Entity::find()
            .filter(tenant_moves::Column::Outcome.eq(MoveOutcome::Running))
            .filter(
                sea_orm::Condition::any()
                    .add(tenant_moves::Column::Source.eq(name))
                    .add(tenant_moves::Column::Target.eq(name)),
            )
            .count(&self.registry)
            .await?;
        if companies + moving > 0 {
            return Err(FleetError::NotEmpty {
                name: name.to_owned(),
                companies: companies + moving,
            });
        }
        db_servers::Entity::delete_by_id(row.id)
            .exec(&self.registry)
            .await?;
        if let Some(server) = self.opened.lock().await.remove(name) {
            server.close().await;
        }
        Ok(())
    }

    async fn find(&self, name: &str) -> Result<Option<db_servers::Model>, DbErr> {
        db_servers::Entity::find()
            .filter(db_servers::Column::Name.eq(name))
            .one(&self.registry)
            .await
    }

    /// An added server by name: the first one cannot be changed here.
    async fn added(&self, name: &str) -> Result<db_servers::Model, FleetError> {
        if name == FIRST {
            return Err(FleetError::FirstServer);
        }
        self.find(name)
            .await?
            .ok_or_else(|| FleetError::NoSuchServer(name.to_owned()))
    }
}

/// Seals every added server's administrator URL under the current key
/// (`secret rotate`), each row changed only if no one changed it meanwhile.
pub async fn reseal(
    registry: &DatabaseConnection,
    cipher: &Cipher,
) -> Result<crate::ssr::tenancy::request::directory::Resealed, DbErr> {
    let sealed = db_servers::Entity::find()
        .all(registry)
        .await?
        .into_iter()
        .map(|row| (row.id, row.admin_url));
    crate::ssr::tenancy::request::directory::reseal_each(
        sealed,
        cipher,
        |id, stored, resealed| async move {
            let changed = db_servers::Entity::update_many()
                .col_expr(db_servers::Column::AdminUrl, Expr::value(resealed))
                .filter(db_servers::Column::Id.eq(id))
                .filter(db_servers::Column::AdminUrl.eq(stored))
                .exec(registry)
                .await?;
            Ok(changed.rows_affected)
        },
    )
    .await
}

/// The placement rule of [`Fleet::place`]; ties go to the first listed.
fn pick(servers: Vec<ServerInfo>) -> Option<String> {
    let open: Vec<ServerInfo> = servers
        .into_iter()
        .filter(|s| s.state == ServerState::Active.as_str())
        .filter(|s| s.capacity.is_none_or(|c| u64::from(c) > s.companies))
        .collect();
    let best = if open.iter().all(|s| s.capacity.is_some()) {
        open.iter().rev().max_by_key(|s| {
            s.capacity
                .map_or(0, |c| u64::from(c).saturating_sub(s.companies))
        })
    } else {
        open.iter().min_by_key(|s| s.companies)
    };
    best.map(|s| s.name.clone())
}

/// `host:port` of a PostgreSQL URL, without its credentials.
fn address_of(url: &SecretString) -> String {
    use secrecy::ExposeSecret;
    match url::Url::parse(url.expose_secret()) {
        Ok(u) => crate::ssr::tenancy::servers::databases::host_port(&u),
        Err(_) => "(not a URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::{pick, ServerInfo};

    fn server(
        name: &str,
        companies: u64,
        capacity: Option<u32>,
        state: &'static str,
    ) -> ServerInfo {
        ServerInfo {
            name: name.into(),
            address: String::new(),
            companies,
            capacity,
            state,
            open_connections: None,
        }
    }

    #[test]
    fn placement_prefers_room_and_skips_full_and_draining_servers() {
        // No capacities: the fewest companies; a tie goes to the first listed.
        let none = |a, b| {
            vec![
                server("default", a, None, "active"),
                server("b", b, None, "active"),
            ]
        };
        assert_eq!(pick(none(3, 1)).as_deref(), Some("b"));
        assert_eq!(pick(none(1, 3)).as_deref(), Some("default"));
        assert_eq!(pick(none(2, 2)).as_deref(), Some("default"));
        // All with capacities: the most free, not the fewest companies.
        let all = vec![
            server("default", 50, Some(100), "active"),
            server("b", 10, Some(20), "active"),
        ];
        assert_eq!(pick(all).as_deref(), Some("default"));
        // A capacity is a hard limit even beside a server without one.
        let full = vec![
            server("default", 9, None, "active"),
            server("b", 2, Some(2), "active"),
        ];
        assert_eq!(pick(full).as_deref(), Some("default"));
        // Draining servers take nothing; nothing open, no place.
        let draining = vec![
            server("default", 9, None, "active"),
            server("b", 0, None, "draining"),
        ];
        assert_eq!(pick(draining).as_deref(), Some("default"));
        assert_eq!(pick(vec![server("b", 1, Some(1), "active")]), None);
    }
}
