//! Subdomain → tenant, cached. Each process keeps what it looked up for
//! `ttl` (so changes made by another instance show within it) and forgets
//! an entry at once when this process changes that tenant.
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sea_orm::{DatabaseConnection, DbErr};
use secrecy::SecretString;
use uuid::Uuid;

use super::entities::tenants::{self, TenantStatus};
use super::registry;
use super::secrets::{Cipher, CipherError};
use crate::domain::Subdomain;

/// What serving a request needs to know of a tenant.
pub struct TenantEntry {
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    pub status: TenantStatus,
    /// Decrypted connection URL; `None` until provisioning stored one.
    pub url: Option<SecretString>,
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
    #[error("registry: {0}")]
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
        let found = registry::find_tenant_by_subdomain(&self.registry, sub).await?;
        let entry = found.map(|t| self.entry(t)).transpose()?.map(Arc::new);
        let mut cache = self.cache.lock().unwrap();
        if cache.len() >= MAX_ENTRIES {
            cache.clear();
        }
        cache.insert(sub.as_str().to_owned(), (Instant::now(), entry.clone()));
        Ok(entry)
    }

    fn entry(&self, t: tenants::Model) -> Result<TenantEntry, CipherError> {
        let url = t
            .db_url
            .as_deref()
            .map(|u| self.cipher.decrypt(u))
            .transpose()?;
        Ok(TenantEntry {
            id: t.id,
            name: t.name,
            subdomain: t.subdomain,
            status: t.status,
            url,
        })
    }

    /// The decrypted connection URL of a registry row.
    pub fn connection_url(&self, t: &tenants::Model) -> Result<Option<SecretString>, CipherError> {
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
