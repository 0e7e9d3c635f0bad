//! Operations: `migrate` over every tenant, and the tenant lifecycle seen
//! by other instances.
use std::time::{Duration, Instant};

use app::domain::Subdomain;
use app::ssr::tenancy::{
    request::directory,
    schema::migrate::{latest, migrate_tenants, MigrateOptions, Outcome},
};
use migration::TenantMigrator;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use secrecy::ExposeSecret;

use crate::helpers::{pg_admin, spawn_app, start, Backend, TestApp, PG_ADMIN_URL};
use crate::{on_both_backends, release};

on_both_backends!(
    a_new_tenant_migration_reaches_every_tenant_and_a_rerun_touches_none,
    a_broken_tenant_fails_while_the_others_migrate,
    pause_and_delete_are_seen_by_another_instance_within_five_seconds,
    an_unchanged_registry_is_read_once_per_cache_time_not_once_per_company,
);

release!(
    /// The real tenant migrations plus one more.
    NextRelease = TenantMigrator,
    "m29991231_000001_add_notes" => "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
);
release!(
    /// And one more after that.
    ReleaseAfter = NextRelease,
    "m29991231_000002_add_tags" => "CREATE TABLE tags (id INTEGER PRIMARY KEY, body TEXT NOT NULL)",
);

fn opts() -> MigrateOptions {
    MigrateOptions {
        concurrency: 4,
        only: None,
        ..Default::default()
    }
}

async fn notes_exist(app: &TestApp, sub: &str) -> bool {
    let db = app.tenant_db(sub).await;
    let ok = db
        .execute_unprepared("SELECT count(*) FROM notes")
        .await
        .is_ok();
    db.close().await.ok();
    ok
}

async fn break_database(app: &TestApp, backend: Backend, sub: &str) {
    let t = directory::find_by_subdomain(&app.services.registry, &Subdomain::parse(sub).unwrap())
        .await
        .unwrap()
        .unwrap();
    match backend {
        Backend::Sqlite => {
            let path = app.settings.tenant_dir().join(format!("{}.db", t.id));
            std::fs::write(
                path,
                b"this is not a database, it is a broken file of sixty-odd bytes!",
            )
            .unwrap();
        }
        Backend::Postgres => {
            pg_admin(&format!("DROP DATABASE \"{}\" WITH (FORCE)", t.db_name)).await;
        }
    }
}

async fn a_new_tenant_migration_reaches_every_tenant_and_a_rerun_touches_none(backend: Backend) {
    let app = spawn_app(backend).await;
    for sub in ["alpha", "bravo", "charlie"] {
        app.create_company(sub, sub).await;
    }
    app.services
        .set_paused(&Subdomain::parse("charlie").unwrap(), true)
        .await
        .unwrap();

    let dry = MigrateOptions {
        dry_run: true,
        ..opts()
    };
    let summary = migrate_tenants::<NextRelease>(&app.services, &dry, |_| {}, |_| {})
        .await
        .unwrap();
    assert_eq!(summary.pending(), 3);
    assert!(
        !notes_exist(&app, "alpha").await,
        "a dry run changes nothing"
    );

    let mut seen = 0;
    let summary =
        migrate_tenants::<NextRelease>(&app.services, &opts(), |n| assert_eq!(n, 3), |_| seen += 1)
            .await
            .unwrap();
    assert_eq!(
        (summary.migrated(), summary.failed().count(), seen),
        (3, 0, 3)
    );
    for r in &summary.results {
        assert_eq!(
            r.outcome,
            Outcome::Migrated(vec!["m29991231_000001_add_notes".into()]),
            "{}",
            r.subdomain
        );
    }
    for sub in ["alpha", "bravo"] {
        assert!(notes_exist(&app, sub).await, "{sub}");
    }
    for t in directory::list(&app.services.registry).await.unwrap() {
        assert_eq!(
            t.schema_version.as_deref(),
            Some(latest::<NextRelease>().as_str()),
            "{}",
            t.subdomain
        );
        assert_eq!(t.last_migration_error, None);
    }
    // Nothing is behind: nothing is touched.
    let summary = migrate_tenants::<NextRelease>(&app.services, &opts(), |_| {}, |_| {})
        .await
        .unwrap();
    assert_eq!((summary.current(), summary.migrated()), (3, 0));
    assert!(summary.results.iter().all(|r| r.elapsed == Duration::ZERO));
    app.teardown().await;
}

