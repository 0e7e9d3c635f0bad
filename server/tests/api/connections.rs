//! Tenant connections: the budget, timeouts, isolation between tenants, and
//! a registry that goes away and comes back.
use std::{
    sync::{
        atomic::{AtomicBool, AtomicI64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use app::ssr::tenancy::RequestSite;
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use secrecy::{ExposeSecret, SecretString};
use tokio::{net::TcpListener, task::JoinHandle};

use crate::helpers::{spawn_app_with, Backend, PG_ADMIN_URL};
use crate::on_both_backends;

on_both_backends!(
    three_hundred_tenants_hit_at_once_stay_inside_the_budget,
    a_request_that_cannot_get_a_connection_gets_503_in_about_two_seconds,
    the_busy_budget_bounds_connections_in_use_whatever_the_open_budget,
    companies_asked_for_often_keep_their_connections_through_a_pass_over_the_tail,
    the_open_budget_is_derived_from_the_server,
);

async fn three_hundred_tenants_hit_at_once_stay_inside_the_budget(backend: Backend) {
    const TENANTS: usize = 300;
    // Below the default (64) so this test and its neighbours fit in
    // PostgreSQL's 100 connections.
    const BUDGET: u32 = 32;
    // What this test checks is the budget under a burst. A debug build on
    // 2 cores, sharing them with the other tests, cannot always clear 300
    // fresh connections inside the default 2 s wait, so the wait is longer
    // here; the 2 s answer itself is tested below.
    let app = spawn_app_with(backend, |s| {
        s.connection_budget = Some(BUDGET);
        s.tenant_acquire_timeout_ms = 15_000;
    })
    .await;

    // Provision four at a time.
    let subs: Vec<String> = (0..TENANTS).map(|i| format!("load-{i:03}")).collect();
    let mut names = Vec::new();
    for chunk in subs.chunks(4) {
        let made = chunk.iter().map(|s| {
            let p = app.services.provisioner.clone();
            let s = s.clone();
            tokio::spawn(async move {
                p.provision(crate::helpers::new_tenant("Load", &s))
                    .await
                    .unwrap()
            })
        });
        for h in made.collect::<Vec<_>>() {
            names.push(h.await.unwrap().db_name);
        }
    }

    // Sample the server's view of connections to these tenants' databases.
    let peak = Arc::new(AtomicI64::new(0));
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = (backend == Backend::Postgres).then(|| {
        let (peak, sampling, names) = (peak.clone(), sampling.clone(), names.clone());
        tokio::spawn(async move {
            let admin = Database::connect(PG_ADMIN_URL).await.unwrap();
            while sampling.load(Ordering::SeqCst) {
                let row = admin
                    .query_one_raw(Statement::from_sql_and_values(
                        DbBackend::Postgres,
                        "SELECT count(*) AS n FROM pg_stat_activity WHERE datname = ANY($1)",
                        [names.clone().into()],
                    ))
                    .await
                    .unwrap()
                    .unwrap();
                peak.fetch_max(row.try_get::<i64>("", "n").unwrap(), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            admin.close().await.ok();
        })
    });

    // What is tested here is the pools. Three hundred companies no lookup
    // has seen yet would also queue for the directory's four registry
    // lookups, where a request waits at most 2 s for its turn (the bound on
    // floods of unknown hosts) while the pools here wait 15 s: once, with
    // a benchmark creating companies beside the suite, 64 of 300 answered
    // 503. So the directory knows them first; an entry past its cache
    // time is then kept by one read of the directory version.
    for sub in &subs {
        app.services
            .directory
            .lookup(&app::domain::Subdomain::parse(sub).unwrap())
            .await
            .unwrap()
            .expect("a company");
    }

    // Every tenant at once; then again, so pools are evicted and reopened.
    let started = Instant::now();
    let mut statuses = Vec::new();
    for round in 1..=2 {
        let round_started = Instant::now();
        let requests = subs.iter().map(|sub| {
            let (client, url, host) = (
                app.client.clone(),
                format!("{}/api/health", app.address),
                format!("{sub}.localhost"),
            );
            tokio::spawn(async move {
                let started = Instant::now();
                let res = client.get(url).header("host", host).send().await.unwrap();
                let status = res.status().as_u16();
                if status != 200 {
                    eprintln!(
                        "{status} after {:?}: {}",
                        started.elapsed(),
                        res.text().await.unwrap_or_default()
                    );
                }
                status
            })
        });
        for h in requests.collect::<Vec<_>>() {
            statuses.push(h.await.unwrap());
        }
        eprintln!(
            "{backend:?}: round {round}: {TENANTS} concurrent requests in {:?}",
            round_started.elapsed()
        );
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::SeqCst);
    if let Some(s) = sampler {
        s.await.unwrap();
    }

    let errors = statuses.iter().filter(|s| **s != 200).count();
    assert_eq!(
        errors,
        0,
        "non-200 answers: {:?}",
        statuses.iter().filter(|s| **s != 200).collect::<Vec<_>>()
    );
    let stats = app.services.pools.stats();
    assert!(stats.reserved_connections <= BUDGET, "{stats:?}");
    let peak = peak.load(Ordering::SeqCst);
    if backend == Backend::Postgres {
        assert!(peak > 0, "the sampler saw the load");
        assert!(
            peak <= BUDGET as i64,
            "peak {peak} tenant connections > budget {BUDGET}"
        );
    }
    eprintln!(
        "{backend:?}: {} requests over {TENANTS} tenants in {elapsed:?}, peak tenant connections {peak}, budget {BUDGET}",
        statuses.len()
    );
    app.teardown().await;
}

async fn a_request_that_cannot_get_a_connection_gets_503_in_about_two_seconds(backend: Backend) {
    // Room for one tenant pool only.
    let app = spawn_app_with(backend, |s| {
        s.connection_budget = Some(2);
        s.tenant_pool_size = 2;
    })
    .await;
    a_held_connection_makes_another_company_wait_2_s(&app).await;
    app.teardown().await;
}

/// Globex's health check waits its 2 s for a connection, then gets 503.
async fn globex_waits_2_s_then_gets_503(app: &crate::helpers::TestApp) {
    let started = Instant::now();
    let res = app.get("globex.localhost", "/api/health").await;
    let waited = started.elapsed();
    assert_eq!(res.status(), 503);
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(4),
        "{waited:?}"
    );
}

/// Holds a lease on acme's database while globex is asked for: globex
/// answers 503 after about 2 s, then 200 once acme's lease is dropped.
async fn a_held_connection_makes_another_company_wait_2_s(app: &crate::helpers::TestApp) {
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let RequestSite::Tenant(acme) = app.resolve("acme.localhost").await else {
        panic!("acme is served")
    };
    let held = acme.db().await.unwrap();
    globex_waits_2_s_then_gets_503(app).await;

    // Once acme's request ends, globex is served.
    drop(held);
    assert_eq!(
        app.get("globex.localhost", "/api/health").await.status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_role_cannot_connect_to_another_tenants_database() {
    let app = spawn_app_with(Backend::Postgres, |_| {}).await;
    let a = app.create_company("Acme Corp", "acme").await;
    let b = app.create_company("Globex", "globex").await;
    let own = app.tenant_db_url("acme").await;
    let own_db = Database::connect(own.expose_secret())
        .await
        .expect("a tenant reaches its own database");
    own_db
        .execute_unprepared("CREATE TABLE notes (body text)")
        .await
        .expect("and owns its schema");
    own_db.close().await.ok();

    let foreign = SecretString::from(
        own.expose_secret()
            .replace(&a.db_name, &b.db_name)
            .replacen(&format!("{}:", b.db_name), &format!("{}:", a.db_name), 1),
    );
    assert!(foreign.expose_secret().contains(&format!("/{}", b.db_name)));
    let err = Database::connect(foreign.expose_secret())
        .await
        .expect_err("must be refused");
    assert!(err.to_string().contains("permission denied"), "{err}");
    app.teardown().await;
}

/// A TCP forwarder to PostgreSQL that can be cut and restored.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    links: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let links: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (up2, links2) = (up.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !up2.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                links2.lock().unwrap().push(tokio::spawn(async move {
                    if let Ok(mut upstream) = tokio::net::TcpStream::connect("127.0.0.1:5432").await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut upstream).await;
                    }
                }));
            }
        });
        Self { port, up, links }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.links.lock().unwrap().drain(..).for_each(|l| l.abort());
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_registry_is_reported_answers_the_unknown_503_quickly_and_recovers_by_itself(
) {
    let proxy = Proxy::start().await;
    let app = spawn_app_with(Backend::Postgres, |s| {
        let direct = s.registry_url.as_ref().unwrap().expose_secret().to_owned();
        s.registry_url = Some(SecretString::from(
            direct.replace(":5432/", &format!(":{}/", proxy.port)),
        ));
    })
    .await;
    app.create_company("Acme Corp", "acme").await;
    assert_eq!(app.get("localhost", "/healthz").await.status(), 200);

    proxy.cut();
    for (host, path) in [
        ("localhost", "/healthz"),
        ("globex.localhost", "/"),
        ("localhost", "/"),
    ] {
        let started = Instant::now();
        let res = app.get(host, path).await;
        let status = res.status();
        let waited = started.elapsed();
        if path == "/healthz" {
            // Reported, without taking the instance out of a balancer.
            assert_eq!(status, 200, "{host}{path}");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["registry"], "unavailable", "{body}");
            assert_eq!(body["status"], "degraded", "{body}");
        } else if host.starts_with("globex") {
            assert_eq!(status, 503, "{host}{path}");
        }
        assert!(
            waited < Duration::from_millis(2500),
            "{host}{path} took {waited:?}"
        );
    }

    proxy.restore();
    let started = Instant::now();
    loop {
        let body: serde_json::Value = app.get("localhost", "/healthz").await.json().await.unwrap();
        if body["registry"] == "ok" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "registry did not recover"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    app.teardown().await;
}

