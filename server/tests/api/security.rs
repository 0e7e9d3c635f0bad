//! Launch defences: safe redirects, cross-origin refusal, sign-out by POST
//! only, session ids kept as digests, secure cookies, who may read metrics.
use app::ssr::{entities::sessions, secrets::token_digest};
use reqwest::{header, StatusCode};
use sea_orm::EntityTrait;

use crate::helpers::{
    call, call_full, get, sign_in, spawn_app, spawn_app_with, Backend, Jar, TestApp, ADMIN_PASSWORD,
};
use crate::on_both_backends;

on_both_backends!(
    twenty_wrong_passwords_at_once_get_at_most_five_checks,
    guesses_from_one_address_do_not_lock_the_account_elsewhere,
    one_address_trying_many_emails_is_throttled,
    platform_admin_sign_in_is_throttled,
    a_next_with_a_tab_or_newline_goes_home_and_never_panics,
    a_state_change_from_another_origin_is_refused,
    signing_out_takes_a_post,
    the_company_keeps_its_sessions_and_only_their_digests,
    changing_a_password_ends_that_persons_other_sessions,
    two_admins_demoting_each_other_at_once_leave_one_admin,
    an_oversized_body_is_refused_with_413_not_500,
    guesses_from_one_ipv6_block_or_a_mapped_address_share_a_throttle,
    disabling_a_user_ends_their_sessions,
    turning_on_a_second_factor_ends_the_admins_sessions,
    changing_a_password_goes_through_the_sign_in_throttle,
    a_company_mails_at_most_its_invitations_per_day,
    guesses_from_many_addresses_slow_the_account_but_not_its_owners_browser,
);

/// Signs in on `host` as a browser at `client` behind the trusted proxy.
async fn sign_in_from(
    app: &TestApp,
    host: &str,
    endpoint: &str,
    client: &str,
    email: &str,
    password: &str,
) -> StatusCode {
    app.client
        .post(format!("{}/api/{endpoint}", app.address))
        .header(header::HOST, host)
        .header(header::ACCEPT, "application/json")
        .header("x-forwarded-for", client)
        .form(&[("email", email), ("password", password)])
        .send()
        .await
        .unwrap()
        .status()
}

/// Signs in to acme as its admin from `client` (behind the trusted proxy),
/// with `cookie` if given: the status, and the device cookie it set.
async fn acme_login_from(
    app: &TestApp,
    client: &str,
    password: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>) {
    let mut req = app
        .client
        .post(format!("{}/api/login", app.address))
        .header(header::HOST, "acme.localhost")
        .header(header::ACCEPT, "application/json")
        .header("x-forwarded-for", client)
        .form(&[("email", "admin@acme.test"), ("password", password)]);
    if let Some(c) = cookie {
        req = req.header(header::COOKIE, c);
    }
    let res = req.send().await.unwrap();
    let device = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("enclave_device="))
        .map(|v| v.split(';').next().unwrap().to_owned());
    (res.status(), device)
}

/// An app that believes the proxy on 127.0.0.1 about client addresses.
async fn behind_proxy(backend: Backend) -> TestApp {
    spawn_app_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]
    })
    .await
}

