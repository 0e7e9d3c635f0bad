//! Server functions of a company user's own account: sign in, sign out, who am I, password.
use leptos::prelude::*;

use crate::wire::{AppError, Me};

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
            auth::{require_user, tenant_subject},
            sessions::end_sessions_of,
            users::{self, UserError},
        },
        context::{services, session},
        http::{internal, reject},
    };

    let user = require_user().await?;
    let new_password = Password::parse(&new).map_err(|e| reject(AppError::invalid("new", e)))?;
    if new != confirm {
        return Err(reject(AppError::invalid(
            "confirm",
            "The two new passwords differ.",
        )));
    }
    match users::change_password(user.db.conn(), user.id, &current, new_password).await {
        Ok(()) => {
            // Whoever else holds a session of this person is signed out.
            let keep = session().await?.id();
            let subject = tenant_subject(user.tenant.id(), user.id);
            end_sessions_of(&services()?.registry, &subject, keep)
                .await
                .map_err(internal)?;
            Ok(())
        }
        Err(e @ UserError::WrongPassword) => Err(reject(AppError::invalid("current", e))),
        Err(UserError::Busy(_)) => Err(reject(AppError::Unavailable)),
        Err(e) => Err(internal(e)),
    }
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