async fn the_busy_budget_bounds_connections_in_use_whatever_the_open_budget(backend: Backend) {
    // Room to keep 8 pools open, but one connection in use at a time.
    let app = spawn_app_with(backend, |s| {
        s.connection_budget = Some(8);
        s.busy_budget = 1;
    })
    .await;
    assert_eq!(app.services.pools.stats().busy_budget, 1);
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let RequestSite::Tenant(acme) = app.resolve("acme.localhost").await else {
        panic!("acme is served")
    };
    // A lease alone uses no connection: globex is served beside it.
    let lease = acme.db().await.unwrap();
    assert_eq!(
        app.get("globex.localhost", "/api/health").await.status(),
        200
    );
    // A transaction uses acme's connection, and the one busy permit.
    let txn = sea_orm::TransactionTrait::begin(lease.conn())
        .await
        .unwrap();
    globex_waits_2_s_then_gets_503(&app).await;
    drop(txn);
    assert_eq!(
        app.get("globex.localhost", "/api/health").await.status(),
        200
    );
    assert!(
        app.services.pools.stats().cached_pools >= 2,
        "both stay open"
    );
    drop(lease);
    app.teardown().await;
}

async fn companies_asked_for_often_keep_their_connections_through_a_pass_over_the_tail(
    backend: Backend,
) {
    // Three pools of one connection; two busy companies and five asked for
    // once. Least-recently-used would close both busy ones during the pass.
    let app = spawn_app_with(backend, |s| {
        s.connection_budget = Some(3);
        s.tenant_pool_size = 1;
    })
    .await;
    let subs = [
        "hot-a", "hot-b", "tail-1", "tail-2", "tail-3", "tail-4", "tail-5",
    ];
    for sub in subs {
        app.create_company("Company", sub).await;
    }
    let health = |sub: &str| {
        let host = format!("{sub}.localhost");
        let app = &app;
        async move { app.get(&host, "/api/health").await }
    };
    for _ in 0..5 {
        for hot in ["hot-a", "hot-b"] {
            assert_eq!(health(hot).await.status(), 200);
        }
    }
    for tail in &subs[2..] {
        assert_eq!(health(tail).await.status(), 200);
    }
    let counters = app.services.metrics.pool_counters();
    let (hits, misses) = (counters.hits.get(), counters.misses.get());
    for hot in ["hot-a", "hot-b"] {
        assert_eq!(health(hot).await.status(), 200);
    }
    assert_eq!(
        (counters.hits.get() - hits, counters.misses.get() - misses),
        (2, 0),
        "both busy companies were still open"
    );
    // Every tail company after the first made room by closing another
    // tail company's pool.
    assert_eq!(counters.evictions.get(), 4);
    assert!(app.services.pools.stats().reserved_connections <= 3);
    app.teardown().await;
}

