//! Verified signups: the signup form mails a link; whoever opens it proves the email, chooses the admin's password there, and the company is created.
//!
//! Nothing is held before the email is proven: not the subdomain (several
//! people may sign up for one; the first to confirm gets it, the others are
//! told it was taken), and not a password, which someone signing up with
//! another person's address could otherwise set for them. The link is kept
//! only as a digest; a confirmed one is marked used while the company is
//! made, then removed; expired ones are removed as new signups come.
use chrono::{TimeDelta, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set,
};

use crate::domain::{CompanyName, Email, Password, Subdomain};
use crate::ssr::entities::signup_holds;
use crate::ssr::mail::{Mail, Mailer};
use crate::ssr::secrets::{is_token, random_hex, token_digest};
use crate::ssr::tenancy::{
    lifecycle::provisioning::{AdminPassword, NewTenant},
    request::directory,
};

/// How long a link works.
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
}

/// What a confirmation page shows.
pub struct Pending {
    pub name: String,
    pub subdomain: String,
    pub email: String,
}

/// What the signup form asks for: the company, and whose email it is.
pub struct SignupRequest {
    pub name: CompanyName,
    pub subdomain: Subdomain,
    pub email: Email,
}

/// Mails `req.email` a link to `<root_url>verify/{token}`, unless a company
/// has the subdomain already. Holds nothing.
pub async fn request(
    registry: &DatabaseConnection,
    req: &SignupRequest,
    root_url: &str,
    mailer: &Mailer,
) -> Result<(), SignupError> {
    let now = Utc::now();
    signup_holds::Entity::delete_many()
        .filter(signup_holds::Column::ExpiresAt.lt(now))
        .exec(registry)
        .await?;
    let sub = req.subdomain.as_str();
    if directory::subdomain_taken(registry, &req.subdomain).await? {
        return Err(SignupError::Taken(sub.to_owned()));
    }
    let token = random_hex(32);
    signup_holds::ActiveModel {
        token_hash: Set(token_digest(&token)),
        subdomain: Set(sub.to_owned()),
        name: Set(req.name.as_str().to_owned()),
        email: Set(req.email.as_str().to_owned()),
        created_at: Set(now),
        expires_at: Set(now + LIFETIME),
        used_at: Set(None),
    }
    .insert(registry)
    .await?;
    let url = format!("{root_url}verify/{token}");
    mailer.send(Mail::with_link(
        "signup",
        req.email.as_str(),
        &format!("Confirm your email to create {}", req.name.as_str()),
        &format!(
            "Confirm that {} is your email and choose your password: {} is then created at {sub}, with you as its admin.",
            req.email,
            req.name.as_str()
        ),
        ("Confirm and choose a password", &url),
        "The link works once, for 1 hour. Until the company is created, the address is not kept for you. If you did not sign up, ignore this message.",
    ));
    Ok(())
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

/// A confirmed link: the company to create, with the `password` its admin
/// chose on the link's page. Call [`finish`] once the company exists, or
/// [`release`] if making it failed for a reason a retry could fix.
pub async fn confirm(
    registry: &DatabaseConnection,
    token: &str,
    password: Password,
) -> Result<NewTenant, SignupError> {
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
        admin_password: AdminPassword::Plain(password),
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
