//! One company can never stop another: a company whose database is stuck
//! (a table locked, a writer holding its file) and whose pages are flooded
//! leaves the others served, and answers quickly itself.
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

use reqwest::{header, StatusCode};
use sea_orm::{
    sqlx::{self, Connection},
    ConnectionTrait, DatabaseTransaction, TransactionTrait,
};
use secrecy::ExposeSecret;

use crate::helpers::{sign_in, spawn_app_with, Backend, Jar, TestApp, ADMIN_PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    a_stuck_and_flooded_company_does_not_stop_the_other_nine,
    a_companys_requests_past_its_queue_are_refused_at_once,
);

/// A company role's limits as PostgreSQL holds them: its connection
/// limit, and its settings (`statement_timeout=…`).
async fn role_limits(role: &str) -> (i32, Vec<String>) {
    let admin = sea_orm::Database::connect(crate::helpers::PG_ADMIN_URL)
        .await
        .unwrap();
    let row = admin
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            sea_orm::DbBackend::Postgres,
            "SELECT r.rolconnlimit AS n, coalesce(s.setconfig, '{}') AS config \
             FROM pg_roles r LEFT JOIN pg_db_role_setting s ON s.setrole = r.oid AND s.setdatabase = 0 \
             WHERE r.rolname = $1",
            [role.into()],
        ))
        .await
        .unwrap()
        .expect("the company's role exists");
    admin.close().await.ok();
    (
        row.try_get("", "n").unwrap(),
        row.try_get("", "config").unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_companys_role_carries_its_limits_and_migrate_sets_new_ones() {
    use app::ssr::tenancy::schema::migrate::{migrate_tenants, MigrateOptions};
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.tenant_statement_timeout_ms = 1_500;
        s.tenant_idle_in_transaction_ms = 4_000;
        s.tenant_connection_limit = 7;
    })
    .await;
    let company = app.create_company("Limited", "limited").await;
    let role = company.db_name.clone();
    let (n, config) = role_limits(&role).await;
    assert_eq!(n, 7);
    assert!(
        config.contains(&"statement_timeout=1500".to_owned()),
        "{config:?}"
    );
    assert!(
        config.contains(&"idle_in_transaction_session_timeout=4000".to_owned()),
        "{config:?}"
    );

    // The company's own statements are held to it.
    let db = app.tenant_db("limited").await;
    let e = db
        .execute_unprepared("SELECT pg_sleep(3)")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("statement timeout"), "{e}");
    db.close().await.ok();

    // A company role of someone else on the same server (another
    // installation's, another test's), which may be dropped at any moment:
    // `migrate` leaves it alone.
    let stranger = format!("tenant_{}", uuid::Uuid::new_v4().simple());
    crate::helpers::pg_admin(&format!("CREATE ROLE \"{stranger}\" NOLOGIN")).await;

    // New settings reach the existing role with `migrate`.
    let mut settings = app.settings.clone();
    settings.tenant_statement_timeout_ms = 2_500;
    settings.tenant_connection_limit = 9;
    let services = server::startup::build_services(&settings).await.unwrap();
    let opts = MigrateOptions {
        concurrency: 2,
        only: None,
        ..Default::default()
    };
    migrate_tenants::<migration::TenantMigrator>(&services, &opts, |_| {}, |_| {})
        .await
        .unwrap();
    let (n, config) = role_limits(&role).await;
    assert_eq!(n, 9);
    assert!(
        config.contains(&"statement_timeout=2500".to_owned()),
        "{config:?}"
    );
    let (n, config) = role_limits(&stranger).await;
    assert_eq!((n, config), (-1, vec![]), "another's role was changed");
    // A role that has them already is not altered again.
    let server = services.provisioner.fleet().server(None).await.unwrap();
    assert_eq!(server.apply_limits([company.id]).await.unwrap(), 0);
    crate::helpers::pg_admin(&format!("DROP ROLE \"{stranger}\"")).await;
    app.teardown().await;
}

