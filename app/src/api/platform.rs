//! Server functions of the platform admin, on the base domain only.
use leptos::prelude::*;

use crate::wire::{AppError, TenantPage};

/// Signs a platform admin in; `code` is their authenticator's current
/// code, when they have turned the second factor on.
#[server(endpoint = "admin_login")]
pub async fn admin_login(
    email: String,
    password: String,
    #[server(default)] code: String,
) -> Result<(), AppError> {
    use crate::ssr::{accounts::auth::platform_sign_in, context::client};

    platform_sign_in(&email, &password, &code, &client()).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

#[server(endpoint = "admin_logout")]
pub async fn admin_logout() -> Result<(), AppError> {
    use crate::ssr::{accounts::auth::end_session, context::session};

    end_session(&session().await?).await?;
    leptos_axum::redirect("/admin");
    Ok(())
}

/// Companies per page of the platform admin's list.
pub const TENANTS_PER_PAGE: u64 = 50;

/// One page of companies: `q` in the name or subdomain, `status` (empty
/// for any), `sort` (`name`, `subdomain`, `newest`, `oldest`, `status`),
/// `page` from 1. Unknown values fall back to the defaults.
#[server(endpoint = "list_tenants")]
pub async fn list_tenants(
    #[server(default)] q: String,
    #[server(default)] status: String,
    #[server(default)] schema: String,
    #[server(default)] sort: String,
    #[server(default)] page: u64,
) -> Result<TenantPage, AppError> {
    use crate::ssr::{
        accounts::auth::require_platform_admin,
        context::services,
        entities::tenants::TenantStatus,
        http::internal,
        tenancy::{
            request::directory::{self, SchemaFilter},
            schema::migrate::{latest_tenant_schema, tenant_schema_position},
        },
    };
    use sea_orm::{ActiveEnum, Iterable};

    require_platform_admin().await?;
    let status = TenantStatus::iter().find(|s| s.to_value() == status);
    let page = page.max(1);
    let schema = match schema.as_str() {
        "behind" => SchemaFilter::Behind(latest_tenant_schema()),
        "failed" => SchemaFilter::Failed,
        _ => SchemaFilter::Any,
    };
    let listing = directory::search(
        &services()?.registry,
        &q,
        status,
        schema,
        directory::SortBy::parse(&sort),
        page - 1,
        TENANTS_PER_PAGE,
    )
    .await
    .map_err(internal)?;
    let ids: Vec<uuid::Uuid> = listing.rows.iter().map(|t| t.id).collect();
    let restores =
        crate::ssr::tenancy::backups::restore::latest_restores(&services()?.registry, &ids)
            .await
            .map_err(internal)?;
    let rows = listing
        .rows
        .into_iter()
        .map(|t| {
            let schema_version = t.schema_version.unwrap_or_default();
            crate::wire::TenantRow {
                restore: restores
                    .get(&t.id)
                    .map(crate::ssr::tenancy::backups::restore::describe),
                schema: match tenant_schema_position(&schema_version) {
                    Some((at, of)) => format!("{at} of {of}"),
                    None => "unknown".into(),
                },
                migration_error: t.last_migration_error,
                purge_after: t
                    .purge_after
                    .filter(|_| t.status == crate::ssr::entities::tenants::TenantStatus::Deleting)
                    .map(|p| p.format("%Y-%m-%d %H:%M").to_string()),
                name: t.name,
                subdomain: t.subdomain,
                status: t.status.to_value(),
                server: t.db_server.unwrap_or_else(|| "default".into()),
                schema_version,
                created: t.created_at.format("%Y-%m-%d %H:%M").to_string(),
            }
        })
        .collect();
    Ok(TenantPage {
        rows,
        total: listing.total,
        page,
        pages: listing.total.div_ceil(TENANTS_PER_PAGE).max(1),
    })
}

#[cfg(feature = "ssr")]
fn lifecycle_error(e: crate::ssr::tenancy::lifecycle::LifecycleError) -> AppError {
    use crate::ssr::{
        http::{internal, reject},
        tenancy::lifecycle::LifecycleError,
    };
    match e {
        LifecycleError::NotFound(_) => reject(AppError::NotFound),
        LifecycleError::NotSettled(_) | LifecycleError::NotScheduled(_) => {
            reject(AppError::conflict("subdomain", e))
        }
        other => internal(other),
    }
}

#[server(endpoint = "set_tenant_paused")]
pub async fn set_tenant_paused(subdomain: String, paused: bool) -> Result<(), AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{accounts::auth::require_platform_admin, context::services, http::reject};

    require_platform_admin().await?;
    let sub = Subdomain::parse(&subdomain).map_err(|_| reject(AppError::NotFound))?;
    services()?
        .set_paused(&sub, paused)
        .await
        .map_err(lifecycle_error)?;
    Ok(())
}

/// Deletes a company (closed now, purged once the grace period is over);
/// `confirm` must repeat its subdomain.
#[server(endpoint = "delete_tenant")]
pub async fn delete_tenant(subdomain: String, confirm: String) -> Result<(), AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{accounts::auth::require_platform_admin, context::services, http::reject};

    require_platform_admin().await?;
    let sub = Subdomain::parse(&subdomain).map_err(|_| reject(AppError::NotFound))?;
    if confirm.trim() != sub.as_str() {
        return Err(reject(AppError::invalid(
            "confirm",
            format!("Type {sub} to confirm."),
        )));
    }
    services()?
        .schedule_deletion(
            &sub,
            crate::ssr::tenancy::lifecycle::offboarding::Deletion::Grace,
        )
        .await
        .map_err(lifecycle_error)?;
    Ok(())
}

/// Brings back a company scheduled for deletion, as it was.
#[server(endpoint = "undelete_tenant")]
pub async fn undelete_tenant(subdomain: String) -> Result<(), AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{accounts::auth::require_platform_admin, context::services, http::reject};

    require_platform_admin().await?;
    let sub = Subdomain::parse(&subdomain).map_err(|_| reject(AppError::NotFound))?;
    services()?.undelete(&sub).await.map_err(lifecycle_error)?;
    Ok(())
}
