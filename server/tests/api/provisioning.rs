//! Creating companies: the state machine, races, failures, recovery.
use std::time::Duration;

use app::domain::Subdomain;
use app::ssr::{
    entities::{
        provisioning, tenant_users,
        tenants::{self, TenantStatus},
    },
    tenancy::{
        lifecycle::provisioning::{FailPoint, ProvisionError},
        request::directory,
        schema::migrate::latest_tenant_schema,
    },
};
use app::{
    domain::Role,
    ssr::entities::provisioning::{Outcome, Step},
};
use migration::{MigratorTrait, TenantMigrator};
use sea_orm::Iterable;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::helpers::{new_tenant, spawn_app, start, Backend, ADMIN_PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    creation_makes_a_migrated_database_with_its_admin,
    the_stored_database_url_is_not_plaintext,
    fifty_concurrent_creations_of_one_subdomain_make_one_company,
    a_failure_at_any_step_leaves_nothing_behind,
    a_restart_undoes_a_creation_that_died_midway,
    tenant_health_runs_one_query_on_that_tenants_database,
);

async fn creation_makes_a_migrated_database_with_its_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    assert_eq!(t.status, TenantStatus::Active);
    assert_eq!(
        t.schema_version.as_deref(),
        Some(latest_tenant_schema().as_str())
    );
    assert_eq!(t.db_name, format!("tenant_{}", t.id.simple()));

    let db = app.tenant_db("acme").await;
    let applied = TenantMigrator::get_applied_migrations(&db).await.unwrap();
    assert_eq!(applied.len(), TenantMigrator::migrations().len());
    let users = tenant_users::Entity::find().all(&db).await.unwrap();
    assert_eq!(users.len(), 1);
    assert_eq!(users[0].email, "admin@acme.test");
    assert_eq!(users[0].role, Role::Admin);
    assert_eq!(Some(users[0].id), t.admin_user_id);
    assert!(app::ssr::accounts::passwords::verify(
        ADMIN_PASSWORD,
        &users[0].password_hash
    ));
    db.close().await.ok();

    let record = provisioning::Entity::find_by_id(t.id)
        .one(&app.services.registry)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.outcome, Outcome::Succeeded);
    assert!(record.duration_ms.unwrap() > 0);
    app.teardown().await;
}

async fn the_stored_database_url_is_not_plaintext(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    let stored = t.db_url.clone().expect("url stored");
    assert!(
        stored.starts_with("v2:"),
        "sealed for its company: {stored}"
    );
    for plain in ["sqlite:", "postgres:", "tenant_", "127.0.0.1"] {
        assert!(!stored.contains(plain), "{plain} in {stored}");
    }
    // What operators see carries no URL either.
    let shown = format!(
        "{:?}",
        app.services
            .directory
            .lookup(&Subdomain::parse("acme").unwrap())
            .await
            .unwrap()
    );
    assert!(
        !shown.contains("postgres://") && !shown.contains("sqlite://"),
        "{shown}"
    );
    app.teardown().await;
}

async fn fifty_concurrent_creations_of_one_subdomain_make_one_company(backend: Backend) {
    let app = spawn_app(backend).await;
    let attempts = (0..50).map(|i| {
        let p = app.services.provisioner.clone();
        tokio::spawn(async move {
            p.provision(new_tenant(&format!("Racer {i}"), "contested"))
                .await
        })
    });
    let results = futures_join_all(attempts).await;
    let won = results.iter().filter(|r| r.is_ok()).count();
    let taken = results
        .iter()
        .filter(|r| matches!(r, Err(ProvisionError::Taken(s)) if s == "contested"))
        .count();
    assert_eq!((won, taken), (1, 49), "{results:?}");
    assert_eq!(
        ProvisionError::Taken("contested".into()).to_string(),
        "The subdomain 'contested' is taken."
    );
    let reg = &app.services.registry;
    assert_eq!(tenants::Entity::find().count(reg).await.unwrap(), 1);
    // Losers stop at the unique index: no provisioning record, no database.
    assert_eq!(provisioning::Entity::find().count(reg).await.unwrap(), 1);
    if backend == Backend::Sqlite {
        let files = std::fs::read_dir(app.settings.tenant_dir())
            .unwrap()
            .count();
        assert_eq!(files, 1);
    }
    app.teardown().await;
}

async fn futures_join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for h in handles.collect::<Vec<_>>() {
        out.push(h.await.unwrap());
    }
    out
}

