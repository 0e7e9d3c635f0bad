//! Verified signups: nothing is held and no password is kept before the
//! email is proven; the password is chosen on the link's page, a refused
//! one spends nothing, the link works once, the first company confirmed
//! gets the subdomain, and expired signups are cleared.
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::{
    call, call_full, signup_link, spawn_app, Backend, Jar, TestApp, ADMIN_PASSWORD,
};
use crate::on_both_backends;

on_both_backends!(
    a_signup_holds_nothing_until_its_email_is_proven_and_its_link_works_once,
    the_password_is_chosen_after_the_email_is_proven,
    an_expired_signup_is_cleared_and_its_link_refused,
);

async fn signup(app: &TestApp, sub: &str, email: &str) -> (StatusCode, Value) {
    let form = [("company", "Held Co"), ("subdomain", sub), ("email", email)];
    call(app, "localhost", &mut Jar::default(), "signup", &form).await
}

async fn companies(app: &TestApp) -> usize {
    app::ssr::tenancy::request::directory::list(&app.services.registry)
        .await
        .unwrap()
        .len()
}

async fn verify_with(
    app: &TestApp,
    token: &str,
    password: &str,
    confirm: &str,
) -> (StatusCode, Value, Option<String>) {
    call_full(
        app,
        "localhost",
        &mut Jar::default(),
        "verify_signup",
        &[
            ("token", token),
            ("password", password),
            ("confirm", confirm),
        ],
    )
    .await
}

async fn verify(app: &TestApp, token: &str) -> (StatusCode, Value, Option<String>) {
    verify_with(app, token, ADMIN_PASSWORD, ADMIN_PASSWORD).await
}

async fn check(app: &TestApp, sub: &str) -> Value {
    call(
        app,
        "localhost",
        &mut Jar::default(),
        "check_subdomain",
        &[("subdomain", sub)],
    )
    .await
    .1
}

async fn a_signup_holds_nothing_until_its_email_is_proven_and_its_link_works_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let (status, body) = signup(&app, "held", "first@held.test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Nothing exists yet, and nothing is held: another may sign up for it.
    assert_eq!(companies(&app).await, 0);
    assert_eq!(check(&app, "held").await, Value::String("Available".into()));
    let (status, body) = signup(&app, "held", "second@held.test").await;
    assert_eq!(status, StatusCode::OK, "{body}");

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
    let first = signup_link(&app, "first@held.test", 1).await;
    let second = signup_link(&app, "second@held.test", 1).await;
    // A company's host does not serve it.
    app.create_company("Acme Corp", "acme").await;
    let (status, _) = call(
        &app,
        "acme.localhost",
        &mut Jar::default(),
        "verify_signup",
        &[
            ("token", &first),
            ("password", ADMIN_PASSWORD),
            ("confirm", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // The first to prove their email gets it.
    let (status, body, location) = verify(&app, &first).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(location
        .unwrap()
        .contains("held.localhost/auth/handoff?token="));
    assert_eq!(companies(&app).await, 2);
    assert_eq!(check(&app, "held").await, Value::String("Taken".into()));
    let (status, body, _) = verify(&app, &second).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body.to_string().contains("taken"), "{body}");
    // Once only: the page and the function both say so.
    let (status, body, _) = verify(&app, &first).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body.to_string().contains("expired or was already used"),
        "{body}"
    );
    let page = crate::helpers::open_link(&app, "localhost", &format!("/verify/{first}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("This link has expired or was already used."),
        "{page}"
    );
    app.teardown().await;
}

async fn the_password_is_chosen_after_the_email_is_proven(backend: Backend) {
    use app::ssr::entities::signup_holds;
    use sea_orm::EntityTrait;

    let app = spawn_app(backend).await;
    // Whoever signs up with this address types no password for it.
    let (status, body) = signup(&app, "proven", "owner@proven.test").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let rows = signup_holds::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    let token = signup_link(&app, "owner@proven.test", 1).await;
    // The link's page asks the person who opened it for one.
    let page = crate::helpers::open_link(&app, "localhost", &format!("/verify/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Choose a password"), "{page}");
    // A refused password spends nothing.
    let (status, body, _) = verify_with(&app, &token, "short", "short").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["Invalid"]["field"], "password", "{body}");
    let chosen = "the owner's own passphrase";
    let (status, body, _) = verify_with(&app, &token, chosen, "another passphrase").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(body["Invalid"]["field"], "confirm", "{body}");
    let (status, body, _) = verify_with(&app, &token, chosen, chosen).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _, _) =
        crate::helpers::sign_in(&app, "proven.localhost", "owner@proven.test", chosen).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the password chosen on the link's page"
    );
    app.teardown().await;
}

async fn an_expired_signup_is_cleared_and_its_link_refused(backend: Backend) {
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
    // The old signup is cleared as the next one comes.
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
