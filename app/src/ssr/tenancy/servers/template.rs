//! The tenant template on PostgreSQL: a database at the latest tenant migration that new companies are copied from.
//!
//! New tenant databases are made with `CREATE DATABASE … TEMPLATE` instead
//! of being migrated from empty.
//!
//! * Its name carries a digest of the tenant migration list
//!   (`enclave_tpl_<16 hex>`), so a build with other migrations never uses
//!   a stale template: it builds its own, and drops templates of other
//!   migration lists it finds.
//! * It is built under a temporary name (`…_b<8 hex>`) and renamed once
//!   complete, so a half-built template is never copied; two processes
//!   building at once both succeed (the loser of the rename drops its
//!   copy). A build left behind by a process that died midway is dropped
//!   by the next build that completes.
//! * Its objects belong to `enclave_template_owner`, a role that cannot log
//!   in; each copy hands them to the tenant's role (`REASSIGN OWNED`).
//! * Any failure here is logged and answered by migrating from empty: the
//!   template only ever makes provisioning faster.
use std::time::Duration;

use migration::{MigratorTrait, TenantMigrator};
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr, Statement, TransactionTrait};
use secrecy::SecretString;
use tokio::sync::Mutex;

use crate::ssr::secrets::random_hex;
use crate::ssr::tenancy::servers::databases::{close_to_public, connect_once, StepTimes};

/// The role that owns the template's objects until a copy reassigns them.
pub const OWNER_ROLE: &str = "enclave_template_owner";
const PREFIX: &str = "enclave_tpl_";