async fn a_broken_tenant_fails_while_the_others_migrate(backend: Backend) {
    let app = spawn_app(backend).await;
    for sub in ["alpha", "broken", "charlie"] {
        app.create_company(sub, sub).await;
    }
    break_database(&app, backend, "broken").await;
    // Behind the binary's migrations, so `migrate` must reach it.
    let broken =
        directory::find_by_subdomain(&app.services.registry, &Subdomain::parse("broken").unwrap())
            .await
            .unwrap()
            .unwrap();
    sea_orm::ActiveModelTrait::update(
        app::ssr::entities::tenants::ActiveModel {
            id: sea_orm::Set(broken.id),
            schema_version: sea_orm::Set(None),
            ..Default::default()
        },
        &app.services.registry,
    )
    .await
    .unwrap();

    // The command's exit status says so; the others are left alone.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_server"));
    cmd.arg("migrate")
        .env("ENCLAVE_DATA_DIR", &app.settings.data_dir)
        .env(
            "ENCLAVE_SECRET_KEY",
            app.settings.secret_key.as_ref().unwrap().expose_secret(),
        );
    match (&app.settings.registry_url, &app.settings.tenant_db_url) {
        (Some(r), Some(t)) => {
            cmd.env("ENCLAVE_REGISTRY_URL", r.expose_secret())
                .env("ENCLAVE_TENANT_DB_URL", t.expose_secret());
        }
        _ => {
            cmd.env_remove("ENCLAVE_REGISTRY_URL")
                .env_remove("ENCLAVE_TENANT_DB_URL");
        }
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("1 failed") && stdout.contains("broken:"),
        "{stdout}"
    );
    assert!(stdout.contains("0 migrated, 2 already current"), "{stdout}");

    let summary = migrate_tenants::<NextRelease>(&app.services, &opts(), |_| {}, |_| {})
        .await
        .unwrap();
    assert_eq!(summary.migrated(), 2);
    let failed: Vec<_> = summary.failed().map(|(s, _)| s.to_owned()).collect();
    assert_eq!(failed, ["broken"]);
    let broken =
        directory::find_by_subdomain(&app.services.registry, &Subdomain::parse("broken").unwrap())
            .await
            .unwrap()
            .unwrap();
    assert!(broken.last_migration_error.is_some());

    // A re-run tries the broken one again, and only it.
    let summary = migrate_tenants::<NextRelease>(&app.services, &opts(), |_| {}, |_| {})
        .await
        .unwrap();
    assert_eq!((summary.current(), summary.failed().count()), (2, 1));
    let touched: Vec<_> = summary
        .results
        .iter()
        .filter(|r| r.elapsed > Duration::ZERO)
        .map(|r| r.subdomain.as_str())
        .collect();
    assert_eq!(touched, ["broken"]);

    app.teardown().await;
}

