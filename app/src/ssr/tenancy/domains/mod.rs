//! A company's own addresses: custom domains it has proven it holds (a TXT record), served by host and given certificates by Caddy only once verified; and renaming its subdomain without breaking a link.
//!
//! - [`names`]: what a typed domain normalises to, and what is refused.
//! - [`dns`]: the TXT lookup (hickory-resolver).
//! - [`addresses`]: every verified domain and redirecting old subdomain, in
//!   memory, for the resolver, Caddy's `ask` and links in mail.
//! - this module: adding, verifying (on demand and by the background
//!   recheck, with backoff), removing, and the primary domain.
//! - [`rename`]: a new subdomain, the old one redirecting (308) and
//!   reserved.
pub mod addresses;
pub mod dns;
pub mod names;
pub mod rename;

use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, SqlErr,
};
use uuid::Uuid;

use crate::ssr::entities::tenant_domains;
use crate::ssr::services::Services;
use crate::ssr::tenancy::span;

pub use addresses::Addresses;
pub use names::NameError;

/// How custom domains and renames behave (settings).
pub struct DomainSettings {
    /// Looks the proofs up.
    pub dns: dns::TxtLookup,
    /// What a custom domain's CNAME points at (`ENCLAVE_DOMAIN_TARGET`,
    /// the base domain unless set).
    pub target: String,
    /// The platform's base domain, which no custom domain may be under.
    pub base_domain: String,
    /// How often a verified domain's record is looked at again.
    pub recheck: Duration,
    /// How long a verified domain's record may be missing before it stops
    /// being served.
    pub grace: Duration,
    /// How long an old subdomain redirects after a rename.
    pub rename_redirect: Duration,
    /// How long no one else may take it.
    pub rename_reserved: Duration,
}

/// Custom domains one company may add.
pub const MAX_DOMAINS: u64 = 10;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("{0} is already added to a company")]
    Taken(String),
    #[error("a company can have at most {MAX_DOMAINS} domains")]
    TooMany,
    #[error("this company has no domain {0}")]
    NotFound(String),
    #[error("{0} is not verified yet: only a verified domain can be the primary address")]
    NotVerified(String),
    #[error(transparent)]
    Dns(#[from] dns::DnsError),
    #[error("the registry could not be reached")]
    Registry(#[from] DbErr),
}

/// What a look at a domain's TXT record found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// The record holds the token: served.
    Verified,
    /// Not verified: the record is missing or holds something else (what
    /// it held, at most a few values).
    Pending { found: Vec<String> },
    /// Verified, but the record has gone: still served until `until`.
    Missing { until: DateTime<Utc> },
    /// Verified once, but the record was gone past the grace period: no
    /// longer served until it is back.
    Lapsed,
}

/// When an unverified domain is looked at next after `failures` misses:
/// every 15, 30, then 60 s for its first day (so a record just published
/// is found within a minute), then hourly.
fn backoff(created: DateTime<Utc>, failures: i32, now: DateTime<Utc>) -> chrono::Duration {
    if now - created > chrono::Duration::days(1) {
        return chrono::Duration::hours(1);
    }
    chrono::Duration::seconds(15 << failures.clamp(0, 2))
}

