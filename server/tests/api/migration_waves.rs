//! `migrate` in waves: a canary, growing waves, a stop when a wave fails too often, `--resume`;
//! the run recorded in the registry; companies on adjacent schema versions served side by side;
//! a migration behind a held lock failing by its `lock_timeout`; bad flags refused.
use std::time::{Duration, Instant};

use app::domain::Role;
use app::ssr::entities::{
    migration_run_companies::CompanyOutcome, migration_runs::RunState, tenant_users, tenants,
};
use app::ssr::tenancy::{
    request::directory,
    schema::{
        migrate::{
            latest, latest_tenant_schema, migrate_tenants, plan, Guards, MigrateError,
            MigrateOptions, Summary,
        },
        runs,
        waves::{Canary, WaveOptions},
    },
};
use migration::{MigratorTrait, TenantMigrator};
use reqwest::StatusCode;
use sea_orm::{
    ActiveModelTrait, ConnectionTrait, EntityTrait, PaginatorTrait, Set, TransactionTrait,
};

use crate::helpers::{call, get, sign_in, spawn_app, Backend, TestApp, ADMIN_PASSWORD};
use crate::{on_both_backends, release};

on_both_backends!(
    a_wave_with_too_many_failures_stops_the_run_and_resume_finishes_it,
    a_company_one_version_behind_is_served_beside_one_at_the_latest,
    a_migration_behind_a_held_lock_fails_by_its_lock_timeout_while_the_site_answers,
    a_migration_over_its_statement_time_fails_by_it,
);

const UNIQUE_ANY_CASE: &str = "m29991231_000001_emails_unique_in_any_case";

release!(
    /// A release whose migration some companies' data breaks: emails
    /// unique in any letter case (fails where two differ only in case).
    NextRelease = TenantMigrator,
    UNIQUE_ANY_CASE => "CREATE UNIQUE INDEX users_email_any_case ON users (lower(email))",
);
release!(
    /// A release that adds a column to `users`: it needs the table to itself.
    AddColumnRelease = TenantMigrator,
    "m29991231_000002_add_nickname" => "ALTER TABLE users ADD COLUMN nickname TEXT",
);
release!(
    /// A release whose migration never ends by itself.
    EndlessRelease = TenantMigrator,
    "m29991231_000003_endless_backfill" => "CREATE TABLE endless AS \
        WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c",
);

fn host(sub: &str) -> String {
    format!("{sub}.localhost")
}

async fn company(app: &TestApp, sub: &str) -> tenants::Model {
    directory::find_by_subdomain(
        &app.services.registry,
        &app::domain::Subdomain::parse(sub).unwrap(),
    )
    .await
    .unwrap()
    .unwrap()
}

/// `n` companies `co-000`…, made 2 at a time (each hashes its admin's
/// password, in one of the process's hashing slots), each with two more users
/// (`one@x.test`, `two@x.test`: every company the same size).
async fn fleet(app: &TestApp, n: usize) -> Vec<String> {
    let subs: Vec<String> = (0..n).map(|i| format!("co-{i:03}")).collect();
    app.create_companies(&subs, 2).await;
    for sub in &subs {
        let db = app.tenant_db(sub).await;
        for email in ["one@x.test", "two@x.test"] {
            tenant_users::ActiveModel {
                id: Set(uuid::Uuid::new_v4()),
                email: Set(email.into()),
                password_hash: Set("not a hash".into()),
                role: Set(Role::Member),
                disabled: Set(false),
                created_at: Set(chrono::Utc::now()),
            }
            .insert(&db)
            .await
            .unwrap();
        }
        db.close().await.unwrap();
    }
    subs
}

/// Runs `sql` on a company's database.
async fn on_company(app: &TestApp, sub: &str, sql: &str) {
    let db = app.tenant_db(sub).await;
    db.execute_unprepared(sql).await.unwrap();
    db.close().await.unwrap();
}

/// Whether the company's database has `migration` applied, and its users.
async fn applied_and_users(app: &TestApp, sub: &str, migration: &str) -> (bool, u64) {
    let db = app.tenant_db(sub).await;
    let applied = NextRelease::get_applied_migrations(&db)
        .await
        .unwrap()
        .iter()
        .any(|m| m.name() == migration);
    let users = tenant_users::Entity::find().count(&db).await.unwrap();
    db.close().await.unwrap();
    (applied, users)
}