async fn wait_for_status(app: &TestApp, host: &str, path: &str, want: u16) -> Duration {
    let started = Instant::now();
    loop {
        if app.get(host, path).await.status().as_u16() == want {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{host}{path} never answered {want}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pause_and_delete_are_seen_by_another_instance_within_five_seconds(backend: Backend) {
    let first = spawn_app(backend).await;
    let t = first.create_company("Acme Corp", "acme").await;
    let second = start(first.settings.clone()).await;
    // The second instance has acme cached as active.
    assert_eq!(second.get("acme.localhost", "/login").await.status(), 200);

    first
        .services
        .set_paused(&Subdomain::parse("acme").unwrap(), true)
        .await
        .unwrap();
    assert_eq!(
        first.get("acme.localhost", "/login").await.status(),
        503,
        "at once where it was changed"
    );
    let waited = wait_for_status(&second, "acme.localhost", "/login", 503).await;
    assert!(waited <= Duration::from_millis(5500), "{waited:?}");

    first
        .services
        .set_paused(&Subdomain::parse("acme").unwrap(), false)
        .await
        .unwrap();
    wait_for_status(&second, "acme.localhost", "/api/health", 200).await;
    first
        .services
        .delete_tenant(&Subdomain::parse("acme").unwrap())
        .await
        .unwrap();
    let waited = wait_for_status(&second, "acme.localhost", "/login", 404).await;
    assert!(waited <= Duration::from_millis(5500), "{waited:?}");

    // Nothing of it is left: no database, no role, no file.
    assert!(!first
        .services
        .provisioner
        .server()
        .exists(t.id)
        .await
        .unwrap());
    if backend == Backend::Postgres {
        let admin = Database::connect(PG_ADMIN_URL).await.unwrap();
        let row = admin
            .query_one_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT count(*) AS n FROM pg_roles WHERE rolname = $1",
                [t.db_name.clone().into()],
            ))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(row.try_get::<i64>("", "n").unwrap(), 0);
        admin.close().await.ok();
    } else {
        assert_eq!(
            std::fs::read_dir(first.settings.tenant_dir())
                .unwrap()
                .count(),
            0
        );
    }
    first.teardown().await;
}

/// Benchmark, not a test: `cargo test -p server --test api -- --ignored
/// --nocapture migrate_benchmark` (ENCLAVE_BENCH_TENANTS, default 200).
/// Prints how long one trivial migration takes over every tenant at
/// concurrency 1 and at the default (8).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn migrate_benchmark_over_many_postgres_tenants() {
    let n: usize = std::env::var("ENCLAVE_BENCH_TENANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let app = spawn_app(Backend::Postgres).await;
    let started = Instant::now();
    let subs: Vec<String> = (0..n).map(|i| format!("bench-{i:05}")).collect();
    app.create_companies(&subs, 8).await;
    let provisioning = started.elapsed();
    let one = migrate_tenants::<NextRelease>(
        &app.services,
        &MigrateOptions {
            concurrency: 1,
            ..opts()
        },
        |_| {},
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(one.migrated(), n);
    let eight = migrate_tenants::<ReleaseAfter>(
        &app.services,
        &MigrateOptions {
            concurrency: 8,
            ..opts()
        },
        |_| {},
        |_| {},
    )
    .await
    .unwrap();
    assert_eq!(eight.migrated(), n);
    let rerun = migrate_tenants::<ReleaseAfter>(&app.services, &opts(), |_| {}, |_| {})
        .await
        .unwrap();
    eprintln!(
        "{n} PostgreSQL tenants: provisioned in {:.1} s ({:.0} ms each, 8 at a time); \
         migrate at concurrency 1: {:.1} s; at 8: {:.1} s; re-run with nothing to do: {} ms",
        provisioning.as_secs_f64(),
        provisioning.as_millis() as f64 * 8.0 / n as f64,
        one.elapsed.as_secs_f64(),
        eight.elapsed.as_secs_f64(),
        rerun.elapsed.as_millis()
    );
    app.teardown().await;
}

async fn an_unchanged_registry_is_read_once_per_cache_time_not_once_per_company(backend: Backend) {
    let first = spawn_app(backend).await;
    for sub in ["acme", "globex", "initech"] {
        first.create_company(sub, sub).await;
    }
    let mut settings = first.settings.clone();
    settings.tenant_cache_secs = 1;
    let second = start(settings).await;
    let reads = second.services.metrics.directory_reads();
    let ask_all = || async {
        for sub in ["acme", "globex", "initech"] {
            let host = format!("{sub}.localhost");
            assert_eq!(
                second.get(&host, "/api/health").await.status(),
                200,
                "{sub}"
            );
        }
    };

    ask_all().await;
    assert_eq!(reads.company.get(), 3, "each company read once");
    assert_eq!(reads.version.get(), 1);

    // Past the cache time, nothing changed: one read of the version
    // stands for all three rows.
    for round in 1..=2 {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        ask_all().await;
        assert_eq!(reads.company.get(), 3, "round {round}");
        assert_eq!(reads.version.get(), 1 + round, "round {round}");
    }

    // A change by another instance raises the version: within the cache
    // time this one sees it, and reads each row again once.
    first
        .services
        .set_paused(&Subdomain::parse("globex").unwrap(), true)
        .await
        .unwrap();
    let waited = wait_for_status(&second, "globex.localhost", "/api/health", 503).await;
    assert!(waited <= Duration::from_millis(1500), "{waited:?}");
    ask_all_but_globex(&second).await;
    assert_eq!(reads.company.get(), 6, "every row read again once");
    ask_all_but_globex(&second).await;
    assert_eq!(reads.company.get(), 6);

    // The second instance shares the first's registry and companies.
    first.teardown().await;
}

async fn ask_all_but_globex(app: &TestApp) {
    for sub in ["acme", "initech"] {
        let host = format!("{sub}.localhost");
        assert_eq!(app.get(&host, "/api/health").await.status(), 200, "{sub}");
    }
}
