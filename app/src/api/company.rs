//! Server functions of a company's dashboard and user management; admin ones answer 403 to members.
use leptos::prelude::*;

use crate::wire::{AppError, AuditPage, Dashboard, ExportRow, InvitationRow, UserRow};

#[cfg(feature = "ssr")]
fn user_error(e: crate::ssr::accounts::users::UserError) -> AppError {
    use crate::ssr::{
        accounts::users::UserError,
        http::{internal, reject},
    };
    match e {
        UserError::EmailTaken => reject(AppError::conflict("email", e)),
        UserError::LastAdmin => reject(AppError::conflict("user", e)),
        UserError::NotFound => reject(AppError::NotFound),
        UserError::WrongPassword => reject(AppError::invalid("current", e)),
        UserError::Busy(_) => reject(AppError::Unavailable),
        UserError::Db(e) => internal(e),
    }
}

/// After a change to who is an active user here: the registry's "find your
/// workspace" rows follow. A failure is logged, not the caller's: the next
/// change, or the next rebuild, puts it right.
#[cfg(feature = "ssr")]
pub(crate) async fn sync_members(
    tenant: &crate::ssr::tenancy::TenantContext,
    db: &impl sea_orm::ConnectionTrait,
) {
    use crate::ssr::{accounts::workspaces, context::services};
    if let Ok(s) = services() {
        if let Err(e) = workspaces::sync(&s.registry, &s.cipher, tenant.id(), db).await {
            tracing::warn!(tenant = %tenant.subdomain(), error = %e, "member index not updated");
        }
    }
}

#[cfg(feature = "ssr")]
fn user_id(id: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::parse_str(id).map_err(|_| crate::ssr::http::reject(AppError::NotFound))
}

#[server(endpoint = "load_dashboard")]
pub async fn load_dashboard() -> Result<Dashboard, AppError> {
    use crate::ssr::{
        accounts::{auth::require_user, users},
        http::internal,
    };

    let user = require_user().await?;
    let conn = user.db.conn();
    let (users_n, admins, disabled) = users::counts(conn).await.map_err(internal)?;
    Ok(Dashboard {
        company: user.tenant.name().to_owned(),
        subdomain: user.tenant.subdomain().to_owned(),
        users: users_n,
        admins,
        disabled,
        me: user.me(),
        // The audit log is for admins; members see the company at a glance.
        recent: if user.role == crate::domain::Role::Admin {
            users::recent_audit(conn, 10).await.map_err(internal)?
        } else {
            vec![]
        },
    })
}

#[server(endpoint = "list_users")]
pub async fn list_users() -> Result<Vec<UserRow>, AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, users},
        http::internal,
    };

    let admin = require_admin().await?;
    users::list(admin.db.conn()).await.map_err(internal)
}

#[server(endpoint = "add_user")]
pub async fn add_user(email: String, role: String, password: String) -> Result<UserRow, AppError> {
    use crate::domain::{Email, Password, Role};
    use crate::ssr::{
        accounts::{auth::require_admin, users},
        http::reject,
    };

    let admin = require_admin().await?;
    let email = Email::parse(&email).map_err(|e| reject(AppError::invalid("email", e)))?;
    let role = Role::parse(&role).map_err(|e| reject(AppError::invalid("role", e)))?;
    let password =
        Password::parse(&password).map_err(|e| reject(AppError::invalid("password", e)))?;
    let added = users::add(
        admin.db.conn(),
        admin.tenant.id(),
        &admin.email,
        &email,
        role,
        password,
    )
    .await
    .map_err(user_error)?;
    sync_members(&admin.tenant, admin.db.conn()).await;
    Ok(added)
}

#[server(endpoint = "set_user_role")]
pub async fn set_user_role(id: String, role: String) -> Result<UserRow, AppError> {
    use crate::domain::Role;
    use crate::ssr::{
        accounts::{auth::require_admin, users},
        http::reject,
    };

    let admin = require_admin().await?;
    let role = Role::parse(&role).map_err(|e| reject(AppError::invalid("role", e)))?;
    let changed = users::set_role(admin.db.conn(), &admin.email, user_id(&id)?, role)
        .await
        .map_err(user_error)?;
    back_to_users("");
    Ok(changed)
}

