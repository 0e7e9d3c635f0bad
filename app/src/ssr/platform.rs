//! Platform users (superadmins) in the registry.
use chrono::Utc;
use sea_orm::{ActiveModelTrait, DatabaseConnection, DbErr, Set, SqlErr};
use uuid::Uuid;

use super::entities::platform_users;
use super::passwords;
use crate::domain::{Email, Password};

#[derive(Debug, thiserror::Error)]
pub enum PlatformUserError {
    #[error("a platform user with the email '{0}' exists already")]
    Exists(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

pub async fn create_superadmin(
    registry: &DatabaseConnection,
    email: &Email,
    password: Password,
) -> Result<platform_users::Model, PlatformUserError> {
    let hash = passwords::hash_blocking(password).await;
    platform_users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.as_str().to_owned()),
        password_hash: Set(hash),
        role: Set("superadmin".into()),
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
