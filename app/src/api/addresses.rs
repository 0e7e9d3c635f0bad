//! A company's addresses, for its admins on `/settings`: its subdomain (changed, the old one redirecting) and its own domains.
use leptos::prelude::*;

use crate::wire::{Addresses, AppError};

/// The company's subdomain, primary address and domains (admins).
#[server(endpoint = "load_addresses")]
pub async fn load_addresses() -> Result<Addresses, AppError> {
    use crate::ssr::{accounts::auth::require_admin, context::services, http::internal};

    let admin = require_admin().await?;
    let services = services()?;
    let domains = services
        .domains_of(admin.tenant.id())
        .await
        .map_err(internal)?;
    Ok(Addresses {
        subdomain: admin.tenant.subdomain().to_owned(),
        primary_url: services.company_url(admin.tenant.id(), admin.tenant.subdomain()),
        domains: domains.iter().map(|d| services.domain_row(d)).collect(),
    })
}

#[cfg(feature = "ssr")]
fn domain_error(e: crate::ssr::tenancy::domains::DomainError) -> AppError {
    use crate::ssr::{
        http::{internal, reject},
        tenancy::domains::DomainError,
    };
    match e {
        DomainError::Registry(e) => internal(e),
        e @ (DomainError::Taken(_) | DomainError::TooMany | DomainError::NotVerified(_)) => {
            reject(AppError::conflict("domain", e))
        }
        e @ DomainError::Dns(_) => reject(AppError::conflict(
            "domain",
            format!("{e}; please try again in a moment"),
        )),
        e => reject(AppError::invalid("domain", e)),
    }
}

/// Adds a domain, unverified; the page shows the records to create.
#[server(endpoint = "add_domain")]
pub async fn add_domain(domain: String) -> Result<(), AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, users::audit},
        context::services,
        http::internal,
    };

    let admin = require_admin().await?;
    let d = services()?
        .add_domain(admin.tenant.id(), &domain)
        .await
        .map_err(domain_error)?;
    audit(
        admin.db.conn(),
        &admin.email,
        "domain.added",
        format!("Added the domain {}", d.domain),
    )
    .await
    .map_err(internal)?;
    leptos_axum::redirect("/settings?domain=added#domains");
    Ok(())
}

/// Looks the domain's TXT record up now.
#[server(endpoint = "verify_domain")]
pub async fn verify_domain(domain: String) -> Result<(), AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, users::audit},
        context::services,
        http::{internal, reject},
        tenancy::domains::{names::challenge_name, Check},
    };

    let admin = require_admin().await?;
    match services()?
        .verify_domain(admin.tenant.id(), &domain)
        .await
        .map_err(domain_error)?
    {
        Check::Verified | Check::Missing { .. } => {
            audit(
                admin.db.conn(),
                &admin.email,
                "domain.verified",
                format!("Verified the domain {domain}"),
            )
            .await
            .map_err(internal)?;
            leptos_axum::redirect("/settings?domain=verified#domains");
            Ok(())
        }
        Check::Pending { found } => Err(reject(AppError::conflict(
            "domain",
            if found.is_empty() {
                format!(
                    "No TXT record was found at {}. DNS changes can take a few minutes; try again soon.",
                    challenge_name(&domain)
                )
            } else {
                format!(
                    "The TXT record at {} does not hold this domain's token.",
                    challenge_name(&domain)
                )
            },
        ))),
        Check::Lapsed => Err(reject(AppError::conflict(
            "domain",
            format!(
                "The TXT record at {} is gone, so the domain is no longer served. Publish it again.",
                challenge_name(&domain)
            ),
        ))),
    }
}

/// Removes a domain: it stops being served.
#[server(endpoint = "remove_domain")]
pub async fn remove_domain(domain: String) -> Result<(), AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, users::audit},
        context::services,
        http::internal,
    };

    let admin = require_admin().await?;
    services()?
        .remove_domain(admin.tenant.id(), &domain)
        .await
        .map_err(domain_error)?;
    audit(
        admin.db.conn(),
        &admin.email,
        "domain.removed",
        format!("Removed the domain {domain}"),
    )
    .await
    .map_err(internal)?;
    leptos_axum::redirect("/settings?domain=removed#domains");
    Ok(())
}

/// Makes a verified domain the company's primary address (links in
/// mail), its subdomain redirecting there if `redirect` is ticked; an
/// empty `domain` makes the subdomain primary again.
#[server(endpoint = "set_primary_domain")]
pub async fn set_primary_domain(domain: String, redirect: Option<String>) -> Result<(), AppError> {
    use crate::ssr::{
        accounts::{auth::require_admin, users::audit},
        context::services,
        http::internal,
    };

    let admin = require_admin().await?;
    let chosen = Some(domain.trim()).filter(|d| !d.is_empty());
    let redirect = chosen.is_some() && redirect.is_some();
    services()?
        .set_primary_domain(admin.tenant.id(), chosen, redirect)
        .await
        .map_err(domain_error)?;
    audit(
        admin.db.conn(),
        &admin.email,
        "domain.primary",
        match chosen {
            Some(d) if redirect => {
                format!("Made {d} the primary address; the subdomain redirects to it")
            }
            Some(d) => format!("Made {d} the primary address"),
            None => "Made the subdomain the primary address".to_owned(),
        },
    )
    .await
    .map_err(internal)?;
    leptos_axum::redirect("/settings?domain=primary#domains");
    Ok(())
}

/// Gives the company a new subdomain. The old one redirects every link
/// to the new one for 90 days (a setting), and no one else can take it
/// for 180; the admin lands on the new address still signed in.
#[server(endpoint = "change_subdomain")]
pub async fn change_subdomain(subdomain: String) -> Result<(), AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{
        accounts::auth::require_admin,
        context::services,
        http::{internal, reject},
        tenancy::domains::rename::RenameError,
    };

    let admin = require_admin().await?;
    let new =
        Subdomain::parse(&subdomain).map_err(|e| reject(AppError::invalid("subdomain", e)))?;
    let old = Subdomain::parse(admin.tenant.subdomain()).map_err(internal)?;
    match services()?.rename_company(&old, &new, &admin.email).await {
        Ok(_) => {}
        Err(e @ (RenameError::Taken(_) | RenameError::Same(_))) => {
            return Err(reject(AppError::conflict("subdomain", e)))
        }
        Err(e) => return Err(internal(e)),
    }
    // This host is the old address now: it hands the admin over.
    leptos_axum::redirect("/settings?address=changed#address");
    Ok(())
}