impl Services {
    /// Adds `input` to company `tenant_id`, unverified, with a fresh token.
    pub async fn add_domain(
        &self,
        tenant_id: Uuid,
        input: &str,
    ) -> Result<tenant_domains::Model, DomainError> {
        let domain = names::normalise(input, &self.domains.base_domain)?;
        let held = tenant_domains::Entity::find()
            .filter(tenant_domains::Column::TenantId.eq(tenant_id))
            .count(&self.registry)
            .await?;
        if held >= MAX_DOMAINS {
            return Err(DomainError::TooMany);
        }
        let now = Utc::now();
        let row = tenant_domains::ActiveModel {
            domain: Set(domain.clone()),
            tenant_id: Set(tenant_id),
            token: Set(crate::ssr::secrets::random_hex(16)),
            created_at: Set(now),
            verified_at: Set(None),
            seen_at: Set(None),
            missing_since: Set(None),
            next_check_at: Set(now + backoff(now, 0, now)),
            failures: Set(0),
            is_primary: Set(false),
            redirect: Set(false),
        };
        match row.insert(&self.registry).await {
            Ok(row) => Ok(row),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                Err(DomainError::Taken(domain))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Company `tenant_id`'s domains, by name.
    pub async fn domains_of(
        &self,
        tenant_id: Uuid,
    ) -> Result<Vec<tenant_domains::Model>, DomainError> {
        Ok(tenant_domains::Entity::find()
            .filter(tenant_domains::Column::TenantId.eq(tenant_id))
            .order_by_asc(tenant_domains::Column::Domain)
            .all(&self.registry)
            .await?)
    }

    async fn domain_of(
        &self,
        tenant_id: Uuid,
        input: &str,
    ) -> Result<tenant_domains::Model, DomainError> {
        let domain = names::normalise(input, &self.domains.base_domain)?;
        tenant_domains::Entity::find_by_id(domain.clone())
            .filter(tenant_domains::Column::TenantId.eq(tenant_id))
            .one(&self.registry)
            .await?
            .ok_or(DomainError::NotFound(domain))
    }

    /// Removes a domain: it stops being served at once here, within
    /// seconds elsewhere.
    pub async fn remove_domain(&self, tenant_id: Uuid, input: &str) -> Result<(), DomainError> {
        let d = self.domain_of(tenant_id, input).await?;
        tenant_domains::Entity::delete_many()
            .filter(tenant_domains::Column::Domain.eq(&d.domain))
            .filter(tenant_domains::Column::TenantId.eq(tenant_id))
            .exec(&self.registry)
            .await?;
        let _ = self.addresses.refresh().await;
        Ok(())
    }

    /// Looks the domain's TXT record up now (the Verify button).
    pub async fn verify_domain(&self, tenant_id: Uuid, input: &str) -> Result<Check, DomainError> {
        let d = self.domain_of(tenant_id, input).await?;
        self.check_domain(d).await
    }

    /// Makes `input` the company's primary address (links in mail), with
    /// its subdomain redirecting there or not; `None` makes the subdomain
    /// primary again.
    pub async fn set_primary_domain(
        &self,
        tenant_id: Uuid,
        input: Option<&str>,
        redirect: bool,
    ) -> Result<(), DomainError> {
        let chosen = match input {
            Some(input) => {
                let d = self.domain_of(tenant_id, input).await?;
                if d.verified_at.is_none() {
                    return Err(DomainError::NotVerified(d.domain));
                }
                Some(d.domain)
            }
            None => None,
        };
        let txn = sea_orm::TransactionTrait::begin(&self.registry).await?;
        tenant_domains::Entity::update_many()
            .col_expr(tenant_domains::Column::IsPrimary, Expr::value(false))
            .col_expr(tenant_domains::Column::Redirect, Expr::value(false))
            .filter(tenant_domains::Column::TenantId.eq(tenant_id))
            .exec(&txn)
            .await?;
        if let Some(domain) = &chosen {
            tenant_domains::Entity::update_many()
                .col_expr(tenant_domains::Column::IsPrimary, Expr::value(true))
                .col_expr(tenant_domains::Column::Redirect, Expr::value(redirect))
                .filter(tenant_domains::Column::Domain.eq(domain))
                .filter(tenant_domains::Column::TenantId.eq(tenant_id))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        let _ = self.addresses.refresh().await;
        Ok(())
    }

    /// Looks at one domain's record and writes down what was found.
    async fn check_domain(&self, d: tenant_domains::Model) -> Result<Check, DomainError> {
        let now = Utc::now();
        // A lookup that fails (the name's servers down or refusing) counts
        // as a missing record for a verified domain, so the grace period
        // covers it; an unverified one just waits for its next look.
        let found = match self
            .domains
            .dns
            .txt(&names::challenge_name(&d.domain))
            .await
        {
            Ok(found) => found,
            Err(e) if d.verified_at.is_some() => {
                tracing::debug!(domain = %d.domain, error = %e, "custom domain's record not looked up");
                Vec::new()
            }
            Err(e) => {
                tenant_domains::Entity::update_many()
                    .col_expr(
                        tenant_domains::Column::Failures,
                        Expr::value(d.failures.saturating_add(1)),
                    )
                    .col_expr(
                        tenant_domains::Column::NextCheckAt,
                        Expr::value(now + backoff(d.created_at, d.failures + 1, now)),
                    )
                    .filter(tenant_domains::Column::Domain.eq(&d.domain))
                    .exec(&self.registry)
                    .await?;
                return Err(e.into());
            }
        };
        let proven = found.iter().any(|v| v.trim() == d.token);
        let mut row: tenant_domains::ActiveModel = d.clone().into();
        let check = match (proven, d.verified_at) {
            (true, _) => {
                row.verified_at = Set(Some(d.verified_at.unwrap_or(now)));
                row.seen_at = Set(Some(now));
                row.missing_since = Set(None);
                row.failures = Set(0);
                row.next_check_at = Set(now + span(self.domains.recheck));
                Check::Verified
            }
            (false, Some(_)) => {
                let since = d.missing_since.unwrap_or(now);
                let until = since + span(self.domains.grace);
                row.missing_since = Set(Some(since));
                row.failures = Set(d.failures.saturating_add(1));
                if now >= until {
                    row.verified_at = Set(None);
                    row.is_primary = Set(false);
                    row.redirect = Set(false);
                    row.next_check_at = Set(now + backoff(d.created_at, d.failures + 1, now));
                    tracing::warn!(domain = %d.domain, "a custom domain's TXT record has been missing past the grace period: no longer served");
                    Check::Lapsed
                } else {
                    row.next_check_at = Set((now + span(self.domains.recheck)).min(until));
                    Check::Missing { until }
                }
            }
            (false, None) => {
                row.failures = Set(d.failures.saturating_add(1));
                row.next_check_at = Set(now + backoff(d.created_at, d.failures + 1, now));
                let lapsed = d.missing_since.is_some();
                let mut found = found;
                found.truncate(3);
                if lapsed {
                    Check::Lapsed
                } else {
                    Check::Pending { found }
                }
            }
        };
        row.update(&self.registry).await?;
        if d.verified_at.is_some() != matches!(check, Check::Verified | Check::Missing { .. }) {
            let _ = self.addresses.refresh().await;
        }
        Ok(check)
    }

    /// `d` as the pages, the CLI and the API show it.
    pub fn domain_row(&self, d: &tenant_domains::Model) -> crate::wire::DomainRow {
        let target = &self.domains.target;
        crate::wire::DomainRow {
            domain: d.domain.clone(),
            state: match (d.verified_at, d.missing_since) {
                (Some(_), None) => "verified",
                (Some(_), Some(_)) => "missing",
                (None, _) => "pending",
            }
            .to_owned(),
            route: if names::is_apex(&d.domain) {
                ("A".to_owned(), format!("the addresses of {target}"))
            } else {
                ("CNAME".to_owned(), format!("{target}."))
            },
            txt: (names::challenge_name(&d.domain), d.token.clone()),
            primary: d.is_primary,
            redirect: d.redirect,
            verified_at: d.verified_at.map(|t| t.to_rfc3339()),
        }
    }

    /// The background recheck: every domain whose time has come (a few
    /// at a time), unverified ones with backoff, verified ones every
    /// `recheck`. Returns how many were looked at.
    pub async fn recheck_domains(&self) -> Result<usize, DomainError> {
        let due = tenant_domains::Entity::find()
            .filter(tenant_domains::Column::NextCheckAt.lte(Utc::now()))
            .order_by_asc(tenant_domains::Column::NextCheckAt)
            .limit(100)
            .all(&self.registry)
            .await?;
        let n = due.len();
        use futures_util::StreamExt;
        futures_util::stream::iter(due)
            .for_each_concurrent(8, |d| async move {
                let domain = d.domain.clone();
                if let Err(e) = self.check_domain(d).await {
                    tracing::debug!(%domain, error = %e, "custom domain check failed");
                }
            })
            .await;
        Ok(n)
    }
}
