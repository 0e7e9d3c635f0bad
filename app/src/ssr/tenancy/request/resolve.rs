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
use crate::ssr::tenancy::domains::{addresses::domain_url, Addresses};
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
    /// An old address of a company: a renamed company's old subdomain, or
    /// a subdomain that redirects to the company's primary domain. Every
    /// path is answered 308 to the same path under `to`, which browsers
    /// may keep for `max_age` seconds; a person signed in here at the
    /// active `company` is handed over (never rendered as a page).
    Moved {
        to: String,
        max_age: u32,
        label: String,
        company: Option<TenantContext>,
        origin: Origin,
    },
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
            Self::Moved { origin, .. } => Site::Root {
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
            Self::Moved { label, .. } => label,
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
    addresses: Addresses,
}

/// How long a browser may keep a renamed subdomain's redirect: a day, so
/// a name given back after its redirect ends is not shadowed for long.
const RENAMED_MAX_AGE: u32 = 86_400;
/// … and a subdomain's redirect to its primary domain, a setting that
/// can be switched off.
const PRIMARY_MAX_AGE: u32 = 300;

impl Resolver {
    /// `base_domain` normalised (lower case, no trailing dot).
    pub fn new(
        base_domain: String,
        directory: Directory,
        pools: TenantPools,
        addresses: Addresses,
    ) -> Self {
        Self {
            base_domain,
            directory,
            pools,
            addresses,
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
        let label = match host.kind(base) {
            Ok(HostKind::Root) => return Ok(RequestSite::Root { origin }),
            Ok(HostKind::Sub(label)) => label,
            // A company's own verified domain, or no one's.
            Err(HostError::Foreign) => {
                let Some(sub) = self.addresses.domain(&host.name) else {
                    return Err(HostError::Foreign.into());
                };
                let sub = Subdomain::parse(&sub).map_err(|_| HostError::Foreign)?;
                return match self.directory.lookup(&sub).await? {
                    Some(entry) => self.site_of(entry, origin),
                    None => Err(HostError::Foreign.into()),
                };
            }
            Err(e) => return Err(e.into()),
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
            // A renamed company's old name, still redirecting?
            let Some(new) = self.addresses.renamed(label) else {
                return Ok(unknown(sub.as_str(), origin));
            };
            // Its people are handed over when it is active.
            let entry = match Subdomain::parse(&new) {
                Ok(new) => self.directory.lookup(&new).await?,
                Err(_) => None,
            };
            let company = entry.and_then(|entry| match self.site_of(entry, origin.clone()) {
                Ok(RequestSite::Tenant(t)) => Some(t),
                _ => None,
            });
            return Ok(RequestSite::Moved {
                to: origin.tenant_url(&new),
                max_age: RENAMED_MAX_AGE,
                label: sub.to_string(),
                company,
                origin,
            });
        };
        let site = self.site_of(entry, origin)?;
        // An active company whose subdomain redirects to its own domain.
        if let RequestSite::Tenant(t) = &site {
            if let Some(domain) = self.addresses.redirect_of(sub.as_str()) {
                return Ok(RequestSite::Moved {
                    to: domain_url(&t.origin, &domain),
                    max_age: PRIMARY_MAX_AGE,
                    label: sub.to_string(),
                    origin: t.origin.clone(),
                    company: Some(t.clone()),
                });
            }
        }
        Ok(site)
    }

    /// The site of company `entry`, reached at `origin`.
    fn site_of(
        &self,
        entry: Arc<TenantEntry>,
        origin: Origin,
    ) -> Result<RequestSite, ResolveError> {
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
            _ => RequestSite::Unknown {
                subdomain: entry.subdomain.clone(),
                origin,
            },
        })
    }
}