#[server(endpoint = "set_user_disabled")]
pub async fn set_user_disabled(id: String, disabled: bool) -> Result<UserRow, AppError> {
    use crate::ssr::accounts::{auth::require_admin, users};

    use crate::ssr::{
        accounts::{auth::tenant_subject, sessions::end_sessions_of},
        http::internal,
    };

    let admin = require_admin().await?;
    let id = user_id(&id)?;
    let changed = users::set_disabled(admin.db.conn(), &admin.email, id, disabled)
        .await
        .map_err(user_error)?;
    if disabled {
        // Signed out everywhere: enabled again, they sign in again.
        end_sessions_of(
            admin.db.conn(),
            &tenant_subject(admin.tenant.id(), id),
            None,
        )
        .await
        .map_err(internal)?;
    }
    sync_members(&admin.tenant, admin.db.conn()).await;
    back_to_users("");
    Ok(changed)
}

#[server(endpoint = "remove_user")]
pub async fn remove_user(id: String) -> Result<(), AppError> {
    use crate::ssr::accounts::{auth::require_admin, users};

    let admin = require_admin().await?;
    users::remove(admin.db.conn(), &admin.email, user_id(&id)?)
        .await
        .map_err(user_error)?;
    sync_members(&admin.tenant, admin.db.conn()).await;
    // From its confirmation page too, back to the list.
    back_to_users("");
    Ok(())
}

#[cfg(feature = "ssr")]
fn invite_error(e: crate::ssr::accounts::invitations::InviteError) -> AppError {
    use crate::ssr::{
        accounts::invitations::InviteError,
        http::{internal, reject},
    };
    match e {
        InviteError::EmailTaken => reject(AppError::conflict("email", e)),
        InviteError::NotFound | InviteError::BadLink => reject(AppError::NotFound),
        InviteError::Busy(_) => reject(AppError::Unavailable),
        InviteError::Quota(_) => reject(AppError::Throttled {
            retry_after_secs: 3600,
        }),
        InviteError::Db(e) => internal(e),
    }
}

/// Invites `email` as `role` by mail (admins).
#[server(endpoint = "invite_user")]
pub async fn invite_user(email: String, role: String) -> Result<InvitationRow, AppError> {
    use crate::domain::{Email, Role};
    use crate::ssr::{
        accounts::{auth::require_admin, invitations, reset::LinkSite},
        context::services,
        http::reject,
    };

    let admin = require_admin().await?;
    let email = Email::parse(&email).map_err(|e| reject(AppError::invalid("email", e)))?;
    let role = Role::parse(&role).map_err(|e| reject(AppError::invalid("role", e)))?;
    let site = LinkSite::of(&admin.tenant, &services()?);
    let invited = invitations::invite(
        admin.db.conn(),
        &admin.email,
        &email,
        role,
        &site,
        &services()?.mailer,
        services()?.invitations_per_day,
    )
    .await
    .map_err(invite_error)?;
    back_to_users("?invited=1");
    Ok(invited)
}

/// Invitations not yet accepted (admins).
#[server(endpoint = "list_invitations")]
pub async fn list_invitations() -> Result<Vec<InvitationRow>, AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, invitations},
        http::internal,
    };

    let admin = require_admin().await?;
    invitations::pending(admin.db.conn())
        .await
        .map_err(internal)
}

/// Sends an invitation again with a fresh link (admins).
#[server(endpoint = "resend_invitation")]
pub async fn resend_invitation(id: String) -> Result<InvitationRow, AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, invitations, reset::LinkSite},
        context::services,
    };

    let admin = require_admin().await?;
    let site = LinkSite::of(&admin.tenant, &services()?);
    let resent = invitations::resend(
        admin.db.conn(),
        &admin.email,
        user_id(&id)?,
        &site,
        &services()?.mailer,
        services()?.invitations_per_day,
    )
    .await
    .map_err(invite_error)?;
    back_to_users("");
    Ok(resent)
}

/// Withdraws an invitation (admins).
#[server(endpoint = "revoke_invitation")]
pub async fn revoke_invitation(id: String) -> Result<(), AppError> {
    use crate::ssr::accounts::{auth::require_admin, invitations};

    let admin = require_admin().await?;
    invitations::revoke(admin.db.conn(), &admin.email, user_id(&id)?)
        .await
        .map_err(invite_error)?;
    back_to_users("");
    Ok(())
}

/// A plain form post from the users page that succeeded goes back to a
/// clean `/users` (`query`: what it says there, such as `?invited=1`), not
/// to its Referer, which may carry an earlier outcome. A call from script
/// (the page's island) only gets a header it ignores.
#[cfg(feature = "ssr")]
fn back_to_users(query: &str) {
    leptos_axum::redirect(&format!("/users{query}"));
}

