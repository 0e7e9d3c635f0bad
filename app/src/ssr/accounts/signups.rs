//! Verified signups: the signup form holds the subdomain for an hour and mails a link; the company is created when the link is confirmed.
//!
//! The hold keeps the admin's password only as its argon2 hash and the
//! link only as a digest. A confirmed hold is marked used while the
//! company is made (so no other signup can take the subdomain meanwhile),
//! then removed; expired holds are removed as new signups come.
use chrono::{TimeDelta, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set, SqlErr,
};

use super::passwords;
use crate::domain::{CompanyName, Email, Subdomain};
use crate::ssr::entities::signup_holds;
use crate::ssr::mail::{Mail, Mailer};
use crate::ssr::secrets::{is_token, random_hex, token_digest};
use crate::ssr::tenancy::{
    directory,
    provisioning::{AdminPassword, NewTenant},
};

/// How long a link works, and the subdomain is held.
pub const LIFETIME: TimeDelta = TimeDelta::hours(1);

#[derive(Debug, thiserror::Error)]
pub enum SignupError {
    #[error("The subdomain '{0}' is taken.")]
    Taken(String),
    /// Unknown, used, expired.
    #[error("This link has expired or was already used. Please sign up again.")]
    BadLink,
    #[error("the registry")]
    Db(#[from] DbErr),
    #[error("The service is busy; please try again in a moment.")]
    Busy(#[from] passwords::Busy),
}

/// What a confirmation page shows.
pub struct Pending {
    pub name: String,
    pub subdomain: String,
    pub email: String,
}

/// Holds `new.subdomain` for an hour and mails `new.admin_email` a link to
/// `<root_url>verify/{token}`.
pub async fn hold(
    registry: &DatabaseConnection,
    new: &NewTenant,
    root_url: &str,
    mailer: &Mailer,
) -> Result<(), SignupError> {
    let now = Utc::now();
    signup_holds::Entity::delete_many()
        .filter(signup_holds::Column::ExpiresAt.lt(now))
        .exec(registry)
        .await?;
    let sub = new.subdomain.as_str();
    if directory::find_by_subdomain(registry, &new.subdomain)
        .await?
        .is_some()
    {
        return Err(SignupError::Taken(sub.to_owned()));
    }
    let hash = match &new.admin_password {
        AdminPassword::Plain(p) => {
            passwords::hash_blocking(passwords::Whose::Platform, p.clone()).await?
        }
        AdminPassword::Hashed(h) => h.clone(),
    };
    let token = random_hex(32);
    signup_holds::ActiveModel {
        token_hash: Set(token_digest(&token)),
        subdomain: Set(sub.to_owned()),
        name: Set(new.name.as_str().to_owned()),
        email: Set(new.admin_email.as_str().to_owned()),
        password_hash: Set(hash),
        created_at: Set(now),
        expires_at: Set(now + LIFETIME),
        used_at: Set(None),
    }
    .insert(registry)
    .await
    .map_err(|e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => SignupError::Taken(sub.to_owned()),
        _ => SignupError::Db(e),
    })?;
    let url = format!("{root_url}verify/{token}");
    mailer.send(Mail::with_link(
        "signup",
        new.admin_email.as_str(),
        &format!("Confirm your email to create {}", new.name.as_str()),
        &format!(
            "Confirm that {} is your email, and {} is created at {sub}, with you as its admin.",
            new.admin_email,
            new.name.as_str()
        ),
        ("Confirm and create the company", &url),
        "The link works once, for 1 hour; the address is kept for you until then. If you did not sign up, ignore this message.",
    ));
    Ok(())
}

/// Whether `subdomain` is held by a signup waiting for its confirmation.
pub async fn is_held(registry: &DatabaseConnection, subdomain: &Subdomain) -> Result<bool, DbErr> {
    Ok(signup_holds::Entity::find()
        .filter(signup_holds::Column::Subdomain.eq(subdomain.as_str()))
        .filter(signup_holds::Column::ExpiresAt.gt(Utc::now()))
        .one(registry)
        .await?
        .is_some())
}

/// What a live link would create, for its confirmation page.
pub async fn lookup(registry: &DatabaseConnection, token: &str) -> Result<Option<Pending>, DbErr> {
    if !is_token(token) {
        return Ok(None);
    }
    Ok(signup_holds::Entity::find_by_id(token_digest(token))
        .filter(signup_holds::Column::UsedAt.is_null())
        .filter(signup_holds::Column::ExpiresAt.gt(Utc::now()))
        .one(registry)
        .await?
        .map(|h| Pending {
            name: h.name,
            subdomain: h.subdomain,
            email: h.email,
        }))
}

/// A confirmed link: the company to create, its password already hashed.
/// Call [`finish`] once the company exists, or [`release`] if making it
/// failed for a reason a retry could fix.
pub async fn confirm(registry: &DatabaseConnection, token: &str) -> Result<NewTenant, SignupError> {
    if !is_token(token) {
        return Err(SignupError::BadLink);
    }
    let digest = token_digest(token);
    let now = Utc::now();
    let spent = signup_holds::Entity::update_many()
        .col_expr(signup_holds::Column::UsedAt, Expr::value(now))
        .filter(signup_holds::Column::TokenHash.eq(&digest))
        .filter(signup_holds::Column::UsedAt.is_null())
        .filter(signup_holds::Column::ExpiresAt.gt(now))
        .exec(registry)
        .await?;
    if spent.rows_affected != 1 {
        return Err(SignupError::BadLink);
    }
    let hold = signup_holds::Entity::find_by_id(digest)
        .one(registry)
        .await?
        .ok_or(SignupError::BadLink)?;
    // Validated when the hold was made; parsed again so the types say so.
    let bad = |_| SignupError::BadLink;
    Ok(NewTenant {
        name: CompanyName::parse(&hold.name).map_err(bad)?,
        subdomain: Subdomain::parse(&hold.subdomain).map_err(|_| SignupError::BadLink)?,
        admin_email: Email::parse(&hold.email).map_err(bad)?,
        admin_password: AdminPassword::Hashed(hold.password_hash),
    })
}

/// The company exists: the hold is done with.
pub async fn finish(registry: &DatabaseConnection, token: &str) -> Result<(), DbErr> {
    signup_holds::Entity::delete_by_id(token_digest(token))
        .exec(registry)
        .await
        .map(|_| ())
}

/// Making the company failed: the link works again (while it lasts).
pub async fn release(registry: &DatabaseConnection, token: &str) -> Result<(), DbErr> {
    signup_holds::Entity::update_many()
        .col_expr(
            signup_holds::Column::UsedAt,
            Expr::value(None::<chrono::DateTime<Utc>>),
        )
        .filter(signup_holds::Column::TokenHash.eq(token_digest(token)))
        .exec(registry)
        .await
        .map(|_| ())
}
