//! The registry's companies: subdomain → company, cached, and the queries and views of the `tenants` table.
//!
//! Each process keeps what it looked up for `ttl` (so changes made by
//! another instance show within it) and forgets an entry at once when this
//! process changes that company. Past `ttl` an entry is still good if the
//! registry's directory version (`directory_version`, raised by triggers
//! on every change to `tenants`) is what it was when the entry was read:
//! about one read of that version per `ttl` stands for every company's
//! row, so a fleet of 10,000 companies costs the registry about one query
//! per `ttl`, not one per company. Subdomains that hold no company are
//! remembered apart, in a bounded table: random hosts can fill only that
//! one, never push a company out. At most [`MAX_LOOKUPS`] registry lookups
//! run at once, so a flood of unknown hosts cannot take the registry's
//! connections from signed-in work.
//!
//! When the registry cannot be reached, a company already known keeps
//! being served from the last answer the registry gave, for up to the
//! stale limit (`ENCLAVE_DIRECTORY_STALE_SECS`) after it was last
//! confirmed: stale while unreachable. The first lookup that finds the
//! registry gone waits for it (at most [`LOOKUP_WAIT`]); after that no
//! request waits for it: at most one probe a second, in the background,
//! (or the health check) finds it back, and from then lookups read it
//! again as before. Unknown subdomains are not answered from memory past
//! their time (503).
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use prometheus_client::metrics::counter::Counter;
use sea_orm::{
    ActiveEnum, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder,
};
use secrecy::SecretString;
use serde::Serialize;
use uuid::Uuid;

use crate::domain::Subdomain;
use crate::ssr::entities::tenants::{self, TenantStatus};
use crate::ssr::secrets::{Cipher, CipherError};

/// Whether `subdomain` cannot be had: a company holds it, or a purged
/// one still reserves it.
pub async fn subdomain_taken(
    db: &impl ConnectionTrait,
    subdomain: &Subdomain,
) -> Result<bool, DbErr> {
    Ok(find_by_subdomain(db, subdomain).await?.is_some()
        || crate::ssr::tenancy::lifecycle::offboarding::reserved_until(db, subdomain.as_str())
            .await?
            .is_some())
}

pub async fn find_by_subdomain(
    db: &impl ConnectionTrait,
    subdomain: &Subdomain,
) -> Result<Option<tenants::Model>, DbErr> {
    tenants::Entity::find()
        .filter(tenants::Column::Subdomain.eq(subdomain.as_str()))
        .one(db)
        .await
}

/// Every company, by subdomain.
pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<tenants::Model>, DbErr> {
    tenants::Entity::find()
        .order_by_asc(tenants::Column::Subdomain)
        .all(db)
        .await
}

/// How the platform admin's list of companies is sorted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortBy {
    Name,
    Subdomain,
    Newest,
    Oldest,
    Status,
}

impl SortBy {
    /// From the query string; anything unknown is by name.
    pub fn parse(s: &str) -> Self {
        match s {
            "subdomain" => SortBy::Subdomain,
            "newest" => SortBy::Newest,
            "oldest" => SortBy::Oldest,
            "status" => SortBy::Status,
            _ => SortBy::Name,
        }
    }
}

/// One page of companies, and how many match in all.
pub struct Listing {
    pub rows: Vec<tenants::Model>,
    pub total: u64,
}

/// Which companies by where their schema stands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SchemaFilter {
    Any,
    /// Not at this (the latest) migration.
    Behind(String),
    /// Their last migration failed.
    Failed,
}

