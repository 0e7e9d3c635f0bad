//! A company's users and audit log, in its own database.
//!
//! Every change writes the audit log. The last active admin can be neither removed,
//! disabled nor demoted: each such change is one conditional UPDATE or
//! DELETE that counts the other active admins in the same statement, in a
//! transaction that first locks the active admins' rows, so that two admins
//! demoting each other at the same instant on PostgreSQL are serialised
//! (SQLite serialises writers by itself).
use chrono::Utc;
use sea_orm::{
    sea_query::{Expr, ExprTrait, Func, Query, SubQueryStatement},
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionSession, TransactionTrait,
};
use uuid::Uuid;

use super::passwords::{self, Whose};
use crate::domain::{Email, Password, Role};
use crate::ssr::entities::{audit_log, tenant_users};
use crate::ssr::tenancy::connections::conn::is_unique_violation;
use crate::wire::{AuditRow, UserRow};

#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("A user with this email already exists.")]
    EmailTaken,
    #[error("No such user.")]
    NotFound,
    #[error("The company needs at least one active admin.")]
    LastAdmin,
    #[error("The current password is wrong.")]
    WrongPassword,
    #[error("the company's database")]
    Db(#[from] DbErr),
    /// 503
    #[error("The service is busy; please try again in a moment.")]
    Busy(#[from] passwords::Busy),
}

/// Writes one line of the company's audit log.
pub async fn audit(
    db: &impl ConnectionTrait,
    actor: &str,
    action: &str,
    detail: String,
) -> Result<(), DbErr> {
    audit_log::ActiveModel {
        actor: Set(actor.to_owned()),
        action: Set(action.to_owned()),
        detail: Set(detail),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(|_| ())
}

pub fn row(u: &tenant_users::Model) -> UserRow {
    UserRow {
        id: u.id.to_string(),
        email: u.email.clone(),
        role: u.role,
        disabled: u.disabled,
        created: u.created_at.format("%Y-%m-%d").to_string(),
    }
}

pub async fn list(db: &impl ConnectionTrait) -> Result<Vec<UserRow>, DbErr> {
    Ok(tenant_users::Entity::find()
        .order_by_asc(tenant_users::Column::Email)
        .all(db)
        .await?
        .iter()
        .map(row)
        .collect())
}

pub async fn recent_audit(db: &impl ConnectionTrait, n: u64) -> Result<Vec<AuditRow>, DbErr> {
    audit_page(db, 0, n).await
}

/// Audit log entries, newest first: page `page` (from 0) of `per_page`.
pub async fn audit_page(
    db: &impl ConnectionTrait,
    page: u64,
    per_page: u64,
) -> Result<Vec<AuditRow>, DbErr> {
    Ok(audit_log::Entity::find()
        .order_by_desc(audit_log::Column::Id)
        .offset(page.saturating_mul(per_page))
        .limit(per_page)
        .all(db)
        .await?
        .into_iter()
        .map(|a| AuditRow {
            actor: a.actor,
            action: a.action,
            detail: a.detail,
            at: a.created_at.format("%Y-%m-%d %H:%M UTC").to_string(),
        })
        .collect())
}

/// How many entries the audit log holds.
pub async fn audit_count(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    audit_log::Entity::find().count(db).await
}

/// The emails of the company's active admins (whom mail about the company
/// itself goes to).
pub async fn admin_emails(db: &impl ConnectionTrait) -> Result<Vec<String>, DbErr> {
    Ok(tenant_users::Entity::find()
        .filter(tenant_users::Column::Role.eq(Role::Admin))
        .filter(tenant_users::Column::Disabled.eq(false))
        .all(db)
        .await?
        .into_iter()
        .map(|u| u.email)
        .collect())
}

/// (users, active admins, disabled users)
pub async fn counts(db: &impl ConnectionTrait) -> Result<(u64, u64, u64), DbErr> {
    let users = tenant_users::Entity::find().count(db).await?;
    let admins = tenant_users::Entity::find()
        .filter(tenant_users::Column::Role.eq(Role::Admin))
        .filter(tenant_users::Column::Disabled.eq(false))
        .count(db)
        .await?;
    let disabled = tenant_users::Entity::find()
        .filter(tenant_users::Column::Disabled.eq(true))
        .count(db)
        .await?;
    Ok((users, admins, disabled))
}

/// Adds a user to the company `company` whose database `db` is.
pub async fn add(
    db: &impl ConnectionTrait,
    company: Uuid,
    actor: &str,
    email: &Email,
    role: Role,
    password: Password,
) -> Result<UserRow, UserError> {
    let hash = passwords::hash_blocking(Whose::Company(company), password).await?;
    let user = insert(db, email.as_str(), role, hash).await?;
    audit(
        db,
        actor,
        "user.added",
        format!("Added {} as {}", email, role.as_str()),
    )
    .await?;
    Ok(row(&user))
}

/// A new active user with an argon2 `hash` already made; 409 when the
/// email is taken.
pub(super) async fn insert(
    db: &impl ConnectionTrait,
    email: &str,
    role: Role,
    hash: String,
) -> Result<tenant_users::Model, UserError> {
    tenant_users::ActiveModel {
        id: Set(Uuid::new_v4()),
        email: Set(email.to_owned()),
        password_hash: Set(hash),
        role: Set(role),
        disabled: Set(false),
        created_at: Set(Utc::now()),
    }
    .insert(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            UserError::EmailTaken
        } else {
            UserError::Db(e)
        }
    })
}

