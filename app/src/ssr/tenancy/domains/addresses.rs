//! Every address a company answers on besides its subdomain, in memory: verified custom domains, old subdomains still redirecting, and each company's primary domain.
//!
//! Read on every request to a host that is not a current subdomain, by
//! Caddy's `ask`, and for links in mail; refreshed from the registry every
//! few seconds by [`Addresses::keep_fresh`] (and at once when this process
//! changes one). While the registry cannot be asked the last set stays:
//! a verified domain keeps its site and its certificate through an outage.
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QuerySelect};
use uuid::Uuid;

use crate::site::Origin;
use crate::ssr::entities::{subdomain_aliases, tenant_domains, tenants};

/// One set of addresses, as read at one moment.
#[derive(Default)]
struct Snapshot {
    /// Verified custom domain → its company's current subdomain.
    domains: HashMap<String, String>,
    /// Old subdomain, still redirecting → the company's current subdomain.
    aliases: HashMap<String, (String, DateTime<Utc>)>,
    /// Company → its verified primary domain, and whether its subdomain
    /// redirects there.
    primary: HashMap<Uuid, (String, bool)>,
    /// Current subdomain → company, for those with a primary domain.
    by_subdomain: HashMap<String, Uuid>,
}

/// The addresses of every company. Cheap to clone.
#[derive(Clone)]
pub struct Addresses {
    registry: DatabaseConnection,
    now: Arc<RwLock<Arc<Snapshot>>>,
}

impl Addresses {
    /// Empty until [`Self::refresh`] first reads the registry.
    pub fn new(registry: DatabaseConnection) -> Self {
        Self {
            registry,
            now: Arc::new(RwLock::new(Arc::new(Snapshot::default()))),
        }
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.now.read().expect("addresses lock").clone()
    }

    /// Reads every verified domain and redirecting alias again. On error
    /// the set in memory stays as it was.
    pub async fn refresh(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        let domains = tenant_domains::Entity::find()
            .filter(tenant_domains::Column::VerifiedAt.is_not_null())
            .all(&self.registry)
            .await?;
        let aliases = subdomain_aliases::Entity::find()
            .filter(subdomain_aliases::Column::RedirectUntil.gt(now))
            .all(&self.registry)
            .await?;
        let mut ids: Vec<Uuid> = domains.iter().map(|d| d.tenant_id).collect();
        ids.extend(aliases.iter().map(|a| a.tenant_id));
        ids.sort_unstable();
        ids.dedup();
        let mut names = HashMap::new();
        for chunk in ids.chunks(500) {
            let rows: Vec<(Uuid, String)> = tenants::Entity::find()
                .select_only()
                .column(tenants::Column::Id)
                .column(tenants::Column::Subdomain)
                .filter(tenants::Column::Id.is_in(chunk.to_vec()))
                .into_tuple()
                .all(&self.registry)
                .await?;
            names.extend(rows);
        }
        let mut next = Snapshot::default();
        for d in domains {
            let Some(sub) = names.get(&d.tenant_id) else {
                continue;
            };
            if d.is_primary {
                next.primary
                    .insert(d.tenant_id, (d.domain.clone(), d.redirect));
                next.by_subdomain.insert(sub.clone(), d.tenant_id);
            }
            next.domains.insert(d.domain, sub.clone());
        }
        for a in aliases {
            if let Some(sub) = names.get(&a.tenant_id) {
                next.aliases
                    .insert(a.subdomain, (sub.clone(), a.redirect_until));
            }
        }
        *self.now.write().expect("addresses lock") = Arc::new(next);
        Ok(())
    }

    /// Refreshes every `every` for as long as the process runs.
    pub fn keep_fresh(&self, every: Duration) -> tokio::task::JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match this.refresh().await {
                    Ok(()) => failing = false,
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "custom domains not refreshed; serving the last set");
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(every).await;
            }
        })
    }

    /// The current subdomain of the company whose verified domain `host`
    /// (normalised) is.
    pub fn domain(&self, host: &str) -> Option<String> {
        self.snapshot().domains.get(host).cloned()
    }

    /// The current subdomain of the renamed company whose old subdomain
    /// `label` is, while it still redirects.
    pub fn renamed(&self, label: &str) -> Option<String> {
        self.snapshot()
            .aliases
            .get(label)
            .filter(|(_, until)| *until > Utc::now())
            .map(|(sub, _)| sub.clone())
    }

    /// Whether Caddy may get a certificate for `domain`: it is a verified
    /// custom domain.
    pub fn is_served(&self, domain: &str) -> bool {
        self.snapshot().domains.contains_key(domain)
    }

    /// How many verified domains are held (for `/metrics` and tests).
    pub fn served_count(&self) -> usize {
        self.snapshot().domains.len()
    }

    /// The primary domain of the company with subdomain `sub`, if its
    /// subdomain redirects there.
    pub fn redirect_of(&self, sub: &str) -> Option<String> {
        let s = self.snapshot();
        let id = s.by_subdomain.get(sub)?;
        s.primary
            .get(id)
            .filter(|(_, redirect)| *redirect)
            .map(|(d, _)| d.clone())
    }

    /// [`Self::company_url`] by subdomain, for links made where only that
    /// is known.
    pub fn url_of(&self, origin: &Origin, sub: &str) -> String {
        let s = self.snapshot();
        match s.by_subdomain.get(sub).and_then(|id| s.primary.get(id)) {
            Some((domain, _)) => domain_url(origin, domain),
            None => origin.tenant_url(sub),
        }
    }

    /// The company's address for links: `https://app.acme.com/` when it
    /// has a verified primary domain, else its subdomain. Scheme and port
    /// are `public`'s.
    pub fn company_url(&self, public: &Origin, id: Uuid, sub: &str) -> String {
        match self.snapshot().primary.get(&id) {
            Some((domain, _)) => domain_url(public, domain),
            None => public.tenant_url(sub),
        }
    }
}

/// `domain` reached the way `origin` is: its scheme, and its port if any.
pub fn domain_url(origin: &Origin, domain: &str) -> String {
    match origin.base.rsplit_once(':') {
        Some((_, port)) => format!("{}://{domain}:{port}/", origin.scheme),
        None => format!("{}://{domain}/", origin.scheme),
    }
}
