//! `/metrics`: what it counts, and who may read it.
use app::ssr::tenancy::schema::migrate::{migrate_tenants, MigrateOptions};
use reqwest::{header, StatusCode};

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    metrics_count_requests_pools_provisioning_and_migrations,
    metrics_refuse_a_remote_caller_without_a_token,
);

async fn scrape(
    app: &TestApp,
    from: &str,
    forwarded_for: Option<&str>,
    token: Option<&str>,
) -> (StatusCode, String) {
    let client = reqwest::Client::builder()
        .local_address(from.parse::<std::net::IpAddr>().unwrap())
        .build()
        .unwrap();
    let mut req = client
        .get(format!("{}/metrics", app.address))
        .header(header::HOST, "localhost");
    if let Some(f) = forwarded_for {
        req = req.header("x-forwarded-for", f);
    }
    if let Some(t) = token {
        req = req.header(header::AUTHORIZATION, format!("Bearer {t}"));
    }
    let res = req.send().await.unwrap();
    (res.status(), res.text().await.unwrap())
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

async fn metrics_count_requests_pools_provisioning_and_migrations(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.connection_budget = Some(40)).await;
    app.create_company("Acme Corp", "acme").await;
    for _ in 0..3 {
        assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    }
    assert_eq!(
        app.get("nobody.localhost", "/api/health").await.status(),
        404
    );
    let opts = MigrateOptions {
        concurrency: 2,
        only: None,
        ..Default::default()
    };
    migrate_tenants::<migration::TenantMigrator>(&app.services, &opts, |_| {}, |_| {})
        .await
        .unwrap();

    let (status, text) = scrape(&app, "127.0.0.1", None, None).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        value(&text, "enclave_http_requests_total{status=\"200\"}").unwrap() >= 3.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "enclave_http_requests_total{status=\"404\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "enclave_tenant_pools_open"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "enclave_tenant_connections_budget"),
        Some(40.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "enclave_tenant_connections_reserved"),
        Some(2.0),
        "{text}"
    );
    // The connection goes back to its pool just after the response: idle soon.
    let mut in_use = value(&text, "enclave_tenant_connections_in_use");
    for _ in 0..40 {
        if in_use == Some(0.0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        in_use = value(
            &scrape(&app, "127.0.0.1", None, None).await.1,
            "enclave_tenant_connections_in_use",
        );
    }
    assert_eq!(in_use, Some(0.0), "{text}");
    assert!(
        value(&text, "enclave_tenant_connections_open").unwrap() >= 1.0,
        "{text}"
    );
    assert_eq!(
        value(&text, "enclave_provisionings_total{outcome=\"created\"}"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "enclave_provisioning_seconds_count"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(
            &text,
            "enclave_tenant_migrations_total{outcome=\"current\"}"
        ),
        Some(1.0),
        "{text}"
    );
    app.teardown().await;
}

async fn metrics_refuse_a_remote_caller_without_a_token(backend: Backend) {
    // A proxy on 127.0.0.2 forwards a caller from elsewhere.
    let app = spawn_app_with(backend, |s| {
        s.trusted_proxies = vec!["127.0.0.2".parse().unwrap()]
    })
    .await;
    let remote = Some("203.0.113.9");
    assert_eq!(
        scrape(&app, "127.0.0.2", remote, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    let wrong = format!("enc_{}", "0".repeat(64));
    assert_eq!(
        scrape(&app, "127.0.0.2", remote, Some(&wrong)).await.0,
        StatusCode::UNAUTHORIZED
    );
    let token =
        app::ssr::accounts::platform::create_api_token(&app.services.registry, "prometheus", None)
            .await
            .unwrap();
    let (status, text) = scrape(&app, "127.0.0.2", remote, Some(&token)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(text.contains("enclave_tenant_connections_budget"));
    // With a proxy trusted, loopback is no proof of being local (the proxy
    // may be on this machine): a direct loopback caller needs a token too.
    assert_eq!(
        scrape(&app, "127.0.0.1", remote, None).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        scrape(&app, "127.0.0.1", remote, Some(&token)).await.0,
        StatusCode::OK
    );
    app.teardown().await;
}
