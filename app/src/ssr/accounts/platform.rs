//! Platform admins (superadmins) and platform API tokens, in the registry.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, EntityTrait, Set, SqlErr};
use uuid::Uuid;

use super::passwords;
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

/// A new platform API token, returned once; only its digest is kept.
pub async fn create_api_token(registry: &DatabaseConnection, label: &str) -> Result<String, DbErr> {
    let token = format!("enc_{}", random_hex(32));
    api_tokens::ActiveModel {
        token_hash: Set(token_digest(&token)),
        label: Set(label.chars().take(100).collect()),
        created_at: Set(Utc::now()),
        last_used_at: Set(None),
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
    api_tokens::ActiveModel {
        token_hash: Set(found.token_hash),
        last_used_at: Set(Some(Utc::now())),
        ..Default::default()
    }
    .update(registry)
    .await?;
    Ok(true)
}
