//! Company settings that work: renaming the company, and the audit log as
//! a page of its own, for admins only.
use reqwest::StatusCode;

use crate::helpers::{
    call, get, location_path, post_plain_form, sign_in, spawn_app, Backend, Jar, TestApp,
    ADMIN_PASSWORD,
};
use crate::on_both_backends;

const HOST: &str = "acme.localhost";

on_both_backends!(
    admins_rename_the_company_and_everyone_sees_the_new_name,
    the_audit_log_is_paged_and_for_admins_only,
);

async fn admin_and_member(app: &TestApp) -> (Jar, Jar) {
    let (_, _, mut admin) = sign_in(app, HOST, "admin@acme.test", ADMIN_PASSWORD).await;
    let (status, body) = call(
        app,
        HOST,
        &mut admin,
        "add_user",
        &[
            ("email", "m@acme.test"),
            ("role", "member"),
            ("password", "member password"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, member) = sign_in(app, HOST, "m@acme.test", "member password").await;
    (admin, member)
}

async fn admins_rename_the_company_and_everyone_sees_the_new_name(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let (mut admin, mut member) = admin_and_member(&app).await;

    // Without JavaScript: 303 to the settings page, which says so.
    let res = post_plain_form(
        &app,
        HOST,
        &mut admin,
        "rename_company",
        &[("name", "  Acme & Sons  ")],
        "/settings",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location_path(&res);
    assert_eq!(to, "/settings?renamed=1");
    let page = get(&app, HOST, &mut admin, &to).await.text().await.unwrap();
    assert!(page.contains("The company has its new name."), "{page}");
    assert!(
        page.contains(r#"data-testid="company-name">Acme &amp; Sons</dd>"#),
        "{page}"
    );

    // The member sees it too, and the registry holds it.
    let (_, dashboard) = call(&app, HOST, &mut member, "load_dashboard", &[]).await;
    assert_eq!(dashboard["company"], "Acme & Sons");
    let sub = app::domain::Subdomain::parse("acme").unwrap();
    let row =
        app::ssr::tenancy::request::directory::find_by_subdomain(&app.services.registry, &sub)
            .await
            .unwrap()
            .unwrap();
    assert_eq!(row.name, "Acme & Sons");

    // Refused: an empty name (with the reason), and members.
    let (status, body) = call(&app, HOST, &mut admin, "rename_company", &[("name", "   ")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = call(
        &app,
        HOST,
        &mut member,
        "rename_company",
        &[("name", "Mine")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let db = app.tenant_db("acme").await;
    let audit = app::ssr::accounts::users::recent_audit(&db, 5)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|a| a.action == "company.renamed"
            && a.detail == "Renamed the company from 'Acme Corp' to 'Acme & Sons'"),
        "{audit:?}"
    );
    db.close().await.ok();
    app.teardown().await;
}

async fn the_audit_log_is_paged_and_for_admins_only(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let (mut admin, mut member) = admin_and_member(&app).await;
    let db = app.tenant_db("acme").await;
    for i in 0..120 {
        app::ssr::accounts::users::audit(
            &db,
            "bot@acme.test",
            "test.entry",
            format!("entry number {i}"),
        )
        .await
        .unwrap();
    }
    let total = app::ssr::accounts::users::audit_count(&db).await.unwrap();
    db.close().await.ok();
    assert!(total >= 120);
    let pages = total.div_ceil(50);

    let page = get(&app, HOST, &mut admin, "/audit")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("{total} entries · page 1 of {pages}")),
        "{page}"
    );
    assert_eq!(page.matches("<li>").count(), 50);
    assert!(page.contains("entry number 119") && !page.contains("entry number 69<"));
    assert!(page.contains(r#"href="/audit?page=2""#));
    let last = get(&app, HOST, &mut admin, &format!("/audit?page={pages}"))
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(
        last.matches("<li>").count() as u64,
        total - 50 * (pages - 1)
    );
    assert!(!last.contains(r#"rel="next""#));
    // Past the end is the last page, never an error.
    let beyond = get(&app, HOST, &mut admin, "/audit?page=999")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        beyond.contains(&format!("page {pages} of {pages}")),
        "{beyond}"
    );

    // Members: no audit log, on the dashboard or anywhere.
    let (_, dashboard) = call(&app, HOST, &mut member, "load_dashboard", &[]).await;
    assert_eq!(dashboard["recent"], serde_json::json!([]));
    let (status, _) = call(&app, HOST, &mut member, "load_audit", &[]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let res = get(&app, HOST, &mut member, "/audit").await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let page = get(&app, HOST, &mut member, "/")
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("entry number"), "{page}");
    app.teardown().await;
}
