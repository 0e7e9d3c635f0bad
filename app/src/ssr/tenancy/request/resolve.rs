//! `Host` → [`RequestSite`]: the one place a request is tied to a company, and its tenant context.
//!
//! The server's site middleware calls [`Resolver::resolve`] once per request
//! and provides the result to pages, server functions and handlers. A
//! [`TenantContext`] exists exactly when the site is an active company, and
//! it is made only here: nothing outside this module can build one, and
//! [`TenantContext::db`] is the only way a request reaches the connection
//! cache ([`TenantPools::get`] is private to `tenancy`).
use std::sync::Arc;

use crate::domain::Subdomain;
use crate::site::{Origin, Site};
use crate::ssr::entities::tenants::TenantStatus;
use crate::ssr::tenancy::connections::conn::WaitBudget;
use crate::ssr::tenancy::connections::pools::{PoolError, TenantDb, TenantPools};
use crate::ssr::tenancy::request::directory::{Directory, DirectoryError, TenantEntry};
use crate::ssr::tenancy::request::host::{Host, HostError, HostKind};

/// The resolved request, provided as Leptos context by the page and
/// server-function handlers and as a request extension to plain handlers.
#[derive(Clone, Debug)]
pub enum RequestSite {
    /// The base domain: landing, signup, platform admin, platform API.
    Root { origin: Origin },
    /// An active company.
    Tenant(TenantContext),
    /// A company whose workspace is paused, or scheduled for deletion
    /// (503 pages).
    Paused {
        name: String,
        subdomain: String,
        origin: Origin,
        /// Scheduled for deletion: the day it will be purged.
        deleting_until: Option<String>,
    },
    /// A well-formed label no active or paused company holds (404 pages).
    Unknown { subdomain: String, origin: Origin },
}

impl RequestSite {
    /// What the browser is told of the site (no database details).
    pub fn site(&self) -> Site {
        match self {
            Self::Root { origin } => Site::Root {
                origin: origin.clone(),
            },
            Self::Tenant(t) => Site::Tenant {
                name: t.entry.name.clone(),
                subdomain: t.entry.subdomain.clone(),
                origin: t.origin.clone(),
            },
            Self::Paused {
                name,
                subdomain,
                origin,
                deleting_until,
            } => Site::Paused {
                name: name.clone(),
                subdomain: subdomain.clone(),
                origin: origin.clone(),
                deleting_until: deleting_until.clone(),
            },
            Self::Unknown { subdomain, origin } => Site::UnknownTenant {
                subdomain: subdomain.clone(),
                origin: origin.clone(),
            },
        }
    }

    /// How the request's site shows in logs: its subdomain, or `-` for the
    /// base domain.
    pub fn label(&self) -> &str {
        match self {
            Self::Root { .. } => "-",
            Self::Tenant(t) => &t.entry.subdomain,
            Self::Paused { subdomain, .. } | Self::Unknown { subdomain, .. } => subdomain,
        }
    }
}

/// An active company and the way to its database. The connection is taken
/// from the pool cache only when a handler asks for it.
#[derive(Clone)]
pub struct TenantContext {
    entry: Arc<TenantEntry>,
    origin: Origin,
    pools: TenantPools,
    /// How long this request may still wait for the company's connection,
    /// across every lease it takes (its session's and its handler's).
    waits: Arc<WaitBudget>,
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
    /// 500: the company has no stored connection URL (never for an active one).
    #[error("this company's database is not ready")]
    NotReady,
    /// 503 when busy, 500 otherwise.
    #[error("cannot get a connection to the company's database")]
    Pool(#[from] PoolError),
}

impl TenantContext {
    pub fn id(&self) -> uuid::Uuid {
        self.entry.id
    }

    pub fn name(&self) -> &str {
        &self.entry.name
    }

    pub fn subdomain(&self) -> &str {
        &self.entry.subdomain
    }

    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// This company's site, `https://acme.example.com/`, for links in mail.
    pub fn url(&self) -> String {
        self.origin.tenant_url(self.subdomain())
    }

