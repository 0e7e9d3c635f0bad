//! Invitations: an admin names an email and a role; the invitee gets a link (single-use, 7 days, kept only as a digest in the company's database), chooses a password and is signed in.
//!
//! Inviting an email that already has a pending invitation replaces it (the
//! old link stops working). Every step is in the audit log.
use chrono::{TimeDelta, Utc};
use sea_orm::{
    sea_query::Expr, ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait,
    QueryFilter, QueryOrder, Set, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::passwords;
use super::reset::LinkSite;
use super::users::{self, audit, UserError};
use crate::domain::{Email, Password, Role};
use crate::ssr::entities::{invitations, tenant_users};
use crate::ssr::mail::{Mail, Mailer};
use crate::ssr::secrets::{is_token, random_hex, token_digest};
use crate::wire::InvitationRow;

/// How long a link works.
pub const LIFETIME: TimeDelta = TimeDelta::days(7);

#[derive(Debug, thiserror::Error)]
pub enum InviteError {
    #[error("A user with this email already exists.")]
    EmailTaken,
    #[error("No such invitation.")]
    NotFound,
    /// Unknown, used, revoked, expired, or made for another company.
    #[error(
        "This invitation has expired, was revoked or was already used. Ask an admin for a new one."
    )]
    BadLink,
    /// The company sent its day's invitations (429).
    #[error("This company has sent its {0} invitations for today; try again tomorrow.")]
    Quota(u32),
    #[error("the company's database")]
    Db(#[from] DbErr),
    #[error("The service is busy; please try again in a moment.")]
    Busy(#[from] passwords::Busy),
}

impl From<UserError> for InviteError {
    fn from(e: UserError) -> Self {
        match e {
            UserError::EmailTaken => InviteError::EmailTaken,
            UserError::Busy(b) => InviteError::Busy(b),
            UserError::Db(e) => InviteError::Db(e),
            UserError::NotFound | UserError::LastAdmin | UserError::WrongPassword => {
                InviteError::NotFound
            }
        }
    }
}

fn row(i: &invitations::Model) -> InvitationRow {
    InvitationRow {
        id: i.id.to_string(),
        email: i.email.clone(),
        role: i.role,
        invited_by: i.invited_by.clone(),
        expires: i.expires_at.format("%Y-%m-%d %H:%M UTC").to_string(),
    }
}

/// Live: neither accepted nor revoked, and not expired.
fn live() -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(invitations::Column::AcceptedAt.is_null())
        .add(invitations::Column::RevokedAt.is_null())
        .add(invitations::Column::ExpiresAt.gt(Utc::now()))
}

fn send(mailer: &Mailer, site: &LinkSite, invited_by: &str, email: &str, token: &str) {
    let url = format!("{}invite/{token}", site.base_url);
    mailer.send(
        Mail::with_link(
            "invitation",
            email,
            &format!("You are invited to join {} on Enclave", site.company),
            &format!(
                "{invited_by} invited you ({email}) to join {} on Enclave.",
                site.company
            ),
            ("Accept and choose a password", &url),
            "The link works once, for 7 days. If you did not expect it, ignore this message.",
        )
        .from_company(site.company_id),
    );
}

/// Invites `email` as `role`; a pending invitation of the same email is
/// replaced.
/// Invitations sent and sent again in the last day, from the audit log;
/// at `per_day`, [`InviteError::Quota`]. Each is a mail to an address
/// someone typed, with the company's name in it: one company may not use
/// the platform to mail the world.
async fn within_quota(db: &impl ConnectionTrait, per_day: u32) -> Result<(), InviteError> {
    use crate::ssr::entities::audit_log;
    use sea_orm::PaginatorTrait;
    let sent = audit_log::Entity::find()
        .filter(audit_log::Column::Action.is_in(["user.invited", "user.invitation_resent"]))
        .filter(audit_log::Column::CreatedAt.gt(Utc::now() - TimeDelta::days(1)))
        .count(db)
        .await?;
    if sent >= u64::from(per_day) {
        return Err(InviteError::Quota(per_day));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
pub async fn invite(
    db: &(impl ConnectionTrait + TransactionTrait),
    actor: &str,
    email: &Email,
    role: Role,
    site: &LinkSite,
    mailer: &Mailer,
    per_day: u32,
) -> Result<InvitationRow, InviteError> {
    within_quota(db, per_day).await?;
    let taken = tenant_users::Entity::find()
        .filter(tenant_users::Column::Email.eq(email.as_str()))
        .one(db)
        .await?
        .is_some();
    if taken {
        return Err(InviteError::EmailTaken);
    }
    let token = random_hex(32);
    let now = Utc::now();
    let txn = db.begin().await?;
    invitations::Entity::update_many()
        .col_expr(invitations::Column::RevokedAt, Expr::value(now))
        .filter(invitations::Column::Email.eq(email.as_str()))
        .filter(live())
        .exec(&txn)
        .await?;
    let invitation = invitations::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.as_str().to_owned()),
        role: Set(role),
        token_hash: Set(token_digest(&token)),
        invited_by: Set(actor.to_owned()),
        created_at: Set(now),
        expires_at: Set(now + LIFETIME),
        accepted_at: Set(None),
        revoked_at: Set(None),
    }
    .insert(&txn)
    .await?;
    audit(
        &txn,
        actor,
        "user.invited",
        format!("Invited {email} as {}", role.as_str()),
    )
    .await?;
    txn.commit().await?;
    send(mailer, site, actor, email.as_str(), &token);
    Ok(row(&invitation))
}

