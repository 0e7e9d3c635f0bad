//! Single-use, short-lived tokens that take a new company's admin from signup to a session on its subdomain.
//!
//! Cookies are per host, so the base domain's session cannot simply be
//! shared with the subdomain.
use chrono::Utc;
use sea_orm::{
    sea_query::Expr, ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, Set,
};
use uuid::Uuid;

use crate::ssr::entities::handoff_tokens;
use crate::ssr::secrets::{is_token, random_hex, token_digest as digest};

/// How long a token can be redeemed.
pub const LIFETIME: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A new token for `user_id` of `tenant_id`. Only its digest is stored.
pub async fn issue(
    registry: &DatabaseConnection,
    tenant_id: Uuid,
    user_id: Uuid,
) -> Result<String, DbErr> {
    let token = random_hex(32);
    let row = handoff_tokens::ActiveModel {
        token_hash: Set(digest(&token)),
        tenant_id: Set(tenant_id),
        user_id: Set(user_id),
        expires_at: Set(Utc::now() + LIFETIME),
        used_at: Set(None),
    };
    handoff_tokens::Entity::insert(row)
        .exec_without_returning(registry)
        .await?;
    Ok(token)
}

/// The user the token was issued for, if it is for this tenant, unexpired
/// and unused; it is spent either way. One conditional UPDATE, so two
/// redemptions racing cannot both succeed.
pub async fn redeem(
    registry: &DatabaseConnection,
    token: &str,
    tenant_id: Uuid,
) -> Result<Option<Uuid>, DbErr> {
    if !is_token(token) {
        return Ok(None);
    }
    let hash = digest(token);
    let now = Utc::now();
    let spent = handoff_tokens::Entity::update_many()
        .col_expr(handoff_tokens::Column::UsedAt, Expr::value(now))
        .filter(handoff_tokens::Column::TokenHash.eq(&hash))
        .filter(handoff_tokens::Column::TenantId.eq(tenant_id))
        .filter(handoff_tokens::Column::UsedAt.is_null())
        .filter(handoff_tokens::Column::ExpiresAt.gt(now))
        .exec(registry)
        .await?;
    if spent.rows_affected != 1 {
        return Ok(None);
    }
    Ok(handoff_tokens::Entity::find_by_id(hash)
        .one(registry)
        .await?
        .map(|t| t.user_id))
}