/// `other active admins >= 1`, as a condition on the target row `id`.
fn another_active_admin(id: Uuid) -> Expr {
    let others = Query::select()
        .expr(Func::count(Expr::col(tenant_users::Column::Id)))
        .from(tenant_users::Entity)
        .and_where(tenant_users::Column::Role.eq(Role::Admin))
        .and_where(tenant_users::Column::Disabled.eq(false))
        .and_where(tenant_users::Column::Id.ne(id))
        .to_owned();
    Expr::SubQuery(None, Box::new(SubQueryStatement::SelectStatement(others))).gte(1)
}

async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<tenant_users::Model, UserError> {
    tenant_users::Entity::find_by_id(id)
        .one(db)
        .await?
        .ok_or(UserError::NotFound)
}

/// Whether `user` counts as an active admin now.
fn is_active_admin(user: &tenant_users::Model) -> bool {
    user.role == Role::Admin && !user.disabled
}

/// Begins a transaction that holds the active admins: on PostgreSQL their
/// rows locked, so a concurrent change that could take an admin away waits
/// for this one to commit and then counts again; on SQLite the write lock,
/// taken first so the transaction never has to upgrade a read lock (which
/// WAL mode refuses at once when another writer got in between).
async fn holding_admins<C: TransactionTrait>(db: &C) -> Result<C::Transaction, DbErr> {
    let txn = db.begin().await?;
    match txn.get_database_backend() {
        DbBackend::Postgres => {
            tenant_users::Entity::find()
                .filter(tenant_users::Column::Role.eq(Role::Admin))
                .filter(tenant_users::Column::Disabled.eq(false))
                .lock_exclusive()
                .all(&txn)
                .await?;
        }
        _ => {
            txn.execute_unprepared("UPDATE users SET role = role WHERE 1 = 0")
                .await?;
        }
    }
    Ok(txn)
}

pub async fn set_role(
    db: &impl TransactionTrait,
    actor: &str,
    id: Uuid,
    role: Role,
) -> Result<UserRow, UserError> {
    let txn = holding_admins(db).await?;
    let user = find(&txn, id).await?;
    let mut update = tenant_users::Entity::update_many()
        .col_expr(tenant_users::Column::Role, Expr::value(role.as_str()))
        .filter(tenant_users::Column::Id.eq(id));
    if role != Role::Admin && is_active_admin(&user) {
        update = update.filter(another_active_admin(id));
    }
    if update.exec(&txn).await?.rows_affected == 0 {
        return Err(UserError::LastAdmin);
    }
    audit(
        &txn,
        actor,
        "user.role",
        format!("Made {} {}", user.email, role.as_str()),
    )
    .await?;
    let changed = row(&find(&txn, id).await?);
    txn.commit().await?;
    Ok(changed)
}

pub async fn set_disabled(
    db: &impl TransactionTrait,
    actor: &str,
    id: Uuid,
    disabled: bool,
) -> Result<UserRow, UserError> {
    let txn = holding_admins(db).await?;
    let user = find(&txn, id).await?;
    let mut update = tenant_users::Entity::update_many()
        .col_expr(tenant_users::Column::Disabled, Expr::value(disabled))
        .filter(tenant_users::Column::Id.eq(id));
    if disabled && is_active_admin(&user) {
        update = update.filter(another_active_admin(id));
    }
    if update.exec(&txn).await?.rows_affected == 0 {
        return Err(UserError::LastAdmin);
    }
    let what = if disabled { "Disabled" } else { "Enabled" };
    audit(
        &txn,
        actor,
        if disabled {
            "user.disabled"
        } else {
            "user.enabled"
        },
        format!("{what} {}", user.email),
    )
    .await?;
    let changed = row(&find(&txn, id).await?);
    txn.commit().await?;
    Ok(changed)
}

pub async fn remove(db: &impl TransactionTrait, actor: &str, id: Uuid) -> Result<(), UserError> {
    let txn = holding_admins(db).await?;
    let user = find(&txn, id).await?;
    let mut delete = tenant_users::Entity::delete_many().filter(tenant_users::Column::Id.eq(id));
    if is_active_admin(&user) {
        delete = delete.filter(another_active_admin(id));
    }
    if delete.exec(&txn).await?.rows_affected == 0 {
        return Err(UserError::LastAdmin);
    }
    audit(
        &txn,
        actor,
        "user.removed",
        format!("Removed {}", user.email),
    )
    .await?;
    txn.commit().await?;
    Ok(())
}

pub async fn change_password(
    db: &impl ConnectionTrait,
    company: Uuid,
    id: Uuid,
    current: &str,
    new: Password,
) -> Result<(), UserError> {
    let user = find(db, id).await?;
    let whose = Whose::Company(company);
    if !passwords::verify_blocking(whose, current.to_owned(), user.password_hash.clone()).await? {
        return Err(UserError::WrongPassword);
    }
    let hash = passwords::hash_blocking(whose, new).await?;
    tenant_users::ActiveModel {
        id: Set(id),
        password_hash: Set(hash),
        ..Default::default()
    }
    .update(db)
    .await?;
    audit(
        db,
        &user.email,
        "user.password",
        "Changed their password".into(),
    )
    .await?;
    Ok(())
}