/// `migrate` with `M`, its progress unwatched.
async fn migrate<M: MigratorTrait + 'static>(
    services: &app::ssr::services::Services,
    opts: &MigrateOptions,
) -> Result<Summary, MigrateError> {
    migrate_tenants::<M>(services, opts, |_| {}, |_| {}).await
}

/// Takes the company's database one migration back, and says so in the
/// registry (as a company a rollout has not reached yet); its row after.
async fn one_version_back(app: &TestApp, sub: &str) -> tenants::Model {
    let all = TenantMigrator::migrations();
    let db = app.tenant_db(sub).await;
    TenantMigrator::down(&db, Some(1)).await.unwrap();
    db.close().await.unwrap();
    tenants::ActiveModel {
        id: Set(company(app, sub).await.id),
        schema_version: Set(Some(all[all.len() - 2].name().to_owned())),
        ..Default::default()
    }
    .update(&app.services.registry)
    .await
    .unwrap();
    app.services.directory.invalidate(sub);
    company(app, sub).await
}

fn in_waves() -> MigrateOptions {
    MigrateOptions {
        concurrency: 4,
        waves: Some(WaveOptions {
            canary: Canary::Smallest(2),
            growth: 4.0,
            labelled: vec![],
            abort_rate: 0.2,
        }),
        ..Default::default()
    }
}

