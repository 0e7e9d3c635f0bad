//! Who is signed in, and signing in: company users on their subdomain, platform admins on the base domain.
//!
//! A session records the tenant it was made on; presented on any other
//! subdomain it counts as signed out (cookies are host-only too). The user
//! row is read again on every request, so a disabled or demoted user loses
//! access at once.
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;
use uuid::Uuid;

use super::passwords::{self, Whose};
use super::throttle::{ThrottleError, SIGN_IN};
use crate::domain::{Email, Role};
use crate::ssr::context::{services, session, tenant};
use crate::ssr::entities::{platform_users, tenant_users};
use crate::ssr::http::{internal, reject};
use crate::ssr::tenancy::{
    connections::pools::{PoolError, TenantDb},
    request::resolve::TenantDbError,
    TenantContext,
};
use crate::wire::{AppError, Me};

const TENANT_KEY: &str = "enclave.tenant_user";
const PLATFORM_KEY: &str = "enclave.platform_user";

/// Whose a session's data says it is, as the session store records it:
/// `t:<tenant id>:<user id>` or `p:<platform user id>`.
pub(super) fn session_subject(
    data: &std::collections::HashMap<String, serde_json::Value>,
) -> Option<String> {
    if let Some(t) = data
        .get(TENANT_KEY)
        .and_then(|v| serde_json::from_value::<TenantUser>(v.clone()).ok())
    {
        return Some(tenant_subject(t.tenant_id, t.user_id));
    }
    data.get(PLATFORM_KEY)
        .and_then(|v| serde_json::from_value::<Uuid>(v.clone()).ok())
        .map(platform_subject)
}

pub fn tenant_subject(tenant_id: Uuid, user_id: Uuid) -> String {
    format!("t:{}:{}", tenant_id.simple(), user_id.simple())
}

pub fn platform_subject(id: Uuid) -> String {
    format!("p:{}", id.simple())
}

#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
struct TenantUser {
    tenant_id: Uuid,
    user_id: Uuid,
}

/// A signed-in company user, with a lease on the company's database.
pub struct CurrentUser {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    pub tenant: TenantContext,
    pub db: TenantDb,
}

impl CurrentUser {
    pub fn me(&self) -> Me {
        Me {
            email: self.email.clone(),
            role: self.role,
        }
    }
}

/// A company database that could not be had: 503 when the budget is
/// spent or the company's line is full, 500 otherwise.
pub fn db_error(e: TenantDbError) -> AppError {
    match e {
        TenantDbError::Pool(PoolError::Busy | PoolError::Queue) => reject(AppError::Unavailable),
        other => internal(other),
    }
}

/// The signed-in user of this company, or 401.
pub async fn require_user() -> Result<CurrentUser, AppError> {
    current_user()
        .await?
        .ok_or_else(|| reject(AppError::Unauthenticated))
}

/// The signed-in user of this company, if any. A session made on another
/// company, or whose user was disabled or removed, counts as none.
pub async fn current_user() -> Result<Option<CurrentUser>, AppError> {
    let tenant = tenant()?;
    let session = session().await?;
    user_in(&session, tenant).await
}

/// The signed-in user of `tenant` in `session`, if any: [`current_user`]
/// for routes outside Leptos (a download).
pub async fn user_in(
    session: &Session,
    tenant: TenantContext,
) -> Result<Option<CurrentUser>, AppError> {
    let auth = session
        .get::<TenantUser>(TENANT_KEY)
        .await
        .map_err(internal)?;
    let Some(auth) = auth.filter(|a| a.tenant_id == tenant.id()) else {
        return Ok(None);
    };
    let db = tenant.db().await.map_err(db_error)?;
    let user = tenant_users::Entity::find_by_id(auth.user_id)
        .one(db.conn())
        .await
        .map_err(internal)?;
    Ok(user.filter(|u| !u.disabled).map(|u| CurrentUser {
        id: u.id,
        email: u.email,
        role: u.role,
        tenant,
        db,
    }))
}

