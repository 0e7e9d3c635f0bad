//! Password reset by email: a single-use link, good for 30 minutes, kept only as a digest in the company's own database.
//!
//! Asking for a link answers the same whether or not the email belongs to
//! an active user here, and is throttled per email (from every address
//! together, so no one can flood an inbox) and per client address. Using
//! a link sets the password and ends every session of that person.
use chrono::{TimeDelta, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, Set, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::passwords;
use super::throttle::{Throttle, ThrottleError};
use super::users::audit;
use crate::domain::{Email, Password};
use crate::ssr::entities::{password_resets, tenant_users};
use crate::ssr::mail::{Mail, Mailer};
use crate::ssr::secrets::{is_token, random_hex, token_digest};

/// How long a link works.
pub const LIFETIME: TimeDelta = TimeDelta::minutes(30);

/// Requests for links: 3 per email from one address, 5 per email in all,
/// 20 per address (sign-in attempts from it count too), per 15 minutes.
pub const REQUESTS: Throttle = Throttle {
    per_email_and_client: 3,
    per_client: 20,
    // Not per email from everywhere: strangers' requests would use up the
    // person's own. An inbox is flooded only from many addresses (an
    // IPv6 client counts per /64), each capped by `per_client`.
    per_email: None,
    window: TimeDelta::minutes(15),
};

/// The key a request is throttled under: a digest, so the sign-in log does
/// not gain addresses nobody has here, and never wider than its column.
fn throttle_key(email: &Email) -> String {
    format!("reset:{}", &token_digest(email.as_str())[..32])
}

#[derive(Debug, thiserror::Error)]
pub enum ResetError {
    #[error(transparent)]
    Throttle(#[from] ThrottleError),
    #[error("the company's database")]
    Db(#[from] DbErr),
    /// Unknown, spent, expired, or made for another company.
    #[error("This link has expired or was already used. Ask for a new one.")]
    BadLink,
    #[error("The service is busy; please try again in a moment.")]
    Busy(#[from] passwords::Busy),
}

/// Where a link points and what the message calls the company.
pub struct LinkSite {
    /// The company's site, `https://acme.example.com/`.
    pub base_url: String,
    pub company: String,
    /// Whose share of the mail queue its messages take.
    pub company_id: Uuid,
}

impl LinkSite {
    /// The links of the company a request is for, at its address
    /// (`Services::company_url`: its primary domain, or its subdomain at
    /// the public address), whatever host and scheme the request used.
    pub fn of(
        tenant: &crate::ssr::tenancy::TenantContext,
        services: &crate::ssr::services::Services,
    ) -> Self {
        LinkSite {
            base_url: services.company_url(tenant.id(), tenant.subdomain()),
            company: tenant.name().to_owned(),
            company_id: tenant.id(),
        }
    }
}

/// Counts a request for a link to `email` from `client` in the throttle
/// (never marked succeeded: every request counts in the window). What
/// follows, [`send_link`], is the same for everyone from the caller's side:
/// it runs after the answer, so an unknown email and a real one are
/// answered in the same time.
pub async fn reserve_request(
    db: &(impl ConnectionTrait + TransactionTrait),
    email: &Email,
    client: &str,
) -> Result<(), ResetError> {
    let _counted = REQUESTS.reserve(db, &throttle_key(email), client).await?;
    Ok(())
}

/// Sends a reset link to `email` if it is an active user of this company;
/// nothing otherwise. Run it off the request path (see [`reserve_request`]).
pub async fn send_link(
    db: &(impl ConnectionTrait + TransactionTrait),
    email: &Email,
    site: &LinkSite,
    mailer: &Mailer,
) -> Result<(), ResetError> {
    purge(db).await?;
    let user = tenant_users::Entity::find()
        .filter(tenant_users::Column::Email.eq(email.as_str()))
        .filter(tenant_users::Column::Disabled.eq(false))
        .one(db)
        .await?;
    let Some(user) = user else {
        return Ok(());
    };
    let token = random_hex(32);
    let now = Utc::now();
    password_resets::ActiveModel {
        token_hash: Set(token_digest(&token)),
        user_id: Set(user.id),
        created_at: Set(now),
        expires_at: Set(now + LIFETIME),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    audit(
        db,
        &user.email,
        "user.password_reset_requested",
        "Asked for a password-reset link".into(),
    )
    .await?;
    let url = format!("{}password/reset/{token}", site.base_url);
    mailer.send(Mail::with_link(
        "password_reset",
        &user.email,
        &format!("Reset your password for {}", site.company),
        &format!(
            "Someone (we hope you) asked to reset the password of {} at {}.",
            user.email, site.company
        ),
        ("Choose a new password", &url),
        "The link works once, for 30 minutes. If you did not ask for it, ignore this message: your password stays as it is.",
    ).from_company(site.company_id));
    Ok(())
}

/// Whether `token` is a live link of this company (for the page that
/// shows the form; using it checks again).
pub async fn is_live(db: &impl ConnectionTrait, token: &str) -> Result<bool, DbErr> {
    if !is_token(token) {
        return Ok(false);
    }
    Ok(password_resets::Entity::find_by_id(token_digest(token))
        .filter(password_resets::Column::UsedAt.is_null())
        .filter(password_resets::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await?
        .is_some())
}

/// Spends `token` and sets the password of the user it was sent to; every
/// other link of theirs is spent too. Returns the user's id and email: the
/// caller ends their sessions. One conditional UPDATE spends the link, so
/// two uses racing cannot both succeed.
pub async fn reset(
    db: &(impl ConnectionTrait + TransactionTrait),
    company: Uuid,
    token: &str,
    new: Password,
) -> Result<(Uuid, String), ResetError> {
    if !is_token(token) {
        return Err(ResetError::BadLink);
    }
    // Hashed before the transaction, so no lock waits on argon2.
    let hash = passwords::hash_blocking(passwords::Whose::Company(company), new).await?;
    let digest = token_digest(token);
    let now = Utc::now();
    let txn = db.begin().await?;
    let spent = password_resets::Entity::update_many()
        .col_expr(password_resets::Column::UsedAt, Expr::value(now))
        .filter(password_resets::Column::TokenHash.eq(&digest))
        .filter(password_resets::Column::UsedAt.is_null())
        .filter(password_resets::Column::ExpiresAt.gt(now))
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        return Err(ResetError::BadLink);
    }
    let link = password_resets::Entity::find_by_id(digest)
        .one(&txn)
        .await?
        .ok_or(ResetError::BadLink)?;
    let user = tenant_users::Entity::find_by_id(link.user_id)
        .filter(tenant_users::Column::Disabled.eq(false))
        .one(&txn)
        .await?
        .ok_or(ResetError::BadLink)?;
    tenant_users::ActiveModel {
        id: Set(user.id),
        password_hash: Set(hash),
        ..Default::default()
    }
    .update(&txn)
    .await?;
    password_resets::Entity::update_many()
        .col_expr(password_resets::Column::UsedAt, Expr::value(now))
        .filter(password_resets::Column::UserId.eq(user.id))
        .filter(password_resets::Column::UsedAt.is_null())
        .exec(&txn)
        .await?;
    audit(
        &txn,
        &user.email,
        "user.password_reset",
        "Reset their password with an emailed link".into(),
    )
    .await?;
    txn.commit().await?;
    Ok((user.id, user.email))
}

/// Removes links expired more than a day ago (as requests come: the table
/// grows only with them).
async fn purge(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    let before = Utc::now() - TimeDelta::days(1);
    Ok(password_resets::Entity::delete_many()
        .filter(password_resets::Column::ExpiresAt.lt(before))
        .exec(db)
        .await?
        .rows_affected)
}