async fn a_wave_with_too_many_failures_stops_the_run_and_resume_finishes_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let n = match backend {
        Backend::Sqlite => 200,
        Backend::Postgres => 24,
    };
    let subs = fleet(&app, n).await;
    let opts = in_waves();

    // The plan: 2 smallest, then 8, then 32…; equal sizes go by subdomain.
    let planned = plan::<NextRelease>(&app.services, &opts).await.unwrap();
    let sizes: Vec<usize> = planned.waves.iter().map(Vec::len).collect();
    let expected = match backend {
        Backend::Sqlite => vec![2, 8, 32, 128, 30],
        Backend::Postgres => vec![2, 8, 14],
    };
    assert_eq!(sizes, expected);
    assert_eq!(planned.current, 0);
    for wave in &planned.waves {
        for (sub, pending) in wave {
            assert_eq!(pending, &[UNIQUE_ANY_CASE.to_owned()], "{sub}");
        }
    }
    // Three companies of the second wave have data the migration breaks
    // (same length: their sizes, and so the plan, do not change).
    let broken: Vec<String> = planned.waves[1][..3]
        .iter()
        .map(|(s, _)| s.clone())
        .collect();
    for sub in &broken {
        on_company(
            &app,
            sub,
            "UPDATE users SET email = 'ONE@x.test' WHERE email = 'two@x.test'",
        )
        .await;
    }
    let replanned = plan::<NextRelease>(&app.services, &opts).await.unwrap();
    assert_eq!(
        replanned.waves, planned.waves,
        "breaking the data left the plan as it was"
    );
    let beyond: Vec<String> = planned.waves[2..]
        .iter()
        .flatten()
        .map(|(s, _)| s.clone())
        .collect();
    assert_eq!(beyond.len(), n - 10);
    let mut untouched = Vec::new();
    for sub in &beyond {
        untouched.push((sub.clone(), company(&app, sub).await));
    }

    // The run stops after the second wave: 3 of 8 failed, above 0.2.
    let summary = migrate::<NextRelease>(&app.services, &opts).await.unwrap();
    assert_eq!((summary.waves, summary.wave), (expected.len(), 2));
    assert!(
        summary
            .stopped
            .as_deref()
            .is_some_and(|s| s.contains("wave 2") && s.contains("3 of 8")),
        "{:?}",
        summary.stopped
    );
    assert_eq!(summary.untouched, n - 10);
    assert_eq!(summary.migrated(), 7);
    let mut failed: Vec<String> = summary.failed().map(|(s, _)| s.to_owned()).collect();
    failed.sort();
    assert_eq!(failed, broken);

    // No company beyond the second wave was touched: schema, data, record.
    for (sub, before) in &untouched {
        assert_eq!(
            applied_and_users(&app, sub, UNIQUE_ANY_CASE).await,
            (false, 3),
            "{sub}"
        );
        assert_eq!(&company(&app, sub).await, before, "{sub}");
    }

    // The registry says where everyone stands, and why three failed.
    let status = runs::status(&app.services.registry, &latest::<NextRelease>())
        .await
        .unwrap();
    let (run, companies) = status.last_run.unwrap();
    assert_eq!(
        (run.state, run.wave, run.waves),
        (RunState::Stopped, 2, expected.len() as i32)
    );
    assert_eq!(run.canary.as_deref(), Some("2"));
    let count = |o| companies.iter().filter(|c| c.outcome == o).count();
    assert_eq!(
        (
            count(CompanyOutcome::Migrated),
            count(CompanyOutcome::Failed),
            count(CompanyOutcome::Pending)
        ),
        (7, 3, n - 10)
    );
    let unique_violation = match backend {
        Backend::Sqlite => "2067",
        Backend::Postgres => "23505",
    };
    for c in companies
        .iter()
        .filter(|c| c.outcome == CompanyOutcome::Failed)
    {
        assert!(broken.contains(&c.subdomain), "{}", c.subdomain);
        assert_eq!(c.wave, 2);
        assert_eq!(
            c.sqlstate.as_deref(),
            Some(unique_violation),
            "{:?}",
            c.error
        );
        assert!(
            c.error
                .as_deref()
                .unwrap()
                .to_lowercase()
                .contains("unique"),
            "{:?}",
            c.error
        );
        assert_eq!(
            c.reached.as_deref(),
            Some(latest_tenant_schema().as_str()),
            "it stays on the version before"
        );
        assert!(c.started_at.is_some() && c.finished_at.is_some());
    }
    let mut failed_in_registry: Vec<String> =
        status.failed.iter().map(|(s, _)| s.clone()).collect();
    failed_in_registry.sort();
    assert_eq!(failed_in_registry, broken);
    assert_eq!(status.behind.len(), n - 7);

    // The failed companies keep serving on their old schema.
    for sub in &broken {
        assert_eq!(app.get(&host(sub), "/api/health").await.status(), 200);
        let (status, body, _) = sign_in(
            &app,
            &host(sub),
            &format!("admin@{sub}.test"),
            ADMIN_PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sub}: {body}");
    }
    // A company migrated past what this binary knows is not served with
    // wrong queries: 503, and a line in the log.
    let ahead = &planned.waves[0][0].0;
    let res = app.get(&host(ahead), "/api/health").await;
    assert_eq!(res.status(), 503);
    assert!(res.text().await.unwrap().contains("being upgraded"));

    // A resume needs a stopped run; the data fixed, it finishes the run.
    for sub in &broken {
        on_company(
            &app,
            sub,
            "UPDATE users SET email = 'two@x.test' WHERE email = 'ONE@x.test'",
        )
        .await;
    }
    let resume = MigrateOptions {
        resume: true,
        ..opts.clone()
    };
    let resumed = migrate::<NextRelease>(&app.services, &resume)
        .await
        .unwrap();
    assert_eq!(resumed.stopped, None);
    assert_eq!(resumed.run, summary.run, "the same run, continued");
    assert_eq!(resumed.migrated(), n - 7);
    assert_eq!(resumed.failed().count(), 0);
    for sub in &subs {
        let t = company(&app, sub).await;
        assert_eq!(
            (
                t.schema_version.as_deref(),
                t.last_migration_error.as_deref()
            ),
            (Some(UNIQUE_ANY_CASE), None),
            "{sub}"
        );
    }
    let status = runs::status(&app.services.registry, &latest::<NextRelease>())
        .await
        .unwrap();
    assert_eq!(status.last_run.unwrap().0.state, RunState::Finished);
    assert!(status.behind.is_empty() && status.failed.is_empty());
    let again = migrate::<NextRelease>(&app.services, &resume).await;
    assert!(
        matches!(&again, Err(e) if e.to_string().contains("no stopped migrate run")),
        "{:?}",
        again.map(|s| s.results.len())
    );
    app.teardown().await;
}

