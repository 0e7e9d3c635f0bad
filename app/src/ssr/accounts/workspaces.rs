//! "Find your workspace": which companies an email is an active user of, kept in the registry as keyed digests of the email (never the address), and the message that lists their sign-in links.
//!
//! A company's rows are replaced as a whole ([`sync`]) after any change to
//! its users, from its own database, so the index cannot drift from it by
//! more than a change in flight. [`rebuild_if_stale`] rebuilds every
//! company's rows when the index was made with another key (the first
//! start after an upgrade, or after a key rotation).
use std::collections::BTreeSet;

use chrono::Utc;
use sea_orm::{
    sea_query::OnConflict, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, TransactionTrait,
};
use uuid::Uuid;

use crate::domain::Email;
use crate::site::Origin;
use crate::ssr::entities::{
    member_emails, member_index, tenant_users,
    tenants::{self, TenantStatus},
};
use crate::ssr::mail::{escape, Mail, Mailer};
use crate::ssr::secrets::Cipher;
use crate::ssr::services::Services;

const PURPOSE: &str = "member email";

/// Replaces `tenant_id`'s rows with the digests of its active users' emails.
pub async fn sync(
    registry: &DatabaseConnection,
    cipher: &Cipher,
    tenant_id: Uuid,
    tenant_db: &impl ConnectionTrait,
) -> Result<(), DbErr> {
    let emails: BTreeSet<String> = tenant_users::Entity::find()
        .filter(tenant_users::Column::Disabled.eq(false))
        .all(tenant_db)
        .await?
        .into_iter()
        .map(|u| cipher.keyed_digest(PURPOSE, &u.email))
        .collect();
    let txn = registry.begin().await?;
    member_emails::Entity::delete_many()
        .filter(member_emails::Column::TenantId.eq(tenant_id))
        .exec(&txn)
        .await?;
    for chunk in emails.into_iter().collect::<Vec<_>>().chunks(500) {
        member_emails::Entity::insert_many(chunk.iter().map(|d| member_emails::ActiveModel {
            email_digest: Set(d.clone()),
            tenant_id: Set(tenant_id),
        }))
        .on_conflict(
            OnConflict::columns([
                member_emails::Column::EmailDigest,
                member_emails::Column::TenantId,
            ])
            .do_nothing()
            .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
    }
    txn.commit().await
}

/// Adds one active user's email to `tenant_id`'s rows (a new company's
/// first admin).
pub async fn note(
    registry: &DatabaseConnection,
    cipher: &Cipher,
    tenant_id: Uuid,
    email: &str,
) -> Result<(), DbErr> {
    member_emails::Entity::insert(member_emails::ActiveModel {
        email_digest: Set(cipher.keyed_digest(PURPOSE, email)),
        tenant_id: Set(tenant_id),
    })
    .on_conflict(
        OnConflict::columns([
            member_emails::Column::EmailDigest,
            member_emails::Column::TenantId,
        ])
        .do_nothing()
        .to_owned(),
    )
    .exec_without_returning(registry)
    .await
    .map(|_| ())
}

/// Rebuilds every company's rows if the index was made with another key;
/// companies that cannot be reached now are logged and left for the next
/// start.
pub async fn rebuild_if_stale(services: &Services) -> Result<(), DbErr> {
    let key_id = services.cipher.key_id();
    let built = member_index::Entity::find_by_id(1)
        .one(&services.registry)
        .await?;
    if built.as_ref().is_some_and(|b| b.key_id == key_id) {
        return Ok(());
    }
    member_emails::Entity::delete_many()
        .exec(&services.registry)
        .await?;
    let companies = tenants::Entity::find()
        .filter(tenants::Column::Status.is_in([TenantStatus::Active, TenantStatus::Paused]))
        .all(&services.registry)
        .await?;
    let mut missed = 0;
    for t in &companies {
        let Ok(sub) = crate::domain::Subdomain::parse(&t.subdomain) else {
            continue;
        };
        let synced = match services.connect_tenant(&sub).await {
            Ok(db) => {
                let r = sync(&services.registry, &services.cipher, t.id, &db).await;
                db.close().await.ok();
                r.is_ok()
            }
            Err(_) => false,
        };
        if !synced {
            missed += 1;
            tracing::warn!(tenant = %t.subdomain, "member index: company not reached; next start tries again");
        }
    }
    if missed == 0 {
        member_index::Entity::insert(member_index::ActiveModel {
            id: Set(1),
            key_id: Set(key_id),
            built_at: Set(Utc::now()),
        })
        .on_conflict(
            OnConflict::column(member_index::Column::Id)
                .update_columns([member_index::Column::KeyId, member_index::Column::BuiltAt])
                .to_owned(),
        )
        .exec_without_returning(&services.registry)
        .await?;
    }
    tracing::info!(companies = companies.len(), missed, "member index rebuilt");
    Ok(())
}

/// The active companies `email` is an active user of: (name, subdomain).
pub async fn find(
    registry: &DatabaseConnection,
    cipher: &Cipher,
    email: &Email,
) -> Result<Vec<(String, String)>, DbErr> {
    let ids: Vec<Uuid> = member_emails::Entity::find()
        .filter(member_emails::Column::EmailDigest.eq(cipher.keyed_digest(PURPOSE, email.as_str())))
        .all(registry)
        .await?
        .into_iter()
        .map(|m| m.tenant_id)
        .collect();
    if ids.is_empty() {
        return Ok(vec![]);
    }
    let mut found: Vec<(String, String)> = tenants::Entity::find()
        .filter(tenants::Column::Id.is_in(ids))
        .filter(tenants::Column::Status.eq(TenantStatus::Active))
        .all(registry)
        .await?
        .into_iter()
        .map(|t| (t.name, t.subdomain))
        .collect();
    found.sort();
    Ok(found)
}

/// Mails `email` the sign-in links of its companies, if it has any; an
/// email with none gets nothing (no message to someone who is no user).
pub async fn send_list(
    registry: &DatabaseConnection,
    cipher: &Cipher,
    email: &Email,
    origin: &Origin,
    addresses: &crate::ssr::tenancy::domains::Addresses,
    mailer: &Mailer,
) -> Result<usize, DbErr> {
    let found = find(registry, cipher, email).await?;
    if found.is_empty() {
        return Ok(0);
    }
    let links: Vec<(String, String)> = found
        .iter()
        .map(|(name, sub)| {
            (
                name.clone(),
                format!("{}login", addresses.url_of(origin, sub)),
            )
        })
        .collect();
    let mut text = format!("You asked which companies {email} can sign in to on Enclave:\n\n");
    let mut html = format!(
        "<!DOCTYPE html><html><body style=\"font-family:sans-serif;line-height:1.5\"><p>You asked which companies {} can sign in to on Enclave:</p><ul>",
        escape(email.as_str())
    );
    for (name, url) in &links {
        text.push_str(&format!("- {name}: {url}\n"));
        html.push_str(&format!(
            "<li><a href=\"{}\">{}</a> <span style=\"color:#555\">{}</span></li>",
            escape(url),
            escape(name),
            escape(url)
        ));
    }
    text.push_str("\nIf you did not ask, ignore this message.\n");
    html.push_str("</ul><p style=\"font-size:.9em;color:#555\">If you did not ask, ignore this message.</p></body></html>");
    mailer.send(Mail {
        kind: "find_workspace",
        sender: None,
        to: email.as_str().to_owned(),
        subject: "Your companies on Enclave".into(),
        text,
        html,
    });
    Ok(links.len())
}