/// Pending invitations, newest first.
pub async fn pending(db: &impl ConnectionTrait) -> Result<Vec<InvitationRow>, DbErr> {
    Ok(invitations::Entity::find()
        .filter(live())
        .order_by_desc(invitations::Column::CreatedAt)
        .all(db)
        .await?
        .iter()
        .map(row)
        .collect())
}

/// Sends a pending invitation again with a new link (the old one stops
/// working) and another 7 days.
pub async fn resend(
    db: &impl ConnectionTrait,
    actor: &str,
    id: Uuid,
    site: &LinkSite,
    mailer: &Mailer,
    per_day: u32,
) -> Result<InvitationRow, InviteError> {
    within_quota(db, per_day).await?;
    let token = random_hex(32);
    let now = Utc::now();
    let updated = invitations::Entity::update_many()
        .col_expr(
            invitations::Column::TokenHash,
            Expr::value(token_digest(&token)),
        )
        .col_expr(invitations::Column::ExpiresAt, Expr::value(now + LIFETIME))
        .col_expr(invitations::Column::InvitedBy, Expr::value(actor))
        .filter(invitations::Column::Id.eq(id))
        .filter(live())
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(InviteError::NotFound);
    }
    let invitation = invitations::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(InviteError::NotFound)?;
    audit(
        db,
        actor,
        "user.invitation_resent",
        format!("Sent the invitation of {} again", invitation.email),
    )
    .await?;
    send(mailer, site, actor, &invitation.email, &token);
    Ok(row(&invitation))
}

/// Withdraws a pending invitation; its link stops working.
pub async fn revoke(db: &impl ConnectionTrait, actor: &str, id: Uuid) -> Result<(), InviteError> {
    let now = Utc::now();
    let updated = invitations::Entity::update_many()
        .col_expr(invitations::Column::RevokedAt, Expr::value(now))
        .filter(invitations::Column::Id.eq(id))
        .filter(live())
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(InviteError::NotFound);
    }
    if let Some(invitation) = invitations::Entity::find_by_id(id).one(db).await? {
        audit(
            db,
            actor,
            "user.invitation_revoked",
            format!("Withdrew the invitation of {}", invitation.email),
        )
        .await?;
    }
    Ok(())
}

/// The email and role a live link invites, for the page it opens.
pub async fn lookup(
    db: &impl ConnectionTrait,
    token: &str,
) -> Result<Option<(String, Role)>, DbErr> {
    if !is_token(token) {
        return Ok(None);
    }
    Ok(invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(token_digest(token)))
        .filter(live())
        .one(db)
        .await?
        .map(|i| (i.email, i.role)))
}

/// Spends the link and makes the user it invites, with `password`. One
/// conditional UPDATE spends it, so two uses racing cannot both succeed.
pub async fn accept(
    db: &(impl ConnectionTrait + TransactionTrait),
    company: Uuid,
    token: &str,
    password: Password,
) -> Result<Uuid, InviteError> {
    if !is_token(token) {
        return Err(InviteError::BadLink);
    }
    // Hashed before the transaction, so no lock waits on argon2.
    let hash = passwords::hash_blocking(passwords::Whose::Company(company), password).await?;
    let digest = token_digest(token);
    let txn = db.begin().await?;
    let spent = invitations::Entity::update_many()
        .col_expr(invitations::Column::AcceptedAt, Expr::value(Utc::now()))
        .filter(invitations::Column::TokenHash.eq(&digest))
        .filter(live())
        .exec(&txn)
        .await?;
    if spent.rows_affected != 1 {
        return Err(InviteError::BadLink);
    }
    let invitation = invitations::Entity::find()
        .filter(invitations::Column::TokenHash.eq(&digest))
        .one(&txn)
        .await?
        .ok_or(InviteError::BadLink)?;
    let user = users::insert(&txn, &invitation.email, invitation.role, hash).await?;
    audit(
        &txn,
        &user.email,
        "user.joined",
        format!(
            "Accepted the invitation from {} and joined as {}",
            invitation.invited_by,
            invitation.role.as_str()
        ),
    )
    .await?;
    txn.commit().await?;
    Ok(user.id)
}