/// Companies whose name or subdomain contains `q` (any case; `%` and `_`
/// are plain characters), with `status` and `schema` if given, sorted, one page of
/// `per_page` (`page` counts from 0). Ties are broken by subdomain, so
/// pages never overlap.
pub async fn search(
    db: &impl ConnectionTrait,
    q: &str,
    status: Option<TenantStatus>,
    schema: SchemaFilter,
    sort: SortBy,
    page: u64,
    per_page: u64,
) -> Result<Listing, DbErr> {
    use sea_orm::sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr};
    use sea_orm::{PaginatorTrait, QuerySelect};

    let mut find = tenants::Entity::find();
    let q: String = q.trim().to_lowercase().chars().take(100).collect();
    if !q.is_empty() {
        let escaped: String = q
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = || LikeExpr::new(format!("%{escaped}%")).escape('\\');
        find = find.filter(
            Condition::any()
                .add(Expr::expr(Func::lower(Expr::col(tenants::Column::Name))).like(pattern()))
                .add(Expr::col(tenants::Column::Subdomain).like(pattern())),
        );
    }
    if let Some(status) = status {
        find = find.filter(tenants::Column::Status.eq(status));
    }
    find = match schema {
        SchemaFilter::Any => find,
        SchemaFilter::Behind(latest) => find.filter(
            Condition::any()
                .add(tenants::Column::SchemaVersion.ne(latest))
                .add(tenants::Column::SchemaVersion.is_null()),
        ),
        SchemaFilter::Failed => find.filter(tenants::Column::LastMigrationError.is_not_null()),
    };
    use tenants::Column as C;
    find = match sort {
        SortBy::Name => find.order_by_asc(C::Name),
        SortBy::Subdomain => find,
        SortBy::Newest => find.order_by_desc(C::CreatedAt),
        SortBy::Oldest => find.order_by_asc(C::CreatedAt),
        SortBy::Status => find.order_by_asc(C::Status),
    }
    .order_by_asc(C::Subdomain);
    let total = find.clone().count(db).await?;
    let rows = find
        .offset(page.saturating_mul(per_page))
        .limit(per_page)
        .all(db)
        .await?;
    Ok(Listing { rows, total })
}

/// What [`reseal_credentials`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resealed {
    /// Sealed again under the current key, for their owner.
    pub resealed: u64,
    /// Already sealed so.
    pub current: u64,
    /// Opened by no key this cipher has (they keep what they had).
    pub unreadable: u64,
}

/// Seals every company's stored credential again under `cipher`'s current
/// key, bound to its company (`secret rotate`). Each row changes in one
/// UPDATE that only applies if the row still holds what was read, so a run
/// killed midway leaves every row sealed under the old key or the new,
/// both of which a rotating cipher opens; running it again finishes.
pub async fn reseal_credentials(
    registry: &DatabaseConnection,
    cipher: &Cipher,
) -> Result<Resealed, DbErr> {
    use sea_orm::sea_query::Expr;
    let sealed = list(registry)
        .await?
        .into_iter()
        .filter_map(|t| Some((t.id, t.db_url?)));
    reseal_each(sealed, cipher, |id, stored, resealed| async move {
        let changed = tenants::Entity::update_many()
            .col_expr(tenants::Column::DbUrl, Expr::value(resealed))
            .filter(tenants::Column::Id.eq(id))
            .filter(tenants::Column::DbUrl.eq(stored))
            .exec(registry)
            .await?;
        Ok(changed.rows_affected)
    })
    .await
}

/// Seals each `(owner, stored)` again under `cipher`'s current key, for
/// its owner; `write(owner, stored, resealed)` stores one that changed,
/// only if its row still holds `stored`, and says how many rows it changed.
/// What `secret rotate` does to every kind of sealed secret.
pub async fn reseal_each<F, Fut>(
    sealed: impl IntoIterator<Item = (Uuid, String)>,
    cipher: &Cipher,
    mut write: F,
) -> Result<Resealed, DbErr>
where
    F: FnMut(Uuid, String, String) -> Fut,
    Fut: std::future::Future<Output = Result<u64, DbErr>>,
{
    let mut done = Resealed::default();
    for (owner, stored) in sealed {
        match cipher.reseal(owner, &stored) {
            Ok(None) => done.current += 1,
            Err(_) => done.unreadable += 1,
            Ok(Some(resealed)) => done.resealed += write(owner, stored, resealed).await?,
        }
    }
    Ok(done)
}

