use leptos::prelude::*;

use crate::wire::{AppError, SubdomainCheck};

/// Whether `subdomain` could be had, for the live check on the signup form.
#[server(endpoint = "check_subdomain")]
pub async fn check_subdomain(subdomain: String) -> Result<SubdomainCheck, AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{auth::services, http::internal, registry};

    let sub = match Subdomain::parse(&subdomain) {
        Ok(sub) => sub,
        Err(e) => return Ok(SubdomainCheck::Invalid(e.to_string())),
    };
    let taken = registry::find_tenant_by_subdomain(&services()?.registry, &sub)
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
    use crate::domain::{CompanyName, Email, Password, Subdomain};
    use crate::site::Site;
    use crate::ssr::{
        auth::{request_site, services},
        handoff,
        http::{internal, reject},
        provisioning::{NewTenant, ProvisionError},
    };

    let Site::Root { origin } = request_site()?.site else {
        return Err(reject(AppError::NotFound));
    };
    let invalid = |field: &str, e: &dyn std::fmt::Display| reject(AppError::invalid(field, e));
    let new = NewTenant {
        name: CompanyName::parse(&company).map_err(|e| invalid("company", &e))?,
        subdomain: Subdomain::parse(&subdomain).map_err(|e| invalid("subdomain", &e))?,
        admin_email: Email::parse(&email).map_err(|e| invalid("email", &e))?,
        admin_password: Password::parse(&password).map_err(|e| invalid("password", &e))?,
    };
    let services = services()?;
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
