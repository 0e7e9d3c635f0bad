//! Password reset by email, and mail delivery itself: the outbox default,
//! a real SMTP server, retries.
use reqwest::StatusCode;
use secrecy::SecretString;
use serde_json::Value;

use crate::helpers::{
    call, call_full, get, location_path, post_plain_form, sign_in, spawn_app, spawn_app_with,
    Backend, Jar, TestApp, ADMIN_PASSWORD,
};
use crate::mailbox::{link_token, messages, wait_for, SmtpServer};
use crate::on_both_backends;

const HOST: &str = "acme.localhost";
const ADMIN: &str = "admin@acme.test";
const NEW: &str = "a brand new password";

on_both_backends!(
    a_links_token_is_swapped_for_a_cookie_and_a_clean_address,
    links_in_mail_come_from_the_public_url_not_the_request,
    a_reset_link_sets_the_password_once_and_ends_every_session,
    asking_for_a_link_answers_the_same_for_unknown_emails,
    a_reset_link_is_refused_when_expired_or_on_another_company,
    asking_for_links_is_throttled_per_email_and_per_client,
);

fn outbox(app: &TestApp) -> std::path::PathBuf {
    app.services
        .mailer
        .outbox()
        .expect("no SMTP server set: the outbox")
        .to_owned()
}

async fn ask_for_link(
    app: &TestApp,
    host: &str,
    email: &str,
) -> (StatusCode, Value, Option<String>) {
    call_full(
        app,
        host,
        &mut Jar::default(),
        "forgot_password",
        &[("email", email)],
    )
    .await
}

async fn whoami(app: &TestApp, jar: &mut Jar) -> Value {
    let (status, me) = call(app, HOST, jar, "whoami", &[]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    me
}

async fn a_reset_link_sets_the_password_once_and_ends_every_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let (_, _, mut laptop) = sign_in(&app, HOST, ADMIN, ADMIN_PASSWORD).await;
    let (_, _, mut phone) = sign_in(&app, HOST, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(whoami(&app, &mut laptop).await["email"], ADMIN);

    let (status, _, location) = ask_for_link(&app, HOST, ADMIN).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::OK, Some("/password/forgot?sent=1"))
    );
    let message = wait_for(&outbox(&app), ADMIN, 1).await.remove(0);
    // Both parts, and a subject that names the company.
    assert!(message.contains("multipart/alternative"), "{message}");
    assert!(message.contains("text/plain"), "{message}");
    assert!(message.contains("text/html"), "{message}");
    assert!(
        message.contains("Subject: Reset your password for Acme Corp"),
        "{message}"
    );
    let token = link_token(&message, "/password/reset/");
    let path = format!("/password/reset/{token}");

    let mut browser = Jar::default();
    let page = crate::helpers::open_link(&app, HOST, &path)
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("name=\"new\""), "the form: {page}");

    // A mismatch is refused and does not spend the link.
    let mismatch = [
        ("token", token.as_str()),
        ("new", NEW),
        ("confirm", "something else entirely"),
    ];
    let (status, body) = call(&app, HOST, &mut browser, "reset_password", &mismatch).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    let good = [("token", token.as_str()), ("new", NEW), ("confirm", NEW)];
    let (status, body, location) =
        call_full(&app, HOST, &mut browser, "reset_password", &good).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::OK, Some("/")),
        "{body}"
    );
    // Signed in where the link was used; signed out everywhere else.
    assert_eq!(whoami(&app, &mut browser).await["email"], ADMIN);
    assert_eq!(whoami(&app, &mut laptop).await, Value::Null);
    assert_eq!(whoami(&app, &mut phone).await, Value::Null);

    // Once only.
    let (status, body) = call(&app, HOST, &mut Jar::default(), "reset_password", &good).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        body.to_string().contains("expired or was already used"),
        "{body}"
    );
    let page = crate::helpers::open_link(&app, HOST, &path)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("This link has expired or was already used."),
        "{page}"
    );
    assert!(!page.contains("name=\"new\""));

    // The old password is gone, the new one works, and the log says so.
    let (status, _, _) = sign_in(&app, HOST, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _, _) = sign_in(&app, HOST, ADMIN, NEW).await;
    assert_eq!(status, StatusCode::OK);
    let db = app.tenant_db("acme").await;
    let audit = app::ssr::accounts::users::recent_audit(&db, 20)
        .await
        .unwrap();
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    assert!(actions.contains(&"user.password_reset"), "{actions:?}");
    assert!(
        actions.contains(&"user.password_reset_requested"),
        "{actions:?}"
    );
    db.close().await.ok();
    app.teardown().await;
}

