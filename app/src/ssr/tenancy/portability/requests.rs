//! Exports company admins ask for on their settings page: made in the background, followed on the page, downloadable by that company's admins for a day.
//!
//! A request is a `tenant_exports` row (at most one running per company:
//! a partial unique index), then a task that takes one of the process's
//! export slots ([`SLOTS`], shared by every company, and taken only once
//! the company's own row is in) and writes `<data dir>/exports/<id>.zip`
//! without credentials. The row says how far it has come every second;
//! once it is ready the admin who asked is mailed a link to the settings
//! page. Housekeeping removes the file after [`KEEP`] and marks exports
//! whose process died as failed.
//!
//! When a company is scheduled for deletion, its site closes; an export is
//! made for its admins then ([`Services::export_for_deletion`]), mailed to
//! each as a one-time link on the base domain (`/exports/download/{token}`,
//! swapped for a cookie on its first view like every emailed link), and
//! kept until the purge.
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use sea_orm::{
    sea_query::Expr, ActiveEnum, ActiveModelTrait, ActiveValue::Set, ColumnTrait, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, SqlErr,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

use super::export::Progress;
use crate::domain::Subdomain;
use crate::ssr::entities::tenant_exports::{self, ExportStatus};
use crate::ssr::heartbeat::Heartbeat;
use crate::ssr::mail::Mail;
use crate::ssr::services::Services;

/// How long a finished export may be downloaded.
pub const KEEP: Duration = Duration::from_secs(24 * 3600);
/// Exports made at once by one process, whichever companies ask.
pub const SLOTS: usize = 2;
/// A running export not heard from for this long: its process died.
const STALE: Duration = Duration::from_secs(60);
/// How often a running export writes its progress.
const TICK: Duration = Duration::from_secs(1);

fn slots() -> &'static Semaphore {
    static SLOTS_: Semaphore = Semaphore::const_new(SLOTS);
    &SLOTS_
}

#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    #[error("An export of this company is already being made; it is shown below.")]
    Running,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Who is told an export is ready.
enum Notify {
    /// The admin who asked: a link to the settings page.
    Admin(String),
    /// The admins of a company scheduled for deletion: a link that needs
    /// no sign-in, valid until the purge.
    Deletion {
        admins: Vec<String>,
        company: String,
        token: String,
        until: chrono::DateTime<Utc>,
    },
}

impl Services {
    /// The file of export `id`.
    pub fn export_path(&self, id: Uuid) -> PathBuf {
        self.exports_dir.join(format!("{id}.zip"))
    }

    /// Starts an export of company `tenant` (`sub`) asked by admin `email`;
    /// returns its id at once.
    pub async fn request_export(
        &self,
        tenant: Uuid,
        sub: &Subdomain,
        email: &str,
    ) -> Result<Uuid, RequestError> {
        self.start_export(tenant, sub, email, None, Notify::Admin(email.to_owned()))
            .await
    }

    /// Company `t` was scheduled for deletion (purged at `until`): an
    /// export for its admins, each mailed a link to it. Returns its id;
    /// `None` when the company has no active admin.
    pub async fn export_for_deletion(
        &self,
        t: &crate::ssr::entities::tenants::Model,
        until: chrono::DateTime<Utc>,
    ) -> Result<Option<Uuid>, RequestError> {
        let Ok(Some(url)) = self.directory.connection_url(t) else {
            return Ok(None);
        };
        let db = crate::ssr::tenancy::servers::databases::connect_once(&url).await?;
        let admins = crate::ssr::accounts::users::admin_emails(&db).await;
        let _ = db.close().await;
        let admins = admins?;
        if admins.is_empty() {
            return Ok(None);
        }
        let sub = Subdomain::parse(&t.subdomain).map_err(|e| DbErr::Custom(e.to_string()))?;
        let token = crate::ssr::secrets::random_hex(32);
        let notify = Notify::Deletion {
            admins,
            company: t.name.clone(),
            token: token.clone(),
            until,
        };
        self.start_export(
            t.id,
            &sub,
            "platform",
            Some((crate::ssr::secrets::token_digest(&token), until)),
            notify,
        )
        .await
        .map(Some)
    }

