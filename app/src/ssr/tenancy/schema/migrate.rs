//! `migrate`: every company database to the latest tenant schema, bounded in parallel.
//!
//! Tenants run in parallel (bounded), each on one short-lived connection.
//! First, every PostgreSQL server's company roles are given the limits of
//! the settings (statement and idle-transaction time, connections).
//! A failing tenant is recorded and skipped past; tenants whose recorded
//! `schema_version` is already the latest are not even connected to, so a
//! re-run touches only those still behind.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use chrono::Utc;
use migration::{MigratorTrait, TenantMigrator};
use sea_orm::{ActiveModelTrait, DbErr, Set};
use tokio::{sync::Semaphore, task::JoinSet};

use crate::domain::Subdomain;
use crate::ssr::entities::tenants::{self, TenantStatus};
use crate::ssr::http::error_chain;
use crate::ssr::secrets::CipherError;
use crate::ssr::services::Services;
use crate::ssr::tenancy::databases::connect_once;
use crate::ssr::tenancy::{directory, fleet};

#[derive(Clone, Debug)]
pub struct MigrateOptions {
    /// Tenants migrated at once (each holds one connection).
    pub concurrency: usize,
    /// Only this tenant.
    pub only: Option<Subdomain>,
    /// List what is pending; change nothing.
    pub dry_run: bool,
}

#[derive(Clone, Debug)]
pub enum Outcome {
    /// These migrations were applied.
    Migrated(Vec<String>),
    /// Nothing to do.
    Current,
    /// Dry run: these would be applied.
    Pending(Vec<String>),
    Failed(Arc<TenantMigrationError>),
}

/// Two outcomes are equal when they say the same; failures, when their
/// messages (cause chains included) read the same.
impl PartialEq for Outcome {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Migrated(a), Self::Migrated(b)) | (Self::Pending(a), Self::Pending(b)) => a == b,
            (Self::Current, Self::Current) => true,
            (Self::Failed(a), Self::Failed(b)) => error_chain(&**a) == error_chain(&**b),
            _ => false,
        }
    }
}

