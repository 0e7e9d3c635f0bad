//! Deleting a company in two steps: scheduled (`deleting`, for a grace period, undoable), then purged, leaving a tombstone and a signed receipt.
//!
//! Scheduling only marks the company: its site says until when it stays,
//! and `undelete` puts it back as it was. The purge (housekeeping once the
//! grace period ends, or at once with `--now`) removes, each step harmless
//! to repeat, so that a purge killed midway is finished by the next run:
//! 1. serving: the directory and the connection cache forget it;
//! 2. data: its database and role (or SQLite file, WAL and snapshots), the
//!    databases its restores kept, its export files;
//! 3. the registry, in one transaction: its sessions, handoff tokens,
//!    pending signups for its subdomain, member-index rows, exports, move,
//!    restore, migration and provisioning records, and its row, replaced by
//!    a tombstone (id, SHA-256 of the subdomain, created, deleted and
//!    purged times) that keeps the subdomain reserved for a while;
//! 4. the receipt, signed ([`super::receipt`]), written to the receipts
//!    directory for the operator to send.
use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::receipt::{self, Receipt, ReceiptCompany, Removed, Signed};
use super::{DeleteStep, LifecycleError};
use crate::domain::Subdomain;
use crate::ssr::entities::{
    handoff_tokens, member_emails, migration_run_companies, provisioning, sessions, signup_holds,
    subdomain_aliases, tenant_domains, tenant_exports, tenant_moves, tenant_restores,
    tenant_tombstones,
    tenants::{self, TenantStatus},
};
use crate::ssr::services::Services;
use crate::ssr::tenancy::request::directory;
use crate::ssr::tenancy::servers::databases::TenantServer;
use crate::ssr::tenancy::span;

/// How deletion is paced (settings).
#[derive(Clone, Debug)]
pub struct OffboardingSettings {
    /// `ENCLAVE_DELETION_GRACE_DAYS`: from asked to purged.
    pub grace: Duration,
    /// `ENCLAVE_SUBDOMAIN_RESERVED_DAYS`: a purged company's subdomain
    /// stays out of reach this long.
    pub reserved: Duration,
    /// `ENCLAVE_BACKUP_FULL_EVERY_DAYS`: how often full backups are taken
    /// (the operator's schedule), for the receipt's backup horizon.
    pub full_backup_every: Duration,
    /// Where receipts are written (`<data dir>/receipts`).
    pub receipts_dir: PathBuf,
}

impl Default for OffboardingSettings {
    fn default() -> Self {
        Self {
            grace: Duration::from_secs(30 * 86_400),
            reserved: Duration::from_secs(90 * 86_400),
            full_backup_every: Duration::from_secs(7 * 86_400),
            receipts_dir: PathBuf::from("receipts"),
        }
    }
}

/// When a deletion takes effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// After the grace period; undoable until then.
    Grace,
    /// Purged now.
    Now,
}

/// What asking for a deletion did.
#[derive(Debug)]
pub enum Deleted {
    /// Closed until `purge_after`; `export`: the one being made for its
    /// admins (mailed once ready).
    Scheduled {
        purge_after: DateTime<Utc>,
        export: Option<Uuid>,
    },
    Purged(Box<Signed>),
}

/// SHA-256 (hex) of a subdomain, as tombstones keep it.
pub fn subdomain_digest(sub: &str) -> String {
    hex::encode(Sha256::digest(
        format!("enclave subdomain:{sub}").as_bytes(),
    ))
}

/// Until when `sub` is reserved, if it is: by a purged company's
/// tombstone, or as a renamed company's old name.
pub async fn reserved_until(
    db: &impl ConnectionTrait,
    sub: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    let alias = crate::ssr::tenancy::domains::rename::alias_of(db, sub)
        .await?
        .map(|a| a.reserved_until);
    Ok(tombstone_until(db, sub).await?.max(alias))
}

/// Until when `sub` is reserved by a purged company, if it is.
pub async fn tombstone_until(
    db: &impl ConnectionTrait,
    sub: &str,
) -> Result<Option<DateTime<Utc>>, DbErr> {
    Ok(tenant_tombstones::Entity::find()
        .filter(tenant_tombstones::Column::SubdomainDigest.eq(subdomain_digest(sub)))
        .filter(tenant_tombstones::Column::ReservedUntil.gt(Utc::now()))
        .all(db)
        .await?
        .into_iter()
        .map(|t| t.reserved_until)
        .max())
}

