//! Where company databases live (SQLite files or a PostgreSQL server): create, drop, connect.
//!
//! Names come from the tenant's UUID only (`tenant_<32 hex>`), so they are
//! safe to place in DDL, which cannot take bind parameters. Every database
//! connection Enclave opens, registry included, starts from
//! [`connect_options`].
use std::{collections::HashMap, path::PathBuf, sync::Arc, time::Duration};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use crate::ssr::secrets::random_hex;
use crate::ssr::tenancy::servers::template::{self, Template};

/// The options every connection pool starts from: at most
/// `max_connections`, none kept open when idle, `timeout` to connect and to
/// wait for a connection, no statement logging (it would print URLs), and
/// a ping only for a connection idle a while (one on every checkout would
/// double the round trips of a one-query request).
pub fn connect_options(
    url: &SecretString,
    max_connections: u32,
    timeout: Duration,
) -> ConnectOptions {
    let mut opts = ConnectOptions::new(url.expose_secret().to_owned());
    opts.max_connections(max_connections)
        .min_connections(0)
        .connect_timeout(timeout)
        .acquire_timeout(timeout)
        .test_before_acquire_if_idle_for(Duration::from_secs(5))
        .sqlx_logging(false);
    opts
}

/// `host:port` of a PostgreSQL URL (5432 when it names none): where a
/// server is, without its credentials, for operators.
pub fn host_port(url: &url::Url) -> String {
    format!(
        "{}:{}",
        url.host_str().unwrap_or("localhost"),
        url.port().unwrap_or(5432)
    )
}

/// Makes `dir` (and its parents) readable by this user only, if missing.
pub fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

/// Creates an empty file readable and writable by this user only (0600):
/// a SQLite database before SQLite opens it, which gives its journal files
/// the same mode. With `exclusive`, a file already there is an error;
/// without, it is left as it is.
pub fn create_private_file(path: &std::path::Path, exclusive: bool) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Err(e) if !exclusive && e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        other => other.map(|_| ()),
    }
}

/// `name` as a PostgreSQL identifier (for names read from the server or
/// the configuration, never from visitors).
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Whether any role at all (`PUBLIC`) may connect to database `name`.
pub async fn public_can_connect(admin: &impl ConnectionTrait, name: &str) -> Result<bool, DbErr> {
    let row = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT has_database_privilege('public', $1, 'CONNECT') AS open",
            [name.into()],
        ))
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<bool>("", "open").ok())
        .unwrap_or(true))
}

/// Takes every right on database `name` from `PUBLIC`, then reads the
/// rights back: a `REVOKE` by someone who is not the owner only warns.
pub async fn close_to_public(admin: &impl ConnectionTrait, name: &str) -> Result<(), DbErr> {
    admin
        .execute_unprepared(&format!(
            "REVOKE ALL ON DATABASE {} FROM PUBLIC",
            quote_ident(name)
        ))
        .await?;
    if public_can_connect(admin, name).await? {
        return Err(DbErr::Custom(format!(
            "REVOKE did not close the database {name} to PUBLIC (is the administrator its owner?)"
        )));
    }
    Ok(())
}

/// PostgreSQL registry: closes it to `PUBLIC` when Enclave's role owns it;
/// otherwise, if any role may connect, says what its owner must run.
/// Returns the warnings (none on SQLite).
pub async fn close_registry(registry: &DatabaseConnection) -> Vec<String> {
    if registry.get_database_backend() != DbBackend::Postgres {
        return Vec::new();
    }
    let row = registry
        .query_one_raw(sea_orm::Statement::from_string(
            DbBackend::Postgres,
            "SELECT current_database() AS name, \
             pg_get_userbyid(datdba) = current_user AS mine \
             FROM pg_database WHERE datname = current_database()",
        ))
        .await;
    let (name, mine) = match row {
        Ok(Some(r)) => (
            r.try_get::<String>("", "name").unwrap_or_default(),
            r.try_get::<bool>("", "mine").unwrap_or(false),
        ),
        Ok(None) => return vec!["cannot find the registry database".into()],
        Err(e) => return vec![format!("cannot read the registry's rights: {e}")],
    };
    let closed = if mine {
        close_to_public(registry, &name).await.map(|()| true)
    } else {
        public_can_connect(registry, &name).await.map(|open| !open)
    };
    match closed {
        Ok(true) => Vec::new(),
        Ok(false) | Err(_) => vec![format!(
            "company roles can connect to the registry database {name}: as its owner, run \
             REVOKE CONNECT ON DATABASE {} FROM PUBLIC;",
            quote_ident(&name)
        )],
    }
}

