//! Creating a company, as a state machine recorded in the registry so that no crash leaves half a company.
//!
//! reserve the subdomain (tenant row `provisioning`) → create the database
//! (and role) → run `TenantMigrator` → create the admin user → `active`.
//!
//! Any failure undoes what was done (drops database and role, deletes the
//! row so the subdomain is free again). A process that died midway leaves a
//! `provisioning` row; [`Provisioner::recover`] undoes those once they are
//! older than any live provisioning could be. Two creations racing for one
//! subdomain meet at the registry's unique index: one wins, the other gets
//! [`ProvisionError::Taken`].
use std::time::{Duration, Instant};

use chrono::Utc;
use migration::{MigratorTrait, TenantMigrator};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, SqlErr, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::{CompanyName, Email, Password, Role, Subdomain};
use crate::ssr::accounts::{passwords, users::audit};
use crate::ssr::entities::{
    provisioning::{self, Outcome, Step},
    tenant_users,
    tenants::{self, TenantStatus},
};
use crate::ssr::metrics::Metrics;
use crate::ssr::secrets::Cipher;
use crate::ssr::tenancy::schema::migrate::latest_tenant_schema;
use crate::ssr::tenancy::servers::databases::{
    connect_once, StepTimes, TenantServer, TenantServerError,
};
use crate::ssr::tenancy::servers::fleet::Fleet;

/// What creating a company takes, validated.
pub struct NewTenant {
    pub name: CompanyName,
    pub subdomain: Subdomain,
    pub admin_email: Email,
    pub admin_password: AdminPassword,
}

/// The first admin's password: as typed, or already hashed (a verified
/// signup hashed it when the form was sent, and keeps only the hash).
#[derive(Clone)]
pub enum AdminPassword {
    Plain(Password),
    /// argon2id, as `passwords::hash` makes it.
    Hashed(String),
}

impl From<Password> for AdminPassword {
    fn from(p: Password) -> Self {
        AdminPassword::Plain(p)
    }
}

/// Which input of a new company was refused; each caller names its own
/// form field or JSON key after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewTenantField {
    Name,
    Subdomain,
    AdminEmail,
    AdminPassword,
}

/// A refused input of a new company: which one, and the message to show.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct NewTenantError {
    pub field: NewTenantField,
    pub message: String,
}

impl NewTenant {
    /// Validates the four inputs (signup form, platform API, CLI), in
    /// order, stopping at the first refused one.
    pub fn parse(
        name: &str,
        subdomain: &str,
        admin_email: &str,
        admin_password: &str,
    ) -> Result<Self, NewTenantError> {
        fn refused(field: NewTenantField) -> impl FnOnce(&dyn std::fmt::Display) -> NewTenantError {
            move |e| NewTenantError {
                field,
                message: e.to_string(),
            }
        }
        Ok(Self {
            name: CompanyName::parse(name).map_err(|e| refused(NewTenantField::Name)(&e))?,
            subdomain: Subdomain::parse(subdomain)
                .map_err(|e| refused(NewTenantField::Subdomain)(&e))?,
            admin_email: Email::parse(admin_email)
                .map_err(|e| refused(NewTenantField::AdminEmail)(&e))?,
            admin_password: Password::parse(admin_password)
                .map_err(|e| refused(NewTenantField::AdminPassword)(&e))?
                .into(),
        })
    }
}

/// Test hook: fail right after `after`. With `crash`, nothing is undone,
/// as if the process had died there.
#[derive(Clone, Copy, Debug)]
pub struct FailPoint {
    pub after: Step,
    pub crash: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// 409: someone holds (or is creating) this subdomain.
    #[error("The subdomain '{0}' is taken.")]
    Taken(String),
    /// 500: something broke after `step` (`None`: before the subdomain was
    /// reserved); everything done so far was undone.
    #[error("creating the company failed after step {step:?}")]
    Failed {
        step: Option<Step>,
        #[source]
        source: StepError,
    },
}