impl Services {
    /// Deletes company `sub`: after the grace period, or now.
    pub async fn schedule_deletion(
        &self,
        sub: &Subdomain,
        when: Deletion,
    ) -> Result<Deleted, LifecycleError> {
        let t = directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(sub.to_string()))?;
        let now = Utc::now();
        let purge_after = match when {
            Deletion::Grace => now + span(self.offboarding.grace),
            Deletion::Now => now,
        };
        match t.status {
            TenantStatus::Active | TenantStatus::Paused => {}
            // Already scheduled: `--now` brings the purge forward.
            TenantStatus::Deleting if when == Deletion::Now => {}
            TenantStatus::Deleting => {
                return Ok(Deleted::Scheduled {
                    purge_after: t.purge_after.unwrap_or(now),
                    export: None,
                })
            }
            _ => return Err(LifecycleError::NotSettled(sub.to_string())),
        }
        let t = tenants::ActiveModel {
            id: Set(t.id),
            status: Set(TenantStatus::Deleting),
            deleted_at: Set(Some(t.deleted_at.unwrap_or(now))),
            purge_after: Set(Some(purge_after)),
            updated_at: Set(now),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(sub.as_str());
        self.pools.forget(t.id).await;
        match when {
            Deletion::Grace => {
                tracing::info!(tenant = %sub, until = %purge_after, "company scheduled for deletion");
                // Its admins get its data to keep, by mail; a failure here
                // does not undo the deletion (an operator's export still can).
                let export = match self.export_for_deletion(&t, purge_after).await {
                    Ok(id) => id,
                    Err(e) => {
                        tracing::error!(tenant = %sub, error = %crate::ssr::http::error_chain(&e), "no export for the admins of a company being deleted");
                        None
                    }
                };
                Ok(Deleted::Scheduled {
                    purge_after,
                    export,
                })
            }
            Deletion::Now => Ok(Deleted::Purged(Box::new(self.purge(&t).await?))),
        }
    }

