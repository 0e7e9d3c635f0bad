//! Verified signups: the subdomain is held while the link lives, the link
//! works once, expired holds free the subdomain, and nothing is created
//! before the email is confirmed.
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    call, call_full, get, signup_link, spawn_app, Backend, Jar, TestApp, ADMIN_PASSWORD,
};
use crate::on_both_backends;

on_both_backends!(
    a_signup_holds_its_subdomain_until_confirmed_and_its_link_works_once,
    an_expired_hold_frees_the_subdomain_and_its_link,
);

async fn signup(app: &TestApp, sub: &str, email: &str) -> (StatusCode, Value) {
    let form = [
        ("company", "Held Co"),
        ("subdomain", sub),
        ("email", email),
        ("password", ADMIN_PASSWORD),
    ];
    call(app, "localhost", &mut Jar::default(), "signup", &form).await
}

async fn companies(app: &TestApp) -> usize {
    app::ssr::tenancy::directory::list(&app.services.registry)
        .await
        .unwrap()
        .len()
}

async fn verify(app: &TestApp, token: &str) -> (StatusCode, Value, Option<String>) {
    call_full(
        app,
        "localhost",
        &mut Jar::default(),
        "verify_signup",
        &[("token", token)],
    )
    .await
}

async fn a_signup_holds_its_subdomain_until_confirmed_and_its_link_works_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, body) = signup(&app, "held", "first@held.test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing exists yet, but the subdomain is held.
    assert_eq!(companies(&app).await, 0);
    let (_, check) = call(
        &app,
        "localhost",
        &mut Jar::default(),
        "check_subdomain",
        &[("subdomain", "held")],
    )
    .await;
    assert_eq!(check, Value::String("Taken".into()));
    let (status, body) = signup(&app, "held", "second@held.test").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(
        body.to_string().contains("The subdomain 'held' is taken."),
        "{body}"
    );

    // The message: both parts, a link to the base domain's /verify/.
    let outbox = app.services.mailer.outbox().unwrap().to_owned();
    let message = crate::mailbox::wait_for(&outbox, "first@held.test", 1)
        .await
        .remove(0);
    assert!(
        message.contains("Subject: Confirm your email to create Held Co"),
        "{message}"
    );
    assert!(message.contains("text/plain") && message.contains("text/html"));
    let token = signup_link(&app, "first@held.test", 1).await;
    // A company's host does not serve it.
    app.create_company("Acme Corp", "acme").await;
    let (status, _) = call(
        &app,
        "acme.localhost",
        &mut Jar::default(),
        "verify_signup",
        &[("token", &token)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body, location) = verify(&app, &token).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(location
        .unwrap()
        .contains("held.localhost/auth/handoff?token="));
    assert_eq!(companies(&app).await, 2);
    // Once only: the page and the function both say so.
    let (status, body, _) = verify(&app, &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("expired or was already used"),
        "{body}"
    );
    let page = get(
        &app,
        "localhost",
        &mut Jar::default(),
        &format!("/verify/{token}"),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(
        page.contains("This link has expired or was already used."),
        "{page}"
    );
    // The admin signs in with the password typed at signup.
    let (status, _, _) =
        crate::helpers::sign_in(&app, "held.localhost", "first@held.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    app.teardown().await;
}

async fn an_expired_hold_frees_the_subdomain_and_its_link(backend: Backend) {
    use app::ssr::entities::signup_holds;
    use sea_orm::{sea_query::Expr, EntityTrait};

    let app = spawn_app(backend).await;
    signup(&app, "lapsed", "slow@lapsed.test").await;
    let token = signup_link(&app, "slow@lapsed.test", 1).await;
    signup_holds::Entity::update_many()
        .col_expr(
            signup_holds::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        )
        .exec(&app.services.registry)
        .await
        .unwrap();
    let (status, _, _) = verify(&app, &token).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, check) = call(
        &app,
        "localhost",
        &mut Jar::default(),
        "check_subdomain",
        &[("subdomain", "lapsed")],
    )
    .await;
    assert_eq!(check, Value::String("Available".into()));
    // Someone else may have it now; the old hold is cleared as they sign up.
    let (status, body) = signup(&app, "lapsed", "quick@lapsed.test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = signup_holds::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1, "{rows:?}");
    let token = signup_link(&app, "quick@lapsed.test", 1).await;
    assert_eq!(verify(&app, &token).await.0, StatusCode::OK);
    assert_eq!(companies(&app).await, 1);
    app.teardown().await;
}
