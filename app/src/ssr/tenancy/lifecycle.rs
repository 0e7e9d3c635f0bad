//! A company's lifecycle: create, pause, resume, delete, recover, and connecting to its database outside a request.
//!
//! The admin pages, the platform API and the CLI all call these, so each
//! operation behaves the same whoever asks.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, Set};
use secrecy::SecretString;

use super::databases::{connect_once, TenantServerError};
use super::directory;
use super::provisioning::{NewTenant, ProvisionError};
use crate::domain::Subdomain;
use crate::ssr::entities::{
    provisioning::{self, Outcome},
    tenants::{self, TenantStatus},
};
use crate::ssr::secrets::CipherError;
use crate::ssr::services::Services;

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// 404
    #[error("no company has the subdomain '{0}'")]
    NotFound(String),
    /// 409: being created or deleted.
    #[error("the company '{0}' is not active or paused")]
    NotSettled(String),
    /// 500
    #[error("registry or company database")]
    Db(#[from] DbErr),
    /// 500
    #[error("the company's database server")]
    Server(#[from] TenantServerError),
    /// 500
    #[error("the stored database URL")]
    Cipher(#[from] CipherError),
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
        let t = directory::find_by_subdomain(&self.registry, sub)
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
                outcome: Set(Outcome::Deleted),
                updated_at: Set(Utc::now()),
                ..Default::default()
            }
            .update(&self.registry)
            .await?;
        }
        tracing::info!(tenant = %sub, "company deleted");
        Ok(())
    }

    /// A connection of its own to company `sub`'s database, as its own
    /// role, for work outside a request (CLI, jobs, tests): the same
    /// database a request to `sub` would use, never from the request pool
    /// cache. Close it when done.
    pub async fn connect_tenant(
        &self,
        sub: &Subdomain,
    ) -> Result<DatabaseConnection, LifecycleError> {
        Ok(connect_once(&self.database_url(sub).await?).await?)
    }

    /// Company `sub`'s connection URL, as its own role: for operators'
    /// tools outside requests. A secret: never log or show it.
    pub async fn database_url(&self, sub: &Subdomain) -> Result<SecretString, LifecycleError> {
        let t = self.settled(sub).await?;
        self.directory
            .connection_url(&t)?
            .ok_or_else(|| LifecycleError::NotSettled(sub.to_string()))
    }

    /// Undoes company creations whose process died midway.
    pub async fn recover(&self) {
        if let Err(e) = self.provisioner.recover(self.provisioning_timeout).await {
            tracing::error!(error = %crate::ssr::http::error_chain(&e), "provisioning recovery failed");
        }
    }
}