async fn asking_for_a_link_answers_the_same_for_unknown_emails(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    // Unknown here (though known to another company), then known.
    let unknown = ask_for_link(&app, HOST, "admin@globex.test").await;
    let known = ask_for_link(&app, HOST, ADMIN).await;
    assert_eq!(unknown, known);
    wait_for(&outbox(&app), ADMIN, 1).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let all = messages(&outbox(&app));
    assert_eq!(all.len(), 1, "only the known email gets a message");

    // Without JavaScript: a 303 to the page that says a message is on its way.
    let mut jar = Jar::default();
    let res = post_plain_form(
        &app,
        HOST,
        &mut jar,
        "forgot_password",
        &[("email", "nobody@acme.test")],
        "/password/forgot",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location_path(&res);
    assert_eq!(to, "/password/forgot?sent=1");
    let page = get(&app, HOST, &mut jar, &to).await.text().await.unwrap();
    assert!(
        page.contains("a link to choose a new password is on its way"),
        "{page}"
    );
    // A malformed email is told so, next to its field.
    let res = post_plain_form(
        &app,
        HOST,
        &mut jar,
        "forgot_password",
        &[("email", "not an email")],
        "/password/forgot",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = get(&app, HOST, &mut jar, &location_path(&res))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("class=\"form-error\">Enter an email address like name@example.com.</p>"),
        "the error, next to the form: {page}"
    );
    app.teardown().await;
}

async fn a_reset_link_is_refused_when_expired_or_on_another_company(backend: Backend) {
    use app::ssr::entities::password_resets;
    use sea_orm::{sea_query::Expr, EntityTrait};

    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    ask_for_link(&app, HOST, ADMIN).await;
    let token = link_token(
        &wait_for(&outbox(&app), ADMIN, 1).await[0],
        "/password/reset/",
    );
    let form = [("token", token.as_str()), ("new", NEW), ("confirm", NEW)];

    // Another company's site does not know it.
    let (status, body) = call(
        &app,
        "globex.localhost",
        &mut Jar::default(),
        "reset_password",
        &form,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");

    // Expired: refused, and the password stays.
    let db = app.tenant_db("acme").await;
    password_resets::Entity::update_many()
        .col_expr(
            password_resets::Column::ExpiresAt,
            Expr::value(chrono::Utc::now() - chrono::TimeDelta::seconds(1)),
        )
        .exec(&db)
        .await
        .unwrap();
    db.close().await.ok();
    let (status, body) = call(&app, HOST, &mut Jar::default(), "reset_password", &form).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _, _) = sign_in(&app, HOST, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    // A token of the wrong shape is the same refusal, never an error.
    let (status, _) = call(
        &app,
        HOST,
        &mut Jar::default(),
        "reset_password",
        &[("token", "'; DROP TABLE x"), ("new", NEW), ("confirm", NEW)],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    app.teardown().await;
}

async fn asking_for_links_is_throttled_per_email_and_per_client(backend: Backend) {
    use app::domain::Email;
    use app::ssr::accounts::reset::{reserve_request, ResetError};
    use app::ssr::accounts::throttle::ThrottleError;

    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    // From one address: 3 for one email, then 429.
    for _ in 0..3 {
        assert_eq!(ask_for_link(&app, HOST, ADMIN).await.0, StatusCode::OK);
    }
    let (status, body, _) = ask_for_link(&app, HOST, ADMIN).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    // An unknown email is throttled the same way, so the throttle tells nothing.
    for _ in 0..3 {
        assert_eq!(
            ask_for_link(&app, HOST, "nobody@acme.test").await.0,
            StatusCode::OK
        );
    }
    assert_eq!(
        ask_for_link(&app, HOST, "nobody@acme.test").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );

    // Counted per email and address together: strangers asking for a
    // person's links from other addresses do not use up the person's own.
    let db = app.tenant_db("acme").await;
    let email = Email::parse("victim@acme.test").unwrap();
    for i in 0..10 {
        let stranger = format!("203.0.113.{i}");
        for _ in 0..3 {
            reserve_request(&db, &email, &stranger).await.unwrap();
        }
        let refused = reserve_request(&db, &email, &stranger).await;
        assert!(
            matches!(
                refused,
                Err(ResetError::Throttle(ThrottleError::Throttled { .. }))
            ),
            "{refused:?}"
        );
    }
    reserve_request(&db, &email, "198.51.100.7")
        .await
        .expect("the person's own address still gets a link");
    // Each address is capped whatever the email (20 a window).
    let one = "192.0.2.44";
    for i in 0..20 {
        let other = Email::parse(&format!("n{i}@acme.test")).unwrap();
        reserve_request(&db, &other, one).await.unwrap();
    }
    let capped = reserve_request(&db, &email, one).await;
    assert!(matches!(capped, Err(ResetError::Throttle(_))), "{capped:?}");
    db.close().await.ok();
    app.teardown().await;
}

/// With `ENCLAVE_SMTP_URL`, messages go through a real SMTP server, from
/// `ENCLAVE_MAIL_FROM`, and nothing is written to the outbox.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_goes_through_a_real_smtp_server() {
    let smtp = tokio::task::spawn_blocking(SmtpServer::start)
        .await
        .unwrap();
    let url = smtp.url();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.smtp_url = Some(SecretString::from(url));
        s.mail_from = Some("Acme Ops <ops@example.test>".into());
    })
    .await;
    assert!(app.services.mailer.outbox().is_none());
    app.create_company("Acme Corp", "acme").await;
    assert_eq!(ask_for_link(&app, HOST, ADMIN).await.0, StatusCode::OK);
    let message = wait_for(&smtp.maildir(), ADMIN, 1).await.remove(0);
    assert!(
        message.contains("From: \"Acme Ops\" <ops@example.test>"),
        "{message}"
    );
    assert!(
        message.contains("text/plain") && message.contains("text/html"),
        "{message}"
    );
    let token = link_token(&message, "/password/reset/");
    let form = [("token", token.as_str()), ("new", NEW), ("confirm", NEW)];
    let (status, _) = call(&app, HOST, &mut Jar::default(), "reset_password", &form).await;
    assert_eq!(status, StatusCode::OK);
    assert!(!app.settings.data_dir.join("outbox").exists());
    app.teardown().await;
}