/// A company as operators see it (platform API, CLI): never its
/// database URL.
#[derive(Clone, Debug, Serialize)]
pub struct TenantInfo {
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    pub status: String,
    pub db_name: String,
    pub db_server: Option<String>,
    pub schema_version: Option<String>,
    pub admin_user_id: Option<Uuid>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

impl From<&tenants::Model> for TenantInfo {
    fn from(t: &tenants::Model) -> Self {
        Self {
            id: t.id,
            name: t.name.clone(),
            subdomain: t.subdomain.clone(),
            status: t.status.to_value(),
            db_name: t.db_name.clone(),
            db_server: t.db_server.clone(),
            schema_version: t.schema_version.clone(),
            admin_user_id: t.admin_user_id,
            created_at: t.created_at,
        }
    }
}

/// What serving a request needs to know of a tenant.
pub struct TenantEntry {
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    pub status: TenantStatus,
    /// Scheduled for deletion: when it will be purged.
    pub purge_after: Option<chrono::DateTime<chrono::Utc>>,
    /// The database server it is on (`tenants.db_server`): whose open
    /// budget its pool counts against.
    pub(in crate::ssr::tenancy) server: String,
    /// Decrypted connection URL; `None` until provisioning stored one.
    /// Only tenancy reads it: requests go through `TenantContext::db`.
    pub(in crate::ssr::tenancy) url: Option<SecretString>,
    /// A digest of `url`, made once per lookup: the pool cache compares
    /// it to tell a company that moved.
    pub(in crate::ssr::tenancy) url_digest: u64,
    /// The schema version the registry records, when this binary does not
    /// know it: a newer release migrated the company (a rolling deploy),
    /// and this one would run the wrong queries on it.
    pub(in crate::ssr::tenancy) newer_schema: Option<String>,
    /// Whether that was logged, once per entry read.
    pub(in crate::ssr::tenancy) newer_logged: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for TenantEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantEntry")
            .field("id", &self.id)
            .field("subdomain", &self.subdomain)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("cannot read the registry")]
    Registry(#[from] DbErr),
    /// Every lookup slot stayed taken (503).
    #[error("too many registry lookups under way")]
    Busy,
    #[error(transparent)]
    Cipher(#[from] CipherError),
    /// The registry did not answer a moment ago and this subdomain has no
    /// answer young enough to serve (503).
    #[error("the registry is unreachable")]
    Unreachable,
}

/// Unknown subdomains remembered at most; past it that table starts over.
pub const MAX_UNKNOWN: usize = 10_000;
/// Registry lookups under way at once.
pub const MAX_LOOKUPS: usize = 4;
/// How long a lookup waits for its turn, and then for the registry,
/// before answering 503 (or from a stale entry).
const LOOKUP_WAIT: Duration = Duration::from_secs(2);
/// How often the registry is probed while it is unreachable.
const PROBE_EVERY: Duration = Duration::from_secs(1);
/// Reads one probe makes when they fail at once (dead pooled connections).
const PROBE_TRIES: u32 = 4;
/// How long a company is served from its last answer while the registry
/// is unreachable, by default.
const STALE_LIMIT: Duration = Duration::from_secs(3600);

/// What the directory read from the registry, for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct DirectoryReads {
    /// Reads of the directory version.
    pub version: Counter,
    /// Reads of one company's row.
    pub company: Counter,
    /// Answers given from an entry past its time because the registry
    /// could not be reached.
    pub stale: Counter,
}

#[derive(Clone)]
pub struct Directory {
    registry: DatabaseConnection,
    cipher: Cipher,
    ttl: Duration,
    cache: Arc<Mutex<Cache>>,
    lookups: Arc<tokio::sync::Semaphore>,
    max_unknown: usize,
    reads: DirectoryReads,
    stale_limit: Duration,
}

#[derive(Default)]
struct Cache {
    /// Companies (whatever their status), by subdomain: when each was read
    /// and the directory version read before it.
    known: HashMap<String, (Instant, i64, Arc<TenantEntry>)>,
    /// Subdomains no company holds, likewise.
    unknown: HashMap<String, (Instant, i64)>,
    /// The registry's directory version and when it was read.
    version: Option<(i64, Instant)>,
    /// When the registry last failed to answer, while it still has not.
    down_since: Option<Instant>,
    /// When the last probe of an unreachable registry began, and whether
    /// it is still under way.
    last_probe: Option<Instant>,
    probing: bool,
}

impl Cache {
    /// The directory version if it was read within `ttl`.
    fn fresh_version(&self, ttl: Duration) -> Option<i64> {
        self.version
            .filter(|(_, at)| at.elapsed() < ttl)
            .map(|(v, _)| v)
    }

    /// Whether what was read at `at` under directory version `v` may still
    /// be used: read within `ttl`, or nothing in `tenants` has changed
    /// since (by a version read within `ttl`).
    fn still_good(&self, at: Instant, v: i64, ttl: Duration) -> bool {
        at.elapsed() < ttl || self.fresh_version(ttl) == Some(v)
    }

    /// Keeps `v`, read just now, unless a newer version was kept already
    /// (lookups and probes read it side by side).
    fn keep_version(&mut self, v: i64) {
        if self.version.is_none_or(|(kept, _)| v >= kept) {
            self.version = Some((v, Instant::now()));
        }
    }

    /// How long ago the registry last said what was read at `at` under
    /// version `v`: when it was read, or when the same version was read
    /// again since.
    fn confirmed_ago(&self, at: Instant, v: i64) -> Duration {
        match self.version {
            Some((kept, read)) if kept == v && read > at => read.elapsed(),
            _ => at.elapsed(),
        }
    }
}

/// Reads the registry's directory version.
async fn directory_version(db: &impl ConnectionTrait) -> Result<i64, DbErr> {
    use sea_orm::Statement;
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT version FROM directory_version WHERE id = 1",
        ))
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("the registry's directory_version row".into()))?;
    row.try_get::<i64>("", "version")
}

