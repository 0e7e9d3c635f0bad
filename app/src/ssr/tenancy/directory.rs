//! The registry's companies: subdomain → company, cached, and the queries and views of the `tenants` table.
//!
//! Each process keeps what it looked up for `ttl` (so changes made by
//! another instance show within it) and forgets an entry at once when this
//! process changes that company.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

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
    /// Decrypted connection URL; `None` until provisioning stored one.
    /// Only tenancy reads it: requests go through `TenantContext::db`.
    pub(super) url: Option<SecretString>,
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
    #[error(transparent)]
    Cipher(#[from] CipherError),
}

/// Past this many entries the cache starts over rather than grow.
const MAX_ENTRIES: usize = 100_000;

#[derive(Clone)]
pub struct Directory {
    registry: DatabaseConnection,
    cipher: Cipher,
    ttl: Duration,
    cache: Arc<Mutex<HashMap<String, (Instant, Option<Arc<TenantEntry>>)>>>,
}

impl Directory {
    pub fn new(registry: DatabaseConnection, cipher: Cipher, ttl: Duration) -> Self {
        Self {
            registry,
            cipher,
            ttl,
            cache: Arc::default(),
        }
    }

    pub async fn lookup(
        &self,
        sub: &Subdomain,
    ) -> Result<Option<Arc<TenantEntry>>, DirectoryError> {
        if let Some((at, entry)) = self.cache.lock().unwrap().get(sub.as_str()) {
            if at.elapsed() < self.ttl {
                return Ok(entry.clone());
            }
        }
        let found = find_by_subdomain(&self.registry, sub).await?;
        let entry = found.map(|t| self.entry(t)).transpose()?.map(Arc::new);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(sub.as_str().to_owned(), (Instant::now(), entry.clone()));
        Ok(entry)
    }

    fn entry(&self, t: tenants::Model) -> Result<TenantEntry, CipherError> {
        let url = self.connection_url(&t)?;
        Ok(TenantEntry {
            id: t.id,
            name: t.name,
            subdomain: t.subdomain,
            status: t.status,
            url,
        })
    }

    /// The decrypted connection URL of a registry row: for tenancy's own
    /// work outside requests (migrate, lifecycle).
    pub(super) fn connection_url(
        &self,
        t: &tenants::Model,
    ) -> Result<Option<SecretString>, CipherError> {
        t.db_url
            .as_deref()
            .map(|u| self.cipher.decrypt(u))
            .transpose()
    }

    /// Forgets `subdomain`, so the next request reads the registry.
    pub fn invalidate(&self, subdomain: &str) {
        self.cache.lock().unwrap().remove(subdomain);
    }
}
