//! Purging what grows with traffic from the registry: spent handoff tokens, expired sessions, old sign-in failures and provisioning records.
//!
//! `serve`'s housekeeping runs it every 30 s. Company databases keep their
//! own sign-in failures short: each attempt clears those past the window
//! (`accounts::throttle`).
use chrono::{TimeDelta, Utc};
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

use super::accounts::throttle::SIGN_IN;
use super::entities::{
    handoff_tokens, login_failures, provisioning, provisioning::Outcome, sessions,
};

/// Rows removed, by table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purged {
    pub handoff_tokens: u64,
    pub sessions: u64,
    pub login_failures: u64,
    pub provisioning: u64,
}

/// Removes what no one needs any more; provisioning records that ended are
/// kept for `keep_records`.
pub async fn purge(
    registry: &DatabaseConnection,
    keep_records: TimeDelta,
) -> Result<Purged, DbErr> {
    let now = Utc::now();
    let handoff_tokens = handoff_tokens::Entity::delete_many()
        .filter(
            Condition::any()
                .add(handoff_tokens::Column::UsedAt.is_not_null())
                .add(handoff_tokens::Column::ExpiresAt.lte(now)),
        )
        .exec(registry)
        .await?
        .rows_affected;
    let sessions = sessions::Entity::delete_many()
        .filter(sessions::Column::ExpiresAt.lte(now))
        .exec(registry)
        .await?
        .rows_affected;
    let login_failures = login_failures::Entity::delete_many()
        .filter(login_failures::Column::At.lte(now - SIGN_IN.window))
        .exec(registry)
        .await?
        .rows_affected;
    let provisioning = provisioning::Entity::delete_many()
        .filter(provisioning::Column::Outcome.ne(Outcome::Running))
        .filter(provisioning::Column::UpdatedAt.lte(now - keep_records))
        .exec(registry)
        .await?
        .rows_affected;
    Ok(Purged {
        handoff_tokens,
        sessions,
        login_failures,
        provisioning,
    })
}