async fn a_company_one_version_behind_is_served_beside_one_at_the_latest(backend: Backend) {
    let app = spawn_app(backend).await;
    for sub in ["ahead", "behind"] {
        app.create_company(sub, sub).await;
    }
    // `behind` one migration back, as a company the current wave has not
    // reached yet.
    one_version_back(&app, "behind").await;

    // One instance serves both: sign-in, the dashboard, and an invitation
    // (whose daily quota reads the index the newest migration adds).
    for sub in ["ahead", "behind"] {
        let (status, body, mut jar) = sign_in(
            &app,
            &host(sub),
            &format!("admin@{sub}.test"),
            ADMIN_PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sub}: {body}");
        assert_eq!(
            get(&app, &host(sub), &mut jar, "/").await.status(),
            200,
            "{sub}"
        );
        let (status, body) = call(
            &app,
            &host(sub),
            &mut jar,
            "invite_user",
            &[("email", "new@x.test"), ("role", "member")],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{sub}: {body}");
    }

    // `migrate` brings the one behind up, and only it.
    let summary = migrate::<TenantMigrator>(&app.services, &MigrateOptions::default())
        .await
        .unwrap();
    assert_eq!((summary.migrated(), summary.current()), (1, 1));
    assert_eq!(
        company(&app, "behind").await.schema_version,
        Some(latest_tenant_schema())
    );

    // A company whose recorded schema this binary does not know (a newer
    // release migrated it) answers 503 at once, without touching its data.
    let ahead = company(&app, "ahead").await;
    tenants::ActiveModel {
        id: Set(ahead.id),
        schema_version: Set(Some("m29991231_000009_from_a_newer_release".into())),
        ..Default::default()
    }
    .update(&app.services.registry)
    .await
    .unwrap();
    app.services.directory.invalidate("ahead");
    let res = app.get(&host("ahead"), "/login").await;
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "30");
    assert!(res.text().await.unwrap().contains("being upgraded"));
    // This binary's `migrate` fails it, saying why, and leaves the newer
    // release's record alone.
    let summary = migrate::<TenantMigrator>(&app.services, &MigrateOptions::default())
        .await
        .unwrap();
    let failed: Vec<_> = summary.failed().collect();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].1.contains("newer than this binary knows"),
        "{failed:?}"
    );
    let ahead_now = company(&app, "ahead").await;
    assert_eq!(
        (
            ahead_now.schema_version.as_deref(),
            ahead_now.last_migration_error
        ),
        (Some("m29991231_000009_from_a_newer_release"), None)
    );
    assert_eq!(app.get(&host("behind"), "/api/health").await.status(), 200);
    app.teardown().await;
}

async fn a_migration_behind_a_held_lock_fails_by_its_lock_timeout_while_the_site_answers(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_company("Locked", "locked").await;
    // A long transaction on `users`: a report reading it (PostgreSQL), a
    // writer holding the file (SQLite).
    let holder = app.tenant_db("locked").await;
    let txn = holder.begin().await.unwrap();
    let hold = match backend {
        Backend::Postgres => "SELECT count(*) FROM users",
        Backend::Sqlite => "UPDATE users SET disabled = disabled",
    };
    txn.execute_unprepared(hold).await.unwrap();

    let opts = MigrateOptions {
        guards: Guards {
            lock_timeout: Duration::from_millis(500),
            statement_timeout: Duration::from_secs(60),
        },
        ..Default::default()
    };
    let started = Instant::now();
    let migrating = {
        let (services, opts) = (app.services.clone(), opts.clone());
        tokio::spawn(async move { migrate::<AddColumnRelease>(&services, &opts).await.unwrap() })
    };
    // While the migration waits for its lock, the site answers; on
    // PostgreSQL a sign-in reads `users` behind the waiting ALTER, for at
    // most the lock timeout.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(app.get(&host("locked"), "/api/health").await.status(), 200);
    if backend == Backend::Postgres {
        let (status, body, _) =
            sign_in(&app, &host("locked"), "admin@locked.test", ADMIN_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let summary = migrating.await.unwrap();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(10),
        "failed by the lock timeout, not the statement's: {took:?}"
    );
    let failed: Vec<_> = summary.failed().map(|(s, _)| s.to_owned()).collect();
    assert_eq!(failed, ["locked"]);
    let (_, companies) = runs::status(&app.services.registry, &latest::<AddColumnRelease>())
        .await
        .unwrap()
        .last_run
        .unwrap();
    let lock_not_available = match backend {
        Backend::Postgres => "55P03",
        Backend::Sqlite => "5",
    };
    assert_eq!(
        companies[0].sqlstate.as_deref(),
        Some(lock_not_available),
        "{:?}",
        companies[0].error
    );
    txn.rollback().await.unwrap();
    holder.close().await.unwrap();

    // The transaction over, the same migration goes through.
    let summary = migrate::<AddColumnRelease>(&app.services, &opts)
        .await
        .unwrap();
    assert_eq!((summary.migrated(), summary.failed().count()), (1, 0));
    app.teardown().await;
}

async fn a_migration_over_its_statement_time_fails_by_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Slow", "slow").await;
    let opts = MigrateOptions {
        guards: Guards {
            lock_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_millis(500),
        },
        ..Default::default()
    };
    let started = Instant::now();
    let summary = migrate::<EndlessRelease>(&app.services, &opts)
        .await
        .unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(summary.failed().count(), 1);
    let (_, companies) = runs::status(&app.services.registry, &latest::<EndlessRelease>())
        .await
        .unwrap()
        .last_run
        .unwrap();
    // PostgreSQL's query_canceled; SQLite's SQLITE_INTERRUPT.
    let canceled = match backend {
        Backend::Postgres => "57014",
        Backend::Sqlite => "9",
    };
    assert_eq!(
        companies[0].sqlstate.as_deref(),
        Some(canceled),
        "{:?}",
        companies[0].error
    );
    // It stays on its version, and keeps serving.
    assert_eq!(
        company(&app, "slow").await.schema_version,
        Some(latest_tenant_schema())
    );
    assert_eq!(app.get(&host("slow"), "/api/health").await.status(), 200);
    app.teardown().await;
}

