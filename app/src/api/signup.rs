//! Server functions of signup on the base domain: the live subdomain check and creating a company.
use leptos::prelude::*;

use crate::wire::{AppError, SubdomainCheck};

/// Whether `subdomain` could be had, for the live check on the signup form.
#[server(endpoint = "check_subdomain")]
pub async fn check_subdomain(subdomain: String) -> Result<SubdomainCheck, AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{context::services, http::internal, tenancy::directory};

    let sub = match Subdomain::parse(&subdomain) {
        Ok(sub) => sub,
        Err(e) => return Ok(SubdomainCheck::Invalid(e.to_string())),
    };
    let taken = directory::find_by_subdomain(&services()?.registry, &sub)
        .await
        .map_err(internal)?
        .is_some();
    Ok(if taken {
        SubdomainCheck::Taken
    } else {
        SubdomainCheck::Available
    })
}

/// Creates a company and sends its admin, signed in, to its subdomain.
#[server(endpoint = "signup")]
pub async fn signup(
    company: String,
    subdomain: String,
    email: String,
    password: String,
) -> Result<(), AppError> {
    use crate::ssr::{
        accounts::handoff,
        context::{client_ip, root_origin, services},
        http::{internal, reject},
        tenancy::provisioning::{NewTenant, NewTenantField, ProvisionError},
    };

    let origin = root_origin()?;
    let new = NewTenant::parse(&company, &subdomain, &email, &password).map_err(|e| {
        let field = match e.field {
            NewTenantField::Name => "company",
            NewTenantField::Subdomain => "subdomain",
            NewTenantField::AdminEmail => "email",
            NewTenantField::AdminPassword => "password",
        };
        reject(AppError::invalid(field, e))
    })?;
    let services = services()?;
    services
        .signups
        .check(client_ip())
        .map_err(|retry_after_secs| reject(AppError::Throttled { retry_after_secs }))?;
    let tenant = match services.create_tenant(new).await {
        Ok(t) => t,
        Err(e @ ProvisionError::Taken(_)) => {
            return Err(reject(AppError::conflict("subdomain", e)))
        }
        Err(e) => return Err(internal(e)),
    };
    let admin = tenant
        .admin_user_id
        .ok_or_else(|| internal("active tenant without admin"))?;
    let token = handoff::issue(&services.registry, tenant.id, admin)
        .await
        .map_err(internal)?;
    leptos_axum::redirect(&format!(
        "{}auth/handoff?token={token}",
        origin.tenant_url(&tenant.subdomain)
    ));
    Ok(())
}