/// The signed-in user if they are an admin; 401 or 403 otherwise.
pub async fn require_admin() -> Result<CurrentUser, AppError> {
    let user = require_user().await?;
    if user.role != Role::Admin {
        return Err(reject(AppError::Forbidden));
    }
    Ok(user)
}

/// Starts a session for `user_id` of `tenant_id`, under a new session id.
pub async fn start_tenant_session(
    session: &Session,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<(), AppError> {
    session.cycle_id().await.map_err(internal)?;
    session
        .insert(TENANT_KEY, TenantUser { tenant_id, user_id })
        .await
        .map_err(internal)
}

/// The user `session` is signed in as at company `tenant_id`, if any (for
/// handing a signed-in person over to another of its addresses).
pub async fn signed_in_at(session: &Session, tenant_id: Uuid) -> Option<Uuid> {
    session
        .get::<TenantUser>(TENANT_KEY)
        .await
        .ok()
        .flatten()
        .filter(|t| t.tenant_id == tenant_id)
        .map(|t| t.user_id)
}

pub async fn end_session(session: &Session) -> Result<(), AppError> {
    session.flush().await.map_err(internal)
}

/// A hash to verify against when the email is unknown, so that a wrong
/// email takes as long as a wrong password.
fn decoy_hash() -> &'static str {
    static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DECOY.get_or_init(|| {
        passwords::hash(
            &crate::domain::Password::parse("decoy password, never valid").expect("valid"),
        )
    })
}

/// Checks a company user's email and password, in a throttled attempt
/// from `client` (the address, or empty when unknown).
pub async fn sign_in(
    db: &TenantDb,
    email: &str,
    password: &str,
    client: &str,
) -> Result<tenant_users::Model, AppError> {
    let email = Email::parse(email).map_err(|e| reject(AppError::invalid("email", e)))?;
    let conn = db.conn();
    let site = db.tenant_id().to_string();
    let attempt = reserve_sign_in(conn, &site, email.as_str(), client).await?;
    let user = tenant_users::Entity::find()
        .filter(tenant_users::Column::Email.eq(email.as_str()))
        .one(conn)
        .await
        .map_err(internal)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    match user {
        Some(u)
            if password_matches(Whose::Company(db.tenant_id()), password, hash).await?
                && !u.disabled =>
        {
            attempt.succeeded(conn).await.map_err(internal)?;
            remember_device(&site, email.as_str())?;
            Ok(u)
        }
        _ => Err(reject(AppError::BadCredentials)),
    }
}

/// Reserves a sign-in attempt: held to the account's limit from every
/// address unless this browser signed in to the account before
/// ([`super::devices`]).
async fn reserve_sign_in(
    db: &impl sea_orm::TransactionTrait,
    site: &str,
    email: &str,
    client: &str,
) -> Result<super::throttle::Attempt, AppError> {
    let cipher = services()?.cipher;
    let known = crate::ssr::context::request_cookie(super::devices::COOKIE)
        .is_some_and(|v| super::devices::recognises(&cipher, site, email, &v));
    let reserved = if known {
        SIGN_IN.reserve_known(db, email, client).await
    } else {
        SIGN_IN.reserve(db, email, client).await
    };
    reserved.map_err(throttle_error)
}

/// Gives this browser the cookie that marks it as one `email` signed in
/// from on `site`, for a year.
fn remember_device(site: &str, email: &str) -> Result<(), AppError> {
    let services = services()?;
    let value = super::devices::issue(&services.cipher, site, email);
    let secure = if services.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    crate::ssr::context::set_cookie(&format!(
        "{}={value}; Path=/; Max-Age=31536000; HttpOnly; SameSite=Lax{secure}",
        super::devices::COOKIE
    ));
    Ok(())
}

/// Whether `password` matches `hash`; without a hash (unknown email) it is
/// checked against a decoy, so that a wrong email takes as long as a wrong
/// password. 503 when every hashing slot is taken.
async fn password_matches(
    whose: Whose,
    password: &str,
    hash: Option<String>,
) -> Result<bool, AppError> {
    let hash = hash.unwrap_or_else(|| decoy_hash().to_owned());
    passwords::verify_blocking(whose, password.to_owned(), hash)
        .await
        .map_err(|_| reject(AppError::Unavailable))
}

