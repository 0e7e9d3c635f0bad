//! A company's new subdomain: one registry transaction renames it and keeps the old name as an alias, which redirects (308) for `ENCLAVE_RENAME_REDIRECT_DAYS` and is no one else's for `ENCLAVE_RENAME_RESERVED_DAYS`.
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DbErr, EntityTrait, QueryFilter, Set, SqlErr,
    TransactionTrait,
};

use crate::domain::Subdomain;
use crate::ssr::entities::{subdomain_aliases, tenants};
use crate::ssr::mail::Mail;
use crate::ssr::services::Services;
use crate::ssr::tenancy::request::directory;
use crate::ssr::tenancy::span;

#[derive(Debug, thiserror::Error)]
pub enum RenameError {
    #[error("there is no company {0}")]
    NotFound(String),
    #[error("{0} is already the company's address")]
    Same(String),
    #[error("{0} is taken; choose another")]
    Taken(String),
    #[error("only an active company can be renamed")]
    NotActive,
    #[error("the registry could not be reached")]
    Registry(#[from] DbErr),
}

/// What a rename did.
#[derive(Debug)]
pub struct Renamed {
    pub old: String,
    pub new: String,
    pub redirect_until: DateTime<Utc>,
    pub reserved_until: DateTime<Utc>,
}

/// Until when a renamed company's old name `sub` is held, and by whom.
pub async fn alias_of(
    db: &impl sea_orm::ConnectionTrait,
    sub: &str,
) -> Result<Option<subdomain_aliases::Model>, DbErr> {
    Ok(subdomain_aliases::Entity::find_by_id(sub.to_owned())
        .filter(subdomain_aliases::Column::ReservedUntil.gt(Utc::now()))
        .one(db)
        .await?)
}

impl Services {
    /// Renames company `sub` to `new`. `actor` is who asked, for the
    /// company's audit log. Its admins are mailed the new address.
    pub async fn rename_company(
        &self,
        sub: &Subdomain,
        new: &Subdomain,
        actor: &str,
    ) -> Result<Renamed, RenameError> {
        let t = directory::find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| RenameError::NotFound(sub.to_string()))?;
        if t.status != tenants::TenantStatus::Active {
            return Err(RenameError::NotActive);
        }
        if sub == new {
            return Err(RenameError::Same(new.to_string()));
        }
        let taken = || RenameError::Taken(new.to_string());
        // Its own old name it may take back; anyone else's, or a purged
        // company's, not while reserved.
        if alias_of(&self.registry, new.as_str())
            .await?
            .is_some_and(|a| a.tenant_id != t.id)
            || crate::ssr::tenancy::lifecycle::offboarding::tombstone_until(
                &self.registry,
                new.as_str(),
            )
            .await?
            .is_some()
        {
            return Err(taken());
        }
        let now = Utc::now();
        let redirect_until = now + span(self.domains.rename_redirect);
        let reserved_until = now + span(self.domains.rename_reserved);
        let txn = self.registry.begin().await?;
        let renamed = tenants::Entity::update_many()
            .col_expr(tenants::Column::Subdomain, Expr::value(new.as_str()))
            .col_expr(tenants::Column::UpdatedAt, Expr::value(now))
            .filter(tenants::Column::Id.eq(t.id))
            .filter(tenants::Column::Subdomain.eq(sub.as_str()))
            .exec(&txn)
            .await;
        match renamed {
            Ok(r) if r.rows_affected == 1 => {}
            Ok(_) => return Err(RenameError::NotFound(sub.to_string())),
            Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                return Err(taken())
            }
            Err(e) => return Err(e.into()),
        }
        subdomain_aliases::Entity::delete_many()
            .filter(subdomain_aliases::Column::Subdomain.is_in([new.as_str(), sub.as_str()]))
            .exec(&txn)
            .await?;
        subdomain_aliases::ActiveModel {
            subdomain: Set(sub.to_string()),
            tenant_id: Set(t.id),
            renamed_at: Set(now),
            redirect_until: Set(redirect_until),
            reserved_until: Set(reserved_until),
        }
        .insert(&txn)
        .await?;
        txn.commit().await?;
        self.directory.invalidate(sub.as_str());
        self.directory.invalidate(new.as_str());
        let _ = self.addresses.refresh().await;
        tracing::info!(tenant = %t.id, old = %sub, new = %new, "company renamed");

        // The company's own record of it, and word to its admins; neither
        // can undo the rename.
        if let Ok(Some(url)) = self.directory.connection_url(&t) {
            match crate::ssr::tenancy::servers::databases::connect_once(&url).await {
                Ok(db) => {
                    let detail = format!(
                        "address changed from {sub} to {new}; the old address redirects until {}",
                        redirect_until.format("%-d %B %Y")
                    );
                    if let Err(e) = crate::ssr::accounts::users::audit(
                        &db,
                        actor,
                        "company.address_changed",
                        detail,
                    )
                    .await
                    {
                        tracing::warn!(error = %e, "rename not written to the company's audit log");
                    }
                    let admins = crate::ssr::accounts::users::admin_emails(&db)
                        .await
                        .unwrap_or_default();
                    let _ = db.close().await;
                    let url = self.company_url(t.id, new.as_str());
                    for admin in &admins {
                        self.mailer.send(
                            Mail::with_link(
                                "company_renamed",
                                admin,
                                &format!("{} has a new address", t.name),
                                &format!(
                                    "{} is now at {url} (it was {}). Links to the old address keep working until {}; after that, use the new one.",
                                    t.name,
                                    self.public.tenant_url(sub.as_str()),
                                    redirect_until.format("%-d %B %Y")
                                ),
                                ("Open the new address", &url),
                                "You did not need to do anything: people who were signed in stay signed in.",
                            )
                            .from_company(t.id),
                        );
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renamed company's database not reached for its audit log")
                }
            }
        }
        Ok(Renamed {
            old: sub.to_string(),
            new: new.to_string(),
            redirect_until,
            reserved_until,
        })
    }

    /// The company's address for links in mail: its verified primary
    /// domain, or its subdomain, at the public scheme and port.
    pub fn company_url(&self, id: uuid::Uuid, sub: &str) -> String {
        self.addresses.company_url(&self.public, id, sub)
    }
}