    /// A lease on this company's pool, held until dropped. Every lease of
    /// one request shares its time to wait for a connection
    /// (`ENCLAVE_TENANT_ACQUIRE_TIMEOUT_MS` in all).
    pub async fn db(&self) -> Result<TenantDb, TenantDbError> {
        let url = self.entry.url.as_ref().ok_or(TenantDbError::NotReady)?;
        Ok(self
            .pools
            .get(
                self.entry.id,
                &self.entry.server,
                url,
                self.entry.url_digest,
                self.waits.clone(),
            )
            .await?)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// 400: the host is not the base domain or one label under it.
    #[error(transparent)]
    BadHost(#[from] HostError),
    /// 503: the registry could not be asked.
    #[error("cannot look the company up")]
    Lookup(#[from] DirectoryError),
    /// 503: a newer release migrated the company past what this binary
    /// knows (a rolling deploy); served by the newer instances only.
    #[error("the company's schema ({0}) is newer than this binary knows")]
    NewerSchema(String),
}

/// Turns a request's host into its site. Cheap to clone.
#[derive(Clone)]
pub struct Resolver {
    base_domain: String,
    directory: Directory,
    pools: TenantPools,
}

impl Resolver {
    /// `base_domain` normalised (lower case, no trailing dot).
    pub fn new(base_domain: String, directory: Directory, pools: TenantPools) -> Self {
        Self {
            base_domain,
            directory,
            pools,
        }
    }

    /// The site `raw_host` (a `Host` header) names, reached over `scheme`.
    pub async fn resolve(&self, raw_host: &str, scheme: &str) -> Result<RequestSite, ResolveError> {
        let host = Host::parse(raw_host)?;
        let base = &self.base_domain;
        let origin = Origin {
            scheme: scheme.to_owned(),
            base: match host.port {
                Some(port) => format!("{base}:{port}"),
                None => base.clone(),
            },
        };
        let label = match host.kind(base)? {
            HostKind::Root => return Ok(RequestSite::Root { origin }),
            HostKind::Sub(label) => label,
        };
        let unknown = |subdomain: &str, origin| RequestSite::Unknown {
            subdomain: subdomain.to_owned(),
            origin,
        };
        // A label no company may hold (too short, reserved, …) cannot exist.
        let Ok(sub) = Subdomain::parse(label) else {
            return Ok(unknown(label, origin));
        };
        let Some(entry) = self.directory.lookup(&sub).await? else {
            return Ok(unknown(sub.as_str(), origin));
        };
        if let (TenantStatus::Active, Some(version)) = (entry.status, &entry.newer_schema) {
            if !entry
                .newer_logged
                .swap(true, std::sync::atomic::Ordering::Relaxed)
            {
                tracing::error!(
                    tenant = %entry.subdomain,
                    schema = %version,
                    "a newer release migrated this company past what this binary knows: \
                     its requests are answered 503 here until this instance is upgraded"
                );
            }
            return Err(ResolveError::NewerSchema(version.clone()));
        }
        Ok(match entry.status {
            TenantStatus::Active => RequestSite::Tenant(TenantContext {
                entry,
                origin,
                waits: WaitBudget::new(self.pools.settings().acquire_timeout),
                pools: self.pools.clone(),
            }),
            TenantStatus::Paused => RequestSite::Paused {
                name: entry.name.clone(),
                subdomain: entry.subdomain.clone(),
                origin,
                deleting_until: None,
            },
            // Scheduled for deletion, its grace period running: it says so.
            TenantStatus::Deleting if entry.purge_after.is_some_and(|p| p > chrono::Utc::now()) => {
                RequestSite::Paused {
                    name: entry.name.clone(),
                    subdomain: entry.subdomain.clone(),
                    origin,
                    deleting_until: entry
                        .purge_after
                        .map(|p| p.format("%-d %B %Y, %H:%M UTC").to_string()),
                }
            }
            // Being created, failed or being deleted: not served.
            _ => unknown(sub.as_str(), origin),
        })
    }
}