/// A single short-lived connection, for work outside requests
/// (provisioning, the template, migrate).
pub async fn connect_once(url: &SecretString) -> Result<DatabaseConnection, DbErr> {
    Database::connect(once_options(url)).await
}

/// The options of [`connect_once`], for a caller that adds its own.
pub fn once_options(url: &SecretString) -> ConnectOptions {
    let mut opts = connect_options(url, 1, Duration::from_secs(5));
    opts.acquire_timeout(Duration::from_secs(10));
    opts
}

/// How long each step of creating a company took, in order.
#[derive(Debug, Default)]
pub struct StepTimes(pub Vec<(&'static str, Duration)>);

impl StepTimes {
    /// Records `step` as having run from `since` until now.
    pub fn done(&mut self, step: &'static str, since: std::time::Instant) {
        self.0.push((step, since.elapsed()));
    }
}

/// A tenant database that exists and how to reach it.
pub struct CreatedDatabase {
    pub db_name: String,
    /// Contains the role's password on PostgreSQL: store only encrypted.
    pub url: SecretString,
    /// Host and port (no credentials), for operators.
    pub server: String,
    /// Copied from the tenant template: already at the latest migration.
    pub from_template: bool,
    /// PostgreSQL template copy: the administrator's connection to the new
    /// database, left open by the ownership step so that the first user is
    /// written without opening another (as the company's role: `SET LOCAL
    /// ROLE`).
    pub session: Option<DatabaseConnection>,
    pub steps: StepTimes,
}

/// What one company's database may take of its server, set on its role
/// (PostgreSQL) so that they hold whoever connects as the company: a
/// statement's time, a transaction's idle time, and its connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RoleLimits {
    pub statement_timeout_ms: u64,
    pub idle_in_transaction_ms: u64,
    pub connection_limit: u32,
}

impl Default for RoleLimits {
    fn default() -> Self {
        Self {
            statement_timeout_ms: 10_000,
            idle_in_transaction_ms: 30_000,
            connection_limit: 20,
        }
    }
}

/// Whether `e` is PostgreSQL's `undefined_object` (42704): a role that
/// does not exist.
fn is_undefined_object(e: &DbErr) -> bool {
    crate::ssr::tenancy::connections::conn::sqlstate(e).as_deref() == Some("42704")
}

impl RoleLimits {
    /// The statements that set them on `role` (a name made from a UUID,
    /// never from input; the values are numbers).
    fn sql(&self, role: &str) -> String {
        format!(
            "ALTER ROLE \"{role}\" CONNECTION LIMIT {}; \
             ALTER ROLE \"{role}\" SET statement_timeout = {}; \
             ALTER ROLE \"{role}\" SET idle_in_transaction_session_timeout = {}",
            self.connection_limit, self.statement_timeout_ms, self.idle_in_transaction_ms
        )
    }

    /// The company roles (`tenant_…`) that have these limits already, as
    /// [`RoleLimits::sql`] sets them (`name`).
    fn already_set_sql(&self) -> String {
        format!(
            "SELECT rolname::text AS name FROM pg_roles \
             WHERE rolname LIKE 'tenant\\_%' AND rolconnlimit = {} \
             AND rolconfig @> ARRAY['statement_timeout={}', \
                                    'idle_in_transaction_session_timeout={}']::text[]",
            self.connection_limit, self.statement_timeout_ms, self.idle_in_transaction_ms
        )
    }
}

#[derive(Clone)]
pub enum TenantServer {
    /// One file per tenant: `<dir>/<tenant id>.db`.
    Sqlite { dir: PathBuf },
    /// One database and one login role per tenant on this server; the
    /// connection is an administrator's (CREATEDB and CREATEROLE).
    Postgres {
        admin: DatabaseConnection,
        admin_url: url::Url,
        template: Arc<Template>,
        limits: RoleLimits,
    },
}

impl std::fmt::Debug for TenantServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Sqlite { dir } => f.debug_struct("Sqlite").field("dir", dir).finish(),
            Self::Postgres { admin_url, .. } => f
                .debug_struct("Postgres")
                .field("host", &admin_url.host_str())
                .field("port", &admin_url.port())
                .finish_non_exhaustive(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantServerError {
    #[error("the tenant database server URL is not a valid postgres:// or sqlite:// URL")]
    BadUrl,
    #[error("the database server refused")]
    Db(#[from] DbErr),
    #[error("file system")]
    Io(#[from] std::io::Error),
}

impl TenantServer {
    /// `postgres://admin@host:5432/postgres` or a directory for SQLite files.
    /// With `use_template`, new databases are copied from the tenant
    /// template (see [`template`]).
    pub async fn postgres(
        admin_url: &SecretString,
        use_template: bool,
    ) -> Result<Self, TenantServerError> {
        let parsed =
            url::Url::parse(admin_url.expose_secret()).map_err(|_| TenantServerError::BadUrl)?;
        if !matches!(parsed.scheme(), "postgres" | "postgresql") {
            return Err(TenantServerError::BadUrl);
        }
        let mut opts = connect_options(admin_url, 4, Duration::from_secs(2));
        opts.acquire_timeout(Duration::from_secs(10))
            .idle_timeout(Duration::from_secs(60));
        let admin = Database::connect(opts).await?;
        Ok(Self::Postgres {
            admin,
            admin_url: parsed,
            template: Arc::new(Template::new(use_template)),
            limits: RoleLimits::default(),
        })
    }

    /// The same server, its companies' roles given `limits` from now on.
    pub fn with_limits(mut self, new: RoleLimits) -> Self {
        if let Self::Postgres { limits, .. } = &mut self {
            *limits = new;
        }
        self
    }

    /// The limits its companies' roles get (the defaults on SQLite, whose
    /// limits are the connection's: see `pools`).
    pub fn limits(&self) -> RoleLimits {
        match self {
            Self::Postgres { limits, .. } => *limits,
            Self::Sqlite { .. } => RoleLimits::default(),
        }
    }

    /// PostgreSQL: sets the limits on the roles of `companies` (those of
    /// this server, as the registry has them; `migrate` calls it, so that
    /// roles made before a change get it too). Roles of anyone else on the
    /// server are not touched: another installation's, or a test's, whose
    /// roles may be dropped at this moment. A role that is gone (its
    /// company deleted meanwhile) is passed over. Returns how many roles it
    /// set; 0 on SQLite. Roles that have the limits already are not
    /// altered.
    pub async fn apply_limits(
        &self,
        companies: impl IntoIterator<Item = Uuid>,
    ) -> Result<u64, DbErr> {
        let Self::Postgres { admin, limits, .. } = self else {
            return Ok(0);
        };
        // Roles that have them already are left alone: one query for a
        // fleet whose limits did not change, not three statements a role.
        let done: std::collections::HashSet<String> = admin
            .query_all_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                limits.already_set_sql(),
            ))
            .await?
            .iter()
            .map(|row| row.try_get::<String>("", "name"))
            .collect::<Result<_, _>>()?;
        let mut set = 0;
        for id in companies {
            if done.contains(&Self::db_name(id)) {
                continue;
            }
            match admin
                .execute_unprepared(&limits.sql(&Self::db_name(id)))
                .await
            {
                Ok(_) => set += 1,
                Err(e) if is_undefined_object(&e) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(set)
    }

    /// How much room each of `companies` takes on this server, in bytes:
    /// its SQLite file (and write-ahead log), or its PostgreSQL database. A
    /// company whose size cannot be read (no file; a database the
    /// administrator may not look into) is left out.
    pub async fn sizes(&self, companies: &[Uuid]) -> Result<HashMap<Uuid, u64>, DbErr> {
        match self {
            Self::Sqlite { dir } => Ok(companies
                .iter()
                .filter_map(|&id| {
                    let path = Self::sqlite_path(dir, id);
                    let main = std::fs::metadata(&path).ok()?.len();
                    let wal =
                        std::fs::metadata(path.with_extension("db-wal")).map_or(0, |m| m.len());
                    Some((id, main + wal))
                })
                .collect()),
            Self::Postgres { admin, .. } => {
                let by_name: HashMap<String, Uuid> = companies
                    .iter()
                    .map(|&id| (Self::db_name(id), id))
                    .collect();
                let rows = admin
                    .query_all_raw(sea_orm::Statement::from_string(
                        DbBackend::Postgres,
                        "SELECT datname::text AS name, pg_database_size(oid)::bigint AS bytes \
                         FROM pg_database WHERE datname LIKE 'tenant\\_%' \
                         AND (has_database_privilege(oid, 'CONNECT') \
                              OR pg_has_role('pg_read_all_stats', 'MEMBER'))",
                    ))
                    .await?;
                let mut sizes = HashMap::new();
                for row in rows {
                    let name: String = row.try_get("", "name")?;
                    if let Some(&id) = by_name.get(&name) {
                        sizes.insert(id, row.try_get::<i64>("", "bytes")?.max(0) as u64);
                    }
                }
                Ok(sizes)
            }
        }
    }

    /// PostgreSQL: the connections the server accepts from roles that are
    /// not superusers (`max_connections` minus `superuser_reserved_connections`
    /// and, from 16, `reserved_connections`); `None` for SQLite.
    pub async fn connection_capacity(&self) -> Result<Option<u32>, DbErr> {
        let Self::Postgres { admin, .. } = self else {
            return Ok(None);
        };
        let row = admin
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT (current_setting('max_connections')::int \
                   - current_setting('superuser_reserved_connections')::int \
                   - coalesce(current_setting('reserved_connections', true)::int, 0)) AS n",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no answer to SHOW max_connections".into()))?;
        let n: i32 = row.try_get("", "n")?;
        Ok(Some(n.max(0) as u32))
    }

    /// Sessions open to company databases on this server (PostgreSQL).
    pub async fn company_connections(&self) -> Result<u64, DbErr> {
        let Self::Postgres { admin, .. } = self else {
            return Ok(0);
        };
        let row = admin
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_stat_activity WHERE datname LIKE 'tenant\\_%'",
            ))
            .await?
            .ok_or_else(|| DbErr::Custom("no answer from pg_stat_activity".into()))?;
        Ok(row.try_get::<i64>("", "n")?.max(0) as u64)
    }

    pub fn sqlite(dir: PathBuf) -> Self {
        Self::Sqlite { dir }
    }

    /// Whether new databases are copied from the template (PostgreSQL).
    pub fn uses_template(&self) -> bool {
        matches!(self, Self::Postgres { template, .. } if template.enabled())
    }

    /// Host and port (no credentials), or `sqlite`: for operators.
    pub fn address(&self) -> String {
        match self {
            Self::Sqlite { .. } => "sqlite".into(),
            Self::Postgres { admin_url, .. } => host_port(admin_url),
        }
    }

    /// Whether the server answers its administrator (PostgreSQL), or the
    /// directory is there (SQLite).
    pub async fn ping(&self) -> bool {
        match self {
            Self::Sqlite { dir } => dir.is_dir(),
            Self::Postgres { admin, .. } => admin.ping().await.is_ok(),
        }
    }

    /// Closes the administrator's pool (PostgreSQL).
    pub async fn close(self) {
        if let Self::Postgres { admin, .. } = self {
            let _ = admin.close().await;
        }
    }

    /// PostgreSQL: the administrator's pool and URL.
    pub(in crate::ssr::tenancy) fn postgres_admin(
        &self,
    ) -> Option<(&DatabaseConnection, &url::Url)> {
        match self {
            Self::Postgres {
                admin, admin_url, ..
            } => Some((admin, admin_url)),
            Self::Sqlite { .. } => None,
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    pub fn db_name(id: Uuid) -> String {
        format!("tenant_{}", id.simple())
    }

    pub(in crate::ssr::tenancy) fn sqlite_path(dir: &std::path::Path, id: Uuid) -> PathBuf {
        dir.join(format!("{id}.db"))
    }

    /// Creates the database (and, on PostgreSQL, a role that alone may
    /// connect to it and owns it). Fails if it already exists.
    pub async fn create(&self, id: Uuid) -> Result<CreatedDatabase, TenantServerError> {
        let name = Self::db_name(id);
        match self {
            Self::Sqlite { dir } => {
                create_private_dir(dir)?;
                let path = Self::sqlite_path(dir, id);
                // An existing file is an error, never reused.
                create_private_file(&path, true)?;
                Ok(CreatedDatabase {
                    db_name: name,
                    url: SecretString::from(format!("sqlite://{}?mode=rw", path.display())),
                    server: "sqlite".into(),
                    from_template: false,
                    session: None,
                    steps: StepTimes::default(),
                })
            }
            Self::Postgres {
                admin,
                admin_url,
                template,
                limits,
            } => {
                let mut steps = StepTimes::default();
                let started = std::time::Instant::now();
                let password = random_hex(24);
                // PostgreSQL is sent the SCRAM verifier, never the password,
                // so its logs cannot hold it. `name` is `tenant_<hex>` and
                // the verifier is base64 with `$` and `:`: nothing to escape.
                // Its 4,096 rounds of PBKDF2 run off the async workers.
                let secret = password.clone();
                let verifier = tokio::task::spawn_blocking(move || {
                    postgres_protocol::password::scram_sha_256(secret.as_bytes())
                })
                .await
                .map_err(|e| DbErr::Custom(format!("computing the role's verifier: {e}")))?;
                // One round trip, one transaction: an administrator that is
                // not a superuser may make a database owned by a role only as
                // a member of it.
                // Its limits in the same round trip.
                admin
                    .execute_unprepared(&format!(
                        "CREATE ROLE \"{name}\" LOGIN PASSWORD '{verifier}'; \
                         GRANT \"{name}\" TO CURRENT_USER; {}",
                        limits.sql(&name)
                    ))
                    .await?;
                steps.done("role", started);
                let created = template
                    .create_database(admin, admin_url, &name, &mut steps)
                    .await;
                let (from_template, session) = match created {
                    Ok(created) => created,
                    Err(e) => {
                        let _ = admin
                            .execute_unprepared(&format!("DROP ROLE IF EXISTS \"{name}\""))
                            .await;
                        return Err(e.into());
                    }
                };
                let started = std::time::Instant::now();
                close_to_public(admin, &name).await?;
                steps.done("ownership", started);
                let mut url = admin_url.clone();
                let _ = url.set_username(&name);
                let _ = url.set_password(Some(&password));
                // The query (sslmode and the like) carries over as configured.
                url.set_path(&name);
                Ok(CreatedDatabase {
                    db_name: name,
                    url: SecretString::from(url.to_string()),
                    server: self.address(),
                    from_template,
                    session,
                    steps,
                })
            }
        }
    }

    /// PostgreSQL: warns (with the statement to run) about each database
    /// on this server that any role may connect to, company roles
    /// included: the administrator's own (`postgres`) and the template. Returns
    /// the warnings, for tests and `serve`'s log.
    pub async fn isolation_warnings(&self) -> Vec<String> {
        let Self::Postgres {
            admin, admin_url, ..
        } = self
        else {
            return Vec::new();
        };
        let own = admin_url.path().trim_start_matches('/');
        let own = if own.is_empty() { "postgres" } else { own };
        let mut names = vec![own.to_owned()];
        if own != "postgres" {
            names.push("postgres".to_owned());
        }
        let mut warnings = Vec::new();
        for name in names {
            match public_can_connect(admin, &name).await {
                Ok(true) => warnings.push(format!(
                    "company roles can connect to the database {name}: as its owner, run \
                     REVOKE CONNECT ON DATABASE {} FROM PUBLIC; (and GRANT CONNECT to the roles that need it)",
                    quote_ident(&name)
                )),
                Ok(false) => {}
                Err(e) => warnings.push(format!("cannot read the rights on {name}: {e}")),
            }
        }
        warnings
    }

    /// Databases this process created by copying the tenant template.
    pub fn template_copies(&self) -> u64 {
        match self {
            Self::Postgres { template, .. } => template.copies(),
            Self::Sqlite { .. } => 0,
        }
    }

    /// PostgreSQL: builds the tenant template now if it is missing, so the
    /// first company after a deploy does not wait for it. `true` if ready.
    pub async fn prepare_template(&self) -> bool {
        match self {
            Self::Postgres {
                admin,
                admin_url,
                template,
                ..
            } => template.ready(admin, admin_url).await.is_some(),
            Self::Sqlite { .. } => false,
        }
    }

    /// Drops the database and role, ending open connections to it. Dropping
    /// what does not exist is not an error, so undo can always be retried.
    pub async fn drop(&self, id: Uuid) -> Result<(), TenantServerError> {
        let name = Self::db_name(id);
        match self {
            Self::Sqlite { dir } => {
                let path = Self::sqlite_path(dir, id);
                for suffix in ["", "-wal", "-shm", "-journal"] {
                    let mut p = path.clone().into_os_string();
                    p.push(suffix);
                    match std::fs::remove_file(&p) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                        _ => {}
                    }
                }
                Ok(())
            }
            Self::Postgres { admin, .. } => {
                admin
                    .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"))
                    .await?;
                admin
                    .execute_unprepared(&format!("DROP ROLE IF EXISTS \"{name}\""))
                    .await?;
                Ok(())
            }
        }
    }

    /// Whether the tenant's database exists (tests and recovery use it).
    pub async fn exists(&self, id: Uuid) -> Result<bool, TenantServerError> {
        match self {
            Self::Sqlite { dir } => Ok(Self::sqlite_path(dir, id).exists()),
            Self::Postgres { admin, .. } => {
                Ok(template::database_exists(admin, &Self::db_name(id)).await?)
            }
        }
    }
}