async fn twenty_wrong_passwords_at_once_get_at_most_five_checks(backend: Backend) {
    let app = behind_proxy(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let guesses = (0..20).map(|i| {
        let app = &app;
        async move {
            let wrong = format!("wrong password {i}");
            sign_in_from(
                app,
                "acme.localhost",
                "login",
                "198.51.100.7",
                "admin@acme.test",
                &wrong,
            )
            .await
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses
        .iter()
        .filter(|s| **s == StatusCode::UNAUTHORIZED)
        .count();
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    // Exactly five are checked, on both backends: reservations for one
    // client take turns (PostgreSQL advisory locks, SQLite's write lock),
    // so none counts before an earlier one is committed.
    assert_eq!(checked + throttled, 20, "{statuses:?}");
    assert_eq!(checked, 5, "{statuses:?}");
    app.teardown().await;
}

async fn guesses_from_one_address_do_not_lock_the_account_elsewhere(backend: Backend) {
    let app = behind_proxy(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let attacker = "203.0.113.66";
    for _ in 0..5 {
        let s = sign_in_from(
            &app,
            "acme.localhost",
            "login",
            attacker,
            "admin@acme.test",
            "wrong password!",
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let s = sign_in_from(
        &app,
        "acme.localhost",
        "login",
        attacker,
        "admin@acme.test",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(
        s,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker is stopped, right password or not"
    );
    let s = sign_in_from(
        &app,
        "acme.localhost",
        "login",
        "198.51.100.1",
        "admin@acme.test",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "the owner, elsewhere, signs in");
    app.teardown().await;
}

async fn one_address_trying_many_emails_is_throttled(backend: Backend) {
    let app = behind_proxy(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let client = "203.0.113.67";
    for i in 0..20 {
        let email = format!("guess{i}@acme.test");
        let s = sign_in_from(
            &app,
            "acme.localhost",
            "login",
            client,
            &email,
            "wrong password!",
        )
        .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "{email}");
    }
    let s = sign_in_from(
        &app,
        "acme.localhost",
        "login",
        client,
        "other@acme.test",
        "wrong password!",
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let s = sign_in_from(
        &app,
        "acme.localhost",
        "login",
        "198.51.100.2",
        "admin@acme.test",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.teardown().await;
}

async fn platform_admin_sign_in_is_throttled(backend: Backend) {
    let app = behind_proxy(backend).await;
    app::ssr::accounts::platform::create_superadmin(
        &app.services.registry,
        &app::domain::Email::parse("root@platform.test").unwrap(),
        app::domain::Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let client = "203.0.113.68";
    let statuses = futures_util::future::join_all((0..7).map(|_| {
        sign_in_from(
            &app,
            "localhost",
            "admin_login",
            client,
            "root@platform.test",
            "wrong password!",
        )
    }))
    .await;
    let throttled = statuses
        .iter()
        .filter(|s| **s == StatusCode::TOO_MANY_REQUESTS)
        .count();
    assert_eq!(throttled, 2, "{statuses:?}");
    let s = sign_in_from(
        &app,
        "localhost",
        "admin_login",
        client,
        "root@platform.test",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS);
    let s = sign_in_from(
        &app,
        "localhost",
        "admin_login",
        "198.51.100.3",
        "root@platform.test",
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    app.teardown().await;
}

async fn a_next_with_a_tab_or_newline_goes_home_and_never_panics(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    for next in [
        "/\t/evil.com",
        "/\n/evil.com",
        "//evil.com",
        "/\\evil.com",
        "/users",
    ] {
        let mut jar = Jar::default();
        let (status, body, location) = call_full(
            &app,
            "acme.localhost",
            &mut jar,
            "login",
            &[
                ("email", "admin@acme.test"),
                ("password", ADMIN_PASSWORD),
                ("next", next),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{next:?}: {body}");
        let expected = if next == "/users" { "/users" } else { "/" };
        assert_eq!(location.as_deref(), Some(expected), "{next:?}");
    }
    app.teardown().await;
}

async fn a_state_change_from_another_origin_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let post = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = app
            .client
            .post(format!("{}/api/login", app.address))
            .header(header::HOST, "acme.localhost:3000")
            .header(header::ACCEPT, "application/json")
            .form(&[
                ("email", "admin@acme.test"),
                ("password", "wrong password!"),
            ]);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        req.send()
    };
    for refused in [
        vec![("origin", "http://globex.localhost:3000")],
        vec![("origin", "http://localhost:3000")],
        vec![("origin", "null")],
        vec![("sec-fetch-site", "same-site")],
        vec![
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://acme.localhost:3000"),
        ],
    ] {
        let res = post(refused.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{refused:?}");
    }
    // The same origin reaches the function (which refuses the password).
    for same in [
        vec![("origin", "http://acme.localhost:3000")],
        vec![
            ("sec-fetch-site", "same-origin"),
            ("origin", "http://acme.localhost:3000"),
        ],
        vec![],
    ] {
        let res = post(same.clone()).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{same:?}");
    }
    app.teardown().await;
}

async fn signing_out_takes_a_post(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let (_, _, mut jar) = sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    // A link (or an image someone planted) cannot sign anyone out.
    let res = get(&app, "acme.localhost", &mut jar, "/logout").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (_, me) = call(&app, "acme.localhost", &mut jar, "whoami", &[]).await;
    assert_eq!(me["email"], "admin@acme.test", "still signed in: {me}");
    let (status, _) = call(&app, "acme.localhost", &mut jar, "logout", &[]).await;
    assert_eq!(status, StatusCode::OK);
    let (_, me) = call(&app, "acme.localhost", &mut jar, "whoami", &[]).await;
    assert!(me.is_null(), "signed out: {me}");
    app.teardown().await;
}

async fn the_company_keeps_its_sessions_and_only_their_digests(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let (_, _, jar) = sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    let id = jar.get("enclave_session").expect("a session cookie");
    let ids =
        |rows: Vec<sessions::Model>| -> Vec<String> { rows.into_iter().map(|s| s.id).collect() };
    let stored = ids(sessions::Entity::find()
        .all(&app.tenant_db("acme").await)
        .await
        .unwrap());
    assert!(!stored.contains(&id), "the id itself is stored");
    assert!(stored.contains(&token_digest(&id)), "{stored:?}");
    // Nothing of it in the registry.
    let in_registry = ids(sessions::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap());
    assert!(!in_registry.contains(&token_digest(&id)), "{in_registry:?}");
    app.teardown().await;
}

#[tokio::test]
async fn cookies_are_secure_and_host_prefixed_unless_the_base_domain_is_localhost() {
    for (base, secure) in [("localhost", false), ("example.test", true)] {
        let app = spawn_app_with(Backend::Sqlite, |s| s.base_domain = base.into()).await;
        app.create_company("Acme Corp", "acme").await;
        let host = format!("acme.{base}");
        let (status, _, _) = sign_in(&app, &host, "admin@acme.test", ADMIN_PASSWORD).await;
        assert_eq!(status, StatusCode::OK);
        let res = app
            .client
            .post(format!("{}/api/login", app.address))
            .header(header::HOST, &host)
            .header(header::ACCEPT, "application/json")
            .form(&[("email", "admin@acme.test"), ("password", ADMIN_PASSWORD)])
            .send()
            .await
            .unwrap();
        let cookie = res
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|v| v.contains("enclave_session="))
            .expect("a session cookie");
        assert_eq!(cookie.contains("; Secure"), secure, "{base}: {cookie}");
        assert_eq!(
            cookie.starts_with("__Host-enclave_session="),
            secure,
            "{base}: {cookie}"
        );
        assert!(
            cookie.contains("Path=/") && cookie.contains("HttpOnly"),
            "{cookie}"
        );
        assert!(!cookie.contains("Domain="), "{cookie}");
        // Every cookie set at sign-in follows the same rule.
        for set in res.headers().get_all(header::SET_COOKIE) {
            let set = set.to_str().unwrap();
            assert_eq!(set.contains("; Secure"), secure, "{base}: {set}");
            assert!(
                set.contains("HttpOnly") && !set.contains("Domain="),
                "{set}"
            );
        }
        app.teardown().await;
    }
}

#[tokio::test]
async fn metrics_need_a_token_when_a_proxy_is_trusted() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]
    })
    .await;
    let res = app.get("localhost", "/metrics").await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    let token = app::ssr::accounts::platform::create_api_token(&app.services.registry, "m", None)
        .await
        .unwrap();
    let res = app
        .client
        .get(format!("{}/metrics", app.address))
        .header(header::HOST, "localhost")
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    app.teardown().await;
}

#[tokio::test]
async fn pages_carry_a_nonce_policy_and_every_answer_the_security_headers() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_company("Acme Corp", "acme").await;
    let res = app.get("localhost", "/signup").await;
    let headers = res.headers().clone();
    let policy = headers["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .expect("a nonce in the policy")
        .to_owned();
    assert!(nonce.len() >= 32, "{policy}");
    assert!(policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(!policy.contains("unsafe-inline"), "{policy}");
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("nonce=\"{nonce}\"")),
        "the page's scripts carry it"
    );
    // A new page, a new nonce.
    let again = app.get("localhost", "/signup").await;
    assert!(!again.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains(&nonce));
    for (host, path) in [
        ("localhost", "/signup"),
        ("acme.localhost", "/api/health"),
        ("localhost", "/healthz"),
    ] {
        let res = app.get(host, path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert!(h.contains_key("referrer-policy"), "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"));
    }
    app.teardown().await;
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = spawn_app_with(Backend::Sqlite, |s| s.header_timeout_secs = 1).await;
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        slow.read_to_end(&mut buf),
    )
    .await;
    assert!(read.is_ok(), "still connected after 10 s");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    app.teardown().await;
}

#[tokio::test]
async fn a_request_over_its_time_is_answered_408() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.request_timeout_ms = 1).await;
    // Creating a company hashes a password: far more than a millisecond.
    let res = app
        .client
        .post(format!("{}/api/signup", app.address))
        .header(header::HOST, "localhost")
        .header(header::ACCEPT, "application/json")
        .form(&[
            ("company", "Slow"),
            ("subdomain", "slow"),
            ("email", "a@slow.test"),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
    app.teardown().await;
}

#[tokio::test]
async fn one_address_creates_only_so_many_companies_an_hour() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.signups_per_hour = 2;
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let signup = |client: &'static str, sub: &'static str| {
        app.client
            .post(format!("{}/api/signup", app.address))
            .header(header::HOST, "localhost")
            .header(header::ACCEPT, "application/json")
            .header("x-forwarded-for", client)
            .form(&[
                ("company", "Co"),
                ("subdomain", sub),
                ("email", "a@co.test"),
                ("password", ADMIN_PASSWORD),
            ])
            .send()
    };
    assert_eq!(
        signup("203.0.113.5", "first").await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(
        signup("203.0.113.5", "second").await.unwrap().status(),
        StatusCode::OK
    );
    let res = signup("203.0.113.5", "third").await.unwrap();
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.text().await.unwrap().contains("Throttled"));
    assert_eq!(
        signup("198.51.100.5", "fourth").await.unwrap().status(),
        StatusCode::OK
    );
    // Signups wait for their email to be confirmed: three held, none refused.
    use sea_orm::{EntityTrait, PaginatorTrait};
    let held = app::ssr::entities::signup_holds::Entity::find()
        .count(&app.services.registry)
        .await
        .unwrap();
    assert_eq!(held, 3);
    app.teardown().await;
}

#[tokio::test]
async fn random_unknown_hosts_never_push_a_company_out_of_the_cache() {
    use app::domain::Subdomain;
    use app::ssr::{entities::tenants, secrets::Cipher, tenancy::request::directory::Directory};
    use sea_orm::{ActiveModelTrait, Set};

    let app = spawn_app(Backend::Sqlite).await;
    let acme = app.create_company("Acme Corp", "acme").await;
    let cipher = Cipher::from_hex_key(app.settings.secret_key.as_ref().unwrap()).unwrap();
    let directory = Directory::new(
        app.services.registry.clone(),
        cipher,
        std::time::Duration::from_secs(300),
    )
    .with_max_unknown(50);
    let sub = Subdomain::parse("acme").unwrap();
    assert_eq!(
        directory.lookup(&sub).await.unwrap().unwrap().name,
        "Acme Corp"
    );
    // Renamed behind this directory's back: only a fresh lookup sees it.
    tenants::ActiveModel {
        id: Set(acme.id),
        name: Set("Renamed".into()),
        ..Default::default()
    }
    .update(&app.services.registry)
    .await
    .unwrap();
    for i in 0..300 {
        let unknown = Subdomain::parse(&format!("nobody-{i}")).unwrap();
        assert!(directory.lookup(&unknown).await.unwrap().is_none());
    }
    assert_eq!(
        directory.lookup(&sub).await.unwrap().unwrap().name,
        "Acme Corp",
        "still cached after 300 unknown hosts"
    );
    directory.invalidate("acme");
    assert_eq!(
        directory.lookup(&sub).await.unwrap().unwrap().name,
        "Renamed"
    );
    app.teardown().await;
}

async fn changing_a_password_ends_that_persons_other_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let host = "acme.localhost";
    let (_, _, mut here) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
    let (_, _, mut elsewhere) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
    // Someone else's session, on another company, with the same user id shape.
    let (_, _, mut other) = sign_in(
        &app,
        "globex.localhost",
        "admin@globex.test",
        ADMIN_PASSWORD,
    )
    .await;
    let new = "a brand new password";
    let (status, body) = call(
        &app,
        host,
        &mut here,
        "change_password",
        &[("current", ADMIN_PASSWORD), ("new", new), ("confirm", new)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, me) = call(&app, host, &mut here, "whoami", &[]).await;
    assert_eq!(
        me["email"], "admin@acme.test",
        "the session that changed it stays"
    );
    let (_, me) = call(&app, host, &mut elsewhere, "whoami", &[]).await;
    assert!(me.is_null(), "the other session ended: {me}");
    let (_, me) = call(&app, "globex.localhost", &mut other, "whoami", &[]).await;
    assert_eq!(me["email"], "admin@globex.test");
    app.teardown().await;
}

async fn two_admins_demoting_each_other_at_once_leave_one_admin(backend: Backend) {
    use app::domain::{Email, Password, Role};
    use app::ssr::entities::tenant_users;
    use sea_orm::{ColumnTrait, PaginatorTrait, QueryFilter};

    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    let db = app.tenant_db("acme").await;
    let second = app::ssr::accounts::users::add(
        &db,
        t.id,
        "test",
        &Email::parse("second@acme.test").unwrap(),
        Role::Admin,
        Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let (first_id, second_id) = (t.admin_user_id.unwrap().to_string(), second.id.clone());
    let host = "acme.localhost";
    let (_, _, mut first) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
    let (_, _, mut other) = sign_in(&app, host, "second@acme.test", ADMIN_PASSWORD).await;
    for round in 0..15 {
        // Both admins again, then each takes the other's role or account.
        tenant_users::Entity::update_many()
            .col_expr(
                tenant_users::Column::Role,
                sea_orm::sea_query::Expr::value("admin"),
            )
            .col_expr(
                tenant_users::Column::Disabled,
                sea_orm::sea_query::Expr::value(false),
            )
            .exec(&db)
            .await
            .unwrap();
        let (endpoint, field, value) = if round % 2 == 0 {
            ("set_user_role", "role", "member")
        } else {
            ("set_user_disabled", "disabled", "true")
        };
        let to_second = [("id", second_id.as_str()), (field, value)];
        let to_first = [("id", first_id.as_str()), (field, value)];
        let (a, b) = tokio::join!(
            call(&app, host, &mut first, endpoint, &to_second),
            call(&app, host, &mut other, endpoint, &to_first),
        );
        let admins = tenant_users::Entity::find()
            .filter(tenant_users::Column::Role.eq(Role::Admin))
            .filter(tenant_users::Column::Disabled.eq(false))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(admins, 1, "round {round}: {a:?} {b:?}");
        // One wins; the other is refused: 409 when both were counted, or
        // 401 / 403 when the winner had already disabled or demoted it.
        let won = [a.0, b.0].iter().filter(|s| **s == StatusCode::OK).count();
        assert_eq!(won, 1, "round {round}: {a:?} {b:?}");
    }
    db.close().await.ok();
    app.teardown().await;
}

#[tokio::test]
async fn sqlite_databases_and_the_data_directory_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let app = spawn_app(Backend::Sqlite).await;
    let t = app.create_company("Acme Corp", "acme").await;
    let dir = &app.settings.data_dir;
    let mode = |p: std::path::PathBuf| std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(dir.clone()), 0o700);
    assert_eq!(mode(dir.join("registry.db")), 0o600);
    assert_eq!(mode(dir.join("tenants")), 0o700);
    assert_eq!(
        mode(dir.join("tenants").join(format!("{}.db", t.id))),
        0o600
    );
    for entry in std::fs::read_dir(dir)
        .unwrap()
        .chain(std::fs::read_dir(dir.join("tenants")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(path.clone()), 0o600, "{}", path.display());
        }
    }
    app.teardown().await;
}

/// On PostgreSQL 15 (the machine's server), an administrator with only
/// CREATEDB and CREATEROLE is enough, and a company's role reaches its own
/// database and no other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_createdb_createrole_administrator_is_enough_and_company_roles_stay_home() {
    least_privilege_on(crate::helpers::PG_ADMIN_URL, "127.0.0.1:5432", 15).await;
}

/// The same on PostgreSQL 16, where a CREATEROLE administrator's membership
/// in the roles it creates no longer carries SET or INHERIT: a cluster of the
/// test's own, with scram-sha-256 for every role but the superuser.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_privilege_holds_on_postgresql_16() {
    crate::pg_cluster::with_cluster(100, |cluster| async move {
        let host = format!("127.0.0.1:{}", cluster.port);
        least_privilege_on(&cluster.admin_url("postgres"), &host, 16).await
    })
    .await;
}

async fn least_privilege_on(admin_url: &str, host: &str, major: u32) {
    use crate::helpers::{start, test_settings};
    use app::domain::Subdomain;
    use sea_orm::{ConnectionTrait, Database};
    use secrecy::{ExposeSecret, SecretString};

    let su = Database::connect(admin_url).await.unwrap();
    let version: i32 = su
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            "SELECT current_setting('server_version_num')::int AS v",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "v")
        .unwrap();
    assert_eq!(version as u32 / 10000, major, "server version {version}");
    let id = uuid::Uuid::new_v4().simple().to_string();
    let admin = format!("enclave_lp_{}", &id[..12]);
    let registry = format!("enclave_test_{id}");
    // Names built from a UUID above, never from input.
    for sql in [
        format!("CREATE ROLE \"{admin}\" LOGIN CREATEDB CREATEROLE PASSWORD '{id}'"),
        format!("CREATE DATABASE \"{registry}\" OWNER \"{admin}\""),
    ] {
        su.execute_unprepared(&sql).await.unwrap();
    }
    let mut settings = test_settings(Backend::Sqlite).await;
    settings.registry_url = Some(SecretString::from(format!(
        "postgres://{admin}:{id}@{host}/{registry}?sslmode=disable"
    )));
    settings.tenant_db_url = Some(SecretString::from(format!(
        "postgres://{admin}:{id}@{host}/postgres?sslmode=disable"
    )));
    let app = start(settings).await;
    let acme = app.create_company("Acme Corp", "acme").await;
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);

    // The company's role: its own database, and nothing else Enclave made.
    let own = app.tenant_db_url("acme").await;
    let elsewhere = |db: &str| {
        SecretString::from(
            own.expose_secret()
                .replace(&format!("/{}", acme.db_name), &format!("/{db}")),
        )
    };
    assert!(Database::connect(own.expose_secret()).await.is_ok());
    let refused = Database::connect(elsewhere(&registry).expose_secret()).await;
    assert!(refused.is_err(), "the company role reached the registry");
    let template = app::ssr::tenancy::servers::template::template_name();
    let admin_db = &su;
    // Every database this administrator made is closed to PUBLIC: the
    // registry, the company's, and the template if it built it (one built
    // by another role is that owner's to close; startup warns about it).
    let owner = |db: String| async move {
        admin_db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                sea_orm::DbBackend::Postgres,
                "SELECT pg_get_userbyid(datdba) AS owner FROM pg_database WHERE datname = $1",
                [db.into()],
            ))
            .await
            .unwrap()
            .and_then(|r| r.try_get::<String>("", "owner").ok())
    };
    for db in [registry.clone(), template.clone(), acme.db_name.clone()] {
        let made_here =
            matches!(owner(db.clone()).await, Some(o) if o == admin || o == acme.db_name);
        if db != template || made_here {
            let open = app::ssr::tenancy::servers::databases::public_can_connect(admin_db, &db)
                .await
                .unwrap();
            assert!(!open, "{db} is open to PUBLIC");
        }
    }
    // The role's password never went to the server in clear: only a verifier is stored.
    let stored = admin_db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT rolpassword FROM pg_authid WHERE rolname = $1",
            [acme.db_name.clone().into()],
        ))
        .await
        .unwrap()
        .and_then(|r| r.try_get::<String>("", "rolpassword").ok())
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"), "{stored}");

    // Pause, resume and delete work with these rights too.
    let sub = Subdomain::parse("acme").unwrap();
    app.services.set_paused(&sub, true).await.unwrap();
    app.services.set_paused(&sub, false).await.unwrap();
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    app.services.delete_tenant(&sub).await.unwrap();
    assert!(!app
        .services
        .provisioner
        .server()
        .exists(acme.id)
        .await
        .unwrap());
    let _ = std::fs::remove_dir_all(&app.settings.data_dir);
    crate::helpers::drop_lean_admin(&su, &registry, &admin).await;
    su.close().await.ok();
}