/// Reserves a check of `user`'s current password (changing it) as a
/// sign-in attempt from this client: the same throttle, so a stolen
/// session cannot guess the password faster than the sign-in page allows.
/// `Attempt::succeeded` clears it once the password was right.
pub async fn reserve_password_check(
    user: &CurrentUser,
) -> Result<super::throttle::Attempt, AppError> {
    SIGN_IN
        // Signed in already: this browser is one the account uses.
        .reserve_known(user.db.conn(), &user.email, &crate::ssr::context::client())
        .await
        .map_err(throttle_error)
}

fn throttle_error(e: ThrottleError) -> AppError {
    match e {
        ThrottleError::Throttled { retry_after_secs } => {
            reject(AppError::Throttled { retry_after_secs })
        }
        other => internal(other),
    }
}

/// The signed-in platform admin, or 401. Its server functions are routed
/// on the base domain only.
pub async fn require_platform_admin() -> Result<platform_users::Model, AppError> {
    let session = session().await?;
    let Some(id) = session.get::<Uuid>(PLATFORM_KEY).await.map_err(internal)? else {
        return Err(reject(AppError::Unauthenticated));
    };
    platform_users::Entity::find_by_id(id)
        .one(&services()?.registry)
        .await
        .map_err(internal)?
        .ok_or_else(|| reject(AppError::Unauthenticated))
}

/// What an account's wrong second-factor codes are counted under in the
/// throttle, from wherever they come (`<email> (second factor)`, no
/// client): only someone who has the password gets that far, and five codes
/// a window is all they get. A key of their own, so they are not counted
/// again in the account's password failures.
const SECOND_FACTOR: &str = " (second factor)";

/// What device cookies name as the site of platform admins.
const PLATFORM_SITE: &str = "platform";

/// Checks a platform admin's email, password and (when they have one)
/// second-factor code, in a throttled attempt from `client` (kept in the
/// registry), and starts their session. Every failure gets the same answer
/// (wrong email, password or code, or too many codes), so the answer never
/// tells that the password was right.
pub async fn platform_sign_in(
    email: &str,
    password: &str,
    code: &str,
    client: &str,
) -> Result<(), AppError> {
    let email = Email::parse(email).map_err(|e| reject(AppError::invalid("email", e)))?;
    let registry = services()?.registry;
    let attempt = reserve_sign_in(&registry, PLATFORM_SITE, email.as_str(), client).await?;
    let user = platform_users::Entity::find()
        .filter(platform_users::Column::Email.eq(email.as_str()))
        .one(&registry)
        .await
        .map_err(internal)?;
    let hash = user.as_ref().map(|u| u.password_hash.clone());
    let password_ok = password_matches(Whose::Platform, password, hash).await?;
    let Some(user) = user.filter(|_| password_ok) else {
        return Err(reject(AppError::BadCredentials));
    };
    // The second factor, when the admin has one: a wrong or missing code
    // leaves both attempts counted as failures.
    if user.totp_secret.is_some() {
        let code_attempt = match SIGN_IN
            // Counted per account already: not held to `per_email` twice.
            .reserve_known(&registry, &format!("{}{SECOND_FACTOR}", email.as_str()), "")
            .await
        {
            Ok(a) => a,
            Err(ThrottleError::Throttled { .. }) => return Err(reject(AppError::BadCredentials)),
            Err(e) => return Err(internal(e)),
        };
        let cipher = services()?.cipher;
        if !super::platform::totp::accept(&registry, &cipher, &user, code)
            .await
            .map_err(internal)?
        {
            return Err(reject(AppError::BadCredentials));
        }
        code_attempt.succeeded(&registry).await.map_err(internal)?;
    }
    attempt.succeeded(&registry).await.map_err(internal)?;
    remember_device(PLATFORM_SITE, email.as_str())?;
    let session = session().await?;
    session.cycle_id().await.map_err(internal)?;
    session
        .insert(PLATFORM_KEY, user.id)
        .await
        .map_err(internal)
}