async fn the_open_budget_is_derived_from_the_server(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.connection_budget = None;
        s.instances = 2;
        s.connection_reserve = 7;
    })
    .await;
    let budget = app.services.pools.stats().budget;
    match backend {
        Backend::Postgres => {
            let admin = Database::connect(PG_ADMIN_URL).await.unwrap();
            let row = admin
                .query_one_raw(Statement::from_string(
                    DbBackend::Postgres,
                    "SELECT current_setting('max_connections')::int AS max, \
                     current_setting('superuser_reserved_connections')::int AS reserved",
                ))
                .await
                .unwrap()
                .unwrap();
            let max: i32 = row.try_get("", "max").unwrap();
            let reserved: i32 = row.try_get("", "reserved").unwrap();
            // Half of what is left after the reserves, minus this process's
            // registry (16) and administrator (4) pools.
            assert_eq!(budget as i32, (max - reserved - 7) / 2 - 20);
            admin.close().await.ok();
        }
        Backend::Sqlite => {
            // The open-file limit was raised to the hard limit: one file
            // per open company, less 1,024 for the rest and one journal per
            // busy connection (64), at most 20,000.
            let (soft, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).unwrap();
            assert_eq!(soft, hard, "the soft limit was raised");
            assert_eq!(
                u64::from(budget),
                (soft - 1024 - 64).clamp(1, 20_000),
                "soft limit {soft}"
            );
        }
    }
    app.teardown().await;
}