on_both_backends!(what_grows_with_traffic_is_purged);

async fn what_grows_with_traffic_is_purged(backend: Backend) {
    use app::ssr::entities::{handoff_tokens, login_failures, provisioning};
    use app::ssr::purge::{purge, Purged};
    use chrono::{TimeDelta, Utc};
    use sea_orm::{ActiveModelTrait, PaginatorTrait, Set};

    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    let reg = &app.services.registry;
    let now = Utc::now();
    let token = |hash: &str, expires: TimeDelta, used: bool| handoff_tokens::ActiveModel {
        token_hash: Set(hash.into()),
        tenant_id: Set(t.id),
        user_id: Set(t.admin_user_id.unwrap()),
        expires_at: Set(now + expires),
        used_at: Set(used.then_some(now)),
    };
    token("spent", TimeDelta::seconds(30), true)
        .insert(reg)
        .await
        .unwrap();
    token("expired", TimeDelta::seconds(-1), false)
        .insert(reg)
        .await
        .unwrap();
    token("live", TimeDelta::seconds(30), false)
        .insert(reg)
        .await
        .unwrap();
    for (email, age) in [("old@x.test", 16), ("new@x.test", 1)] {
        login_failures::ActiveModel {
            email: Set(email.into()),
            client: Set("203.0.113.1".into()),
            at: Set(now - TimeDelta::minutes(age)),
            ..Default::default()
        }
        .insert(reg)
        .await
        .unwrap();
    }
    // The company's record is fresh; one from long ago is not.
    let old = uuid::Uuid::new_v4();
    provisioning::ActiveModel {
        tenant_id: Set(old),
        subdomain: Set("gone".into()),
        step: Set(provisioning::Step::Admin),
        outcome: Set(provisioning::Outcome::Deleted),
        error: Set(None),
        started_at: Set(now - TimeDelta::days(40)),
        updated_at: Set(now - TimeDelta::days(40)),
        duration_ms: Set(None),
    }
    .insert(reg)
    .await
    .unwrap();

    let purged = purge(reg, TimeDelta::days(30)).await.unwrap();
    assert_eq!(
        purged,
        Purged {
            handoff_tokens: 2,
            sessions: 0,
            login_failures: 1,
            provisioning: 1
        }
    );
    assert_eq!(handoff_tokens::Entity::find().count(reg).await.unwrap(), 1);
    assert_eq!(provisioning::Entity::find().count(reg).await.unwrap(), 1);
    assert_eq!(
        purge(reg, TimeDelta::days(30)).await.unwrap(),
        Purged::default()
    );
    app.teardown().await;
}

