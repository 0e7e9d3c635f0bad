//! Server functions of signup on the base domain: the live subdomain check, signing up (a link mailed to confirm the email) and confirming it (the company is created).
use leptos::prelude::*;

use crate::wire::{AppError, PendingSignup, SubdomainCheck};

/// Whether `subdomain` could be had, for the live check on the signup form.
#[server(endpoint = "check_subdomain")]
pub async fn check_subdomain(subdomain: String) -> Result<SubdomainCheck, AppError> {
    use crate::domain::Subdomain;
    use crate::ssr::{context::services, http::internal, tenancy::request::directory};

    let sub = match Subdomain::parse(&subdomain) {
        Ok(sub) => sub,
        Err(e) => return Ok(SubdomainCheck::Invalid(e.to_string())),
    };
    let registry = &services()?.registry;
    // Only a company takes a subdomain: signups waiting for their email
    // hold nothing.
    let taken = directory::subdomain_taken(registry, &sub)
        .await
        .map_err(internal)?;
    Ok(if taken {
        SubdomainCheck::Taken
    } else {
        SubdomainCheck::Available
    })
}

/// Mails a link that proves the email; on its page the admin chooses a
/// password and the company is created ([`verify_signup`]).
#[server(endpoint = "signup")]
pub async fn signup(company: String, subdomain: String, email: String) -> Result<(), AppError> {
    use crate::domain::{CompanyName, Email, Subdomain};
    use crate::ssr::{
        accounts::signups::{self, SignupError, SignupRequest},
        context::{client_ip, root_origin, services},
        http::{internal, reject},
    };

    root_origin()?;
    let req = SignupRequest {
        name: CompanyName::parse(&company).map_err(|e| reject(AppError::invalid("company", e)))?,
        subdomain: Subdomain::parse(&subdomain)
            .map_err(|e| reject(AppError::invalid("subdomain", e)))?,
        email: Email::parse(&email).map_err(|e| reject(AppError::invalid("email", e)))?,
    };
    let services = services()?;
    services
        .signups
        .check(client_ip())
        .map_err(|retry_after_secs| reject(AppError::Throttled { retry_after_secs }))?;
    match signups::request(
        &services.registry,
        &req,
        &services.public.root_url(),
        &services.mailer,
    )
    .await
    {
        Ok(()) => {
            leptos_axum::redirect("/signup?sent=1");
            Ok(())
        }
        Err(e @ SignupError::Taken(_)) => Err(reject(AppError::conflict("subdomain", e))),
        Err(e) => Err(internal(e)),
    }
}

/// What a confirmation link would create, for its page; `None` when the
/// link is unknown, used or expired.
#[server(endpoint = "check_signup")]
pub async fn check_signup(token: String) -> Result<Option<PendingSignup>, AppError> {
    use crate::ssr::{accounts::signups, context::services, http::internal};

    Ok(signups::lookup(&services()?.registry, &token)
        .await
        .map_err(internal)?
        .map(|p| PendingSignup {
            company: p.name,
            subdomain: p.subdomain,
            email: p.email,
        }))
}

/// Creates the company a confirmed signup asked for and sends its admin,
/// signed in, to its subdomain.
#[server(endpoint = "verify_signup")]
pub async fn verify_signup(
    token: String,
    password: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::domain::Password;
    use crate::ssr::{
        accounts::{
            handoff,
            signups::{self, SignupError},
        },
        context::{root_origin, services},
        http::{internal, reject},
        tenancy::lifecycle::provisioning::ProvisionError,
    };

    let origin = root_origin()?;
    // Checked before the link is spent: a refused password loses nothing.
    let password =
        Password::parse(&password).map_err(|e| reject(AppError::invalid("password", e)))?;
    if password.expose() != confirm {
        return Err(reject(AppError::invalid(
            "confirm",
            "The two passwords differ.",
        )));
    }
    let services = services()?;
    let registry = &services.registry;
    let new = match signups::confirm(registry, &token, password).await {
        Ok(new) => new,
        Err(e @ SignupError::BadLink) => return Err(reject(AppError::invalid("token", e))),
        Err(e) => return Err(internal(e)),
    };
    let tenant = match services.create_tenant(new).await {
        Ok(t) => t,
        Err(e @ ProvisionError::Taken(_)) => {
            signups::finish(registry, &token).await.map_err(internal)?;
            return Err(reject(AppError::conflict("token", e)));
        }
        Err(e) => {
            signups::release(registry, &token).await.map_err(internal)?;
            return Err(internal(e));
        }
    };
    signups::finish(registry, &token).await.map_err(internal)?;
    let admin = tenant
        .admin_user_id
        .ok_or_else(|| internal("active tenant without admin"))?;
    let token = handoff::issue(registry, tenant.id, admin)
        .await
        .map_err(internal)?;
    leptos_axum::redirect(&format!(
        "{}auth/handoff?token={token}",
        origin.tenant_url(&tenant.subdomain)
    ));
    Ok(())
}

/// "Find your workspace": mails `email` the sign-in links of every company
/// where it is an active user. The same answer whatever was found.
#[server(endpoint = "find_workspaces")]
pub async fn find_workspaces(email: String) -> Result<(), AppError> {
    use crate::domain::Email;
    use crate::ssr::{
        accounts::workspaces,
        context::{client_ip, root_origin, services},
        http::reject,
    };

    root_origin()?;
    let email = Email::parse(&email).map_err(|e| reject(AppError::invalid("email", e)))?;
    let services = services()?;
    let origin = services.public.clone();
    let throttled = |retry_after_secs| reject(AppError::Throttled { retry_after_secs });
    services.finds.check(client_ip()).map_err(throttled)?;
    services
        .finds_per_email
        .check(&services.cipher.keyed_digest("find limit", email.as_str()))
        .map_err(throttled)?;
    // Found and mailed after the answer, which is the same, in the same
    // time, whether the email has companies or not.
    tokio::spawn(async move {
        let sent = workspaces::send_list(
            &services.registry,
            &services.cipher,
            &email,
            &origin,
            &services.addresses,
            &services.mailer,
        )
        .await;
        if let Err(e) = sent {
            tracing::warn!(error = %crate::ssr::http::error_chain(&e), "cannot send a workspace list");
        }
    });
    leptos_axum::redirect("/find?sent=1");
    Ok(())
}
