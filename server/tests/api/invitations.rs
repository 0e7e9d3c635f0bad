//! Invitations by email: invite, accept (once), resend, revoke, expiry,
//! another company's link, and who may invite.
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    call, call_full, get, location_path, post_plain_form, sign_in, spawn_app, Backend, Jar,
    TestApp, ADMIN_PASSWORD,
};
use crate::mailbox::{link_token, wait_for};
use crate::on_both_backends;

const HOST: &str = "acme.localhost";
const ADMIN: &str = "admin@acme.test";
const NEW: &str = "a new member's password";

on_both_backends!(
    an_invitation_is_accepted_once_and_lands_signed_in_with_its_role,
    invitations_are_resent_revoked_replaced_and_expire,
    only_admins_invite_and_only_new_emails,
);

async fn admin(app: &TestApp) -> Jar {
    let (status, body, jar) = sign_in(app, HOST, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    jar
}

async fn invite(app: &TestApp, jar: &mut Jar, email: &str, role: &str) -> (StatusCode, Value) {
    call(
        app,
        HOST,
        jar,
        "invite_user",
        &[("email", email), ("role", role)],
    )
    .await
}

fn outbox(app: &TestApp) -> std::path::PathBuf {
    app.services.mailer.outbox().unwrap().to_owned()
}

async fn accept(
    app: &TestApp,
    host: &str,
    token: &str,
) -> (StatusCode, Value, Option<String>, Jar) {
    let mut jar = Jar::default();
    let (status, body, location) = call_full(
        app,
        host,
        &mut jar,
        "accept_invitation",
        &[("token", token), ("new", NEW), ("confirm", NEW)],
    )
    .await;
    (status, body, location, jar)
}

async fn an_invitation_is_accepted_once_and_lands_signed_in_with_its_role(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let mut jar = admin(&app).await;
    let (status, body) = invite(&app, &mut jar, "New@Acme.test", "admin").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["email"], "new@acme.test");
    let (_, pending) = call(&app, HOST, &mut jar, "list_invitations", &[]).await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending}");

    let message = wait_for(&outbox(&app), "new@acme.test", 1).await.remove(0);
    assert!(
        message.contains("Subject: You are invited to join Acme Corp on Enclave"),
        "{message}"
    );
    assert!(message.contains("text/plain") && message.contains("text/html"));
    let token = link_token(&message, "/invite/");

    // The page names who is invited.
    let page = crate::helpers::open_link(&app, HOST, &format!("/invite/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("new@acme.test") && page.contains("(admin)"),
        "{page}"
    );

    let (status, body, location, mut joined) = accept(&app, HOST, &token).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::OK, Some("/")),
        "{body}"
    );
    let (_, me) = call(&app, HOST, &mut joined, "whoami", &[]).await;
    assert_eq!(
        (me["email"].as_str(), me["role"].as_str()),
        (Some("new@acme.test"), Some("Admin"))
    );

    // Once only; and nothing is pending any more.
    let (status, body, _, _) = accept(&app, HOST, &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (_, pending) = call(&app, HOST, &mut jar, "list_invitations", &[]).await;
    assert_eq!(pending, serde_json::json!([]));
    let page = crate::helpers::open_link(&app, HOST, &format!("/invite/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("This invitation has expired, was revoked or was already used."));

    let db = app.tenant_db("acme").await;
    let audit = app::ssr::accounts::users::recent_audit(&db, 20)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(
        actions.contains(&"user.invited") && actions.contains(&"user.joined"),
        "{actions:?}"
    );
    db.close().await.ok();
    app.teardown().await;
}

async fn invitations_are_resent_revoked_replaced_and_expire(backend: Backend) {
    use app::ssr::entities::invitations;
    use sea_orm::{sea_query::Expr, EntityTrait};

    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let mut jar = admin(&app).await;

    // Resend: a new link; the first one stops working.
    let (_, row) = invite(&app, &mut jar, "a@acme.test", "member").await;
    let id = row["id"].as_str().unwrap().to_owned();
    let first = link_token(
        &wait_for(&outbox(&app), "a@acme.test", 1).await[0],
        "/invite/",
    );
    let (status, _) = call(&app, HOST, &mut jar, "resend_invitation", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK);
    let messages = wait_for(&outbox(&app), "a@acme.test", 2).await;
    let second = messages
        .iter()
        .map(|m| link_token(m, "/invite/"))
        .find(|t| *t != first)
        .expect("a second link");
    assert_eq!(
        accept(&app, HOST, &first).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    // Another company's site does not know the link.
    assert_eq!(
        accept(&app, "globex.localhost", &second).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Revoke: the live link stops working too.
    let (status, _) = call(&app, HOST, &mut jar, "revoke_invitation", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        accept(&app, HOST, &second).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (status, _) = call(&app, HOST, &mut jar, "revoke_invitation", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "revoked already");

    // Inviting again replaces a pending invitation: one row, the old link dead.
    invite(&app, &mut jar, "b@acme.test", "member").await;
    let old = link_token(
        &wait_for(&outbox(&app), "b@acme.test", 1).await[0],
        "/invite/",
    );
    invite(&app, &mut jar, "b@acme.test", "admin").await;
    let (_, pending) = call(&app, HOST, &mut jar, "list_invitations", &[]).await;
    let pending = pending.as_array().unwrap();
    assert_eq!(pending.len(), 1, "{pending:?}");
    assert_eq!(pending[0]["role"], "Admin");
    assert_eq!(
        accept(&app, HOST, &old).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Expired: refused.
    let newest = wait_for(&outbox(&app), "b@acme.test", 2).await;
    let live = newest
        .iter()
        .map(|m| link_token(m, "/invite/"))
        .find(|t| *t != old)
        .unwrap();
    let db = app.tenant_db("acme").await;
    invitations::Entity::update_many()
        .col_expr(
            invitations::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        )
        .exec(&db)
        .await
        .unwrap();
    db.close().await.ok();
    assert_eq!(
        accept(&app, HOST, &live).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (_, pending) = call(&app, HOST, &mut jar, "list_invitations", &[]).await;
    assert_eq!(
        pending,
        serde_json::json!([]),
        "expired ones are not pending"
    );

    let db = app.tenant_db("acme").await;
    let audit = app::ssr::accounts::users::recent_audit(&db, 30)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in [
        "user.invited",
        "user.invitation_resent",
        "user.invitation_revoked",
    ] {
        assert!(actions.contains(&action), "{action}: {actions:?}");
    }
    db.close().await.ok();
    app.teardown().await;
}

async fn only_admins_invite_and_only_new_emails(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let mut jar = admin(&app).await;
    // An existing user cannot be invited.
    let (status, body) = invite(&app, &mut jar, ADMIN, "member").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    let (status, _) = invite(&app, &mut jar, "not an email", "member").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = invite(&app, &mut jar, "m@acme.test", "owner").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A member who joined cannot invite, nor see invitations.
    invite(&app, &mut jar, "m@acme.test", "member").await;
    let token = link_token(
        &wait_for(&outbox(&app), "m@acme.test", 1).await[0],
        "/invite/",
    );
    let (_, _, _, mut member) = accept(&app, HOST, &token).await;
    let (status, _) = invite(&app, &mut member, "x@acme.test", "admin").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(&app, HOST, &mut member, "list_invitations", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Without JavaScript: a 303 back to the users page, which lists it.
    let res = post_plain_form(
        &app,
        HOST,
        &mut jar,
        "invite_user",
        &[("email", "plain@acme.test"), ("role", "member")],
        "/users",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = get(&app, HOST, &mut jar, &location_path(&res))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains(r#"data-invited="plain@acme.test""#), "{page}");
    app.teardown().await;
}