on_both_backends!(
    a_companys_statements_keep_its_connection_out_of_the_pool,
    a_transaction_gets_the_kept_connection_and_rolls_back_when_dropped,
);

async fn a_companys_statements_keep_its_connection_out_of_the_pool(backend: Backend) {
    let app = spawn_app_with(backend, |s| s.tenant_pool_size = 1).await;
    let acme = app.create_company("Acme Corp", "acme").await;
    for _ in 0..20 {
        assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    }
    // One connection served the twenty requests and waits, idle, in acme's
    // slot rather than in sqlx's pool, which would check it on every return.
    let stats = app.services.pools.stats();
    assert_eq!(stats.open_connections, 1, "{stats:?}");
    assert_eq!(stats.kept_out_of_pool, 1, "{stats:?}");
    assert_eq!(stats.connections_in_use, 0, "{stats:?}");

    // Pausing closes it: a pool with a connection kept out of it can close.
    let started = Instant::now();
    app.services.pools.forget(acme.id).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(app.services.pools.stats().open_connections, 0);
    app.teardown().await;
}

async fn a_transaction_gets_the_kept_connection_and_rolls_back_when_dropped(backend: Backend) {
    use sea_orm::{TransactionSession, TransactionTrait};
    let app = spawn_app_with(backend, |s| {
        s.tenant_pool_size = 1;
        s.tenant_acquire_timeout_ms = 500;
    })
    .await;
    app.create_company("Acme Corp", "acme").await;
    let RequestSite::Tenant(acme) = app.resolve("acme.localhost").await else {
        panic!("acme is served")
    };
    let db = acme.db().await.unwrap();
    let conn = db.conn();
    let db_backend = match backend {
        Backend::Postgres => DbBackend::Postgres,
        Backend::Sqlite => DbBackend::Sqlite,
    };
    let count = |sql: &'static str| async move {
        conn.query_one_raw(Statement::from_string(db_backend, sql))
            .await
            .unwrap()
            .unwrap()
            .try_get_by_index::<i64>(0)
            .unwrap()
    };
    // A temporary table lives on one connection only: the one the pool of
    // one connection has, kept by the slot after this statement.
    conn.execute_unprepared("CREATE TEMPORARY TABLE probe (n integer)")
        .await
        .unwrap();

    // A transaction finds that connection at once, not after the timeout.
    let started = Instant::now();
    let txn = conn.begin().await.unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    txn.execute_unprepared("INSERT INTO probe VALUES (1)")
        .await
        .unwrap();
    // While it is open, the company's only connection is its: a statement
    // of another request waits, then fails, instead of hanging. (Another
    // request: this one's own waits share one budget, and a wait that used
    // it all would leave none for the statements below.)
    let RequestSite::Tenant(other) = app.resolve("acme.localhost").await else {
        panic!("acme is served")
    };
    let other = other.db().await.unwrap();
    let outside = other.conn().execute_unprepared("SELECT 1").await;
    assert!(outside.is_err(), "{outside:?}");
    drop(other);
    // Dropped uncommitted: rolled back before the connection serves again.
    drop(txn);
    assert_eq!(count("SELECT count(*) FROM probe").await, 0);

    let txn = conn.begin().await.unwrap();
    txn.execute_unprepared("INSERT INTO probe VALUES (2)")
        .await
        .unwrap();
    txn.commit().await.unwrap();
    assert_eq!(count("SELECT count(*) FROM probe").await, 1);
    drop(db);
    app.teardown().await;
}