/// Why one company could not be migrated.
#[derive(Debug, thiserror::Error)]
pub enum TenantMigrationError {
    #[error("no database URL recorded")]
    NoUrl,
    #[error("the stored database URL")]
    Cipher(#[from] CipherError),
    #[error("the company's database")]
    Db(#[from] DbErr),
    #[error("migrated, but the registry could not record it")]
    Record(#[source] DbErr),
    #[error("the migration task failed")]
    Task(#[from] tokio::task::JoinError),
}

#[derive(Clone, Debug)]
pub struct TenantResult {
    pub subdomain: String,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

#[derive(Debug, Default)]
pub struct Summary {
    pub results: Vec<TenantResult>,
    pub elapsed: Duration,
}

impl Summary {
    fn count(&self, f: impl Fn(&Outcome) -> bool) -> usize {
        self.results.iter().filter(|r| f(&r.outcome)).count()
    }
    pub fn migrated(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Migrated(_)))
    }
    pub fn current(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Current))
    }
    pub fn pending(&self) -> usize {
        self.count(|o| matches!(o, Outcome::Pending(_)))
    }
    /// The companies that failed, each with its error's cause chain.
    pub fn failed(&self) -> impl Iterator<Item = (&str, String)> {
        self.results.iter().filter_map(|r| match &r.outcome {
            Outcome::Failed(e) => Some((r.subdomain.as_str(), error_chain(&**e))),
            _ => None,
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot read the registry")]
    Registry(#[from] DbErr),
    #[error("no company has the subdomain '{0}'")]
    UnknownTenant(String),
    #[error("cannot list the database servers")]
    Servers(#[from] fleet::FleetError),
    #[error("cannot set the company roles' limits on server '{0}'")]
    Limits(String, #[source] DbErr),
}

/// The name of `M`'s newest migration: what an up-to-date tenant records.
pub fn latest<M: MigratorTrait>() -> String {
    M::migrations()
        .last()
        .map(|m| m.name().to_owned())
        .unwrap_or_default()
}

/// The tenant migration a freshly provisioned database is at.
pub fn latest_tenant_schema() -> String {
    latest::<TenantMigrator>()
}

/// Where a recorded tenant schema stands: (its place in the migration
/// list, counting from 1; the list's length), for people to read.
pub fn tenant_schema_position(name: &str) -> Option<(usize, usize)> {
    let all = TenantMigrator::migrations();
    all.iter()
        .position(|m| m.name() == name)
        .map(|i| (i + 1, all.len()))
}

/// Migrates every active or paused tenant (or `opts.only`) with `M`,
/// calling `progress` as each finishes. `total` is reported first.
/// `opts.concurrency` companies at a time on each database server, the
/// servers in parallel.
pub async fn migrate_tenants<M: MigratorTrait + 'static>(
    services: &Services,
    opts: &MigrateOptions,
    mut total: impl FnMut(usize),
    mut progress: impl FnMut(&TenantResult),
) -> Result<Summary, MigrateError> {
    let started = Instant::now();
    let latest = latest::<M>();
    let every: Vec<tenants::Model> = directory::list(&services.registry).await?;
    let mut tenants: Vec<tenants::Model> = every
        .iter()
        .filter(|t| matches!(t.status, TenantStatus::Active | TenantStatus::Paused))
        .cloned()
        .collect();
    if let Some(only) = &opts.only {
        tenants.retain(|t| t.subdomain == only.as_str());
        if tenants.is_empty() {
            return Err(MigrateError::UnknownTenant(only.to_string()));
        }
    }
    total(tenants.len());

    let fleet = services.provisioner.fleet();
    let servers: std::collections::HashSet<String> =
        fleet.list().await?.into_iter().map(|s| s.name).collect();
    // Roles made before the limits were set (or changed) get them now.
    if !opts.dry_run {
        for name in &servers {
            let server = fleet.server(Some(name)).await?;
            let on_it = every
                .iter()
                .filter(|t| t.db_server.as_deref().unwrap_or(fleet::FIRST) == name)
                .map(|t| t.id)
                .collect::<Vec<_>>();
            let set = server
                .apply_limits(on_it)
                .await
                .map_err(|e| MigrateError::Limits(name.clone(), e))?;
            tracing::debug!(server = %name, roles = set, "company role limits set");
        }
    }
    let mut per_server: std::collections::HashMap<String, Arc<Semaphore>> = Default::default();
    let mut running = JoinSet::new();
    let mut summary = Summary::default();
    for t in tenants {
        if t.schema_version.as_deref() == Some(latest.as_str()) && t.last_migration_error.is_none()
        {
            let r = TenantResult {
                subdomain: t.subdomain,
                outcome: Outcome::Current,
                elapsed: Duration::ZERO,
            };
            progress(&r);
            summary.results.push(r);
            continue;
        }
        // The company's server, as `Fleet::server` reads its row.
        let server = t
            .db_server
            .clone()
            .filter(|name| servers.contains(name))
            .unwrap_or_else(|| fleet::FIRST.to_owned());
        let permits = per_server
            .entry(server)
            .or_insert_with(|| Arc::new(Semaphore::new(opts.concurrency.max(1))))
            .clone();
        let (services, dry_run, latest) = (services.clone(), opts.dry_run, latest.clone());
        running.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let started = Instant::now();
            let outcome = migrate_one::<M>(&services, &t, dry_run, &latest).await;
            TenantResult {
                subdomain: t.subdomain,
                outcome,
                elapsed: started.elapsed(),
            }
        });
    }
    while let Some(done) = running.join_next().await {
        let r = done.unwrap_or_else(|e| TenantResult {
            subdomain: "?".into(),
            outcome: Outcome::Failed(Arc::new(e.into())),
            elapsed: Duration::ZERO,
        });
        progress(&r);
        summary.results.push(r);
    }
    for r in &summary.results {
        services.metrics.migrated(match r.outcome {
            Outcome::Migrated(_) => "migrated",
            Outcome::Current => "current",
            Outcome::Pending(_) => "pending",
            Outcome::Failed(_) => "failed",
        });
    }
    summary
        .results
        .sort_by(|a, b| a.subdomain.cmp(&b.subdomain));
    summary.elapsed = started.elapsed();
    Ok(summary)
}

async fn migrate_one<M: MigratorTrait>(
    services: &Services,
    t: &tenants::Model,
    dry_run: bool,
    latest: &str,
) -> Outcome {
    let attempt = async {
        let url = services
            .directory
            .connection_url(t)?
            .ok_or(TenantMigrationError::NoUrl)?;
        let db = connect_once(&url).await?;
        let result = async {
            let pending: Vec<String> = M::get_pending_migrations(&db)
                .await?
                .iter()
                .map(|m| m.name().to_owned())
                .collect();
            if pending.is_empty() || dry_run {
                return Ok(pending);
            }
            M::up(&db, None).await?;
            Ok::<_, DbErr>(pending)
        }
        .await;
        let _ = db.close().await;
        Ok::<_, TenantMigrationError>(result?)
    };
    let outcome = match attempt.await {
        Ok(pending) if dry_run && !pending.is_empty() => return Outcome::Pending(pending),
        Ok(pending) if pending.is_empty() => Outcome::Current,
        Ok(applied) => Outcome::Migrated(applied),
        Err(e) => Outcome::Failed(Arc::new(e)),
    };
    if dry_run {
        return outcome;
    }
    let mut row = tenants::ActiveModel {
        id: Set(t.id),
        updated_at: Set(Utc::now()),
        ..Default::default()
    };
    match &outcome {
        Outcome::Failed(e) => {
            row.last_migration_error = Set(Some(error_chain(&**e).chars().take(2000).collect()))
        }
        _ => {
            row.schema_version = Set(Some(latest.to_owned()));
            row.last_migration_error = Set(None);
        }
    }
    if let Err(e) = row.update(&services.registry).await {
        return Outcome::Failed(Arc::new(TenantMigrationError::Record(e)));
    }
    outcome
}
