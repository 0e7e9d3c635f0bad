//! Companies placed across PostgreSQL servers: the machine's (the first,
//! `default`, from `ENCLAVE_TENANT_DB_URL`) and a cluster of the test's own
//! (`initdb` on another port, scram for company roles).
use app::domain::Subdomain;
use app::ssr::tenancy::servers::fleet::FleetError;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, DbBackend, EntityTrait, Statement};
use secrecy::SecretString;
use std::sync::Arc;

use crate::helpers::{spawn_app, Backend};
use crate::pg_cluster::PgCluster;

/// Runs `test` with a second PostgreSQL cluster (max_connections 100),
/// stopped and removed after; a failure shows that cluster's log.
pub(crate) async fn with_second_cluster<F, Fut>(test: F)
where
    F: FnOnce(Arc<PgCluster>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    with_second_cluster_of(100, test).await
}

pub(crate) async fn with_second_cluster_of<F, Fut>(max_connections: u32, test: F)
where
    F: FnOnce(Arc<PgCluster>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    crate::pg_cluster::with_cluster(max_connections, test).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn companies_go_to_the_server_with_room_and_a_server_drains_and_leaves_empty() {
    with_second_cluster(|cluster| placement(cluster.admin_url("postgres"))).await;
}

pub(crate) async fn databases_on(server: &DatabaseConnection) -> Vec<String> {
    server
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT datname FROM pg_database WHERE datname LIKE 'tenant\\_%'",
        ))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get::<String>("", "datname").unwrap())
        .collect()
}

async fn placement(admin_url: String) {
    let app = spawn_app(Backend::Postgres).await;
    let fleet = app.services.provisioner.fleet().clone();
    let second = Database::connect(&admin_url).await.unwrap();
    let first = app.create_company("First Inc", "first").await;

    // Bad names and taken names are refused before anything is stored.
    let url = SecretString::from(admin_url.clone());
    for (name, want) in [("Bad Name", "BadName"), ("default", "Exists")] {
        let err = fleet.add(name, &url, None).await.unwrap_err();
        assert!(format!("{err:?}").starts_with(want), "{name}: {err:?}");
    }
    fleet.add("second", &url, None).await.unwrap();
    assert!(matches!(
        fleet.add("second", &url, None).await,
        Err(FleetError::Exists(_))
    ));
    // Its administrator URL is stored sealed, never as written.
    let rows = app::ssr::entities::db_servers::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].admin_url.contains("postgres"), "sealed");
    // `secret rotate` seals it under the new key, once.
    {
        use app::ssr::{
            secrets::Cipher, tenancy::request::directory::Resealed, tenancy::servers::fleet::reseal,
        };
        let old = app.settings.secret_key.clone().unwrap();
        let (new, rotating) = app.rotating_cipher();
        let reg = &app.services.registry;
        let once = Resealed {
            resealed: 1,
            current: 0,
            unreadable: 0,
        };
        assert_eq!(reseal(reg, &rotating).await.unwrap(), once);
        let again = Resealed {
            resealed: 0,
            current: 1,
            unreadable: 0,
        };
        assert_eq!(reseal(reg, &rotating).await.unwrap(), again);
        let row = app::ssr::entities::db_servers::Entity::find()
            .one(reg)
            .await
            .unwrap()
            .unwrap();
        let opened = Cipher::from_hex_key(&new)
            .unwrap()
            .decrypt(row.id, &row.admin_url);
        assert_eq!(
            secrecy::ExposeSecret::expose_secret(&opened.unwrap()),
            admin_url.as_str()
        );
        // Put back under the app's key, which the rest of the test runs on.
        let back = Cipher::from_hex_key(&old)
            .unwrap()
            .with_previous(&new)
            .unwrap();
        assert_eq!(reseal(reg, &back).await.unwrap(), once);
    }

    // The new server holds fewer companies: the next one goes there, on
    // its cluster, and is served from it.
    let acme = app.create_company("Acme Corp", "acme").await;
    assert_eq!(acme.db_server.as_deref(), Some("second"));
    assert_eq!(first.db_server.as_deref(), Some("default"));
    assert!(databases_on(&second).await.contains(&acme.db_name));
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);
    assert_eq!(
        app.get("first.localhost", "/api/health").await.status(),
        200
    );
    let port = admin_url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    let list = fleet.list().await.unwrap();
    let counts: Vec<_> = list
        .iter()
        .map(|s| (s.name.as_str(), s.companies, s.state))
        .collect();
    assert_eq!(
        counts,
        [("default", 1, "active"), ("second", 1, "active")],
        "{list:?}"
    );
    assert_eq!(list[1].address, format!("127.0.0.1:{port}"));

    // `migrate` reaches it there: made to look behind, it is brought to
    // the latest schema on the second server.
    {
        use app::ssr::entities::tenants;
        use app::ssr::tenancy::schema::migrate::{migrate_tenants, MigrateOptions, Outcome};
        use sea_orm::{ActiveModelTrait, Set};
        tenants::ActiveModel {
            id: Set(acme.id),
            schema_version: Set(None),
            ..Default::default()
        }
        .update(&app.services.registry)
        .await
        .unwrap();
        let opts = MigrateOptions {
            concurrency: 2,
            only: Some(Subdomain::parse("acme").unwrap()),
            ..Default::default()
        };
        let summary =
            migrate_tenants::<migration::TenantMigrator>(&app.services, &opts, |_| {}, |_| {})
                .await
                .unwrap();
        assert_eq!(summary.results.len(), 1);
        assert_eq!(summary.results[0].outcome, Outcome::Current);
        let row = tenants::Entity::find_by_id(acme.id)
            .one(&app.services.registry)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            row.schema_version,
            Some(app::ssr::tenancy::schema::migrate::latest_tenant_schema())
        );
    }

    // Equal: the first listed. Then draining keeps the second's company
    // but sends every new one elsewhere.
    let beta = app.create_company("Beta", "beta").await;
    assert_eq!(beta.db_server.as_deref(), Some("default"));
    fleet.drain("second").await.unwrap();
    let gamma = app.create_company("Gamma", "gamma").await;
    assert_eq!(gamma.db_server.as_deref(), Some("default"));
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);

    // Only an empty server leaves; deleting its company drops the database
    // there. The first server is not this command's to change.
    assert!(matches!(
        fleet.remove("second").await,
        Err(FleetError::NotEmpty { companies: 1, .. })
    ));
    assert!(matches!(
        fleet.remove("default").await,
        Err(FleetError::FirstServer)
    ));
    // The first server drains too; with every server draining there is
    // nowhere to put a company, and an activated one takes them again.
    fleet.drain("default").await.unwrap();
    let states: Vec<&str> = fleet
        .list()
        .await
        .unwrap()
        .iter()
        .map(|s| s.state)
        .collect();
    assert_eq!(states, ["draining", "draining"]);
    let refused = app
        .services
        .create_tenant(crate::helpers::new_tenant("Delta", "delta"))
        .await;
    assert!(refused.is_err(), "placed while every server drains");
    fleet.activate("second").await.unwrap();
    let delta = app.create_company("Delta", "delta").await;
    assert_eq!(delta.db_server.as_deref(), Some("second"));
    fleet.activate("default").await.unwrap();
    app.services
        .delete_tenant(&Subdomain::parse("delta").unwrap())
        .await
        .unwrap();
    app.services
        .delete_tenant(&Subdomain::parse("acme").unwrap())
        .await
        .unwrap();
    assert!(!databases_on(&second).await.contains(&acme.db_name));
    fleet.remove("second").await.unwrap();
    let left: Vec<String> = fleet
        .list()
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(left, ["default"]);
    assert!(matches!(
        fleet.remove("second").await,
        Err(FleetError::NoSuchServer(_))
    ));
    second.close().await.ok();
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_takes_only_its_companies_out_until_it_returns() {
    with_second_cluster(server_down).await;
}