/// What went wrong in one step of creating a company.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("registry or company database")]
    Db(#[from] DbErr),
    #[error("creating the company's database")]
    Server(#[from] TenantServerError),
    #[error("choosing the company's database server")]
    Placement(#[from] crate::ssr::tenancy::servers::fleet::FleetError),
    #[error("password hashing")]
    Hashing(#[from] tokio::task::JoinError),
    #[error("password hashing")]
    HashingBusy(#[from] passwords::Busy),
    #[error("injected failure (crash: {crash})")]
    Injected { crash: bool },
}

#[derive(Clone)]
pub struct Provisioner {
    registry: DatabaseConnection,
    fleet: Fleet,
    cipher: Cipher,
    fail_point: Option<FailPoint>,
    metrics: Option<Metrics>,
}

impl Provisioner {
    /// `server` is the first of the [`Fleet`]'s servers.
    pub fn new(registry: DatabaseConnection, server: TenantServer, cipher: Cipher) -> Self {
        let use_template = server.uses_template();
        Self {
            fleet: Fleet::new(registry.clone(), cipher.clone(), server, use_template),
            registry,
            cipher,
            fail_point: None,
            metrics: None,
        }
    }

    /// Times each step into `enclave_provisioning_step_seconds`.
    pub fn with_metrics(mut self, metrics: Metrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    pub fn with_fail_point(mut self, fail_point: FailPoint) -> Self {
        self.fail_point = Some(fail_point);
        self
    }

    /// The first server (`ENCLAVE_TENANT_DB_URL`, or the SQLite directory).
    pub fn server(&self) -> &TenantServer {
        self.fleet.first()
    }

    /// Every server companies are placed on.
    pub fn fleet(&self) -> &Fleet {
        &self.fleet
    }

    pub async fn provision(&self, new: NewTenant) -> Result<tenants::Model, ProvisionError> {
        let started = Instant::now();
        let id = Uuid::new_v4();
        // The server is chosen, and recorded, before anything is made on it:
        // undo and recovery drop what exists there.
        let (placed, server) = self
            .fleet
            .place()
            .await
            .map_err(|e| ProvisionError::Failed {
                step: None,
                source: e.into(),
            })?;
        match reserve(
            &self.registry,
            id,
            new.name.as_str(),
            new.subdomain.as_str(),
            &placed,
        )
        .await
        {
            Ok(true) => {}
            Ok(false) => return Err(ProvisionError::Taken(new.subdomain.to_string())),
            Err(e) => {
                return Err(ProvisionError::Failed {
                    step: None,
                    source: e.into(),
                });
            }
        }
        let _ = self
            .record(
                id,
                new.subdomain.as_str(),
                Step::Reserved,
                Outcome::Running,
                None,
                None,
            )
            .await;

        let mut done = None;
        let result = self.build(id, &new, &server, &mut done).await;
        let elapsed = started.elapsed().as_millis() as i64;
        match result {
            Ok((model, from_template)) => {
                let _ = self
                    .record(
                        id,
                        new.subdomain.as_str(),
                        Step::Admin,
                        Outcome::Succeeded,
                        None,
                        Some(elapsed),
                    )
                    .await;
                tracing::info!(tenant = %new.subdomain, ms = elapsed, from_template, "company provisioned");
                Ok(model)
            }
            Err(source @ StepError::Injected { crash: true }) => {
                Err(ProvisionError::Failed { step: done, source })
            }
            Err(source) => {
                let reason = crate::ssr::http::error_chain(&source);
                tracing::error!(tenant = %new.subdomain, step = ?done, error = %reason, "provisioning failed; undoing");
                if let Err(undo) = self.undo(id, &reason).await {
                    tracing::error!(tenant = %new.subdomain, error = %crate::ssr::http::error_chain(&undo), "undo failed; recovery will retry");
                    let _ = self.set_status(id, TenantStatus::Failed).await;
                }
                Err(ProvisionError::Failed { step: done, source })
            }
        }
    }

    async fn build(
        &self,
        id: Uuid,
        new: &NewTenant,
        server: &TenantServer,
        done: &mut Option<Step>,
    ) -> Result<(tenants::Model, bool), StepError> {
        let sub = new.subdomain.as_str();
        self.checkpoint(Step::Reserved, done)?;

        // The admin's password hash (tens of milliseconds of CPU) is made
        // on the blocking pool while the database is being created.
        let hashing = match new.admin_password.clone() {
            AdminPassword::Plain(p) => {
                tokio::spawn(passwords::hash_blocking(passwords::Whose::Platform, p))
            }
            AdminPassword::Hashed(h) => tokio::spawn(async move { Ok(h) }),
        };
        let mut created = server.create(id).await?;
        let mut steps = std::mem::take(&mut created.steps);
        let registry = Instant::now();
        tenants::ActiveModel {
            id: Set(id),
            db_url: Set(Some(self.cipher.encrypt(id, &created.url))),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.record(id, sub, Step::Database, Outcome::Running, None, None)
            .await?;
        steps.done("registry", registry);
        self.checkpoint(Step::Database, done)?;

        // A template copy comes with the administrator's session on it;
        // an empty database is migrated on a connection of its own role.
        let started = Instant::now();
        let (db, role) = match created.session.take() {
            Some(session) => (session, Some(created.db_name.clone())),
            None => (connect_once(&created.url).await?, None),
        };
        let outcome = async {
            if !created.from_template {
                TenantMigrator::up(&db, None).await?;
                steps.done("migrate", started);
            }
            let registry = Instant::now();
            self.record(id, sub, Step::Migrated, Outcome::Running, None, None)
                .await?;
            steps.done("registry", registry);
            self.checkpoint(Step::Migrated, done)?;

            let started = Instant::now();
            let admin_id = Uuid::new_v4();
            let hash = hashing.await??;
            steps.done("hash", started);
            let started = Instant::now();
            let txn = db.begin().await?;
            if let Some(role) = &role {
                // `role` is `tenant_<hex>`: nothing to escape.
                txn.execute_unprepared(&format!("SET LOCAL ROLE \"{role}\""))
                    .await?;
            }
            tenant_users::ActiveModel {
                id: Set(admin_id),
                email: Set(new.admin_email.as_str().to_owned()),
                password_hash: Set(hash),
                role: Set(Role::Admin),
                disabled: Set(false),
                created_at: Set(Utc::now()),
            }
            .insert(&txn)
            .await?;
            audit(
                &txn,
                new.admin_email.as_str(),
                "company.created",
                format!("Company '{}' created", new.name.as_str()),
            )
            .await?;
            txn.commit().await?;
            steps.done("admin", started);
            Ok::<_, StepError>(admin_id)
        }
        .await;
        let _ = db.close().await;
        let admin_id = outcome?;
        let registry = Instant::now();
        self.record(id, sub, Step::Admin, Outcome::Running, None, None)
            .await?;
        self.checkpoint(Step::Admin, done)?;

        let active = tenants::ActiveModel {
            id: Set(id),
            status: Set(TenantStatus::Active),
            admin_user_id: Set(Some(admin_id)),
            schema_version: Set(Some(latest_tenant_schema())),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        steps.done("registry", registry);
        self.observe(&steps);
        Ok((active, created.from_template))
    }

    /// Adds each step's time (summed over its parts) to the metrics.
    fn observe(&self, steps: &StepTimes) {
        let Some(metrics) = &self.metrics else { return };
        let mut sums: Vec<(&'static str, Duration)> = Vec::new();
        for (step, took) in &steps.0 {
            match sums.iter_mut().find(|(s, _)| s == step) {
                Some((_, sum)) => *sum += *took,
                None => sums.push((step, *took)),
            }
        }
        for (step, took) in sums {
            metrics.provisioning_step(step, took.as_secs_f64());
        }
    }

    fn checkpoint(&self, step: Step, done: &mut Option<Step>) -> Result<(), StepError> {
        *done = Some(step);
        match self.fail_point {
            Some(fp) if fp.after == step => Err(StepError::Injected { crash: fp.crash }),
            _ => Ok(()),
        }
    }

    /// Drops whatever exists of tenant `id` and frees its subdomain.
    pub(in crate::ssr::tenancy) async fn undo(
        &self,
        id: Uuid,
        reason: &str,
    ) -> Result<(), StepError> {
        let row = tenants::Entity::find_by_id(id).one(&self.registry).await?;
        let server = self
            .fleet
            .server(row.as_ref().and_then(|r| r.db_server.as_deref()))
            .await?;
        server.drop(id).await?;
        tenants::Entity::delete_by_id(id)
            .exec(&self.registry)
            .await?;
        if let Some(row) = row {
            let step = provisioning::Entity::find_by_id(id)
                .one(&self.registry)
                .await?
                .map_or(Step::Reserved, |r| r.step);
            let _ = provisioning::ActiveModel {
                tenant_id: Set(id),
                subdomain: Set(row.subdomain),
                step: Set(step),
                outcome: Set(Outcome::Undone),
                error: Set(Some(reason.chars().take(2000).collect())),
                updated_at: Set(Utc::now()),
                ..Default::default()
            }
            .update(&self.registry)
            .await;
        }
        Ok(())
    }

    /// Undoes provisionings that have not moved for `stale_after`: their
    /// process died. Returns how many were undone.
    pub async fn recover(&self, stale_after: Duration) -> Result<usize, DbErr> {
        let cutoff = Utc::now() - chrono::Duration::from_std(stale_after).unwrap_or_default();
        let stale = tenants::Entity::find()
            .filter(
                tenants::Column::Status.is_in([TenantStatus::Provisioning, TenantStatus::Failed]),
            )
            .filter(tenants::Column::UpdatedAt.lte(cutoff))
            .all(&self.registry)
            .await?;
        let mut undone = 0;
        for t in stale {
            match self
                .undo(t.id, "abandoned provisioning undone by recovery")
                .await
            {
                Ok(()) => {
                    tracing::warn!(tenant = %t.subdomain, "undid an abandoned provisioning");
                    undone += 1;
                }
                Err(e) => {
                    tracing::error!(tenant = %t.subdomain, error = %crate::ssr::http::error_chain(&e), "cannot undo abandoned provisioning")
                }
            }
        }
        Ok(undone)
    }

    async fn set_status(&self, id: Uuid, status: TenantStatus) -> Result<(), DbErr> {
        tenants::ActiveModel {
            id: Set(id),
            status: Set(status),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await
        .map(|_| ())
    }

    pub(in crate::ssr::tenancy) async fn record(
        &self,
        id: Uuid,
        subdomain: &str,
        step: Step,
        outcome: Outcome,
        error: Option<String>,
        duration_ms: Option<i64>,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let exists = provisioning::Entity::find_by_id(id)
            .one(&self.registry)
            .await?
            .is_some();
        let mut row = provisioning::ActiveModel {
            tenant_id: Set(id),
            subdomain: Set(subdomain.to_owned()),
            step: Set(step),
            outcome: Set(outcome),
            error: Set(error),
            updated_at: Set(now),
            duration_ms: Set(duration_ms),
            ..Default::default()
        };
        if exists {
            row.update(&self.registry).await?;
        } else {
            row.started_at = Set(now);
            row.insert(&self.registry).await?;
        }
        // Keeps `updated_at` of the tenant moving, so recovery leaves it be.
        tenants::ActiveModel {
            id: Set(id),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        Ok(())
    }
}

/// Reserves `sub` for company `id` on `server`: its row, `provisioning`
/// (not served; recovery undoes it once it stops moving). `Ok(false)`: the
/// subdomain is taken, by a company (the unique index decides races; the
/// id is fresh, so it is the only index the insert can violate) or by a
/// purged one's tombstone. Creation, import and a restore beside all
/// start here.
pub(in crate::ssr::tenancy) async fn reserve(
    registry: &DatabaseConnection,
    id: Uuid,
    name: &str,
    sub: &str,
    server: &str,
) -> Result<bool, DbErr> {
    if super::offboarding::reserved_until(registry, sub)
        .await?
        .is_some()
    {
        return Ok(false);
    }
    let now = Utc::now();
    let reserved = tenants::ActiveModel {
        id: Set(id),
        name: Set(name.to_owned()),
        subdomain: Set(sub.to_owned()),
        db_name: Set(TenantServer::db_name(id)),
        db_url: Set(None),
        db_server: Set(Some(server.to_owned())),
        status: Set(TenantStatus::Provisioning),
        admin_user_id: Set(None),
        schema_version: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
        last_migration_error: Set(None),
        deleted_at: Set(None),
        purge_after: Set(None),
    }
    .insert(registry)
    .await;
    match reserved {
        Ok(_) => Ok(true),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Keeps the reserved row of company `id` fresh while a long job fills it
/// (an import, a restore beside), so that recovery leaves it alone.
pub(in crate::ssr::tenancy) async fn keep_reserved(registry: &DatabaseConnection, id: Uuid) {
    let _ = tenants::Entity::update_many()
        .col_expr(
            tenants::Column::UpdatedAt,
            sea_orm::sea_query::Expr::value(Utc::now()),
        )
        .filter(tenants::Column::Id.eq(id))
        .filter(tenants::Column::Status.eq(TenantStatus::Provisioning))
        .exec(registry)
        .await;
}
