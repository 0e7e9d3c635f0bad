//! Platform admins (superadmins) and platform API tokens, in the registry.
use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set, SqlErr,
};
use uuid::Uuid;

use super::auth::platform_subject;
use super::passwords;
use super::sessions::end_sessions_of;
use crate::domain::{Email, Password};
use crate::ssr::entities::{
    api_tokens,
    platform_users::{self, PlatformRole},
};
use crate::ssr::secrets::{random_hex, token_digest};

#[derive(Debug, thiserror::Error)]
pub enum PlatformUserError {
    #[error("a platform user with the email '{0}' exists already")]
    Exists(String),
    #[error("no platform user has the email '{0}'")]
    NotFound(String),
    #[error("the registry")]
    Db(#[from] DbErr),
    #[error("a sealed secret")]
    Sealed(#[source] crate::ssr::secrets::CipherError),
    #[error("hashing the password")]
    Busy(#[from] passwords::Busy),
}

pub async fn create_superadmin(
    registry: &DatabaseConnection,
    email: &Email,
    password: Password,
) -> Result<platform_users::Model, PlatformUserError> {
    let hash = passwords::hash_blocking(passwords::Whose::Platform, password).await?;
    platform_users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(hash),
        role: Set(PlatformRole::Superadmin),
        tenant_id: Set(None),
        totp_secret: Set(None),
        totp_last_step: Set(None),
        created_at: Set(Utc::now()),
    }
    .insert(registry)
    .await
    .map_err(|e| match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => PlatformUserError::Exists(email.to_string()),
        _ => PlatformUserError::Db(e),
    })
}

/// Every platform admin, by email.
pub async fn list_superadmins(
    registry: &DatabaseConnection,
) -> Result<Vec<platform_users::Model>, DbErr> {
    platform_users::Entity::find()
        .order_by_asc(platform_users::Column::Email)
        .all(registry)
        .await
}

async fn find_superadmin(
    registry: &DatabaseConnection,
    email: &Email,
) -> Result<platform_users::Model, PlatformUserError> {
    platform_users::Entity::find()
        .filter(platform_users::Column::Email.eq(email.as_str()))
        .one(registry)
        .await?
        .ok_or_else(|| PlatformUserError::NotFound(email.to_string()))
}

/// Removes a platform admin and ends their sessions.
pub async fn remove_superadmin(
    registry: &DatabaseConnection,
    email: &Email,
) -> Result<(), PlatformUserError> {
    let user = find_superadmin(registry, email).await?;
    platform_users::Entity::delete_by_id(user.id)
        .exec(registry)
        .await?;
    end_sessions_of(registry, &platform_subject(user.id), None).await?;
    Ok(())
}

/// Sets a platform admin's password and ends all their sessions.
pub async fn set_superadmin_password(
    registry: &DatabaseConnection,
    email: &Email,
    password: Password,
) -> Result<(), PlatformUserError> {
    let user = find_superadmin(registry, email).await?;
    let hash = passwords::hash_blocking(passwords::Whose::Platform, password).await?;
    platform_users::ActiveModel {
        id: Set(user.id),
        password_hash: Set(hash),
        ..Default::default()
    }
    .update(registry)
    .await?;
    end_sessions_of(registry, &platform_subject(user.id), None).await?;
    Ok(())
}

/// How operators name a token: the first 12 hex digits of its digest
/// (the token itself is never stored).
pub fn token_id(token_hash: &str) -> &str {
    &token_hash[..token_hash.len().min(12)]
}

/// A platform API token as `superadmin token list` shows it.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub id: String,
    pub label: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

pub async fn list_api_tokens(registry: &DatabaseConnection) -> Result<Vec<TokenInfo>, DbErr> {
    Ok(api_tokens::Entity::find()
        .order_by_asc(api_tokens::Column::CreatedAt)
        .all(registry)
        .await?
        .into_iter()
        .map(|t| TokenInfo {
            id: token_id(&t.token_hash).to_owned(),
            label: t.label,
            created_at: t.created_at,
            last_used_at: t.last_used_at,
            expires_at: t.expires_at,
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("a token id is 12 hexadecimal digits, as `superadmin token list` shows")]
    BadId,
    #[error("no token has the id '{0}'")]
    NotFound(String),
    #[error("the registry")]
    Db(#[from] DbErr),
}

/// Revokes the token `id` names (see [`token_id`]): it stops working at once.
pub async fn revoke_api_token(registry: &DatabaseConnection, id: &str) -> Result<(), RevokeError> {
    let id = id.trim().to_ascii_lowercase();
    if id.len() != 12 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RevokeError::BadId);
    }
    let deleted = api_tokens::Entity::delete_many()
        .filter(api_tokens::Column::TokenHash.starts_with(&id))
        .exec(registry)
        .await?;
    if deleted.rows_affected == 0 {
        return Err(RevokeError::NotFound(id));
    }
    Ok(())
}

/// A new platform API token, returned once; only its digest is kept.
/// With `valid_for`, it stops working that long from now.
pub async fn create_api_token(
    registry: &DatabaseConnection,
    label: &str,
    valid_for: Option<TimeDelta>,
) -> Result<String, DbErr> {
    let token = format!("enc_{}", random_hex(32));
    let now = Utc::now();
    api_tokens::ActiveModel {
        token_hash: Set(token_digest(&token)),
        label: Set(label.chars().take(100).collect()),
        created_at: Set(now),
        last_used_at: Set(None),
        expires_at: Set(valid_for.map(|d| now + d)),
    }
    .insert(registry)
    .await?;
    Ok(token)
}

/// Whether `token` is a live platform API token (and notes its use).
pub async fn check_api_token(registry: &DatabaseConnection, token: &str) -> Result<bool, DbErr> {
    if !token.starts_with("enc_") || token.len() != 68 {
        return Ok(false);
    }
    let digest = token_digest(token);
    let Some(found) = api_tokens::Entity::find_by_id(digest).one(registry).await? else {
        return Ok(false);
    };
    if found.expires_at.is_some_and(|at| at <= Utc::now()) {
        return Ok(false);
    }
    api_tokens::ActiveModel {
        token_hash: Set(found.token_hash),
        last_used_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .update(registry)
    .await?;
    Ok(true)
}

/// An optional second factor for platform admins: time-based one-time
/// codes (RFC 6238: SHA-1, 6 digits, 30 s, one step of skew either side).
pub mod totp {
    use sea_orm::{
        sea_query::Expr, ColumnTrait, Condition, DatabaseConnection, EntityTrait, QueryFilter,
    };
    use secrecy::{ExposeSecret, SecretString};
    use totp_rs::{Builder, Totp};

    use super::{find_superadmin, PlatformUserError};
    use crate::domain::Email;
    use crate::ssr::entities::platform_users;
    use crate::ssr::secrets::{random_bytes, Cipher};

    fn totp(secret: &[u8], email: &str) -> Totp {
        Builder::new()
            .with_secret(secret.to_vec())
            .with_account_name(email)
            .with_issuer(Some("Enclave"))
            .build()
            .expect("a 20-byte secret and an email make a valid TOTP")
    }

    /// What an admin adds to an authenticator app: the `otpauth://` URL
    /// (as a QR code or link) and the same secret in base32. Shown once.
    pub struct Enrolment {
        pub url: SecretString,
        pub secret_base32: SecretString,
    }

    /// Turns the second factor on (or gives a new secret) for `email`.
    pub async fn enable(
        registry: &DatabaseConnection,
        cipher: &Cipher,
        email: &Email,
    ) -> Result<Enrolment, PlatformUserError> {
        let user = find_superadmin(registry, email).await?;
        let secret = random_bytes(20);
        let t = totp(&secret, &user.email);
        let base32 = t.secret().to_base32();
        let sealed = cipher.encrypt(user.id, &SecretString::from(base32.clone()));
        store(registry, &user, Some(sealed)).await?;
        // Sessions made with the password alone end: the next sign-in
        // takes the code.
        super::super::sessions::end_sessions_of(
            registry,
            &super::super::auth::platform_subject(user.id),
            None,
        )
        .await?;
        Ok(Enrolment {
            url: SecretString::from(t.to_url().expect("a valid TOTP has a URL")),
            secret_base32: SecretString::from(base32),
        })
    }

    pub async fn disable(
        registry: &DatabaseConnection,
        email: &Email,
    ) -> Result<(), PlatformUserError> {
        let user = find_superadmin(registry, email).await?;
        store(registry, &user, None).await
    }

    /// Sets (or clears) `user`'s sealed secret; no code is taken yet.
    async fn store(
        registry: &DatabaseConnection,
        user: &platform_users::Model,
        sealed: Option<String>,
    ) -> Result<(), PlatformUserError> {
        platform_users::Entity::update_many()
            .col_expr(platform_users::Column::TotpSecret, Expr::value(sealed))
            .col_expr(
                platform_users::Column::TotpLastStep,
                Expr::value(None::<i64>),
            )
            .filter(platform_users::Column::Id.eq(user.id))
            .exec(registry)
            .await?;
        Ok(())
    }

    /// Whether `code` is `user`'s current code and was never accepted
    /// before: its time step is recorded in the same UPDATE that checks
    /// it is newer than the last one, so a code works once.
    pub async fn accept(
        registry: &DatabaseConnection,
        cipher: &Cipher,
        user: &platform_users::Model,
        code: &str,
    ) -> Result<bool, PlatformUserError> {
        let Some(sealed) = user.totp_secret.as_deref() else {
            return Ok(true);
        };
        let base32 = cipher
            .decrypt(user.id, sealed)
            .map_err(PlatformUserError::Sealed)?;
        let secret = totp_rs::Secret::try_from_base32(base32.expose_secret()).map_err(|_| {
            PlatformUserError::Sealed(crate::ssr::secrets::CipherError::Undecryptable)
        })?;
        let Some(step) = totp(secret.as_bytes(), &user.email).check_current(code.trim()) else {
            return Ok(false);
        };
        let step = step as i64;
        let taken = platform_users::Entity::update_many()
            .col_expr(platform_users::Column::TotpLastStep, Expr::value(step))
            .filter(platform_users::Column::Id.eq(user.id))
            .filter(
                Condition::any()
                    .add(platform_users::Column::TotpLastStep.is_null())
                    .add(platform_users::Column::TotpLastStep.lt(step)),
            )
            .exec(registry)
            .await?;
        Ok(taken.rows_affected == 1)
    }

    /// Seals every TOTP secret again under the current key (`secret rotate`),
    /// each in an UPDATE that applies only if the row still holds what was read.
    pub async fn reseal(
        registry: &DatabaseConnection,
        cipher: &Cipher,
    ) -> Result<crate::ssr::tenancy::request::directory::Resealed, sea_orm::DbErr> {
        let sealed = platform_users::Entity::find()
            .all(registry)
            .await?
            .into_iter()
            .filter_map(|user| Some((user.id, user.totp_secret?)));
        crate::ssr::tenancy::request::directory::reseal_each(
            sealed,
            cipher,
            |id, stored, resealed| async move {
                let changed = platform_users::Entity::update_many()
                    .col_expr(platform_users::Column::TotpSecret, Expr::value(resealed))
                    .filter(platform_users::Column::Id.eq(id))
                    .filter(platform_users::Column::TotpSecret.eq(stored))
                    .exec(registry)
                    .await?;
                Ok(changed.rows_affected)
            },
        )
        .await
    }

    /// The current code for a base32 secret (tests, and operators checking
    /// an enrolment).
    pub fn current_code(secret_base32: &str, email: &str) -> Option<String> {
        let secret = totp_rs::Secret::try_from_base32(secret_base32).ok()?;
        Some(
            totp(secret.as_bytes(), email)
                .generate_current()
                .to_string(),
        )
    }
}