on_both_backends!(revoked_and_expired_platform_tokens_stop_working);

async fn revoked_and_expired_platform_tokens_stop_working(backend: Backend) {
    use app::ssr::accounts::platform::{create_api_token, list_api_tokens, revoke_api_token};
    let app = spawn_app(backend).await;
    let reg = &app.services.registry;
    let api = |token: String| {
        app.client
            .get(format!("{}/api/admin/tenants", app.address))
            .header(header::HOST, "localhost")
            .bearer_auth(token)
            .send()
    };
    let live = create_api_token(reg, "live", Some(chrono::TimeDelta::days(1)))
        .await
        .unwrap();
    let expired = create_api_token(reg, "old", Some(chrono::TimeDelta::seconds(-1)))
        .await
        .unwrap();
    let revoked = create_api_token(reg, "gone", None).await.unwrap();
    assert_eq!(api(live.clone()).await.unwrap().status(), StatusCode::OK);
    assert_eq!(
        api(expired).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api(revoked.clone()).await.unwrap().status(), StatusCode::OK);
    let id = list_api_tokens(reg)
        .await
        .unwrap()
        .into_iter()
        .find(|t| t.label == "gone")
        .unwrap()
        .id;
    revoke_api_token(reg, &id).await.unwrap();
    assert_eq!(
        api(revoked).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(api(live).await.unwrap().status(), StatusCode::OK);
    app.teardown().await;
}

#[tokio::test]
async fn a_new_platform_admin_password_ends_their_sessions() {
    use app::domain::{Email, Password};
    use app::ssr::accounts::platform::{create_superadmin, set_superadmin_password};
    let app = spawn_app(Backend::Sqlite).await;
    let email = Email::parse("root@platform.test").unwrap();
    create_superadmin(
        &app.services.registry,
        &email,
        Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let mut jar = Jar::default();
    let creds = [
        ("email", "root@platform.test"),
        ("password", ADMIN_PASSWORD),
    ];
    let (status, _) = call(&app, "localhost", &mut jar, "admin_login", &creds).await;
    assert_eq!(status, StatusCode::OK);
    let (status, _) = call(&app, "localhost", &mut jar, "list_tenants", &[]).await;
    assert_eq!(status, StatusCode::OK);
    set_superadmin_password(
        &app.services.registry,
        &email,
        Password::parse("another long password").unwrap(),
    )
    .await
    .unwrap();
    let (status, _) = call(&app, "localhost", &mut jar, "list_tenants", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.teardown().await;
}

on_both_backends!(credentials_are_bound_to_their_company_and_rotate_to_a_new_key);

async fn credentials_are_bound_to_their_company_and_rotate_to_a_new_key(backend: Backend) {
    use app::ssr::{
        entities::tenants,
        secrets::Cipher,
        tenancy::request::directory::{reseal_credentials, Resealed},
    };
    use sea_orm::{ActiveModelTrait, EntityTrait, Set};

    let app = spawn_app(backend).await;
    let acme = app.create_company("Acme Corp", "acme").await;
    let globex = app.create_company("Globex", "globex").await;
    let reg = &app.services.registry;

    // Acme's sealed URL in Globex's row opens for no one: Globex is not served.
    let acme_url = acme.db_url.clone().unwrap();
    let globex_url = globex.db_url.clone().unwrap();
    let set_url = |id, url: String| tenants::ActiveModel {
        id: Set(id),
        db_url: Set(Some(url)),
        ..Default::default()
    };
    set_url(globex.id, acme_url.clone())
        .update(reg)
        .await
        .unwrap();
    app.services.directory.invalidate("globex");
    assert_eq!(
        app.get("globex.localhost", "/api/health").await.status(),
        503
    );
    set_url(globex.id, globex_url).update(reg).await.unwrap();
    app.services.directory.invalidate("globex");
    assert_eq!(
        app.get("globex.localhost", "/api/health").await.status(),
        200
    );

    // Rotation, killed after one row: the rerun finishes, and the new key
    // alone opens everything.
    let old = app.settings.secret_key.clone().unwrap();
    let (new, rotating) = app.rotating_cipher();
    let plain = rotating.decrypt(acme.id, &acme_url).unwrap();
    set_url(acme.id, rotating.encrypt(acme.id, &plain))
        .update(reg)
        .await
        .unwrap();
    assert_eq!(
        reseal_credentials(reg, &rotating).await.unwrap(),
        Resealed {
            resealed: 1,
            current: 1,
            unreadable: 0
        }
    );
    assert_eq!(
        reseal_credentials(reg, &rotating).await.unwrap(),
        Resealed {
            resealed: 0,
            current: 2,
            unreadable: 0
        }
    );
    let after = Cipher::from_hex_key(&new).unwrap();
    for t in tenants::Entity::find().all(reg).await.unwrap() {
        assert!(
            after.decrypt(t.id, t.db_url.as_deref().unwrap()).is_ok(),
            "{}",
            t.subdomain
        );
        assert!(Cipher::from_hex_key(&old)
            .unwrap()
            .decrypt(t.id, t.db_url.as_deref().unwrap())
            .is_err());
    }
    // Rotation done: an instance started from here on refuses unbound
    // (`v1:`) values; one started before it still opens them.
    assert!(app.services.cipher.opens_legacy());
    app::ssr::secrets::refuse_legacy(reg).await.unwrap();
    // An instance on the new key serves both.
    let mut settings = app.settings.clone();
    settings.secret_key = Some(new);
    settings.listen = "127.0.0.1:0".parse().unwrap();
    let restarted = crate::helpers::start(settings).await;
    assert!(!restarted.services.cipher.opens_legacy());
    for host in ["acme.localhost", "globex.localhost"] {
        assert_eq!(
            restarted.get(host, "/api/health").await.status(),
            200,
            "{host}"
        );
    }
    app.teardown().await;
}

on_both_backends!(a_deletion_killed_midway_is_finished_by_a_retry_or_by_recovery);

async fn a_deletion_killed_midway_is_finished_by_a_retry_or_by_recovery(backend: Backend) {
    use app::domain::Subdomain;
    use app::ssr::tenancy::{lifecycle::DeleteStep, request::directory};

    let app = spawn_app(backend).await;
    for (i, step) in [DeleteStep::Serving, DeleteStep::Database]
        .into_iter()
        .enumerate()
    {
        for by_recovery in [false, true] {
            let name = format!("doomed-{i}-{by_recovery}");
            let sub = Subdomain::parse(&name).unwrap();
            let t = app.create_company("Doomed", &name).await;
            let mut dying = app.services.clone();
            dying.delete_crash_after = Some(step);
            assert!(dying.delete_tenant(&sub).await.is_err(), "{step:?}");
            let left = directory::find_by_subdomain(&app.services.registry, &sub)
                .await
                .unwrap()
                .expect("the row stays, marked");
            assert_eq!(
                left.status,
                app::ssr::entities::tenants::TenantStatus::Deleting
            );
            assert_eq!(
                app.get(&format!("{name}.localhost"), "/api/health")
                    .await
                    .status(),
                404
            );
            if by_recovery {
                let mut recovering = app.services.clone();
                recovering.provisioning_timeout = std::time::Duration::ZERO;
                recovering.recover().await;
            } else {
                app.services
                    .delete_tenant(&sub)
                    .await
                    .expect("a retry finishes");
            }
            assert!(directory::find_by_subdomain(&app.services.registry, &sub)
                .await
                .unwrap()
                .is_none());
            assert!(!app
                .services
                .provisioner
                .server()
                .exists(t.id)
                .await
                .unwrap());
            // The subdomain stays reserved, and only its tombstone is left.
            let again = app
                .services
                .create_tenant(crate::helpers::new_tenant("Reborn", &name))
                .await;
            assert!(
                matches!(
                    again,
                    Err(app::ssr::tenancy::lifecycle::provisioning::ProvisionError::Taken(_))
                ),
                "{again:?}"
            );
            let tomb = <app::ssr::entities::tenant_tombstones::Entity as sea_orm::EntityTrait>::find_by_id(t.id)
                .one(&app.services.registry)
                .await
                .unwrap();
            assert!(tomb.is_some(), "{step:?}");
        }
    }
    app.teardown().await;
}

on_both_backends!(
    a_platform_admin_with_a_second_factor_needs_the_current_code_once,
    wrong_second_factor_codes_are_counted_per_account_from_any_address,
);

/// `root@platform.test`, a platform admin with the second factor on.
async fn superadmin_with_totp(app: &TestApp) -> app::ssr::accounts::platform::totp::Enrolment {
    use app::domain::{Email, Password};
    use app::ssr::accounts::platform::{create_superadmin, totp};
    let reg = &app.services.registry;
    let email = Email::parse("root@platform.test").unwrap();
    create_superadmin(reg, &email, Password::parse(ADMIN_PASSWORD).unwrap())
        .await
        .unwrap();
    totp::enable(reg, &app.services.cipher, &email)
        .await
        .unwrap()
}

async fn wrong_second_factor_codes_are_counted_per_account_from_any_address(backend: Backend) {
    use app::ssr::accounts::platform::totp;
    use secrecy::ExposeSecret;

    let app = behind_proxy(backend).await;
    let enrolled = superadmin_with_totp(&app).await;
    let attempt = |client: String, code: String| {
        let app = &app;
        async move {
            app.client
                .post(format!("{}/api/admin_login", app.address))
                .header(header::HOST, "localhost")
                .header(header::ACCEPT, "application/json")
                .header("x-forwarded-for", client)
                .form(&[
                    ("email", "root@platform.test"),
                    ("password", ADMIN_PASSWORD),
                    ("code", &code),
                ])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // Someone with the password tries codes from five addresses.
    for i in 0..5 {
        let s = attempt(format!("198.51.100.{}", 10 + i), format!("{:06}", i)).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    // A sixth address with the right code is refused like the rest.
    let code =
        totp::current_code(enrolled.secret_base32.expose_secret(), "root@platform.test").unwrap();
    let s = attempt("198.51.100.99".into(), code).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED, "codes are counted per account");
    app.teardown().await;
}

async fn a_platform_admin_with_a_second_factor_needs_the_current_code_once(backend: Backend) {
    use app::domain::Email;
    use app::ssr::accounts::platform::totp;
    use secrecy::ExposeSecret;

    let app = spawn_app(backend).await;
    let reg = &app.services.registry;
    let email = Email::parse("root@platform.test").unwrap();
    let enrolled = superadmin_with_totp(&app).await;
    assert!(enrolled.url.expose_secret().starts_with("otpauth://totp/"));
    // Never stored in clear.
    let stored = app::ssr::accounts::platform::list_superadmins(reg)
        .await
        .unwrap()[0]
        .totp_secret
        .clone()
        .unwrap();
    assert!(!stored.contains(enrolled.secret_base32.expose_secret()));

    let login = |code: &'static str| {
        let app = &app;
        async move {
            let mut jar = Jar::default();
            call(
                app,
                "localhost",
                &mut jar,
                "admin_login",
                &[
                    ("email", "root@platform.test"),
                    ("password", ADMIN_PASSWORD),
                    ("code", code),
                ],
            )
            .await
        }
    };
    // A missing or wrong code is answered as a wrong password is: the
    // answer never says the password was right.
    let wrong_password = {
        let mut jar = Jar::default();
        call(
            &app,
            "localhost",
            &mut jar,
            "admin_login",
            &[
                ("email", "root@platform.test"),
                ("password", "not the password"),
                ("code", ""),
            ],
        )
        .await
    };
    assert_eq!(wrong_password.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login("").await, wrong_password);
    assert_eq!(login("000000").await, wrong_password);
    let code =
        totp::current_code(enrolled.secret_base32.expose_secret(), "root@platform.test").unwrap();
    let code: &'static str = Box::leak(code.into_boxed_str());
    let (status, body) = login(code).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = login(code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "a code works once");
    totp::disable(reg, &email).await.unwrap();
    let (status, _) = login("").await;
    assert_eq!(status, StatusCode::OK);
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_names_the_databases_company_roles_could_still_reach() {
    use app::ssr::tenancy::servers::databases::TenantServer;
    use secrecy::SecretString;
    // A stock PostgreSQL lets every role connect to `postgres`: the warning
    // says so, with the statement its owner must run.
    let server = TenantServer::postgres(&SecretString::from(crate::helpers::PG_ADMIN_URL), false)
        .await
        .unwrap();
    let warnings = server.isolation_warnings().await;
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("REVOKE CONNECT ON DATABASE \"postgres\" FROM PUBLIC;")),
        "{warnings:?}"
    );
    assert!(TenantServer::sqlite("/nonexistent".into())
        .isolation_warnings()
        .await
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_concurrency_limit_wait_their_turn() {
    use tokio::io::AsyncWriteExt;
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.max_concurrent_requests = 1;
        s.request_timeout_ms = 1000;
    })
    .await;
    let quick = || async {
        let started = std::time::Instant::now();
        let status = app.get("localhost", "/healthz").await.status();
        (status, started.elapsed())
    };
    let (status, alone) = quick().await;
    assert_eq!(status, StatusCode::OK);
    assert!(alone < std::time::Duration::from_millis(500), "{alone:?}");
    // A client that promises a body and never sends it holds the one turn
    // until the request timeout ends it.
    let addr = app.address.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(
        b"POST /api/signup HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n",
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let (_, waited) = quick().await;
    assert!(
        waited >= std::time::Duration::from_millis(700),
        "served at once: {waited:?}"
    );
    let (status, after) = quick().await;
    assert_eq!(status, StatusCode::OK);
    assert!(after < std::time::Duration::from_millis(500), "{after:?}");
    drop(slow);
    app.teardown().await;
}

async fn an_oversized_body_is_refused_with_413_not_500(backend: Backend) {
    let app = spawn_app(backend).await;
    // Past the limit, and small enough for loopback's buffers to take
    // whole: the server answers before reading it and closes.
    let big = format!("email=a%40b.test&password={}", "x".repeat(256 * 1024));
    for accept in ["application/json", "text/html"] {
        let res = app
            .client
            .post(format!("{}/api/admin_login", app.address))
            .header(header::HOST, "localhost")
            .header(header::ACCEPT, accept)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(big.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE, "{accept}");
    }
    // Sent in chunks, without saying its length, it is cut off as read.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tcp = tokio::net::TcpStream::connect(app.address.trim_start_matches("http://"))
        .await
        .unwrap();
    tcp.write_all(
        b"POST /api/admin_login HTTP/1.1\r\nHost: localhost\r\nAccept: application/json\r\n\
          Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n",
    )
    .await
    .unwrap();
    let chunk = format!("10000\r\n{}\r\n", "x".repeat(0x10000));
    // 256 KiB, past the limit, and ended: the server reads it through
    // before answering (closing with data unread would reset the
    // connection, and the reset can overtake the answer).
    for _ in 0..4 {
        tcp.write_all(chunk.as_bytes()).await.unwrap();
    }
    tcp.write_all(b"0\r\n\r\n").await.unwrap();
    let mut head = [0u8; 12];
    tcp.read_exact(&mut head).await.unwrap();
    assert_eq!(&head, b"HTTP/1.1 413", "{}", String::from_utf8_lossy(&head));
    app.teardown().await;
}

async fn guesses_from_one_ipv6_block_or_a_mapped_address_share_a_throttle(backend: Backend) {
    let app = behind_proxy(backend).await;
    app.create_company("Acme Corp", "acme").await;
    // The owner's browser, known to the account (its limit from every
    // address together does not hold it back; see the test below).
    let (_, device) = acme_login_from(&app, "198.51.100.1", ADMIN_PASSWORD, None).await;
    let device = device.expect("a device cookie");
    // Each pair: five guesses from the first address, the sixth from the
    // second, which is the same client (another address in its /64, or
    // its IPv4 address written as IPv6).
    let pairs = [
        ("2001:db8:1:2::1", "2001:db8:1:2:ffff::99"),
        ("203.0.113.9", "::ffff:203.0.113.9"),
    ];
    for (first, same) in pairs {
        for _ in 0..5 {
            let s = sign_in_from(
                &app,
                "acme.localhost",
                "login",
                first,
                "admin@acme.test",
                "wrong password!",
            )
            .await;
            assert_eq!(s, StatusCode::UNAUTHORIZED, "{first}");
        }
        let s = sign_in_from(
            &app,
            "acme.localhost",
            "login",
            same,
            "admin@acme.test",
            "wrong password!",
        )
        .await;
        assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{same} is {first}");
    }
    // Another /64 is another client.
    let (status, _) = acme_login_from(&app, "2001:db8:1:3::1", ADMIN_PASSWORD, Some(&device)).await;
    assert_eq!(status, StatusCode::OK);
    app.teardown().await;
}

async fn disabling_a_user_ends_their_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let host = "acme.localhost";
    let (_, _, mut admin) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
    let (status, added) = call(
        &app,
        host,
        &mut admin,
        "add_user",
        &[
            ("email", "member@acme.test"),
            ("role", "member"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{added}");
    let id = added["id"].as_str().unwrap().to_owned();
    let (_, _, mut member) = sign_in(&app, host, "member@acme.test", ADMIN_PASSWORD).await;
    let (_, me) = call(&app, host, &mut member, "whoami", &[]).await;
    assert_eq!(me["email"], "member@acme.test", "{me}");

    for disabled in ["true", "false"] {
        let (status, body) = call(
            &app,
            host,
            &mut admin,
            "set_user_disabled",
            &[("id", &id), ("disabled", disabled)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    // Enabled again, the old session does not come back with it.
    let (status, me) = call(&app, host, &mut member, "whoami", &[]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(me.is_null(), "still signed in: {me}");
    let (status, _, _) = sign_in(&app, host, "member@acme.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "they sign in again");
    app.teardown().await;
}

async fn turning_on_a_second_factor_ends_the_admins_sessions(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = app::domain::Email::parse("root@platform.test").unwrap();
    app::ssr::accounts::platform::create_superadmin(
        &app.services.registry,
        &email,
        app::domain::Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let mut root = Jar::default();
    let (status, body) = call(
        &app,
        "localhost",
        &mut root,
        "admin_login",
        &[
            ("email", "root@platform.test"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        call(&app, "localhost", &mut root, "list_tenants", &[])
            .await
            .0,
        StatusCode::OK
    );

    app::ssr::accounts::platform::totp::enable(
        &app.services.registry,
        &app.services.cipher,
        &email,
    )
    .await
    .unwrap();
    let (status, _) = call(&app, "localhost", &mut root, "list_tenants", &[]).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "the password-only session ended"
    );
    app.teardown().await;
}

async fn changing_a_password_goes_through_the_sign_in_throttle(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let host = "acme.localhost";
    let (_, _, mut jar) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
    let change = |current: &'static str| {
        [
            ("current", current),
            ("new", "a brand new passphrase"),
            ("confirm", "a brand new passphrase"),
        ]
    };
    for _ in 0..5 {
        let (status, body) = call(
            &app,
            host,
            &mut jar,
            "change_password",
            &change("wrong guess!!"),
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    // A session in someone else's hands guesses no faster than sign-in allows.
    let (status, body) = call(
        &app,
        host,
        &mut jar,
        "change_password",
        &change(ADMIN_PASSWORD),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    app.teardown().await;
}

async fn a_company_mails_at_most_its_invitations_per_day(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.invitations_per_day = 3).await;
    app.create_company("Acme Corp", "acme").await;
    let host = "acme.localhost";
    let (_, _, mut admin) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
    let invite = |email: &'static str| [("email", email), ("role", "member")];
    let (status, first) = call(
        &app,
        host,
        &mut admin,
        "invite_user",
        &invite("one@acme.test"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    assert_eq!(
        call(
            &app,
            host,
            &mut admin,
            "invite_user",
            &invite("two@acme.test")
        )
        .await
        .0,
        StatusCode::OK
    );
    // Sending one again is a mail too.
    let (status, body) = call(&app, host, &mut admin, "resend_invitation", &[("id", &id)]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &app,
        host,
        &mut admin,
        "invite_user",
        &invite("three@acme.test"),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_eq!(body["Throttled"]["retry_after_secs"], 3600, "{body}");
    // Another company has its own day.
    app.create_company("Globex", "globex").await;
    let (_, _, mut other) = sign_in(
        &app,
        "globex.localhost",
        "admin@globex.test",
        ADMIN_PASSWORD,
    )
    .await;
    let (status, body) = call(
        &app,
        "globex.localhost",
        &mut other,
        "invite_user",
        &invite("one@globex.test"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.teardown().await;
}

async fn guesses_from_many_addresses_slow_the_account_but_not_its_owners_browser(backend: Backend) {
    let app = behind_proxy(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let attempt = |client: &'static str, password: &'static str, cookie: Option<String>| {
        let app = &app;
        async move { acme_login_from(app, client, password, cookie.as_deref()).await }
    };
    // The owner signs in from their browser, which is then known.
    let (status, device) = attempt("198.51.100.1", ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::OK);
    let device = device.expect("a device cookie");
    // Someone guesses once from each of ten addresses.
    const ADDRESSES: [&str; 10] = [
        "203.0.113.1",
        "203.0.113.2",
        "203.0.113.3",
        "203.0.113.4",
        "203.0.113.5",
        "203.0.113.6",
        "203.0.113.7",
        "203.0.113.8",
        "203.0.113.9",
        "203.0.113.10",
    ];
    for client in ADDRESSES {
        assert_eq!(
            attempt(client, "wrong password!", None).await.0,
            StatusCode::UNAUTHORIZED
        );
    }
    // The account is slowed down for browsers it does not know, even with
    // the right password from a new address...
    let (status, _) = attempt("192.0.2.50", ADMIN_PASSWORD, None).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...a cookie made for another account or by hand counts for nothing...
    let (status, _) = attempt(
        "192.0.2.51",
        ADMIN_PASSWORD,
        Some("enclave_device=0123456789abcdef.00".into()),
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    // ...but the owner's browser is not locked out.
    let (status, _) = attempt("198.51.100.1", ADMIN_PASSWORD, Some(device)).await;
    assert_eq!(status, StatusCode::OK);
    app.teardown().await;
}