/// Bad flags, a second run and a resume with nothing stopped are refused
/// by the command before anything is touched; `--plan` and `status` say
/// what is and would be, changing nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_refuses_bad_runs_before_touching_anything() {
    let app = spawn_app(Backend::Sqlite).await;
    for sub in ["alpha", "bravo"] {
        app.create_company(sub, sub).await;
    }
    let bravo = one_version_back(&app, "bravo").await;
    let env = app.cli_env();
    let cli = |args: &'static [&'static str]| {
        let env = env.clone();
        async move {
            tokio::task::spawn_blocking(move || crate::cli::run_server(&env, args, ""))
                .await
                .unwrap()
        }
    };
    let runs_recorded = || async {
        app::ssr::entities::migration_runs::Entity::find()
            .count(&app.services.registry)
            .await
            .unwrap()
    };

    for (args, says) in [
        (
            &["migrate", "--growth", "0.5"][..],
            "--growth must be a number of at least 1",
        ),
        (
            &["migrate", "--abort-rate", "1.5"],
            "--abort-rate must be a number from 0 to 1",
        ),
        (&["migrate", "--canary", "0"], "--canary takes a number"),
        (
            &["migrate", "--canary", "alpha,nosuch"],
            "--canary names 'nosuch', which is not an active or paused company",
        ),
        (
            &["migrate", "--resume"],
            "there is no stopped migrate run to resume",
        ),
        (
            &["migrate", "--resume", "--canary", "1"],
            "cannot be used with",
        ),
    ] {
        let (ok, out, err) = cli(args).await;
        assert!(!ok, "{args:?}: {out}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
    let mut labelled = env.clone();
    labelled.push(("ENCLAVE_MIGRATION_CANARIES", "ours, not a name".into()));
    let (ok, _, err) = tokio::task::spawn_blocking(move || {
        crate::cli::run_server(&labelled, &["migrate", "--canary", "1"], "")
    })
    .await
    .unwrap();
    assert!(!ok);
    assert!(
        err.contains("ENCLAVE_MIGRATION_CANARIES: 'not a name'"),
        "{err}"
    );
    assert_eq!(runs_recorded().await, 0);
    assert_eq!(company(&app, "bravo").await, bravo, "nothing touched");

    // `--plan` prints the waves and what each would get; nothing changes.
    let (ok, out, err) = cli(&["migrate", "--plan", "--canary", "1"]).await;
    assert!(ok, "{err}");
    assert!(out.contains("wave 1 of 1 (1 company):"), "{out}");
    assert!(
        out.contains(&format!("  bravo: {}", latest_tenant_schema())),
        "{out}"
    );
    assert!(out.contains("1 company already current"), "{out}");
    let (ok, out, _) = cli(&["migrate", "status"]).await;
    assert!(ok);
    assert!(out.contains("last run: none recorded"), "{out}");
    assert!(out.contains("behind: 1\n  bravo: "), "{out}");
    assert_eq!(runs_recorded().await, 0);
    assert_eq!(company(&app, "bravo").await, bravo, "nothing touched");

    // Another process's run under way (its heartbeat fresh): refused.
    let other = runs::start(
        &app.services.registry,
        runs::NewRun {
            target: "elsewhere",
            canary: None,
            growth: 1.0,
            parallel: 1,
            abort_rate: 1.0,
        },
        &[vec![(bravo.id, "bravo".into())]],
    )
    .await
    .unwrap();
    let (ok, _, err) = cli(&["migrate", "--canary", "1"]).await;
    assert!(!ok);
    assert!(err.contains("another migrate run is under way"), "{err}");
    assert_eq!(company(&app, "bravo").await, bravo, "nothing touched");

    // It ends; a run in waves brings bravo up, and status says so.
    runs::end(&app.services.registry, other, None)
        .await
        .unwrap();
    let (ok, out, err) = cli(&["migrate", "--canary", "bravo", "--abort-rate", "0"]).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("1 migrated, 1 already current"), "{out}");
    let (ok, out, _) = cli(&["migrate", "status"]).await;
    assert!(ok);
    assert!(out.contains(" finished, "), "{out}");
    assert!(
        out.contains("(canary bravo, growth 2, abort rate 0, parallel 8)"),
        "{out}"
    );
    assert!(
        out.contains("behind: 0") && out.contains("failed: 0"),
        "{out}"
    );
    app.teardown().await;
}