/// What keeps a company's database from answering, held until dropped.
enum Stuck {
    /// PostgreSQL: its `users` table locked by a transaction.
    Pg(DatabaseTransaction),
    /// SQLite: another connection holding the company's file exclusively.
    Lite(sqlx::SqliteConnection),
}

async fn get_stuck(app: &TestApp, backend: Backend, sub: &str) -> Stuck {
    match backend {
        Backend::Postgres => {
            let db = app.tenant_db(sub).await;
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
                .await
                .unwrap();
            Stuck::Pg(txn)
        }
        Backend::Sqlite => {
            let url = app.tenant_db_url(sub).await;
            let mut c = sqlx::SqliteConnection::connect(url.expose_secret())
                .await
                .unwrap();
            sqlx::raw_sql(
                "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE; UPDATE users SET email = email",
            )
            .execute(&mut c)
            .await
            .unwrap();
            Stuck::Lite(c)
        }
    }
}

impl Stuck {
    async fn release(self) {
        match self {
            Stuck::Pg(txn) => txn.rollback().await.unwrap(),
            Stuck::Lite(mut c) => {
                sqlx::raw_sql("ROLLBACK").execute(&mut c).await.unwrap();
                c.close().await.unwrap();
            }
        }
    }
}

/// GETs `path` on `host` with `jar`'s session: status, `Retry-After`, time.
async fn timed_get(
    app: &TestApp,
    host: &str,
    jar: &Jar,
    path: &str,
) -> (StatusCode, Option<String>, Duration) {
    let started = Instant::now();
    let mut req = app
        .client
        .get(format!("{}{path}", app.address))
        .header(header::HOST, host)
        .header(header::ACCEPT, "text/html");
    if let Some(c) = &jar.0 {
        req = req.header(header::COOKIE, c);
    }
    let res = req.send().await.unwrap();
    let retry = res
        .headers()
        .get(header::RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    let status = res.status();
    let _ = res.bytes().await;
    (status, retry, started.elapsed())
}

/// `n` signed-in dashboard requests of `host` at once, each answered.
async fn flood(
    app: &Arc<TestApp>,
    host: &str,
    jar: &Jar,
    n: usize,
) -> Vec<tokio::task::JoinHandle<(StatusCode, Option<String>, Duration)>> {
    (0..n)
        .map(|_| {
            let (app, host, jar) = (app.clone(), host.to_owned(), jar.clone());
            tokio::spawn(async move { timed_get(&app, &host, &jar, "/").await })
        })
        .collect()
}

async fn a_stuck_and_flooded_company_does_not_stop_the_other_nine(backend: Backend) {
    // The process's budgets as they are in production: 16 busy permits, one
    // connection per company.
    let app = Arc::new(
        spawn_app_with(backend, |s| {
            s.busy_budget = 16;
            s.tenant_pool_size = 1;
            s.connection_budget = Some(24);
            // The request holding the stuck company's connection ends too.
            s.tenant_statement_timeout_ms = 1_000;
        })
        .await,
    );
    let subs: Vec<String> = (0..10).map(|i| format!("iso-{i}")).collect();
    for sub in &subs {
        app.create_company("Isolated", sub).await;
    }
    let stuck_host = "iso-0.localhost";
    let (status, _, jar) = sign_in(&app, stuck_host, "admin@iso-0.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        timed_get(&app, stuck_host, &jar, "/").await.0,
        StatusCode::OK
    );

    let stuck = get_stuck(&app, backend, "iso-0").await;
    let flooded = flood(&app, stuck_host, &jar, 48).await;
    // Let the flood fill every line it can before the others ask.
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The other nine, each asked in a loop for 3 s while the flood waits.
    let quiet: Vec<_> = subs[1..]
        .iter()
        .map(|sub| {
            let (app, host) = (app.clone(), format!("{sub}.localhost"));
            tokio::spawn(async move {
                let until = Instant::now() + Duration::from_secs(3);
                let mut answers = Vec::new();
                while Instant::now() < until {
                    let (status, _, took) =
                        timed_get(&app, &host, &Jar::default(), "/api/health").await;
                    answers.push((status, took));
                }
                answers
            })
        })
        .collect();
    for q in quiet {
        let answers = q.await.unwrap();
        let failed: Vec<_> = answers
            .iter()
            .filter(|(s, _)| *s != StatusCode::OK)
            .collect();
        assert!(failed.is_empty(), "a quiet company was refused: {failed:?}");
        // Alone, each serves hundreds in 3 s; stopped, it would serve none.
        assert!(
            answers.len() >= 20,
            "a quiet company served only {}",
            answers.len()
        );
    }

    // The stuck one answered every flooded request itself, quickly, and
    // with when to come back: those waiting for its connection after 2 s,
    // the one holding it when its statement ran out of time.
    for f in flooded {
        let (status, retry, took) = f.await.unwrap();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(retry.as_deref(), Some("1"));
        assert!(took < Duration::from_secs(4), "a refusal took {took:?}");
    }

    // It recovers when the lock goes.
    stuck.release().await;
    let started = Instant::now();
    loop {
        if timed_get(&app, stuck_host, &jar, "/").await.0 == StatusCode::OK {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "the stuck company did not recover"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Arc::into_inner(app).unwrap().teardown().await;
}

async fn a_companys_requests_past_its_queue_are_refused_at_once(backend: Backend) {
    let app = Arc::new(
        spawn_app_with(backend, |s| {
            s.tenant_pool_size = 1;
            s.tenant_queue = 4;
            s.tenant_statement_timeout_ms = 1_000;
        })
        .await,
    );
    app.create_company("Queued", "queued").await;
    let host = "queued.localhost";
    let (status, _, jar) = sign_in(&app, host, "admin@queued.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let stuck = get_stuck(&app, backend, "queued").await;

    let flooded = flood(&app, host, &jar, 24).await;
    let mut at_once = 0;
    for f in flooded {
        let (status, retry, took) = f.await.unwrap();
        if status == StatusCode::SERVICE_UNAVAILABLE && took < Duration::from_millis(1000) {
            assert_eq!(retry.as_deref(), Some("1"));
            // Paced: a client asking again at once asks a few times a
            // second, not thousands.
            assert!(took >= server::site::REFUSAL_PACE, "refused in {took:?}");
            at_once += 1;
        }
    }
    // One uses the connection and four wait for it; the other 19 are
    // refused without waiting for the connection.
    assert!(at_once >= 19, "{at_once} refused at once");
    stuck.release().await;
    Arc::into_inner(app).unwrap().teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_past_its_request_rate_gets_429_and_the_others_do_not() {
    let app = spawn_app_with(Backend::Sqlite, |s| s.company_requests_per_second = 5).await;
    app.create_company("Busy", "busy").await;
    app.create_company("Calm", "calm").await;
    let mut statuses = Vec::new();
    for _ in 0..40 {
        let res = app.get("busy.localhost", "/api/health").await;
        let retry = res.headers().get(header::RETRY_AFTER).cloned();
        statuses.push((res.status(), retry));
    }
    let limited: Vec<_> = statuses
        .iter()
        .filter(|(s, _)| *s == StatusCode::TOO_MANY_REQUESTS)
        .collect();
    // 5 a second, in bursts of 5: most of 40 quick requests are refused.
    assert!(limited.len() >= 15, "{statuses:?}");
    assert!(limited.iter().all(|(_, r)| r.is_some()), "{statuses:?}");
    assert_eq!(
        app.get("calm.localhost", "/api/health").await.status(),
        StatusCode::OK
    );
    app.teardown().await;
}

/// One run of the isolation scenario, for `make bench-isolation`: the nine
/// quiet companies' `GET /api/health` alone for 10 s, then again while the
/// tenth has its `users` table locked and 48 signed-in dashboard requests
/// in flight at all times. Prints their throughput, errors and p99 in both,
/// and what the stuck company answered.
#[tokio::test(flavor = "multi_thread")]
#[ignore = "benchmark: make bench-isolation"]
async fn bench_isolation_of_nine_quiet_companies_beside_a_stuck_flooded_one() {
    const SECS: u64 = 10;
    const PER_COMPANY: usize = 4;
    let app = Arc::new(
        spawn_app_with(Backend::Postgres, |s| {
            // As `serve` runs by default, on a small budget.
            s.busy_budget = 16;
            s.tenant_pool_size = 1;
            s.connection_budget = Some(24);
        })
        .await,
    );
    let subs: Vec<String> = (0..10).map(|i| format!("bench-iso-{i}")).collect();
    for sub in &subs {
        app.create_company("Bench", sub).await;
    }
    let quiet = |app: Arc<TestApp>| {
        let subs = subs[1..].to_vec();
        async move {
            let until = Instant::now() + Duration::from_secs(SECS);
            let loops: Vec<_> = subs
                .iter()
                .flat_map(|sub| std::iter::repeat_n(format!("{sub}.localhost"), PER_COMPANY))
                .map(|host| {
                    let app = app.clone();
                    tokio::spawn(async move {
                        let mut out = Vec::new();
                        while Instant::now() < until {
                            let (s, _, took) =
                                timed_get(&app, &host, &Jar::default(), "/api/health").await;
                            out.push((s, took));
                        }
                        out
                    })
                })
                .collect();
            let mut all = Vec::new();
            for l in loops {
                all.extend(l.await.unwrap());
            }
            all
        }
    };
    let summary = |all: &[(StatusCode, Duration)]| {
        let mut times: Vec<Duration> = all.iter().map(|(_, t)| *t).collect();
        times.sort();
        let p99 = times[(times.len() * 99 / 100).min(times.len() - 1)];
        let errors = all.iter().filter(|(s, _)| *s != StatusCode::OK).count();
        (all.len() as f64 / SECS as f64, errors, p99)
    };
    // Warm every pool, then the quiet companies alone.
    for sub in &subs {
        timed_get(
            &app,
            &format!("{sub}.localhost"),
            &Jar::default(),
            "/api/health",
        )
        .await;
    }
    let (alone_rps, alone_errors, alone_p99) = summary(&quiet(app.clone()).await);

    let stuck_host = "bench-iso-0.localhost";
    let (_, _, jar) = sign_in(&app, stuck_host, "admin@bench-iso-0.test", ADMIN_PASSWORD).await;
    let stuck = get_stuck(&app, Backend::Postgres, "bench-iso-0").await;
    let flooding = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let flood: Vec<_> = (0..48)
        .map(|_| {
            let (app, jar, flooding) = (app.clone(), jar.clone(), flooding.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                while flooding.load(std::sync::atomic::Ordering::Relaxed) {
                    let (s, _, took) = timed_get(&app, stuck_host, &jar, "/").await;
                    out.push((s, took));
                }
                out
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (busy_rps, busy_errors, busy_p99) = summary(&quiet(app.clone()).await);
    flooding.store(false, std::sync::atomic::Ordering::Relaxed);
    let mut flooded = Vec::new();
    for f in flood {
        flooded.extend(f.await.unwrap());
    }
    stuck.release().await;
    let refused = flooded
        .iter()
        .filter(|(s, _)| *s == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    let slowest = flooded.iter().map(|(_, t)| *t).max().unwrap_or_default();

    println!("\n| nine quiet companies, {PER_COMPANY} clients each, {SECS} s | alone | beside the stuck one | ratio | target |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| requests/s | {alone_rps:.0} | {busy_rps:.0} | {:.2} | ≥ 0.8 |",
        busy_rps / alone_rps
    );
    println!("| errors | {alone_errors} | {busy_errors} | | 0 |");
    println!(
        "| p99 | {:.1} ms | {:.1} ms | {:.2} | ≤ 2 |",
        alone_p99.as_secs_f64() * 1e3,
        busy_p99.as_secs_f64() * 1e3,
        busy_p99.as_secs_f64() / alone_p99.as_secs_f64()
    );
    println!(
        "\nThe stuck company: {} answers, {refused} of them 503, the slowest in {:.2} s.",
        flooded.len(),
        slowest.as_secs_f64()
    );
    Arc::into_inner(app).unwrap().teardown().await;
}
