//! The services one process shares between its web handlers, server
//! functions and CLI commands. Built once at startup (`server::startup`)
//! and provided to every request as context.
use std::time::Duration;

use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, Set};

use super::directory::Directory;
use super::entities::{provisioning, tenants, tenants::TenantStatus};
use super::metrics::Metrics;
use super::pools::TenantPools;
use super::provisioning::{NewTenant, ProvisionError, Provisioner};
use super::registry;
use super::tenant_server::TenantServerError;
use crate::domain::Subdomain;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("no company has the subdomain '{0}'")]
    NotFound(String),
    #[error("the company '{0}' is not active or paused")]
    NotSettled(String),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Server(#[from] TenantServerError),
}

#[derive(Clone)]
pub struct Services {
    pub registry: DatabaseConnection,
    pub directory: Directory,
    pub pools: TenantPools,
    pub provisioner: Provisioner,
    /// A creation stalled this long is presumed dead and undone.
    pub provisioning_timeout: Duration,
    pub metrics: Metrics,
}

impl Services {
    /// Creates a company; this process sees it at once (other instances
    /// within the lookup cache time).
    pub async fn create_tenant(&self, new: NewTenant) -> Result<tenants::Model, ProvisionError> {
        let subdomain = new.subdomain.to_string();
        let started = std::time::Instant::now();
        let created = self.provisioner.provision(new).await;
        self.directory.invalidate(&subdomain);
        let outcome = match &created {
            Ok(_) => "created",
            Err(ProvisionError::Taken(_)) => "taken",
            Err(_) => "failed",
        };
        self.metrics
            .provisioned(outcome, started.elapsed().as_secs_f64());
        created
    }

    async fn settled(&self, sub: &Subdomain) -> Result<tenants::Model, LifecycleError> {
        let t = registry::find_tenant_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(sub.to_string()))?;
        match t.status {
            TenantStatus::Active | TenantStatus::Paused => Ok(t),
            _ => Err(LifecycleError::NotSettled(sub.to_string())),
        }
    }

    /// Pauses or resumes a company. This process stops (or starts) serving
    /// it with the next request; its open connections are closed on pause.
    pub async fn set_paused(
        &self,
        sub: &Subdomain,
        paused: bool,
    ) -> Result<tenants::Model, LifecycleError> {
        let t = self.settled(sub).await?;
        let status = if paused {
            TenantStatus::Paused
        } else {
            TenantStatus::Active
        };
        let t = tenants::ActiveModel {
            id: Set(t.id),
            status: Set(status),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(sub.as_str());
        if paused {
            self.pools.forget(t.id).await;
        }
        tracing::info!(tenant = %sub, status = ?status, "company status changed");
        Ok(t)
    }

    /// Deletes a company: stops serving it, closes its connections, drops
    /// its database (and role) and frees the subdomain. The provisioning
    /// record stays, marked `deleted`.
    pub async fn delete_tenant(&self, sub: &Subdomain) -> Result<(), LifecycleError> {
        let t = self.settled(sub).await?;
        tenants::ActiveModel {
            id: Set(t.id),
            status: Set(TenantStatus::Deleting),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(sub.as_str());
        self.pools.forget(t.id).await;
        self.provisioner.server().drop(t.id).await?;
        tenants::Entity::delete_by_id(t.id)
            .exec(&self.registry)
            .await?;
        if provisioning::Entity::find_by_id(t.id)
            .one(&self.registry)
            .await?
            .is_some()
        {
            provisioning::ActiveModel {
                tenant_id: Set(t.id),
                outcome: Set("deleted".into()),
                updated_at: Set(Utc::now()),
                ..Default::default()
            }
            .update(&self.registry)
            .await?;
        }
        tracing::info!(tenant = %sub, "company deleted");
        Ok(())
    }

    /// Undoes company creations whose process died midway.
    pub async fn recover(&self) {
        if let Err(e) = self.provisioner.recover(self.provisioning_timeout).await {
            tracing::error!(error = %e, "provisioning recovery failed");
        }
    }
}
