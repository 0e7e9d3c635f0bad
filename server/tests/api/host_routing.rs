//! The Host table of docs/ARCHITECTURE.md, end to end through the real server.
use app::ssr::entities::tenants::TenantStatus;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    the_base_domain_serves_the_landing_page,
    a_known_company_gets_its_own_page,
    an_unknown_subdomain_gets_the_no_such_workspace_page,
    a_paused_company_gets_the_paused_page,
    hosts_outside_the_base_domain_are_bad_requests,
    an_unknown_path_is_a_404_page,
    healthz_answers_on_the_base_domain_only,
);

async fn the_base_domain_serves_the_landing_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("localhost:3000", "/").await;
    assert_eq!(res.status(), 200);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("Every company gets its own database."),
        "{body}"
    );
    assert!(
        body.contains("http://your-company.localhost:3000/"),
        "{body}"
    );
    app.teardown().await;
}

async fn a_known_company_gets_its_own_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    for host in [
        "acme.localhost:3000",
        "ACME.localhost:3000",
        "acme.localhost.",
    ] {
        // Signed out, the company's home sends a browser to its sign-in page.
        let res = app
            .client
            .get(format!("{}/", app.address))
            .header("host", host)
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 302, "{host}");
        assert_eq!(res.headers()["location"], "/login?next=/", "{host}");
        let res = app.get(host, "/login").await;
        assert_eq!(res.status(), 200, "{host}");
        let body = res.text().await.unwrap();
        assert!(body.contains("Sign in to Acme Corp"), "{host}: {body}");
        assert!(!body.contains("No such workspace"), "{host}");
    }
    app.teardown().await;
}

async fn an_unknown_subdomain_gets_the_no_such_workspace_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    for host in ["globex.localhost:3000", "www.localhost", "ab.localhost"] {
        let res = app.get(host, "/").await;
        assert_eq!(res.status(), 404, "{host}");
        let body = res.text().await.unwrap();
        assert!(body.contains("No such workspace"), "{host}: {body}");
    }
    // Any path, not only the home page.
    let res = app.get("globex.localhost:3000", "/settings").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("No such workspace"));
    app.teardown().await;
}

async fn a_paused_company_gets_the_paused_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Initech", "initech").await;
    app.set_status("initech", TenantStatus::Paused).await;
    let res = app.get("initech.localhost:3000", "/").await;
    assert_eq!(res.status(), 503);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("This workspace is paused"));
    app.teardown().await;
}

async fn hosts_outside_the_base_domain_are_bad_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let long_label = format!("{}.localhost", "a".repeat(300));
    for host in [
        "evil.com",
        "127.0.0.1:3000",
        "a.b.localhost",
        "[::1]:3000",
        long_label.as_str(),
    ] {
        let res = app.get(host, "/").await;
        assert_eq!(res.status(), 400, "{host}");
    }
    app.teardown().await;
}

async fn an_unknown_path_is_a_404_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("localhost:3000", "/no/such/page").await;
    assert_eq!(res.status(), 404);
    assert!(res.text().await.unwrap().contains("Page not found"));
    app.teardown().await;
}

async fn healthz_answers_on_the_base_domain_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let res = app.get("localhost", "/healthz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["status"],
        "ok"
    );
    let res = app.get("acme.localhost", "/healthz").await;
    assert_eq!(res.status(), 404);
    app.teardown().await;
}

#[tokio::test]
async fn go_to_your_company_leads_to_its_sign_in_or_says_why_not() {
    let app = crate::helpers::spawn_app(Backend::Sqlite).await;
    let res = app.get("localhost:3000", "/go?company=Acme-Corp").await;
    assert_eq!(res.status(), 303);
    assert_eq!(
        res.headers()["location"],
        "http://acme-corp.localhost:3000/login"
    );
    let res = app.get("localhost:3000", "/go?company=a_b").await;
    assert_eq!(res.status(), 303);
    let back = res.headers()["location"].to_str().unwrap().to_owned();
    assert!(back.starts_with("/?company_error="), "{back}");
    let page = app.get("localhost:3000", &back).await.text().await.unwrap();
    assert!(
        page.contains("Use only letters a–z, digits and hyphens"),
        "{page}"
    );
    // Only on the base domain.
    assert_eq!(
        app.get("acme.localhost:3000", "/go?company=acme")
            .await
            .status(),
        404
    );
    app.teardown().await;
}
