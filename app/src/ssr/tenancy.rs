//! What the tenant resolution layer (in `server`) hands to rendering and to
//! server functions. Nothing else in the code picks a tenant database.
use std::sync::Arc;

use leptos::prelude::{use_context, ServerFnError};

use super::directory::TenantEntry;
use super::pools::{PoolError, TenantDb, TenantPools};
use crate::site::Site;

/// The resolved request. Provided as Leptos context by the SSR and
/// server-function handlers, and as a request extension to plain handlers.
#[derive(Clone, Debug)]
pub struct RequestSite {
    pub site: Site,
    /// Set for an active company only.
    pub tenant: Option<TenantContext>,
}

/// An active company and the way to its database. The connection is taken
/// from the pool cache only when a handler asks for it.
#[derive(Clone)]
pub struct TenantContext {
    pub entry: Arc<TenantEntry>,
    pools: TenantPools,
}

impl std::fmt::Debug for TenantContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantContext")
            .field("tenant", &self.entry.subdomain)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TenantDbError {
    #[error("this company's database is not ready")]
    NotReady,
    #[error(transparent)]
    Pool(#[from] PoolError),
}

impl TenantContext {
    pub fn new(entry: Arc<TenantEntry>, pools: TenantPools) -> Self {
        Self { entry, pools }
    }

    /// A lease on this tenant's pool, held for the rest of the request.
    pub async fn db(&self) -> Result<TenantDb, TenantDbError> {
        let url = self.entry.url.as_ref().ok_or(TenantDbError::NotReady)?;
        Ok(self.pools.get(self.entry.id, url).await?)
    }
}

pub fn site_from_context() -> Result<Site, ServerFnError> {
    use_context::<RequestSite>()
        .map(|r| r.site)
        .ok_or_else(|| ServerFnError::new("request was not resolved to a site"))
}
