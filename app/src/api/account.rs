//! Server functions of a company user's own account: sign in, sign out, who am I, password, and resetting a forgotten one.
use leptos::prelude::*;

use crate::wire::{AppError, Invitee, Me};

/// Only a path of this site may follow sign-in (no open redirect): `/`
/// followed by letters, digits and `-._~/?=&%+,:@`, with no `//` anywhere
/// and at most 512 bytes. Anything else (a backslash, a tab, a newline, a
/// scheme, another host) goes to `/`.
pub fn safe_next(next: Option<&str>) -> String {
    const PUNCTUATION: &[u8] = b"-._~/?=&%+,:@";
    match next {
        Some(p)
            if p.starts_with('/')
                && !p.contains("//")
                && p.len() <= 512
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || PUNCTUATION.contains(&b)) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// Signs a company user in on this subdomain.
#[server(endpoint = "login")]
pub async fn login(email: String, password: String, next: Option<String>) -> Result<(), AppError> {
    use crate::ssr::accounts::auth::{db_error, sign_in, start_tenant_session};
    use crate::ssr::context::{client, session, tenant};

    let tenant = tenant()?;
    let db = tenant.db().await.map_err(db_error)?;
    let user = sign_in(&db, &email, &password, &client()).await?;
    start_tenant_session(&session().await?, tenant.id(), user.id).await?;
    leptos_axum::redirect(&safe_next(next.as_deref()));
    Ok(())
}

#[server(endpoint = "logout")]
pub async fn logout() -> Result<(), AppError> {
    use crate::ssr::{accounts::auth::end_session, context::session};

    end_session(&session().await?).await?;
    leptos_axum::redirect("/login");
    Ok(())
}

/// The signed-in user here, if any.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<Me>, AppError> {
    use crate::ssr::accounts::auth::current_user;

    Ok(current_user().await?.map(|u| u.me()))
}

#[server(endpoint = "change_password")]
pub async fn change_password(
    current: String,
    new: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::domain::Password;
    use crate::ssr::{
        accounts::{
            auth::{require_user, reserve_password_check, tenant_subject},
            sessions::end_sessions_of,
            users::{self, UserError},
        },
        context::session,
        http::{internal, reject},
    };

    let user = require_user().await?;
    let attempt = reserve_password_check(&user).await?;
    let new_password = Password::parse(&new).map_err(|e| reject(AppError::invalid("new", e)))?;
    if new != confirm {
        return Err(reject(AppError::invalid(
            "confirm",
            "The two new passwords differ.",
        )));
    }
    match users::change_password(
        user.db.conn(),
        user.tenant.id(),
        user.id,
        &current,
        new_password,
    )
    .await
    {
        Ok(()) => {
            attempt.succeeded(user.db.conn()).await.map_err(internal)?;
            // Whoever else holds a session of this person is signed out.
            let keep = session().await?.id();
            let subject = tenant_subject(user.tenant.id(), user.id);
            end_sessions_of(user.db.conn(), &subject, keep)
                .await
                .map_err(internal)?;
            // The page says so, with or without JavaScript.
            leptos_axum::redirect("/profile?changed=1");
            Ok(())
        }
        Err(e @ UserError::WrongPassword) => Err(reject(AppError::invalid("current", e))),
        Err(UserError::Busy(_)) => Err(reject(AppError::Unavailable)),
        Err(e) => Err(internal(e)),
    }
}

/// Sends a password-reset link to `email` if it is an active user here,
/// and goes to the page saying a message is on its way, whichever it was.
#[server(endpoint = "forgot_password")]
pub async fn forgot_password(email: String) -> Result<(), AppError> {
    use crate::domain::Email;
    use crate::ssr::accounts::{
        auth::db_error,
        reset::{self, LinkSite, ResetError},
        throttle::ThrottleError,
    };
    use crate::ssr::context::{client, services, tenant};
    use crate::ssr::http::{internal, reject};

    let tenant = tenant()?;
    let email = Email::parse(&email).map_err(|e| reject(AppError::invalid("email", e)))?;
    let db = tenant.db().await.map_err(db_error)?;
    let site = LinkSite::of(&tenant, &services()?);
    match reset::reserve_request(db.conn(), &email, &client()).await {
        Ok(()) => {
            // Whether there is anyone to mail is found out after the
            // answer, which is the same, in the same time, either way.
            let mailer = services()?.mailer;
            tokio::spawn(async move {
                if let Err(e) = reset::send_link(db.conn(), &email, &site, &mailer).await {
                    tracing::warn!(error = %crate::ssr::http::error_chain(&e), "cannot send a reset link");
                }
            });
            leptos_axum::redirect("/password/forgot?sent=1");
            Ok(())
        }
        Err(ResetError::Throttle(ThrottleError::Throttled { retry_after_secs })) => {
            Err(reject(AppError::Throttled { retry_after_secs }))
        }
        Err(e) => Err(internal(e)),
    }
}