    async fn start_export(
        &self,
        tenant: Uuid,
        sub: &Subdomain,
        email: &str,
        link: Option<(String, chrono::DateTime<Utc>)>,
        notify: Notify,
    ) -> Result<Uuid, RequestError> {
        let id = Uuid::new_v4();
        let now = Utc::now();
        let (link_digest, until) = link.unzip();
        let inserted = tenant_exports::ActiveModel {
            id: Set(id),
            tenant_id: Set(tenant),
            requested_by: Set(email.to_owned()),
            status: Set(ExportStatus::Running),
            tables_done: Set(0),
            tables_total: Set(0),
            rows: Set(0),
            bytes: Set(None),
            error: Set(None),
            started_at: Set(now),
            updated_at: Set(now),
            expires_at: Set(until),
            link_digest: Set(link_digest),
        }
        .insert(&self.registry)
        .await;
        match inserted {
            Ok(_) => {}
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(RequestError::Running)
            }
            Err(e) => return Err(e.into()),
        }
        let services = self.clone();
        let sub = sub.clone();
        let email = email.to_owned();
        tokio::spawn(async move {
            services
                .make_export(id, tenant, sub, email, until, notify)
                .await
        });
        Ok(id)
    }

    async fn make_export(
        &self,
        id: Uuid,
        tenant: Uuid,
        sub: Subdomain,
        email: String,
        until: Option<chrono::DateTime<Utc>>,
        notify: Notify,
    ) {
        let progress = Arc::new(Progress::default());
        let ticker = {
            let registry = self.registry.clone();
            let progress = progress.clone();
            Heartbeat::every(TICK, move || {
                let (registry, progress) = (registry.clone(), progress.clone());
                async move {
                    let _ = tenant_exports::Entity::update_many()
                        .col_expr(
                            tenant_exports::Column::TablesTotal,
                            Expr::value(progress.tables_total.load(Ordering::Relaxed) as i64),
                        )
                        .col_expr(
                            tenant_exports::Column::TablesDone,
                            Expr::value(progress.tables_done.load(Ordering::Relaxed) as i64),
                        )
                        .col_expr(
                            tenant_exports::Column::Rows,
                            Expr::value(progress.rows.load(Ordering::Relaxed) as i64),
                        )
                        .col_expr(tenant_exports::Column::UpdatedAt, Expr::value(Utc::now()))
                        .filter(tenant_exports::Column::Id.eq(id))
                        .filter(tenant_exports::Column::Status.eq(ExportStatus::Running))
                        .exec(&registry)
                        .await;
                }
            })
        };
        let made = async {
            // The company's own turn is its row; the shared slot after it.
            let _slot = slots().acquire().await.map_err(std::io::Error::other)?;
            tokio::fs::create_dir_all(&self.exports_dir).await?;
            self.export_tenant_with(&sub, &self.export_path(id), false, &email, &progress)
                .await
        }
        .await;
        drop(ticker);
        let now = Utc::now();
        let mut row = tenant_exports::ActiveModel {
            id: Set(id),
            tables_done: Set(progress.tables_done.load(Ordering::Relaxed) as i64),
            tables_total: Set(progress.tables_total.load(Ordering::Relaxed) as i64),
            rows: Set(progress.rows.load(Ordering::Relaxed) as i64),
            updated_at: Set(now),
            ..Default::default()
        };
        match &made {
            Ok(done) => {
                row.status = Set(ExportStatus::Ready);
                row.bytes = Set(Some(done.bytes as i64));
                row.expires_at = Set(Some(
                    until.unwrap_or(now + chrono::Duration::from_std(KEEP).unwrap()),
                ));
            }
            Err(e) => {
                tracing::error!(tenant = %sub, export = %id, error = %crate::ssr::http::error_chain(e), "export failed");
                row.status = Set(ExportStatus::Failed);
                row.error = Set(Some(
                    "The export could not be made. Try again; if it fails again, tell us.".into(),
                ));
            }
        }
        if let Err(e) = row.update(&self.registry).await {
            tracing::error!(export = %id, error = %e, "export's outcome not recorded");
            return;
        }
        if made.is_err() {
            return;
        }
        match notify {
            Notify::Admin(email) => {
                let url = format!("{}settings#export", self.company_url(tenant, sub.as_str()));
                self.mailer.send(
                    Mail::with_link(
                        "export_ready",
                        &email,
                        "Your company's data export is ready",
                        "The export of your company's data you asked for is ready: a ZIP with each table as CSV and as JSON Lines, and a manifest.",
                        ("Download it from the settings page", &url),
                        "It can be downloaded by the company's admins, signed in, for 24 hours.",
                    )
                    .from_company(tenant),
                );
            }
            Notify::Deletion {
                admins,
                company,
                token,
                until,
            } => {
                let url = format!("{}exports/download/{token}", self.public.root_url());
                let day = until.format("%-d %B %Y, %H:%M UTC");
                for admin in admins {
                    self.mailer.send(
                        Mail::with_link(
                            "deletion_export",
                            &admin,
                            &format!("{company} is scheduled for deletion"),
                            &format!(
                                "{company} is closed and will be deleted for good on {day}. Until then it can be brought back: ask us. Its data, each table as CSV and as JSON Lines with a manifest, is ready for you to keep."
                            ),
                            ("Download the company's data", &url),
                            &format!("The link works until {day}, for the company's admins. Do not forward it."),
                        )
                        .from_company(tenant),
                    );
                }
            }
        }
    }

    /// Export `id`, as its row says now.
    pub async fn export_row(&self, id: Uuid) -> Result<Option<tenant_exports::Model>, DbErr> {
        tenant_exports::Entity::find_by_id(id)
            .one(&self.registry)
            .await
    }

    /// Company `tenant`'s exports, newest first (its settings page).
    pub async fn exports_of(&self, tenant: Uuid) -> Result<Vec<tenant_exports::Model>, DbErr> {
        tenant_exports::Entity::find()
            .filter(tenant_exports::Column::TenantId.eq(tenant))
            .order_by_desc(tenant_exports::Column::StartedAt)
            .limit(5)
            .all(&self.registry)
            .await
    }

    /// The file of export `id` of company `tenant`, if it may be
    /// downloaded now.
    pub async fn export_download(&self, tenant: Uuid, id: Uuid) -> Result<Option<PathBuf>, DbErr> {
        let row = tenant_exports::Entity::find_by_id(id)
            .filter(tenant_exports::Column::TenantId.eq(tenant))
            .filter(tenant_exports::Column::Status.eq(ExportStatus::Ready))
            .filter(tenant_exports::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.registry)
            .await?;
        Ok(row.map(|r| self.export_path(r.id)))
    }

    /// The file behind a deletion's download link `token`, if it is still
    /// valid.
    pub async fn export_by_link(&self, token: &str) -> Result<Option<(PathBuf, String)>, DbErr> {
        let row = tenant_exports::Entity::find()
            .filter(tenant_exports::Column::LinkDigest.eq(crate::ssr::secrets::token_digest(token)))
            .filter(tenant_exports::Column::Status.eq(ExportStatus::Ready))
            .filter(tenant_exports::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.registry)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let sub = crate::ssr::entities::tenants::Entity::find_by_id(row.tenant_id)
            .one(&self.registry)
            .await?
            .map(|t| t.subdomain)
            .unwrap_or_default();
        Ok(Some((self.export_path(row.id), sub)))
    }

    /// A company back from deletion: the export made for it goes now.
    pub async fn drop_deletion_exports(&self, tenant: Uuid) -> Result<(), DbErr> {
        tenant_exports::Entity::update_many()
            .col_expr(tenant_exports::Column::ExpiresAt, Expr::value(Utc::now()))
            .filter(tenant_exports::Column::TenantId.eq(tenant))
            .filter(tenant_exports::Column::LinkDigest.is_not_null())
            .exec(&self.registry)
            .await?;
        self.expire_exports().await
    }

    /// Housekeeping: removes exports past their day, and marks as failed
    /// those whose process died.
    pub async fn expire_exports(&self) -> Result<(), DbErr> {
        let now = Utc::now();
        let past = tenant_exports::Entity::find()
            .filter(tenant_exports::Column::Status.eq(ExportStatus::Ready))
            .filter(tenant_exports::Column::ExpiresAt.lte(now))
            .all(&self.registry)
            .await?;
        let stale = tenant_exports::Entity::find()
            .filter(tenant_exports::Column::Status.eq(ExportStatus::Running))
            .filter(
                tenant_exports::Column::UpdatedAt
                    .lte(now - chrono::Duration::from_std(STALE).unwrap()),
            )
            .all(&self.registry)
            .await?;
        for (row, to) in past
            .iter()
            .map(|r| (r, ExportStatus::Expired))
            .chain(stale.iter().map(|r| (r, ExportStatus::Failed)))
        {
            let path = self.export_path(row.id);
            let scratch = path.with_extension("zip.jsonl-scratch");
            for file in [path.clone(), path.with_extension("zip.partial"), scratch] {
                match tokio::fs::remove_file(&file).await {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        tracing::warn!(export = %row.id, error = %e, "export file not removed");
                        continue;
                    }
                }
            }
            tenant_exports::Entity::update_many()
                .col_expr(tenant_exports::Column::Status, Expr::value(to.to_value()))
                .col_expr(tenant_exports::Column::UpdatedAt, Expr::value(now))
                .filter(tenant_exports::Column::Id.eq(row.id))
                .filter(tenant_exports::Column::Status.eq(row.status))
                .exec(&self.registry)
                .await?;
        }
        Ok(())
    }
}