/// A statement cancelled midway, and a connection the server ended: the
/// next statement gets its own answer on a working connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_statement_or_an_ended_session_does_not_reach_the_next_statement() {
    let app = spawn_app_with(Backend::Postgres, |s| s.tenant_pool_size = 1).await;
    app.create_company("Acme Corp", "acme").await;
    let RequestSite::Tenant(acme) = app.resolve("acme.localhost").await else {
        panic!("acme is served")
    };
    let db = acme.db().await.unwrap();
    let conn = db.conn();
    let answer = |sql: &'static str| async move {
        conn.query_one_raw(Statement::from_string(DbBackend::Postgres, sql))
            .await
            .map(|row| row.unwrap().try_get_by_index::<i32>(0).unwrap())
    };
    assert_eq!(answer("SELECT 1").await.unwrap(), 1);

    let cancelled = tokio::time::timeout(
        Duration::from_millis(200),
        conn.execute_unprepared("SELECT pg_sleep(1)"),
    )
    .await;
    assert!(cancelled.is_err(), "the sleep was cut short");
    assert_eq!(answer("SELECT 42").await.unwrap(), 42);

    let pid = answer("SELECT pg_backend_pid()").await.unwrap();
    let admin = Database::connect(PG_ADMIN_URL).await.unwrap();
    admin
        .execute_unprepared(&format!("SELECT pg_terminate_backend({pid}, 5000)"))
        .await
        .unwrap();
    // The kept connection learns it was ended on its next statement, which
    // fails; it is then closed, not kept, and the one after gets a new one.
    assert!(answer("SELECT 7").await.is_err());
    assert_eq!(answer("SELECT 8").await.unwrap(), 8);
    let new_pid = answer("SELECT pg_backend_pid()").await.unwrap();
    assert_ne!(new_pid, pid);
    assert_eq!(app.services.pools.stats().open_connections, 1);
    admin.close().await.ok();
    drop(db);
    app.teardown().await;
}