/// Whether a reset link is still good, for the page it opens.
#[server(endpoint = "check_reset_link")]
pub async fn check_reset_link(token: String) -> Result<bool, AppError> {
    use crate::ssr::accounts::{auth::db_error, reset};
    use crate::ssr::{context::tenant, http::internal};

    let db = tenant()?.db().await.map_err(db_error)?;
    reset::is_live(db.conn(), &token).await.map_err(internal)
}

/// Sets a new password with an emailed link, ends every session of that
/// person, and signs them in here.
#[server(endpoint = "reset_password")]
pub async fn reset_password(token: String, new: String, confirm: String) -> Result<(), AppError> {
    use crate::domain::Password;
    use crate::ssr::accounts::{
        auth::{db_error, start_tenant_session, tenant_subject},
        reset::{self, ResetError},
        sessions::end_sessions_of,
    };
    use crate::ssr::context::{session, tenant};
    use crate::ssr::http::{internal, reject};

    let tenant = tenant()?;
    let new_password = Password::parse(&new).map_err(|e| reject(AppError::invalid("new", e)))?;
    if new != confirm {
        return Err(reject(AppError::invalid(
            "confirm",
            "The two new passwords differ.",
        )));
    }
    let db = tenant.db().await.map_err(db_error)?;
    let (user_id, _) = match reset::reset(db.conn(), tenant.id(), &token, new_password).await {
        Ok(user) => user,
        Err(e @ ResetError::BadLink) => return Err(reject(AppError::invalid("token", e))),
        Err(ResetError::Busy(_)) => return Err(reject(AppError::Unavailable)),
        Err(e) => return Err(internal(e)),
    };
    let subject = tenant_subject(tenant.id(), user_id);
    end_sessions_of(db.conn(), &subject, None)
        .await
        .map_err(internal)?;
    start_tenant_session(&session().await?, tenant.id(), user_id).await?;
    leptos_axum::redirect("/");
    Ok(())
}

/// Who a live invitation link invites, for the page it opens; `None`
/// when it is unknown, used, revoked or expired.
#[server(endpoint = "check_invitation")]
pub async fn check_invitation(token: String) -> Result<Option<Invitee>, AppError> {
    use crate::ssr::accounts::{auth::db_error, invitations};
    use crate::ssr::{context::tenant, http::internal};

    let db = tenant()?.db().await.map_err(db_error)?;
    Ok(invitations::lookup(db.conn(), &token)
        .await
        .map_err(internal)?
        .map(|(email, role)| Invitee { email, role }))
}

/// Accepts an invitation with a new password and signs the new user in.
#[server(endpoint = "accept_invitation")]
pub async fn accept_invitation(
    token: String,
    new: String,
    confirm: String,
) -> Result<(), AppError> {
    use crate::domain::Password;
    use crate::ssr::accounts::{
        auth::{db_error, start_tenant_session},
        invitations::{self, InviteError},
    };
    use crate::ssr::context::{session, tenant};
    use crate::ssr::http::{internal, reject};

    let tenant = tenant()?;
    let password = Password::parse(&new).map_err(|e| reject(AppError::invalid("new", e)))?;
    if new != confirm {
        return Err(reject(AppError::invalid(
            "confirm",
            "The two new passwords differ.",
        )));
    }
    let db = tenant.db().await.map_err(db_error)?;
    let user_id = match invitations::accept(db.conn(), tenant.id(), &token, password).await {
        Ok(id) => id,
        Err(e @ InviteError::BadLink) => return Err(reject(AppError::invalid("token", e))),
        Err(e @ InviteError::EmailTaken) => return Err(reject(AppError::conflict("token", e))),
        Err(InviteError::Busy(_)) => return Err(reject(AppError::Unavailable)),
        Err(e) => return Err(internal(e)),
    };
    crate::api::company::sync_members(&tenant, db.conn()).await;
    start_tenant_session(&session().await?, tenant.id(), user_id).await?;
    leptos_axum::redirect("/");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_keeps_paths_of_this_site_and_sends_everything_else_home() {
        for kept in ["/", "/users", "/users?page=2&q=a%20b", "/login?next=/users"] {
            assert_eq!(safe_next(Some(kept)), kept);
        }
        for refused in [
            "//evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/x//evil.com",
            "https://evil.com",
            "evil.com",
            "",
            "/\u{0}",
            "/é",
        ] {
            assert_eq!(safe_next(Some(refused)), "/", "{refused:?}");
        }
        assert_eq!(safe_next(Some(&format!("/{}", "a".repeat(600)))), "/");
        assert_eq!(safe_next(None), "/");
    }
}
