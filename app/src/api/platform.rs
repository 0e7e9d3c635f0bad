//! Server functions of the platform admin, on the base domain only.
use leptos::prelude::*;

use crate::wire::{AppError, TenantRow};

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

#[server(endpoint = "list_tenants")]
pub async fn list_tenants() -> Result<Vec<TenantRow>, AppError> {
    use crate::ssr::{
        accounts::auth::require_platform_admin, context::services, http::internal,
        tenancy::directory,
    };
    use sea_orm::ActiveEnum;

    require_platform_admin().await?;
    let tenants = directory::list(&services()?.registry)
        .await
        .map_err(internal)?;
    Ok(tenants
        .into_iter()
        .map(|t| TenantRow {
            name: t.name,
            subdomain: t.subdomain,
            status: t.status.to_value(),
            schema_version: t.schema_version.unwrap_or_default(),
            created: t.created_at.format("%Y-%m-%d %H:%M").to_string(),
        })
        .collect())
}

#[cfg(feature = "ssr")]
fn lifecycle_error(e: crate::ssr::tenancy::lifecycle::LifecycleError) -> AppError {
    use crate::ssr::{
        http::{internal, reject},
        tenancy::lifecycle::LifecycleError,
    };
    match e {
        LifecycleError::NotFound(_) => reject(AppError::NotFound),
        LifecycleError::NotSettled(_) => reject(AppError::conflict("subdomain", e)),
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

/// Deletes a company; `confirm` must repeat its subdomain.
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
        .delete_tenant(&sub)
        .await
        .map_err(lifecycle_error)?;
    Ok(())
}