release!(
    /// Releases each adding one more column to `users`: the same work on
    /// every company, each round.
    Round1 = TenantMigrator,
    "m29991231_000011_add_c1" => "ALTER TABLE users ADD COLUMN c1 TEXT",
);
release!(Round2 = Round1, "m29991231_000012_add_c2" => "ALTER TABLE users ADD COLUMN c2 TEXT");
release!(Round3 = Round2, "m29991231_000013_add_c3" => "ALTER TABLE users ADD COLUMN c3 TEXT");
release!(Round4 = Round3, "m29991231_000014_add_c4" => "ALTER TABLE users ADD COLUMN c4 TEXT");

/// `make bench-waves`: 1,000 PostgreSQL companies on a cluster of the
/// benchmark's own, one `ALTER TABLE … ADD COLUMN` a round, `--parallel 4`:
/// without waves and in waves (canary 1, growth 2), alternated, two rounds
/// each; then `migrate` with every company current.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn bench_migrate_in_waves() {
    crate::pg_cluster::with_cluster(200, |cluster| async move {
        let n: usize = std::env::var("ENCLAVE_BENCH_TENANTS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let admin = cluster.admin_url("postgres");
        let app = crate::helpers::spawn_app_with(Backend::Postgres, |s| {
            s.tenant_db_url = Some(admin.clone().into());
        })
        .await;
        let started = Instant::now();
        fleet(&app, n).await;
        let provisioning = started.elapsed();
        let plain = MigrateOptions {
            concurrency: 4,
            ..Default::default()
        };
        let waves = MigrateOptions {
            waves: Some(WaveOptions {
                canary: Canary::Smallest(1),
                growth: 2.0,
                labelled: vec![],
                abort_rate: 0.0,
            }),
            ..plain.clone()
        };
        let s = &app.services;
        let mut waves_run = 0;
        let mut took = |summary: Summary| {
            assert_eq!((summary.migrated(), summary.failed().count()), (n, 0));
            waves_run = waves_run.max(summary.waves);
            summary.elapsed.as_secs_f64()
        };
        let plain1 = took(migrate::<Round1>(s, &plain).await.unwrap());
        let waves1 = took(migrate::<Round2>(s, &waves).await.unwrap());
        let plain2 = took(migrate::<Round3>(s, &plain).await.unwrap());
        let waves2 = took(migrate::<Round4>(s, &waves).await.unwrap());
        let current = migrate::<Round4>(s, &waves).await.unwrap();
        assert_eq!(current.current(), n);
        eprintln!(
            "{n} PostgreSQL companies (own PostgreSQL 16 cluster), one ADD COLUMN a round, \
             parallel 4: provisioned in {:.1} s; without waves {plain1:.1} s and {plain2:.1} s; \
             in waves (canary 1, growth 2: {waves_run} waves) {waves1:.1} s and {waves2:.1} s; \
             waves ÷ without: {:.2}; every company current: {:.2} s",
            provisioning.as_secs_f64(),
            (waves1 + waves2) / (plain1 + plain2),
            current.elapsed.as_secs_f64(),
        );
        // The cluster goes with its databases; the registry is dropped.
        crate::helpers::drop_registry(&app.settings).await;
    })
    .await;
}
