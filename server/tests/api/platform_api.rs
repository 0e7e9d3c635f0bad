//! The platform API: token, base domain only, JSON errors with stable codes.
use reqwest::{header, Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, Backend, TestApp, ADMIN_PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    the_platform_api_creates_lists_pauses_resumes_and_deletes_companies,
    the_platform_api_refuses_missing_or_wrong_tokens_and_tenant_hosts,
    every_bad_input_to_the_platform_api_gets_4xx_json,
    the_platform_api_adds_users_with_a_password,
);

async fn api(
    app: &TestApp,
    method: Method,
    host: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header(header::HOST, host);
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    if let Some(b) = body {
        req = req
            .header(header::CONTENT_TYPE, "application/json")
            .body(b.to_owned());
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        },
    )
}

async fn token(app: &TestApp) -> String {
    app::ssr::accounts::platform::create_api_token(&app.services.registry, "tests", None)
        .await
        .unwrap()
}

fn new_company(sub: &str) -> String {
    json!({"name": "Acme Corp", "subdomain": sub, "admin_email": format!("admin@{sub}.test"), "admin_password": ADMIN_PASSWORD}).to_string()
}

async fn the_platform_api_creates_lists_pauses_resumes_and_deletes_companies(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token(&app).await;
    let t = Some(t.as_str());
    let (status, created) = api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants",
        t,
        Some(&new_company("acme")),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["subdomain"], "acme");
    assert_eq!(created["status"], "active");
    assert!(created["id"].as_str().unwrap().len() == 36);
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);

    let (status, list) = api(
        &app,
        Method::GET,
        "localhost",
        "/api/admin/tenants",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!list.to_string().contains("db_url") && !list.to_string().contains("v2:"));

    let (status, paused) = api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants/acme/pause",
        t,
        None,
    )
    .await;
    assert_eq!(
        (status, paused["status"].clone()),
        (StatusCode::OK, json!("paused"))
    );
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 503);
    let (status, _) = api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants/acme/resume",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);

    // Deleting closes the company for the grace period; undelete brings
    // it back; `?now=true` purges it, with the receipt.
    let (status, body) = api(
        &app,
        Method::DELETE,
        "localhost",
        "/api/admin/tenants/acme",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "deleting");
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 503);
    let (status, body) = api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants/acme/undelete",
        t,
        None,
    )
    .await;
    assert_eq!(
        (status, body["status"].clone()),
        (StatusCode::OK, json!("active")),
        "{body}"
    );
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    let (status, body) = api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants/acme/undelete",
        t,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::CONFLICT, json!("not_scheduled"))
    );
    let (status, receipt) = api(
        &app,
        Method::DELETE,
        "localhost",
        "/api/admin/tenants/acme?now=true",
        t,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{receipt}");
    assert_eq!(receipt["receipt"]["company"]["subdomain"], "acme");
    assert_eq!(receipt["signature"]["algorithm"], "HMAC-SHA256");
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 404);
    let (status, body) = api(
        &app,
        Method::DELETE,
        "localhost",
        "/api/admin/tenants/acme",
        t,
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    app.teardown().await;
}