    /// Puts a company scheduled for deletion back as it was.
    pub async fn undelete(&self, sub: &Subdomain) -> Result<tenants::Model, LifecycleError> {
        let t = directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(sub.to_string()))?;
        let due = t.purge_after.is_none_or(|p| p <= Utc::now());
        if t.status != TenantStatus::Deleting || due {
            return Err(LifecycleError::NotScheduled(sub.to_string()));
        }
        // Only while it is still scheduled: a purge that began wins.
        let done = tenants::Entity::update_many()
            .col_expr(
                tenants::Column::Status,
                sea_orm::sea_query::Expr::value(sea_orm::ActiveEnum::to_value(
                    &TenantStatus::Active,
                )),
            )
            .col_expr(
                tenants::Column::DeletedAt,
                sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                tenants::Column::PurgeAfter,
                sea_orm::sea_query::Expr::value(Option::<DateTime<Utc>>::None),
            )
            .col_expr(
                tenants::Column::UpdatedAt,
                sea_orm::sea_query::Expr::value(Utc::now()),
            )
            .filter(tenants::Column::Id.eq(t.id))
            .filter(tenants::Column::Status.eq(TenantStatus::Deleting))
            .filter(tenants::Column::PurgeAfter.gt(Utc::now()))
            .exec(&self.registry)
            .await?;
        if done.rows_affected != 1 {
            return Err(LifecycleError::NotScheduled(sub.to_string()));
        }
        self.directory.invalidate(sub.as_str());
        if let Err(e) = self.drop_deletion_exports(t.id).await {
            tracing::warn!(tenant = %sub, error = %e, "the deletion's export stays until housekeeping");
        }
        tracing::info!(tenant = %sub, "company undeleted");
        directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| LifecycleError::NotFound(sub.to_string()))
    }

    /// Housekeeping: purges the companies whose grace period is over, and
    /// finishes purges left midway (not touched since `stale_before`).
    pub async fn purge_due(&self, stale_before: DateTime<Utc>) -> usize {
        // Only those due: companies in their grace period stay unread.
        let due = tenants::Entity::find()
            .filter(tenants::Column::Status.eq(TenantStatus::Deleting))
            .filter(tenants::Column::UpdatedAt.lte(stale_before))
            .filter(
                sea_orm::Condition::any()
                    .add(tenants::Column::PurgeAfter.is_null())
                    .add(tenants::Column::PurgeAfter.lte(Utc::now())),
            )
            .all(&self.registry)
            .await
            .unwrap_or_default();
        let mut purged = 0;
        for t in due {
            match self.purge(&t).await {
                Ok(_) => purged += 1,
                Err(e) => {
                    tracing::error!(tenant = %t.subdomain, error = %crate::ssr::http::error_chain(&e), "cannot purge a company")
                }
            }
        }
        purged
    }

    /// Removes everything of company `t` (status `deleting`) and leaves
    /// its tombstone; returns the signed receipt, also written to the
    /// receipts directory.
    pub(in crate::ssr::tenancy) async fn purge(
        &self,
        t: &tenants::Model,
    ) -> Result<Signed, LifecycleError> {
        let mut removed = Vec::new();
        let mut note = |what: String, place: String| {
            removed.push(Removed {
                what,
                place,
                at: Utc::now(),
            })
        };
        tenants::ActiveModel {
            id: Set(t.id),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.directory.invalidate(&t.subdomain);
        self.pools.forget(t.id).await;
        self.checkpoint(DeleteStep::Serving)?;

        let server_name = t
            .db_server
            .clone()
            .unwrap_or_else(|| crate::ssr::tenancy::servers::fleet::FIRST.to_owned());
        let server = self
            .provisioner
            .fleet()
            .server(t.db_server.as_deref())
            .await?;
        server.drop(t.id).await?;
        let name = TenantServer::db_name(t.id);
        match &server {
            TenantServer::Postgres { .. } => note(
                format!("database {name} and its role {name}"),
                format!("PostgreSQL server '{server_name}' ({})", server.address()),
            ),
            TenantServer::Sqlite { dir } => note(
                format!("database file {}.db with its WAL and shared memory", t.id),
                dir.display().to_string(),
            ),
        }
        let restores = tenant_restores::Entity::find()
            .filter(tenant_restores::Column::TenantId.eq(t.id))
            .all(&self.registry)
            .await?;
        for r in restores.iter().filter(|r| r.kept.is_some()) {
            self.drop_kept(r).await.map_err(|e| {
                LifecycleError::Db(DbErr::Custom(crate::ssr::http::error_chain(&e)))
            })?;
            note(
                format!(
                    "the database a restore kept ({})",
                    r.kept.as_deref().unwrap_or("")
                ),
                format!("server '{}'", r.server),
            );
        }
        let snapshots = self.backups.snapshot_dir.join(t.id.to_string());
        match tokio::fs::remove_dir_all(&snapshots).await {
            Ok(()) => note(
                "its SQLite snapshots".into(),
                snapshots.display().to_string(),
            ),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(LifecycleError::Db(DbErr::Custom(e.to_string()))),
        }
        let exports = tenant_exports::Entity::find()
            .filter(tenant_exports::Column::TenantId.eq(t.id))
            .all(&self.registry)
            .await?;
        for x in &exports {
            let path = self.export_path(x.id);
            for file in [
                path.clone(),
                path.with_extension("zip.partial"),
                path.with_extension("zip.jsonl-scratch"),
            ] {
                if tokio::fs::remove_file(&file).await.is_ok() {
                    note(
                        format!("export file {}", file.display()),
                        "data directory".into(),
                    );
                }
            }
        }
        self.checkpoint(DeleteStep::Database)?;

        // The registry: everything of it, and the tombstone, at once.
        let purged_at = Utc::now();
        let reserved_until = purged_at + span(self.offboarding.reserved);
        let subject = format!("t:{}:%", t.id.simple());
        let txn = self.registry.begin().await?;
        let mut rows = Vec::new();
        macro_rules! gone {
            ($label:expr, $q:expr) => {
                rows.push(format!("{} {}", $q.exec(&txn).await?.rows_affected, $label))
            };
        }
        gone!(
            "sessions",
            sessions::Entity::delete_many().filter(sessions::Column::Subject.like(&subject))
        );
        gone!(
            "handoff tokens",
            handoff_tokens::Entity::delete_many().filter(handoff_tokens::Column::TenantId.eq(t.id))
        );
        gone!(
            "pending signups for its subdomain",
            signup_holds::Entity::delete_many()
                .filter(signup_holds::Column::Subdomain.eq(&t.subdomain))
        );
        gone!(
            "member-index rows",
            member_emails::Entity::delete_many().filter(member_emails::Column::TenantId.eq(t.id))
        );
        gone!(
            "export records",
            tenant_exports::Entity::delete_many().filter(tenant_exports::Column::TenantId.eq(t.id))
        );
        gone!(
            "move records",
            tenant_moves::Entity::delete_many().filter(tenant_moves::Column::TenantId.eq(t.id))
        );
        gone!(
            "restore records",
            tenant_restores::Entity::delete_many()
                .filter(tenant_restores::Column::TenantId.eq(t.id))
        );
        gone!(
            "migration records",
            migration_run_companies::Entity::delete_many()
                .filter(migration_run_companies::Column::TenantId.eq(t.id))
        );
        gone!(
            "provisioning records",
            provisioning::Entity::delete_many().filter(provisioning::Column::TenantId.eq(t.id))
        );
        gone!(
            "custom domains",
            tenant_domains::Entity::delete_many().filter(tenant_domains::Column::TenantId.eq(t.id))
        );
        gone!(
            "old subdomains",
            subdomain_aliases::Entity::delete_many()
                .filter(subdomain_aliases::Column::TenantId.eq(t.id))
        );
        gone!(
            "company rows",
            tenants::Entity::delete_many().filter(tenants::Column::Id.eq(t.id))
        );
        tenant_tombstones::Entity::delete_by_id(t.id)
            .exec(&txn)
            .await?;
        tenant_tombstones::ActiveModel {
            id: Set(t.id),
            subdomain_digest: Set(subdomain_digest(&t.subdomain)),
            created_at: Set(t.created_at),
            deleted_at: Set(t.deleted_at.unwrap_or(purged_at)),
            purged_at: Set(purged_at),
            reserved_until: Set(reserved_until),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        note(
            format!("registry rows: {}", rows.join(", ")),
            "registry".into(),
        );
        self.directory.invalidate(&t.subdomain);
        let _ = self.addresses.refresh().await;

        let (horizon, rule) = if server.is_postgres() {
            let full = self.backups.retention_full.max(1);
            let every = span(self.offboarding.full_backup_every);
            (
                purged_at + every * full as i32,
                format!(
                    "pgBackRest keeps the {full} newest full backups (and what depends on them); \
                     with a full backup every {} days, the last backup taken before the purge \
                     expires by then",
                    every.num_days()
                ),
            )
        } else {
            (
                purged_at,
                "SQLite: the company's snapshots were removed with it".to_owned(),
            )
        };
        let signed = receipt::sign(
            &self.cipher,
            Receipt {
                format: receipt::FORMAT.into(),
                company: ReceiptCompany {
                    id: t.id,
                    name: t.name.clone(),
                    subdomain: t.subdomain.clone(),
                    created_at: t.created_at,
                },
                deletion_asked_at: t.deleted_at.unwrap_or(purged_at),
                purged_at,
                removed,
                backups_hold_it_until: horizon,
                backups: rule,
                subdomain_reserved_until: reserved_until,
            },
        );
        self.keep_receipt(t.id, &signed).await;
        tracing::info!(tenant = %t.subdomain, "company purged");
        Ok(signed)
    }

    /// Writes the receipt where the operator finds it; a failure is logged
    /// (the purge is done; the receipt was also returned to the caller).
    async fn keep_receipt(&self, id: Uuid, signed: &Signed) {
        let dir = &self.offboarding.receipts_dir;
        let written = async {
            tokio::fs::create_dir_all(dir).await?;
            let text = serde_json::to_vec_pretty(signed).map_err(std::io::Error::other)?;
            tokio::fs::write(dir.join(format!("{id}.json")), text).await
        }
        .await;
        if let Err(e) = written {
            tracing::error!(error = %e, dir = %dir.display(), "deletion receipt not written");
        }
    }
}