async fn server_down(cluster: Arc<PgCluster>) {
    use crate::helpers::{call, Jar, ADMIN_PASSWORD};
    use std::time::{Duration, Instant};

    let app = spawn_app(Backend::Postgres).await;
    let fleet = app.services.provisioner.fleet().clone();
    app.create_company("Home", "home").await;
    let url = SecretString::from(cluster.admin_url("postgres"));
    fleet.add("second", &url, None).await.unwrap();
    let away = app.create_company("Away", "away").await;
    assert_eq!(away.db_server.as_deref(), Some("second"));
    for host in ["home.localhost", "away.localhost"] {
        assert_eq!(app.get(host, "/api/health").await.status(), 200, "{host}");
    }
    // `dbserver list` shows the connections open on each server, as the
    // server counts them: the pools of the two requests above.
    let mut servers = fleet.list().await.unwrap();
    fleet.count_connections(&mut servers).await;
    let open: Vec<Option<u64>> = servers.iter().map(|s| s.open_connections).collect();
    assert!(open.iter().all(|n| n.is_some_and(|n| n >= 1)), "{open:?}");
    let budget = app.services.pools.server_budget("second").unwrap();
    let metrics = app.get("localhost", "/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(&format!(
            "enclave_db_server_open_budget{{server=\"second\"}} {budget}"
        )),
        "{metrics}"
    );

    let stopping = cluster.clone();
    tokio::task::spawn_blocking(move || stopping.stop())
        .await
        .unwrap();
    // Its companies answer 503 at once, pages' server functions too (a
    // sign-in needs the company's database), not 500.
    let started = Instant::now();
    assert_eq!(app.get("away.localhost", "/api/health").await.status(), 503);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(2), "503 after {took:?}");
    let (status, body) = call(
        &app,
        "away.localhost",
        &mut Jar::default(),
        "login",
        &[("email", "admin@away.test"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(status, 503, "{body}");
    // Companies elsewhere are served as before.
    for _ in 0..20 {
        assert_eq!(app.get("home.localhost", "/api/health").await.status(), 200);
    }
    let health: serde_json::Value = app.get("localhost", "/healthz").await.json().await.unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["servers"][0]["status"], "ok", "{health}");
    assert_eq!(health["servers"][1]["name"], "second", "{health}");
    assert_eq!(health["servers"][1]["status"], "unavailable", "{health}");
    let metrics = app.get("localhost", "/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("enclave_db_server_up{server=\"second\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("enclave_db_server_companies{server=\"second\"} 1"),
        "{metrics}"
    );

    // Back, and served again without a restart.
    let starting = cluster.clone();
    tokio::task::spawn_blocking(move || starting.start_again())
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let status = app.get("away.localhost", "/api/health").await.status();
        if status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "still {status} 10 s after the server came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_server_has_an_open_budget_of_its_own() {
    with_second_cluster(budgets).await;
}

/// With an open budget of one connection per server, a held connection on
/// one server makes another company of that server wait (503 after the
/// acquire timeout), but not a company of the other server.
async fn budgets(cluster: Arc<PgCluster>) {
    use app::ssr::tenancy::RequestSite;
    use std::time::{Duration, Instant};

    let app = crate::helpers::spawn_app_with(Backend::Postgres, |s| {
        s.connection_budget = Some(1);
        s.tenant_pool_size = 1;
    })
    .await;
    let fleet = app.services.provisioner.fleet().clone();
    let url = SecretString::from(cluster.admin_url("postgres"));
    app.create_company("Home", "home").await;
    fleet.add("second", &url, None).await.unwrap();
    let away = app.create_company("Away", "away").await;
    let next = app.create_company("Next Door", "next").await;
    assert_eq!(away.db_server.as_deref(), Some("second"));
    assert_eq!(next.db_server.as_deref(), Some("default"));

    let RequestSite::Tenant(home) = app.resolve("home.localhost").await else {
        panic!("home is served")
    };
    let held = home.db().await.unwrap();
    // The other server's budget is its own: served at once.
    let started = Instant::now();
    assert_eq!(app.get("away.localhost", "/api/health").await.status(), 200);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    // The first server's one connection is held: its other company waits.
    let started = Instant::now();
    assert_eq!(app.get("next.localhost", "/api/health").await.status(), 503);
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let stats = app.services.pools.stats();
    assert_eq!((stats.budget, stats.servers), (1, 2), "{stats:?}");
    assert_eq!(stats.reserved_connections, 2, "one per server: {stats:?}");
    drop(held);
    assert_eq!(app.get("next.localhost", "/api/health").await.status(), 200);
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_added_servers_open_budget_is_derived_from_that_server() {
    with_second_cluster_of(40, derived_budget).await;
}

async fn derived_budget(cluster: Arc<PgCluster>) {
    use server::startup::{size_server_budgets, BudgetSizing};

    let app = crate::helpers::spawn_app_with(Backend::Postgres, |s| {
        s.connection_budget = None;
    })
    .await;
    let sizing = BudgetSizing::of(&app.settings);
    let first = app.services.pools.settings().budget;
    let url = SecretString::from(cluster.admin_url("postgres"));
    app.create_company("Home", "home").await;
    app.services
        .provisioner
        .fleet()
        .add("second", &url, None)
        .await
        .unwrap();
    let away = app.create_company("Away", "away").await;
    assert_eq!(away.db_server.as_deref(), Some("second"));
    // Served before it was sized: its budget is the first server's.
    for host in ["home.localhost", "away.localhost"] {
        assert_eq!(app.get(host, "/api/health").await.status(), 200);
    }
    assert_eq!(app.services.pools.server_budget("second"), Some(first));
    // Sized from its own max_connections: 40, less 3 superuser slots, less
    // the reserve of 10, less its administrator pool of 4.
    size_server_budgets(&app.services, sizing).await;
    assert_eq!(app.services.pools.server_budget("second"), Some(23));
    assert_eq!(app.services.pools.server_budget("default"), Some(first));
    // Made smaller while one of its pools was open: that pool still counts
    // (one pool on each server, each reserving its size).
    let stats = app.services.pools.stats();
    let per_pool = app.services.pools.settings().per_tenant;
    assert_eq!(stats.reserved_connections, 2 * per_pool, "{stats:?}");
    assert_eq!(app.get("away.localhost", "/api/health").await.status(), 200);

    // With ENCLAVE_CONNECTION_BUDGET set, every server keeps that one:
    // sizing leaves them alone.
    let fixed = BudgetSizing::of(&{
        let mut s = app.settings.clone();
        s.connection_budget = Some(7);
        s
    });
    size_server_budgets(&app.services, fixed).await;
    assert_eq!(app.services.pools.server_budget("second"), Some(23));
    app.teardown().await;
}