impl Directory {
    pub fn new(registry: DatabaseConnection, cipher: Cipher, ttl: Duration) -> Self {
        Self {
            registry,
            cipher,
            ttl,
            cache: Arc::default(),
            lookups: Arc::new(tokio::sync::Semaphore::new(MAX_LOOKUPS)),
            max_unknown: MAX_UNKNOWN,
            reads: DirectoryReads::default(),
            stale_limit: STALE_LIMIT,
        }
    }

    /// Serves a known company from its last answer for up to `limit`
    /// while the registry cannot be reached (zero: never).
    pub fn with_stale_limit(mut self, limit: Duration) -> Self {
        self.stale_limit = limit;
        self
    }

    /// Whether the registry failed to answer the last time it was asked
    /// (and no probe has found it back since).
    pub fn registry_unreachable(&self) -> bool {
        self.cache.lock().unwrap().down_since.is_some()
    }

    /// Counts registry reads into `reads` (the process's metrics).
    pub fn with_reads(mut self, reads: DirectoryReads) -> Self {
        self.reads = reads;
        self
    }

    /// How long a lookup is kept: the longest another instance may still
    /// use what this one changed.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Remembers at most `n` unknown subdomains (tests make it small).
    pub fn with_max_unknown(mut self, n: usize) -> Self {
        self.max_unknown = n.max(1);
        self
    }

    pub async fn lookup(
        &self,
        sub: &Subdomain,
    ) -> Result<Option<Arc<TenantEntry>>, DirectoryError> {
        if let Some(cached) = self.cached(sub.as_str()) {
            return Ok(cached);
        }
        // Found gone a moment ago: no request waits for it again.
        if self.registry_unreachable() {
            self.probe_soon();
            return self.stale(sub.as_str()).ok_or(DirectoryError::Unreachable);
        }
        match tokio::time::timeout(LOOKUP_WAIT, self.read(sub)).await {
            Ok(Ok(found)) => Ok(found),
            Ok(Err(e @ DirectoryError::Registry(_))) => {
                self.mark_unreachable(&e);
                self.stale(sub.as_str()).ok_or(e)
            }
            Err(_) => {
                let e = DirectoryError::Unreachable;
                self.mark_unreachable(&e);
                self.stale(sub.as_str()).ok_or(e)
            }
            // Every lookup slot taken: the registry is slow, not gone.
            Ok(Err(e @ DirectoryError::Busy)) => self.stale(sub.as_str()).ok_or(e),
            Ok(Err(e)) => Err(e),
        }
    }

    /// The registry failed to answer (`e`): until a probe finds it back,
    /// lookups answer from memory.
    fn mark_unreachable(&self, e: &DirectoryError) {
        let mut cache = self.cache.lock().unwrap();
        if cache.down_since.is_none() {
            tracing::warn!(
                error = %crate::ssr::http::error_chain(e),
                "the registry is unreachable: known companies are served from memory"
            );
            cache.down_since = Some(Instant::now());
        }
    }

    /// A known company's last answer, if confirmed within the stale
    /// limit; counted.
    fn stale(&self, sub: &str) -> Option<Option<Arc<TenantEntry>>> {
        let cache = self.cache.lock().unwrap();
        let (at, v, entry) = cache.known.get(sub)?;
        if cache.confirmed_ago(*at, *v) >= self.stale_limit {
            return None;
        }
        self.reads.stale.inc();
        Some(Some(entry.clone()))
    }

    /// Starts a probe of the registry, unless one is under way or the last
    /// began less than [`PROBE_EVERY`] ago. A probe that reads the
    /// directory version clears the mark: lookups ask the registry again.
    fn probe_soon(&self) {
        {
            let mut cache = self.cache.lock().unwrap();
            if cache.probing
                || cache
                    .last_probe
                    .is_some_and(|at| at.elapsed() < PROBE_EVERY)
            {
                return;
            }
            cache.probing = true;
            cache.last_probe = Some(Instant::now());
        }
        let this = self.clone();
        tokio::spawn(async move {
            // After the registry restarts, the pool still holds connections
            // to the process that died; each fails at once and is dropped.
            // So a read that fails fast is tried again at once (a few
            // times, within the same wait), not a probe period later.
            let deadline = tokio::time::Instant::now() + LOOKUP_WAIT;
            let mut tries = 1;
            let read = loop {
                let read =
                    tokio::time::timeout_at(deadline, directory_version(&this.registry)).await;
                match read {
                    Ok(Err(_)) if tries < PROBE_TRIES => tries += 1,
                    read => break read,
                }
            };
            let answered = matches!(read, Ok(Ok(_)));
            {
                let mut cache = this.cache.lock().unwrap();
                cache.probing = false;
                if let Ok(Ok(v)) = read {
                    cache.keep_version(v);
                }
            }
            if answered {
                this.reads.version.inc();
                this.registry_answered();
            }
        });
    }

