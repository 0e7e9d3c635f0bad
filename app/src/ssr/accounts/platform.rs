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
    #[error("hashing the password")]
    Busy(#[from] passwords::Busy),
}

pub async fn create_superadmin(
    registry: &DatabaseConnection,
    email: &Email,
    password: Password,
) -> Result<platform_users::Model, PlatformUserError> {
    let hash = passwords::hash_blocking(password).await?;
    platform_users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(hash),
        role: Set(PlatformRole::Superadmin),
        tenant_id: Set(None),
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
    let hash = passwords::hash_blocking(password).await?;
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