/// A server that is down when the message is first tried gets it on a
/// later attempt.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mail_is_retried_until_the_smtp_server_answers() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.smtp_url = Some(SecretString::from(format!("smtp://127.0.0.1:{port}")));
    })
    .await;
    app.create_company("Acme Corp", "acme").await;
    assert_eq!(ask_for_link(&app, HOST, ADMIN).await.0, StatusCode::OK);
    // The first attempt has failed by now (connection refused).
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let smtp = tokio::task::spawn_blocking(move || SmtpServer::start_on(port))
        .await
        .unwrap();
    let message = wait_for(&smtp.maildir(), ADMIN, 1).await.remove(0);
    link_token(&message, "/password/reset/");
    app.teardown().await;
}

/// A real user's link is looked up, stored and mailed after the answer:
/// with the company's `password_resets` locked, asking for a link is still
/// answered at once, and the link comes once the lock goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_users_link_is_made_after_the_answer() {
    use sea_orm::{ConnectionTrait, TransactionTrait};
    let app = spawn_app(Backend::Postgres).await;
    app.create_company("Acme Corp", "acme").await;
    let db = app.tenant_db("acme").await;
    let lock = db.begin().await.unwrap();
    lock.execute_unprepared("LOCK TABLE password_resets IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let (status, _, _) = ask_for_link(&app, HOST, ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "answered after {:?}: the work for a real user was on the request's path",
        started.elapsed()
    );
    assert!(messages(&outbox(&app)).is_empty());
    lock.rollback().await.unwrap();
    wait_for(&outbox(&app), ADMIN, 1).await;
    db.close().await.ok();
    app.teardown().await;
}

/// Links in mail start at `ENCLAVE_PUBLIC_URL`, whatever port and scheme
/// the request that caused them came with.
async fn links_in_mail_come_from_the_public_url_not_the_request(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.public_url = Some("https://localhost:8443".into())
    })
    .await;
    app.create_company("Acme Corp", "acme").await;
    let (status, _, _) = ask_for_link(&app, "acme.localhost:1234", ADMIN).await;
    assert_eq!(status, StatusCode::OK);
    let mail = &wait_for(&outbox(&app), ADMIN, 1).await[0];
    assert!(
        mail.contains("https://acme.localhost:8443/password/reset/"),
        "{mail}"
    );
    assert!(!mail.contains(":1234"), "{mail}");
    app.teardown().await;
}

/// A link's token leaves the address bar on first view: swapped for a
/// cookie of that path alone, the page served at the clean address, and no
/// `Referer` sent from either.
async fn a_links_token_is_swapped_for_a_cookie_and_a_clean_address(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    ask_for_link(&app, HOST, ADMIN).await;
    let mail = &wait_for(&outbox(&app), ADMIN, 1).await[0];
    let token = link_token(mail, "/password/reset/");

    let res = get(
        &app,
        HOST,
        &mut Jar::default(),
        &format!("/password/reset/{token}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location_path(&res), "/password/reset");
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(
        cookie.starts_with(&format!("enclave_link={token};")),
        "{cookie}"
    );
    assert!(
        cookie.contains("Path=/password/reset") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // The clean address, with the cookie: the form, ready to use the link.
    let mut jar = Jar(Some(cookie.split(';').next().unwrap().to_owned()));
    let res = get(&app, HOST, &mut jar, "/password/reset").await;
    assert_eq!(res.status(), StatusCode::OK);
    // The address holds no token now; its own form posts name it.
    assert_eq!(res.headers()["referrer-policy"], "same-origin");
    let page = res.text().await.unwrap();
    assert!(page.contains("Choose a new password"), "{page}");
    let (status, body) = call(
        &app,
        HOST,
        &mut jar,
        "reset_password",
        &[("token", &token), ("new", NEW), ("confirm", NEW)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Without the cookie, the clean address is a spent link.
    let page = get(&app, HOST, &mut Jar::default(), "/password/reset")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("expired or was already used"), "{page}");
    app.teardown().await;
}
