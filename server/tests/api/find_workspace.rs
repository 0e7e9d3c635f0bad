//! "Find your workspace": one message listing every company where an email
//! is an active user, the same answer whatever was found, and a registry
//! that holds keyed digests, never the address.
use reqwest::StatusCode;

use crate::helpers::{
    call, call_full, get, location_path, post_plain_form, sign_in, spawn_app, Backend, Jar,
    TestApp, ADMIN_PASSWORD,
};
use crate::mailbox::{messages, wait_for, wait_for_link};
use crate::on_both_backends;

on_both_backends!(
    find_your_workspace_lists_the_companies_of_an_email_and_nothing_else,
    the_index_is_rebuilt_when_made_with_another_key,
);

const PAT: &str = "pat@shared.test";

async fn find(app: &TestApp, email: &str) -> (StatusCode, serde_json::Value, Option<String>) {
    call_full(
        app,
        "localhost",
        &mut Jar::default(),
        "find_workspaces",
        &[("email", email)],
    )
    .await
}

fn outbox(app: &TestApp) -> std::path::PathBuf {
    app.services.mailer.outbox().unwrap().to_owned()
}

/// Pat: a user of Acme (added with a password) and of Globex (invited).
async fn pat_in_two_companies(app: &TestApp) -> Jar {
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    app.create_company("Initech", "initech").await;
    let (_, _, mut acme) = sign_in(app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    let (status, body) = call(
        app,
        "acme.localhost",
        &mut acme,
        "add_user",
        &[
            ("email", PAT),
            ("role", "member"),
            ("password", "pat's password"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (_, _, mut globex) =
        sign_in(app, "globex.localhost", "admin@globex.test", ADMIN_PASSWORD).await;
    call(
        app,
        "globex.localhost",
        &mut globex,
        "invite_user",
        &[("email", PAT), ("role", "member")],
    )
    .await;
    let token = wait_for_link(&outbox(app), PAT, "/invite/").await;
    let (status, body) = call(
        app,
        "globex.localhost",
        &mut Jar::default(),
        "accept_invitation",
        &[
            ("token", &token),
            ("new", "pat's password"),
            ("confirm", "pat's password"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    acme
}

async fn find_your_workspace_lists_the_companies_of_an_email_and_nothing_else(backend: Backend) {
    use app::ssr::entities::member_emails;
    use sea_orm::EntityTrait;

    let app = spawn_app(backend).await;
    let mut acme = pat_in_two_companies(&app).await;

    let (status, body, location) = find(&app, "PAT@shared.test").await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::OK, Some("/find?sent=1")),
        "{body}"
    );
    let all = wait_for(&outbox(&app), PAT, 2).await;
    let list = all
        .iter()
        .find(|m| m.contains("Subject: Your companies on Enclave"))
        .expect("the list");
    // Links are made from the public address (here the port the app
    // listens on), not from the request's `Host`.
    let port = app.address.rsplit(':').next().unwrap();
    assert!(
        list.contains(&format!("Acme Corp: http://acme.localhost:{port}/login")),
        "{list}"
    );
    assert!(
        list.contains(&format!("Globex: http://globex.localhost:{port}/login")),
        "{list}"
    );
    assert!(!list.contains("initech"), "{list}");
    assert!(list.contains("text/html"));

    // Nobody: the same answer, and no message.
    let nobody = find(&app, "nobody@shared.test").await;
    assert_eq!(nobody, (StatusCode::OK, body.clone(), location.clone()));

    // The registry keeps digests only.
    let rows = member_emails::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap();
    assert!(rows.len() >= 5, "{rows:?}");
    for row in &rows {
        assert_eq!(row.email_digest.len(), 64);
        assert!(!row.email_digest.contains('@'));
    }

    // Disabled at Acme: only Globex is listed next time.
    let acme_db = app.tenant_db("acme").await;
    let pat = app::ssr::accounts::users::list(&acme_db)
        .await
        .unwrap()
        .into_iter()
        .find(|u| u.email == PAT)
        .unwrap();
    acme_db.close().await.ok();
    let (status, _) = call(
        &app,
        "acme.localhost",
        &mut acme,
        "set_user_disabled",
        &[("id", &pat.id), ("disabled", "true")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    find(&app, PAT).await;
    let all = wait_for(&outbox(&app), PAT, 3).await;
    let lists: Vec<&String> = all
        .iter()
        .filter(|m| m.contains("Subject: Your companies on Enclave"))
        .collect();
    assert_eq!(lists.len(), 2);
    let newest = lists
        .iter()
        .find(|m| !m.contains("Acme Corp"))
        .expect("a list without Acme");
    assert!(newest.contains("Globex"), "{newest}");
    assert!(
        !messages(&outbox(&app))
            .iter()
            .any(|m| m.contains("To: nobody@shared.test")),
        "nobody got nothing"
    );

    // Without JavaScript: 303 to the page that says a message may be on its way.
    let mut jar = Jar::default();
    let res = post_plain_form(
        &app,
        "localhost",
        &mut jar,
        "find_workspaces",
        &[("email", "x@y.test")],
        "/find",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let page = get(&app, "localhost", &mut jar, &location_path(&res))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("a message listing them is on its way"),
        "{page}"
    );

    // Per email, 3 an hour from anywhere: the fourth is refused.
    let (status, _, _) = find(&app, PAT).await;
    assert_eq!(status, StatusCode::OK);
    let (status, body, _) = find(&app, PAT).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");

    // A deleted company leaves no rows behind.
    let globex = app::domain::Subdomain::parse("globex").unwrap();
    let id =
        app::ssr::tenancy::request::directory::find_by_subdomain(&app.services.registry, &globex)
            .await
            .unwrap()
            .unwrap()
            .id;
    app.services.delete_tenant(&globex).await.unwrap();
    let rows = member_emails::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap();
    assert!(rows.iter().all(|r| r.tenant_id != id));
    app.teardown().await;
}

async fn the_index_is_rebuilt_when_made_with_another_key(backend: Backend) {
    use app::ssr::entities::{member_emails, member_index};
    use sea_orm::{sea_query::Expr, EntityTrait};

    let app = spawn_app(backend).await;
    pat_in_two_companies(&app).await;
    // Startup built it (for no companies) under the current key.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while member_index::Entity::find_by_id(1)
        .one(&app.services.registry)
        .await
        .unwrap()
        .is_none()
    {
        assert!(std::time::Instant::now() < deadline, "never built");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // As if made under another key (an upgrade, a rotation): rows lost.
    member_emails::Entity::delete_many()
        .exec(&app.services.registry)
        .await
        .unwrap();
    member_index::Entity::update_many()
        .col_expr(member_index::Column::KeyId, Expr::value("another"))
        .exec(&app.services.registry)
        .await
        .unwrap();
    app::ssr::accounts::workspaces::rebuild_if_stale(&app.services)
        .await
        .unwrap();
    let found = app::ssr::accounts::workspaces::find(
        &app.services.registry,
        &app.services.cipher,
        &app::domain::Email::parse(PAT).unwrap(),
    )
    .await
    .unwrap();
    let subs: Vec<&str> = found.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(subs, ["acme", "globex"]);
    let built = member_index::Entity::find_by_id(1)
        .one(&app.services.registry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(built.key_id, app.services.cipher.key_id());
    app.teardown().await;
}