    /// The registry answered (a probe, or the health check): lookups ask
    /// it again.
    pub fn registry_answered(&self) {
        if let Some(since) = self.cache.lock().unwrap().down_since.take() {
            tracing::info!(
                after_secs = since.elapsed().as_secs(),
                "the registry answers again"
            );
        }
    }

    /// Reads `sub` from the registry (its turn, the directory version,
    /// the row) and keeps the answer.
    async fn read(&self, sub: &Subdomain) -> Result<Option<Arc<TenantEntry>>, DirectoryError> {
        let _turn = tokio::time::timeout(LOOKUP_WAIT, self.lookups.acquire())
            .await
            .map_err(|_| DirectoryError::Busy)?
            .map_err(|_| DirectoryError::Busy)?;
        // Someone else may have looked it up while this one waited.
        if let Some(cached) = self.cached(sub.as_str()) {
            return Ok(cached);
        }
        // The version is read before the row, so a row kept under it is at
        // least as new as the version says.
        let fresh = self.cache.lock().unwrap().fresh_version(self.ttl);
        let version = match fresh {
            Some(v) => v,
            None => {
                let v = directory_version(&self.registry).await?;
                self.reads.version.inc();
                self.cache.lock().unwrap().keep_version(v);
                if let Some(cached) = self.cached(sub.as_str()) {
                    return Ok(cached);
                }
                v
            }
        };
        let found = find_by_subdomain(&self.registry, sub).await?;
        self.reads.company.inc();
        let entry = found.map(|t| self.entry(t)).transpose()?.map(Arc::new);
        let mut cache = self.cache.lock().unwrap();
        let key = sub.as_str().to_owned();
        let now = Instant::now();
        match &entry {
            Some(entry) => {
                cache.unknown.remove(&key);
                cache.known.insert(key, (now, version, entry.clone()));
            }
            None => {
                if cache.unknown.len() >= self.max_unknown {
                    cache.unknown.clear();
                }
                cache.known.remove(&key);
                cache.unknown.insert(key, (now, version));
            }
        }
        Ok(entry)
    }

    /// What the cache knows of `sub` within the time to live: `Some(None)`
    /// for a subdomain known to hold no company.
    fn cached(&self, sub: &str) -> Option<Option<Arc<TenantEntry>>> {
        let cache = self.cache.lock().unwrap();
        if let Some((at, v, entry)) = cache.known.get(sub) {
            if cache.still_good(*at, *v, self.ttl) {
                return Some(Some(entry.clone()));
            }
        }
        match cache.unknown.get(sub) {
            Some((at, v)) if cache.still_good(*at, *v, self.ttl) => Some(None),
            _ => None,
        }
    }

    fn entry(&self, t: tenants::Model) -> Result<TenantEntry, CipherError> {
        let url = self.connection_url(&t)?;
        Ok(TenantEntry {
            url_digest: url
                .as_ref()
                .map_or(0, crate::ssr::tenancy::connections::pools::digest),
            newer_schema: t.schema_version.filter(|v| {
                crate::ssr::tenancy::schema::migrate::tenant_schema_position(v).is_none()
            }),
            newer_logged: Default::default(),
            id: t.id,
            name: t.name,
            subdomain: t.subdomain,
            status: t.status,
            purge_after: t.purge_after,
            server: t
                .db_server
                .unwrap_or_else(|| crate::ssr::tenancy::servers::fleet::FIRST.to_owned()),
            url,
        })
    }

    /// The decrypted connection URL of a registry row: for tenancy's own
    /// work outside requests (migrate, lifecycle).
    pub(in crate::ssr::tenancy) fn connection_url(
        &self,
        t: &tenants::Model,
    ) -> Result<Option<SecretString>, CipherError> {
        t.db_url
            .as_deref()
            .map(|u| self.cipher.decrypt(t.id, u))
            .transpose()
    }

    /// Forgets `subdomain`, so the next request reads the registry.
    pub fn invalidate(&self, subdomain: &str) {
        let mut cache = self.cache.lock().unwrap();
        cache.known.remove(subdomain);
        cache.unknown.remove(subdomain);
    }
}