async fn a_failure_at_any_step_leaves_nothing_behind(backend: Backend) {
    let app = spawn_app(backend).await;
    let reg = &app.services.registry;
    for step in Step::iter() {
        let failing = app.services.provisioner.clone().with_fail_point(FailPoint {
            after: step,
            crash: false,
        });
        let err = failing
            .provision(new_tenant("Doomed", "doomed"))
            .await
            .unwrap_err();
        assert!(
            matches!(err, ProvisionError::Failed { step: s, .. } if s == Some(step)),
            "{err:?}"
        );

        assert_eq!(
            tenants::Entity::find().count(reg).await.unwrap(),
            0,
            "after {step:?}"
        );
        let record = provisioning::Entity::find()
            .filter(provisioning::Column::Outcome.eq(Outcome::Undone))
            .all(reg)
            .await
            .unwrap();
        let last = record.last().expect("the attempt is recorded");
        assert!(last.error.is_some());
        assert!(
            !app.services
                .provisioner
                .server()
                .exists(last.tenant_id)
                .await
                .unwrap(),
            "database left after {step:?}"
        );
        provisioning::Entity::delete_many().exec(reg).await.unwrap();
    }
    // The subdomain is free again.
    let t = app.create_company("Doomed", "doomed").await;
    assert_eq!(t.status, TenantStatus::Active);
    app.teardown().await;
}

async fn a_restart_undoes_a_creation_that_died_midway(backend: Backend) {
    let app = spawn_app(backend).await;
    let crashing = app.services.provisioner.clone().with_fail_point(FailPoint {
        after: Step::Migrated,
        crash: true,
    });
    crashing
        .provision(new_tenant("Halfway", "halfway"))
        .await
        .unwrap_err();
    let sub = Subdomain::parse("halfway").unwrap();
    let half = directory::find_by_subdomain(&app.services.registry, &sub)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(half.status, TenantStatus::Provisioning);
    assert!(app
        .services
        .provisioner
        .server()
        .exists(half.id)
        .await
        .unwrap());

    // A new process on the same registry, for which that row is stale.
    let mut settings = app.settings.clone();
    settings.provisioning_timeout_secs = 0;
    tokio::time::sleep(Duration::from_millis(20)).await;
    let restarted = start(settings).await;
    assert!(
        directory::find_by_subdomain(&restarted.services.registry, &sub)
            .await
            .unwrap()
            .is_none()
    );
    assert!(!restarted
        .services
        .provisioner
        .server()
        .exists(half.id)
        .await
        .unwrap());
    // And the name can be had again (on the first instance: the restarted
    // one, with a timeout of 0, would take any creation for a dead one).
    app.create_company("Halfway", "halfway").await;
    app.teardown().await;
}

async fn tenant_health_runs_one_query_on_that_tenants_database(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let res = app.get("acme.localhost:3000", "/api/health").await;
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body, serde_json::json!({"tenant": "acme", "status": "ok"}));
    let body: serde_json::Value = app
        .get("globex.localhost", "/api/health")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["tenant"], "globex");

    assert_eq!(
        app.get("nobody.localhost", "/api/health").await.status(),
        404
    );
    assert_eq!(app.get("localhost", "/api/health").await.status(), 404);
    app.set_status("globex", TenantStatus::Paused).await;
    assert_eq!(
        app.get("globex.localhost", "/api/health").await.status(),
        503
    );
    app.teardown().await;
}

#[tokio::test]
async fn postgresql_without_a_secret_key_refuses_to_start() {
    let mut settings = crate::helpers::test_settings(Backend::Postgres).await;
    settings.secret_key = None;
    let err = server::startup::build_services(&settings)
        .await
        .err()
        .expect("refused");
    assert!(
        err.to_string().contains("ENCLAVE_SECRET_KEY is required"),
        "{err}"
    );
    // Nothing of the URL shows in the error.
    assert!(!err.to_string().contains("postgres://"), "{err}");
    crate::helpers::drop_registry(&settings).await;
}

#[tokio::test]
async fn a_company_visited_before_it_existed_is_served_once_created() {
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(app.get("newco.localhost", "/login").await.status(), 404);
    app.create_company("NewCo", "newco").await;
    assert_eq!(app.get("newco.localhost", "/login").await.status(), 200);
    app.teardown().await;
}

/// Benchmark, not a test: `cargo test -p server --test api -- --ignored
/// --nocapture provisioning_benchmark` (ENCLAVE_BENCH_TENANTS, default 30).
/// Prints the median and p90 time to create a company on PostgreSQL, one
/// at a time, through the whole provisioning path.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn provisioning_benchmark_on_postgres() {
    let n: usize = std::env::var("ENCLAVE_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30);
    let app = spawn_app(Backend::Postgres).await;
    // One creation first, so one-time work (such as a template) is not counted.
    app.create_company("Warm", "warm-up").await;
    let mut times = Vec::with_capacity(n);
    for i in 0..n {
        let started = std::time::Instant::now();
        app.create_company("Bench", &format!("prov-{i:04}")).await;
        times.push(started.elapsed());
    }
    times.sort();
    eprintln!(
        "provisioning on PostgreSQL, {n} one at a time: median {} ms, p90 {} ms, min {} ms, max {} ms",
        times[n / 2].as_millis(),
        times[n * 9 / 10].as_millis(),
        times[0].as_millis(),
        times[n - 1].as_millis()
    );
    app.teardown().await;
}