/// Entries per page of the audit log.
pub const AUDIT_PER_PAGE: u64 = 50;

/// One page of the audit log, newest first (admins); `page` from 1.
#[server(endpoint = "load_audit")]
pub async fn load_audit(#[server(default)] page: u64) -> Result<AuditPage, AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, users},
        http::internal,
    };

    let admin = require_admin().await?;
    let conn = admin.db.conn();
    let total = users::audit_count(conn).await.map_err(internal)?;
    let pages = total.div_ceil(AUDIT_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let rows = users::audit_page(conn, page - 1, AUDIT_PER_PAGE)
        .await
        .map_err(internal)?;
    Ok(AuditPage {
        rows,
        page,
        pages,
        total,
    })
}

/// Renames the company (its display name; the address stays) (admins).
#[server(endpoint = "rename_company")]
pub async fn rename_company(name: String) -> Result<(), AppError> {
    use crate::domain::{CompanyName, Subdomain};
    use crate::ssr::{
        accounts::{auth::require_admin, users::audit},
        context::services,
        http::{internal, reject},
    };

    let admin = require_admin().await?;
    let name = CompanyName::parse(&name).map_err(|e| reject(AppError::invalid("name", e)))?;
    let old = admin.tenant.name().to_owned();
    let sub = Subdomain::parse(admin.tenant.subdomain()).map_err(internal)?;
    services()?
        .rename_tenant(&sub, &name)
        .await
        .map_err(internal)?;
    audit(
        admin.db.conn(),
        &admin.email,
        "company.renamed",
        format!("Renamed the company from '{old}' to '{}'", name.as_str()),
    )
    .await
    .map_err(internal)?;
    leptos_axum::redirect("/settings?renamed=1");
    Ok(())
}

/// Starts an export of the company's data (admins): a ZIP without
/// credentials, made in the background; the settings page follows it.
#[server(endpoint = "start_export")]
pub async fn start_export() -> Result<(), AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{
        accounts::{auth::require_admin, users::audit},
        context::services,
        http::{internal, reject},
        tenancy::portability::requests::RequestError,
    };

    let admin = require_admin().await?;
    let sub = Subdomain::parse(admin.tenant.subdomain()).map_err(internal)?;
    match services()?
        .request_export(admin.tenant.id(), &sub, &admin.email)
        .await
    {
        Ok(_) => {}
        Err(e @ RequestError::Running) => return Err(reject(AppError::conflict("export", e))),
        Err(RequestError::Db(e)) => return Err(internal(e)),
    }
    audit(
        admin.db.conn(),
        &admin.email,
        "company.export_requested",
        "Asked for an export of the company's data".into(),
    )
    .await
    .map_err(internal)?;
    leptos_axum::redirect("/settings?export=started#export");
    Ok(())
}

/// The company's latest exports (admins).
#[server(endpoint = "load_exports")]
pub async fn load_exports() -> Result<Vec<ExportRow>, AppError> {
    use crate::ssr::entities::tenant_exports::ExportStatus;
    use crate::ssr::{accounts::auth::require_admin, context::services, http::internal};

    let admin = require_admin().await?;
    let rows = services()?
        .exports_of(admin.tenant.id())
        .await
        .map_err(internal)?;
    let shown = |t: chrono::DateTime<chrono::Utc>| t.format("%Y-%m-%d %H:%M UTC").to_string();
    Ok(rows
        .into_iter()
        .map(|r| {
            let (status, detail) = match r.status {
                ExportStatus::Running => (
                    "running",
                    format!(
                        "{} of {} tables, {} rows so far",
                        r.tables_done, r.tables_total, r.rows
                    ),
                ),
                ExportStatus::Ready => (
                    "ready",
                    format!(
                        "{} rows, {} KiB",
                        r.rows,
                        (r.bytes.unwrap_or(0).max(0) as u64).div_ceil(1024)
                    ),
                ),
                ExportStatus::Failed => (
                    "failed",
                    r.error
                        .clone()
                        .unwrap_or_else(|| "It could not be made.".into()),
                ),
                ExportStatus::Expired => ("expired", "Its day is over; the file is gone.".into()),
            };
            ExportRow {
                id: r.id.to_string(),
                status: status.into(),
                detail,
                started: shown(r.started_at),
                download: (r.status == ExportStatus::Ready)
                    .then(|| {
                        r.expires_at
                            .map(|e| (format!("/exports/{}", r.id), shown(e)))
                    })
                    .flatten(),
            }
        })
        .collect())
}