/// This build's template name: `enclave_tpl_` and 16 hex digits of a
/// BLAKE2b digest of the tenant migration names, in order.
pub fn template_name() -> String {
    use blake2::{Blake2b512, Digest};
    let mut digest = Blake2b512::new();
    for m in TenantMigrator::migrations() {
        digest.update(m.name().as_bytes());
        digest.update(b"\n");
    }
    format!("{PREFIX}{}", hex::encode(&digest.finalize()[..8]))
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether `name` is a finished template name (`enclave_tpl_<16 hex>`).
/// Only such names and [build names](is_build_name), read back from
/// `pg_database`, are ever dropped.
fn is_template_name(name: &str) -> bool {
    name.strip_prefix(PREFIX)
        .is_some_and(|hex| is_lower_hex(hex, 16))
}

/// Whether `name` is a template being built (`enclave_tpl_<16 hex>_b<8 hex>`).
fn is_build_name(name: &str) -> bool {
    name.rsplit_once("_b")
        .is_some_and(|(tpl, tag)| is_template_name(tpl) && is_lower_hex(tag, 8))
}

/// What this process knows of the template. Shared by clones of the
/// tenant server; one build at a time.
pub struct Template {
    enabled: bool,
    state: Mutex<State>,
    copies: std::sync::atomic::AtomicU64,
}

#[derive(Default)]
struct State {
    /// Known to exist at the latest migration.
    ready: bool,
    /// Failed to build: do not retry before this.
    retry_after: Option<std::time::Instant>,
}

impl Template {
    /// `enabled: false` never uses a template.
    pub fn new(enabled: bool) -> Self {
        Self {
            enabled,
            state: Mutex::default(),
            copies: Default::default(),
        }
    }

    /// Whether new databases are copied from the template.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Databases this process made by copying the template.
    pub fn copies(&self) -> u64 {
        self.copies.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The template's name if it is usable, building it first if needed.
    /// `None` (after a warning) when it cannot be built.
    pub async fn ready(&self, admin: &DatabaseConnection, admin_url: &url::Url) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let name = template_name();
        let mut state = self.state.lock().await;
        if state.ready {
            return Some(name);
        }
        if state
            .retry_after
            .is_some_and(|t| std::time::Instant::now() < t)
        {
            return None;
        }
        match ensure(admin, admin_url, &name).await {
            Ok(()) => {
                state.ready = true;
                state.retry_after = None;
                Some(name)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot build the tenant template; migrating new companies from empty");
                state.retry_after = Some(std::time::Instant::now() + Duration::from_secs(60));
                None
            }
        }
    }

    /// Creates database `name`, owned by role `name`, as a copy of the
    /// template when there is one (then returns `true`), or empty. A copy
    /// that cannot be completed is dropped and the database created empty
    /// instead; the template is checked again next time (it may have been
    /// dropped).
    pub async fn create_database(
        &self,
        admin: &DatabaseConnection,
        admin_url: &url::Url,
        name: &str,
        steps: &mut StepTimes,
    ) -> Result<(bool, Option<DatabaseConnection>), DbErr> {
        if let Some(tpl) = self.ready(admin, admin_url).await {
            let started = std::time::Instant::now();
            let copied = admin
                .execute_unprepared(&format!(
                    "CREATE DATABASE \"{name}\" OWNER \"{name}\" TEMPLATE \"{tpl}\""
                ))
                .await;
            steps.done("copy", started);
            match copied {
                Ok(_) => {
                    let started = std::time::Instant::now();
                    let adopted = adopt(admin_url, name).await;
                    steps.done("ownership", started);
                    match adopted {
                        Ok(session) => {
                            self.copies
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            return Ok((true, Some(session)));
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot hand a template copy to its tenant; creating the database empty");
                            admin
                                .execute_unprepared(&format!(
                                    "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                                ))
                                .await?;
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot copy the tenant template; creating the database empty");
                }
            }
            self.state.lock().await.ready = false;
        }
        let started = std::time::Instant::now();
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{name}\" OWNER \"{name}\""))
            .await?;
        steps.done("copy", started);
        Ok((false, None))
    }
}

async fn ensure(admin: &DatabaseConnection, admin_url: &url::Url, name: &str) -> Result<(), DbErr> {
    if database_exists(admin, name).await? {
        // Built by an older release, perhaps still open to every role.
        if let Err(e) = close_to_public(admin, name).await {
            tracing::warn!(template = name, error = %e, "the tenant template is open to company roles");
        }
        return Ok(());
    }
    admin
        .execute_unprepared(&format!(
            "DO $$ BEGIN CREATE ROLE {OWNER_ROLE} NOLOGIN; \
             EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
        ))
        .await?;
    // A superuser already may act as it; a CREATEROLE administrator needs
    // membership (an error here shows up below, at SET ROLE).
    let _ = admin
        .execute_unprepared(&format!("GRANT {OWNER_ROLE} TO CURRENT_USER"))
        .await;

    let building = format!("{name}_b{}", random_hex(4));
    admin
        .execute_unprepared(&format!("CREATE DATABASE \"{building}\""))
        .await?;
    let built = match migrate(admin_url, &building).await {
        // No company role may connect to the template itself.
        Ok(()) => close_to_public(admin, &building).await,
        Err(e) => Err(e),
    };
    let renamed = match built {
        Ok(()) => {
            admin
                .execute_unprepared(&format!(
                    "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
                ))
                .await
        }
        Err(e) => Err(e),
    };
    if let Err(e) = renamed {
        let _ = admin
            .execute_unprepared(&format!(
                "DROP DATABASE IF EXISTS \"{building}\" WITH (FORCE)"
            ))
            .await;
        // Another process may have finished the same template first.
        if !database_exists(admin, name).await? {
            return Err(e);
        }
    }
    tracing::info!(template = name, "tenant template built");
    drop_stale(admin, name).await;
    Ok(())
}

/// Runs the tenant migrations in `db` as [`OWNER_ROLE`], in one transaction.
async fn migrate(admin_url: &url::Url, db: &str) -> Result<(), DbErr> {
    let mut url = admin_url.clone();
    url.set_path(db);
    let conn = connect_once(&SecretString::from(url.to_string())).await?;
    let result = async {
        let txn = conn.begin().await?;
        txn.execute_unprepared(&format!(
            "GRANT USAGE, CREATE ON SCHEMA public TO {OWNER_ROLE}; SET LOCAL ROLE {OWNER_ROLE}"
        ))
        .await?;
        TenantMigrator::up(&txn, None).await?;
        txn.commit().await
    }
    .await;
    let _ = conn.close().await;
    result
}

/// In a fresh copy `db` (owned by role `db`): gives the tenant's role the
/// template's objects and takes the template owner's rights away.
/// Hands a template copy's objects to its company's role, on a connection
/// of the administrator to the new database, which is returned open for
/// the next step.
async fn adopt(admin_url: &url::Url, db: &str) -> Result<DatabaseConnection, DbErr> {
    let mut url = admin_url.clone();
    url.set_path(db);
    let conn = connect_once(&SecretString::from(url.to_string())).await?;
    let result = conn
        .execute_unprepared(&format!(
            "REASSIGN OWNED BY {OWNER_ROLE} TO \"{db}\"; \
             REVOKE ALL ON SCHEMA public FROM {OWNER_ROLE}"
        ))
        .await;
    match result {
        Ok(_) => Ok(conn),
        Err(e) => {
            let _ = conn.close().await;
            Err(e)
        }
    }
}

/// Drops the templates of other migration lists and the builds left by
/// processes that died midway. Never with `FORCE`: a database someone is
/// connected to (a build in progress, a stale template an older process is
/// copying right now) stays, for a later build to drop.
async fn drop_stale(admin: &DatabaseConnection, current: &str) {
    let rows = admin
        .query_all_raw(Statement::from_string(
            admin.get_database_backend(),
            format!("SELECT datname FROM pg_database WHERE datname LIKE '{PREFIX}%'"),
        ))
        .await
        .unwrap_or_default();
    for row in rows {
        let Ok(name) = row.try_get::<String>("", "datname") else {
            continue;
        };
        let build = is_build_name(&name);
        if name == current || !(build || is_template_name(&name)) {
            continue;
        }
        match admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{name}\""))
            .await
        {
            Ok(_) if build => {
                tracing::info!(template = %name, "dropped an abandoned tenant template build")
            }
            Ok(_) => tracing::info!(template = %name, "dropped a stale tenant template"),
            Err(e) => {
                tracing::info!(template = %name, error = %e, "left a tenant template in use")
            }
        }
    }
}

/// Whether database `name` exists on the administrator's server.
pub(crate) async fn database_exists(admin: &DatabaseConnection, name: &str) -> Result<bool, DbErr> {
    let row = admin
        .query_one_raw(Statement::from_sql_and_values(
            admin.get_database_backend(),
            "SELECT count(*) AS n FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await?;
    Ok(row
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0)
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_is_stable_and_only_template_names_are_droppable() {
        let name = template_name();
        assert_eq!(name, template_name());
        assert!(is_template_name(&name), "{name}");
        assert!(name.len() <= 63);
        assert!(!is_template_name(&format!("{name}_b0a1b2c3")));
        assert!(is_build_name(&format!("{name}_b0a1b2c3d")));
        assert!(is_build_name(&format!("{name}_b{}", random_hex(4))));
        assert!(!is_build_name(&format!("{name}_b0a1b2c3")));
        assert!(!is_build_name(&format!("{name}_b0a1b2c3d_b0a1b2c3d")));
        assert!(!is_build_name(&format!("{name}_B0A1B2C3D")));
        assert!(!is_build_name("enclave_tpl_x_b0a1b2c3d"));
        assert!(!is_build_name(&name));
        assert!(!is_template_name("enclave_tpl_0123456789abcdeF"));
        assert!(!is_template_name("enclave_tpl_\"; DROP"));
        assert!(!is_template_name("tenant_0123456789abcdef"));
    }
}