async fn the_platform_api_refuses_missing_or_wrong_tokens_and_tenant_hosts(backend: Backend) {
    let app = spawn_app(backend).await;
    let good = token(&app).await;
    app.create_company("Acme Corp", "acme").await;
    let wrong = format!("enc_{}", "0".repeat(64));
    for t in [None, Some("nonsense"), Some(wrong.as_str())] {
        for (method, path, body) in [
            (Method::GET, "/api/admin/tenants", None),
            (
                Method::POST,
                "/api/admin/tenants",
                Some(new_company("globex")),
            ),
            (Method::POST, "/api/admin/tenants/acme/pause", None),
            (Method::DELETE, "/api/admin/tenants/acme", None),
        ] {
            let (status, body) =
                api(&app, method.clone(), "localhost", path, t, body.as_deref()).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {path} {t:?}");
            assert_eq!(body["error"]["code"], "unauthorized");
        }
    }
    // A good token on a company's host: there is no platform API there.
    let (status, body) = api(
        &app,
        Method::GET,
        "acme.localhost",
        "/api/admin/tenants",
        Some(&good),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    // Nothing was changed by any of it.
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    assert_eq!(
        app::ssr::tenancy::request::directory::list(&app.services.registry)
            .await
            .unwrap()
            .len(),
        1
    );
    app.teardown().await;
}

async fn every_bad_input_to_the_platform_api_gets_4xx_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = token(&app).await;
    let t = Some(t.as_str());
    api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants",
        t,
        Some(&new_company("acme")),
    )
    .await;
    let valid = json!({"name": "X Co", "subdomain": "xco", "admin_email": "a@x.test", "admin_password": ADMIN_PASSWORD});
    let with = |field: &str, value: Value| {
        let mut v = valid.clone();
        v[field] = value;
        v.to_string()
    };
    let cases: Vec<(String, u16, &str, Option<&str>)> = vec![
        (new_company("acme"), 409, "subdomain_taken", None),
        (
            with("subdomain", json!("ab")),
            422,
            "invalid",
            Some("subdomain"),
        ),
        (
            with("subdomain", json!("acme; DROP DATABASE x")),
            422,
            "invalid",
            Some("subdomain"),
        ),
        (
            with("subdomain", json!("www")),
            422,
            "invalid",
            Some("subdomain"),
        ),
        (
            with("subdomain", json!("xn--cme-0na")),
            422,
            "invalid",
            Some("subdomain"),
        ),
        (with("name", json!("")), 422, "invalid", Some("name")),
        (
            with("name", json!("n".repeat(101))),
            422,
            "invalid",
            Some("name"),
        ),
        (
            with("admin_email", json!("nope")),
            422,
            "invalid",
            Some("admin_email"),
        ),
        (
            with("admin_password", json!("short")),
            422,
            "invalid",
            Some("admin_password"),
        ),
        (with("name", json!(42)), 400, "malformed", None),
        (r#"{"name": "X"}"#.to_string(), 400, "malformed", None),
        ("not json".to_string(), 400, "malformed", None),
        (String::new(), 400, "malformed", None),
    ];
    for (body, status, code, field) in cases {
        let (got, answer) = api(
            &app,
            Method::POST,
            "localhost",
            "/api/admin/tenants",
            t,
            Some(&body),
        )
        .await;
        assert_eq!(got.as_u16(), status, "{body}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{body}");
        }
        assert!(answer["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }
    for (method, path) in [
        (Method::POST, "/api/admin/tenants/nobody/pause"),
        (Method::POST, "/api/admin/tenants/-bad-/resume"),
        (Method::DELETE, "/api/admin/tenants/nobody"),
    ] {
        let (status, answer) = api(&app, method, "localhost", path, t, None).await;
        assert_eq!(
            (status, answer["error"]["code"].clone()),
            (StatusCode::NOT_FOUND, json!("not_found")),
            "{path}"
        );
    }
    assert_eq!(
        app::ssr::tenancy::request::directory::list(&app.services.registry)
            .await
            .unwrap()
            .len(),
        1
    );
    app.teardown().await;
}

async fn the_platform_api_adds_users_with_a_password(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let t = token(&app).await;
    let add = |body: Value| {
        let app = &app;
        let t = t.clone();
        async move {
            api(
                app,
                Method::POST,
                "localhost",
                "/api/admin/tenants/acme/users",
                Some(&t),
                Some(&body.to_string()),
            )
            .await
        }
    };
    let (status, user) =
        add(json!({"email": "Bot@Acme.test", "role": "admin", "password": "a bot's password"}))
            .await;
    assert_eq!(status, StatusCode::CREATED, "{user}");
    assert_eq!(
        (user["email"].as_str(), user["role"].as_str()),
        (Some("bot@acme.test"), Some("admin"))
    );
    // It signs in with that password, and is in the company's audit log.
    let (status, _, _) =
        crate::helpers::sign_in(&app, "acme.localhost", "bot@acme.test", "a bot's password").await;
    assert_eq!(status, StatusCode::OK);
    let db = app.tenant_db("acme").await;
    let audit = app::ssr::accounts::users::recent_audit(&db, 5)
        .await
        .unwrap();
    assert!(
        audit
            .iter()
            .any(|a| a.actor == "platform API" && a.detail.contains("bot@acme.test")),
        "{audit:?}"
    );
    db.close().await.ok();

    let (status, body) =
        add(json!({"email": "bot@acme.test", "password": "a bot's password"})).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("email_taken"))
    );
    for (body, field) in [
        (
            json!({"email": "nope", "password": "a bot's password"}),
            "email",
        ),
        (
            json!({"email": "x@acme.test", "role": "owner", "password": "a bot's password"}),
            "role",
        ),
        (
            json!({"email": "x@acme.test", "password": "short"}),
            "password",
        ),
    ] {
        let (status, answer) = add(body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{answer}");
        assert_eq!(answer["error"]["field"], field);
    }
    let (status, body) = api(
        &app,
        Method::POST,
        "localhost",
        "/api/admin/tenants/globex/users",
        Some(&t),
        Some(&json!({"email": "x@globex.test", "password": "a bot's password"}).to_string()),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    app.teardown().await;
}
