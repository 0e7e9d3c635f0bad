//! A company's lifecycle: create, pause, resume, delete, recover, and connecting to its database outside a request.
//!
//! The admin pages, the platform API and the CLI all call these, so each
//! operation behaves the same whoever asks.

pub mod offboarding;
pub mod provisioning;
pub mod receipt;
use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, Set};
use secrecy::SecretString;

use crate::domain::Subdomain;
use crate::ssr::entities::tenants::{self, TenantStatus};
use crate::ssr::secrets::CipherError;
use crate::ssr::services::Services;
use crate::ssr::tenancy::request::directory;
use crate::ssr::tenancy::servers::databases::{connect_once, TenantServerError};
use provisioning::{NewTenant, ProvisionError};

#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    /// 404
    #[error("no company has the subdomain '{0}'")]
    NotFound(String),
    /// 409: being created or deleted.
    #[error("the company '{0}' is not active or paused")]
    NotSettled(String),
    /// 409: undelete of a company not scheduled for deletion (or whose
    /// grace period is over).
    #[error("the company '{0}' is not scheduled for deletion, or its grace period is over")]
    NotScheduled(String),
    /// 500
    #[error("registry or company database")]
    Db(#[from] DbErr),
    /// 500
    #[error("the company's database server")]
    Server(#[from] TenantServerError),
    /// 500
    #[error("the company's database server")]
    Fleet(#[from] crate::ssr::tenancy::servers::fleet::FleetError),
    /// 500
    #[error("the stored database URL")]
    Cipher(#[from] CipherError),
    /// Tests: the process "died" after this step.
    #[error("injected crash after {0:?}")]
    Injected(DeleteStep),
}

/// Why a user could not be added from outside a request (CLI, platform API).
#[derive(Debug, thiserror::Error)]
pub enum AddUserError {
    #[error(transparent)]
    Company(#[from] LifecycleError),
    #[error(transparent)]
    User(#[from] crate::ssr::accounts::users::UserError),
}

/// The steps of a deletion after it is recorded, for the test hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteStep {
    /// No longer served, connections closed.
    Serving,
    /// Database and role dropped.
    Database,
}

impl Services {
    /// Creates a company; this process sees it at once (other instances
    /// within the lookup cache time).
    pub async fn create_tenant(&self, new: NewTenant) -> Result<tenants::Model, ProvisionError> {
        let subdomain = new.subdomain.to_string();
        let admin_email = new.admin_email.as_str().to_owned();
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
        if let Ok(t) = &created {
            // Its one user, for "find your workspace".
            if let Err(e) = crate::ssr::accounts::workspaces::note(
                &self.registry,
                &self.cipher,
                t.id,
                &admin_email,
            )
            .await
            {
                tracing::warn!(tenant = %subdomain, error = %e, "member index not updated");
            }
        }
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

    /// Gives a company a new display name (its subdomain stays). Other
    /// instances show it within their cache time.
    pub async fn rename_tenant(
        &self,
        sub: &Subdomain,
        name: &crate::domain::CompanyName,
    ) -> Result<tenants::Model, LifecycleError> {
        let t = self.settled(sub).await?;
        let t = tenants::ActiveModel {
            id: Set(t.id),
            name: Set(name.as_str().to_owned()),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(sub.as_str());
        tracing::info!(tenant = %sub, "company renamed");
        Ok(t)
    }

    /// Deletes a company now: purges it ([`offboarding`]), leaving its
    /// tombstone. The row is marked `deleting` first and every later step
    /// can be done again, so a purge whose process died is finished by the
    /// next `delete` of the same company or by recovery.
    pub async fn delete_tenant(&self, sub: &Subdomain) -> Result<(), LifecycleError> {
        self.schedule_deletion(sub, offboarding::Deletion::Now)
            .await
            .map(|_| ())
    }

    fn checkpoint(&self, step: DeleteStep) -> Result<(), LifecycleError> {
        match self.delete_crash_after {
            Some(at) if at == step => Err(LifecycleError::Injected(step)),
            _ => Ok(()),
        }
    }

    /// Adds a user with a password to company `sub` (automation: the CLI
    /// and the platform API; people are invited instead), recorded in its
    /// audit log as done by `actor`, and in the "find your workspace" index.
    pub async fn add_user_with_password(
        &self,
        sub: &Subdomain,
        actor: &str,
        email: &crate::domain::Email,
        role: crate::domain::Role,
        password: crate::domain::Password,
    ) -> Result<crate::wire::UserRow, AddUserError> {
        let t = self.settled(sub).await?;
        let db = self.connect_tenant(sub).await?;
        let added = crate::ssr::accounts::users::add(&db, t.id, actor, email, role, password).await;
        if added.is_ok() {
            if let Err(e) =
                crate::ssr::accounts::workspaces::sync(&self.registry, &self.cipher, t.id, &db)
                    .await
            {
                tracing::warn!(tenant = %sub, error = %e, "member index not updated");
            }
        }
        db.close().await.ok();
        Ok(added?)
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

    /// Undoes company creations, finishes deletions, and settles moves
    /// and restores (see `moves`, `backups::restore`), whose process died midway (untouched for the provisioning timeout).
    pub async fn recover(&self) {
        if let Err(e) = self.provisioner.recover(self.provisioning_timeout).await {
            tracing::error!(error = %crate::ssr::http::error_chain(&e), "provisioning recovery failed");
        }
        if let Err(e) = self.recover_moves().await {
            tracing::error!(error = %crate::ssr::http::error_chain(&e), "move recovery failed");
        }
        if let Err(e) = self.recover_restores().await {
            tracing::error!(error = %crate::ssr::http::error_chain(&e), "restore recovery failed");
        }
        if let Err(e) = self.expire_exports().await {
            tracing::error!(error = %crate::ssr::http::error_chain(&e), "export housekeeping failed");
        }
        let cutoff =
            Utc::now() - chrono::Duration::from_std(self.provisioning_timeout).unwrap_or_default();
        let purged = self.purge_due(cutoff).await;
        if purged > 0 {
            tracing::info!(purged, "purged companies whose deletion was due");
        }
    }
}
