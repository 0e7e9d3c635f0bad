//! Where company databases live (SQLite files or a PostgreSQL server): create, drop, connect.
//!
//! Names come from the tenant's UUID only (`tenant_<32 hex>`), so they are
//! safe to place in DDL, which cannot take bind parameters. Every database
//! connection Enclave opens, registry included, starts from
//! [`connect_options`].
use std::{path::PathBuf, sync::Arc, time::Duration};

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbErr};
use secrecy::{ExposeSecret, SecretString};
use uuid::Uuid;

use super::template::{self, Template};
use crate::ssr::secrets::random_hex;

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

/// A single short-lived connection, for work outside requests
/// (provisioning, the template, migrate).
pub async fn connect_once(url: &SecretString) -> Result<DatabaseConnection, DbErr> {
    let mut opts = connect_options(url, 1, Duration::from_secs(5));
    opts.acquire_timeout(Duration::from_secs(10));
    Database::connect(opts).await
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
        })
    }

    pub fn sqlite(dir: PathBuf) -> Self {
        Self::Sqlite { dir }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Self::Postgres { .. })
    }

    pub fn db_name(id: Uuid) -> String {
        format!("tenant_{}", id.simple())
    }

    fn sqlite_path(dir: &std::path::Path, id: Uuid) -> PathBuf {
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
                })
            }
            Self::Postgres {
                admin,
                admin_url,
                template,
            } => {
                let password = random_hex(24);
                // `name` is `tenant_<hex>` and `password` is hex: nothing to escape.
                admin
                    .execute_unprepared(&format!(
                        "CREATE ROLE \"{name}\" LOGIN PASSWORD '{password}'"
                    ))
                    .await?;
                let from_template = match template.create_database(admin, admin_url, &name).await {
                    Ok(from_template) => from_template,
                    Err(e) => {
                        let _ = admin
                            .execute_unprepared(&format!("DROP ROLE IF EXISTS \"{name}\""))
                            .await;
                        return Err(e.into());
                    }
                };
                admin
                    .execute_unprepared(&format!("REVOKE ALL ON DATABASE \"{name}\" FROM PUBLIC"))
                    .await?;
                let mut url = admin_url.clone();
                let _ = url.set_username(&name);
                let _ = url.set_password(Some(&password));
                // The query (sslmode and the like) carries over as configured.
                url.set_path(&name);
                Ok(CreatedDatabase {
                    db_name: name,
                    url: SecretString::from(url.to_string()),
                    server: format!(
                        "{}:{}",
                        admin_url.host_str().unwrap_or("localhost"),
                        admin_url.port().unwrap_or(5432)
                    ),
                    from_template,
                })
            }
        }
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
