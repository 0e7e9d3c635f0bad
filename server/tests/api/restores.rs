//! Backups and restores against the real thing: a PostgreSQL 15 cluster
//! of the test's own, archiving into a pgBackRest repository in a
//! temporary directory, set up by `backup setup --write`; and SQLite
//! snapshots. A company is put back to a recorded moment in place and
//! beside, undone, refused outside what the backups cover, and killed at
//! every step, while another company on the same server is written to
//! throughout and loses nothing.
use std::path::PathBuf;
use std::sync::{
    atomic::{AtomicBool, AtomicU64, Ordering},
    Arc,
};
use std::time::Duration;

use app::domain::Subdomain;
use app::ssr::entities::{
    tenant_restores::{self, RestoreOutcome, RestoreStep},
    tenants::TenantStatus,
};
use app::ssr::tenancy::backups::restore::{RestoreAs, RestoreError};
use chrono::Utc;
use sea_orm::{ConnectionTrait, EntityTrait, Statement};
use secrecy::SecretString;

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::pg_cluster::{is_root, pg15_bin, PgCluster};

/// Marks written to a company's audit log (the rows a restore must bring
/// back or leave alone).
async fn mark(app: &TestApp, sub: &str, n: u32) {
    let db = app.tenant_db(sub).await;
    app::ssr::accounts::users::audit(&db, "test", "mark", n.to_string())
        .await
        .unwrap();
    db.close().await.unwrap();
}

/// The first column of `sql`'s rows, as text, on company `sub`'s database.
async fn texts(app: &TestApp, sub: &str, sql: &str) -> Vec<String> {
    let db = app.tenant_db(sub).await;
    let backend = db.get_database_backend();
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap();
    db.close().await.unwrap();
    rows.iter()
        .map(|r| r.try_get_by_index::<String>(0).unwrap())
        .collect()
}

/// The marks in company `sub`'s audit log, in order.
async fn marks(app: &TestApp, sub: &str) -> Vec<u32> {
    texts(
        app,
        sub,
        "SELECT detail FROM audit_log WHERE action = 'mark' ORDER BY id",
    )
    .await
    .iter()
    .map(|d| d.parse().unwrap())
    .collect()
}

async fn clear_marks(app: &TestApp, sub: &str) {
    let db = app.tenant_db(sub).await;
    db.execute_unprepared("DELETE FROM audit_log WHERE action = 'mark'")
        .await
        .unwrap();
    db.close().await.unwrap();
}

async fn audit_actions(app: &TestApp, sub: &str) -> Vec<String> {
    texts(app, sub, "SELECT action FROM audit_log ORDER BY id").await
}

/// A writer that adds a mark to `sub` every 20 ms until stopped; returns
/// (writes that succeeded, writes that failed).
fn writer(
    app: &TestApp,
    sub: &'static str,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<(u64, u64)>) {
    let stop = Arc::new(AtomicBool::new(false));
    let services = app.services.clone();
    let flag = stop.clone();
    let handle = tokio::spawn(async move {
        let ok = AtomicU64::new(0);
        let mut failed = 0;
        let sub = Subdomain::parse(sub).unwrap();
        let db = services.connect_tenant(&sub).await.unwrap();
        let mut n = 0u32;
        while !flag.load(Ordering::Relaxed) {
            n += 1;
            match app::ssr::accounts::users::audit(&db, "writer", "mark", n.to_string()).await {
                Ok(()) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        db.close().await.unwrap();
        (ok.into_inner(), failed)
    });
    (stop, handle)
}

/// A moment strictly between what was written before and after it.
async fn moment() -> chrono::DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let at = Utc::now();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    at
}

/// The cluster, the app on it, and pgBackRest's configuration.
struct Rig {
    cluster: Arc<PgCluster>,
    app: TestApp,
    _dir: PathBuf,
}

async fn rig() -> Rig {
    assert!(
        std::process::Command::new("pgbackrest")
            .arg("version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "pgbackrest not found: run `make setup-system` (Debian's pgbackrest)"
    );
    let cluster = tokio::task::spawn_blocking(|| PgCluster::start(&pg15_bin(), 60))
        .await
        .unwrap();
    let cluster = Arc::new(cluster);
    // The repository, logs and locks in the cluster's directory, which
    // the `postgres` user owns.
    let dir = cluster.dir().to_path_buf();
    let config = dir.join("pgbackrest.conf");
    let repo = dir.join("repo");
    std::fs::write(
        &config,
        format!(
            "[global]\nrepo1-path={}\nlock-path={}\nspool-path={}\nlog-level-file=off\nstart-fast=y\n\
             [global:archive-push]\ncompress-type=lz4\n",
            repo.display(),
            dir.join("lock").display(),
            dir.join("spool").display()
        ),
    )
    .unwrap();
    let admin = cluster.admin_url("postgres");
    let restores = dir.join("restores");
    let app = spawn_app_with(Backend::Postgres, |s| {
        s.tenant_db_url = Some(SecretString::from(admin));
        s.pgbackrest_config = Some(config.clone());
        s.backup_os_user = is_root().then(|| "postgres".to_owned());
        s.pg_bin = Some(pg15_bin());
        s.restore_dir = Some(restores);
    })
    .await;

    // What the server needs, printed; then set, and the server restarted.
    let needs = app.services.backup_setup("default", false).await.unwrap();
    assert!(needs.needs_restart && !needs.written, "{needs:?}");
    let command = needs
        .settings
        .iter()
        .find(|(k, _)| *k == "archive_command")
        .unwrap();
    assert!(
        command.1.contains("--stanza=default archive-push %p"),
        "{command:?}"
    );
    assert!(needs.stanza.contains("pg1-path="), "{}", needs.stanza);
    let set = app.services.backup_setup("default", true).await.unwrap();
    assert!(set.written && !set.checked, "{set:?}");
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || {
        c.stop_clean();
        c.start_again();
    })
    .await
    .unwrap();
    // The administrator's pool still holds sessions the restart ended:
    // each is found dead on its next use, and replaced.
    let first = app.services.provisioner.fleet().first().clone();
    let mut alive = 0;
    for _ in 0..50 {
        if first.ping().await {
            alive += 1;
            if alive == 8 {
                break;
            }
        }
    }
    assert_eq!(alive, 8, "{}", cluster.log());
    let written = std::fs::read_to_string(&config).unwrap();
    assert!(
        written.contains("[default]") && written.contains("repo1-path="),
        "{written}"
    );
    Rig {
        cluster,
        app,
        _dir: dir,
    }
}

async fn restore_row(app: &TestApp, sub: &str) -> tenant_restores::Model {
    let mut rows = tenant_restores::Entity::find()
        .all(&app.services.registry)
        .await
        .unwrap();
    rows.retain(|r| r.subdomain == sub);
    rows.sort_by_key(|r| r.started_at);
    rows.pop().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_company_goes_back_to_a_moment_in_place_and_beside_while_another_keeps_writing()
{
    let rig = rig().await;
    let app = &rig.app;
    app.create_companies(&["acme".to_owned(), "other".to_owned()], 2)
        .await;
    let sub = Subdomain::parse("acme").unwrap();

    // Nothing to restore from yet.
    let err = app
        .services
        .restore_tenant(&sub, Utc::now(), RestoreAs::InPlace)
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::NotCovered { .. }), "{err:?}");

    let taken = app.services.backup_run(None).await.unwrap();
    assert!(taken[0].starts_with("default: full backup"), "{taken:?}");
    for n in 1..=20 {
        mark(app, "acme", n).await;
    }
    let at = moment().await;
    clear_marks(app, "acme").await;
    mark(app, "acme", 21).await;

    let listed = app.services.backup_list().await.unwrap();
    let acme = listed[0]
        .companies
        .iter()
        .find(|(s, _)| s == "acme")
        .unwrap();
    let earliest = acme.1.expect("acme is in the backup");
    assert!(earliest < at, "{earliest} {at}");

    // Refused: the future, and before the backups.
    let err = app
        .services
        .restore_tenant(
            &sub,
            Utc::now() + chrono::Duration::hours(1),
            RestoreAs::InPlace,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::Future { .. }), "{err:?}");
    let err = app
        .services
        .restore_tenant(
            &sub,
            earliest - chrono::Duration::hours(1),
            RestoreAs::InPlace,
        )
        .await
        .unwrap_err();
    let said = err.to_string();
    assert!(
        said.contains(&earliest.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "{said}"
    );

    // In place, with the other company written to all along.
    let (stop, written) = writer(app, "other");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let done = app
        .services
        .restore_tenant(&sub, at, RestoreAs::InPlace)
        .await
        .unwrap();
    assert!(done.paused < Duration::from_secs(5), "{done:?}");
    // A company this small is restored in memory, off the served disk.
    let r = restore_row(app, "acme").await;
    assert!(
        r.scratch
            .as_deref()
            .unwrap()
            .starts_with("/dev/shm/enclave-restores/"),
        "{:?}",
        r.scratch
    );
    assert!(!std::path::Path::new(r.scratch.as_deref().unwrap()).exists());
    assert_eq!(marks(app, "acme").await, (1..=20).collect::<Vec<_>>());
    assert!(audit_actions(app, "acme")
        .await
        .contains(&"company.restored".to_owned()));
    let res = app.get("acme.localhost", "/login").await;
    assert_eq!(res.status(), 200);

    // Beside: a paused copy; the live company is left as it is. Made on
    // disk, in `ENCLAVE_RESTORE_DIR`, where memory may not be used.
    mark(app, "acme", 22).await;
    let mut on_disk = app.services.clone();
    on_disk.backups = Arc::new(app::ssr::tenancy::backups::BackupSettings {
        memory_limit: 0,
        ..(*app.services.backups).clone()
    });
    let beside = on_disk
        .restore_tenant(
            &sub,
            at,
            RestoreAs::Beside(Subdomain::parse("acme-then").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(beside.subdomain, "acme-then");
    let r = restore_row(app, "acme").await;
    assert!(
        r.scratch
            .as_deref()
            .unwrap()
            .starts_with(&rig.cluster.dir().join("restores").display().to_string()),
        "{:?}",
        r.scratch
    );
    let t = app::ssr::tenancy::request::directory::find_by_subdomain(
        &app.services.registry,
        &Subdomain::parse("acme-then").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(t.status, TenantStatus::Paused);
    assert_eq!(marks(app, "acme-then").await, (1..=20).collect::<Vec<_>>());
    let mut now: Vec<u32> = (1..=20).collect();
    now.push(22);
    assert_eq!(marks(app, "acme").await, now);
    // The subdomain of a company is taken.
    let err = app
        .services
        .restore_tenant(
            &sub,
            at,
            RestoreAs::Beside(Subdomain::parse("other").unwrap()),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::Taken(_)), "{err:?}");

    stop.store(true, Ordering::Relaxed);
    let (ok, failed) = written.await.unwrap();
    assert_eq!(failed, 0, "the other company's writes failed");
    assert!(ok > 20, "{ok}");
    assert_eq!(marks(app, "other").await.len() as u64, ok);

    // Undo: the data from before the restore in place is back.
    app.services.undo_restore(&sub).await.unwrap();
    assert_eq!(marks(app, "acme").await, vec![21]);
    let r = restore_row(app, "acme").await;
    assert_eq!(
        r.outcome,
        RestoreOutcome::Restored,
        "the beside one is the newest"
    );
    drop(rig);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restore_killed_at_any_step_leaves_the_company_on_one_database_with_its_data() {
    let rig = rig().await;
    let app = &rig.app;
    app.create_companies(&["acme".to_owned()], 1).await;
    let sub = Subdomain::parse("acme").unwrap();
    app.services.backup_run(Some("default")).await.unwrap();
    for n in 1..=5 {
        mark(app, "acme", n).await;
    }
    let at = moment().await;
    clear_marks(app, "acme").await;
    for step in [
        RestoreStep::Recovered,
        RestoreStep::Created,
        RestoreStep::Verified,
        RestoreStep::Switched,
    ] {
        for how in [
            RestoreAs::InPlace,
            RestoreAs::Beside(Subdomain::parse("acme-copy").unwrap()),
        ] {
            clear_marks(app, "acme").await;
            let mut dying = app.services.clone();
            dying.restore_crash_after = Some(step);
            let err = dying
                .restore_tenant(&sub, at, how.clone())
                .await
                .unwrap_err();
            assert!(
                matches!(err, RestoreError::Injected(s) if s == step),
                "{err:?}"
            );
            // Another restore waits for this one to be settled.
            assert!(matches!(
                app.services.restore_tenant(&sub, at, how.clone()).await,
                Err(RestoreError::Underway(_))
            ));
            // Recovery, once the restore is presumed dead.
            let r = restore_row(app, "acme").await;
            tenant_restores::ActiveModel {
                id: sea_orm::Set(r.id),
                updated_at: sea_orm::Set(Utc::now() - chrono::Duration::minutes(5)),
                ..Default::default()
            }
            .update_row(&app.services.registry)
            .await;
            assert_eq!(
                app.services.recover_restores().await.unwrap(),
                1,
                "{step:?} {how:?}"
            );
            let r = restore_row(app, "acme").await;
            let switched = step >= RestoreStep::Switched;
            let expected = if switched {
                RestoreOutcome::Restored
            } else {
                RestoreOutcome::Undone
            };
            assert_eq!(r.outcome, expected, "{step:?} {how:?}");
            // Served from one database, with the data of one side.
            let res = app.get("acme.localhost", "/login").await;
            assert_eq!(res.status(), 200, "{step:?} {how:?}");
            let want: Vec<u32> = match (&how, switched) {
                (RestoreAs::InPlace, true) => (1..=5).collect(),
                _ => vec![],
            };
            assert_eq!(marks(app, "acme").await, want, "{step:?} {how:?}");
            if let RestoreAs::Beside(copy) = &how {
                let found = app::ssr::tenancy::request::directory::find_by_subdomain(
                    &app.services.registry,
                    copy,
                )
                .await
                .unwrap();
                assert_eq!(found.is_some(), switched, "{step:?}");
                if switched {
                    assert_eq!(marks(app, "acme-copy").await, (1..=5).collect::<Vec<_>>());
                    app.services.delete_tenant(copy).await.unwrap();
                }
            }
            // Nothing left over: no scratch directory, no incoming database.
            let scratch = PathBuf::from(r.scratch.unwrap());
            assert!(!scratch.exists(), "{step:?}: {}", scratch.display());
            let left = scalar_count(
                &rig.cluster,
                "SELECT count(*) FROM pg_database WHERE datname LIKE 'tenant\\_%\\_r%'",
            )
            .await;
            assert_eq!(left, 0, "{step:?} {how:?}");
        }
    }
}

async fn scalar_count(cluster: &PgCluster, sql: &str) -> i64 {
    let db = sea_orm::Database::connect(cluster.admin_url("postgres"))
        .await
        .unwrap();
    let n = db
        .query_one_raw(Statement::from_string(sea_orm::DbBackend::Postgres, sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap();
    db.close().await.unwrap();
    n
}

trait UpdateRow {
    async fn update_row(self, db: &sea_orm::DatabaseConnection);
}

impl UpdateRow for tenant_restores::ActiveModel {
    async fn update_row(self, db: &sea_orm::DatabaseConnection) {
        sea_orm::ActiveModelTrait::update(self, db).await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_company_goes_back_to_its_snapshot_in_place_and_beside() {
    let app = spawn_app_with(Backend::Sqlite, |_| {}).await;
    app.create_companies(&["acme".to_owned()], 1).await;
    let sub = Subdomain::parse("acme").unwrap();
    let err = app
        .services
        .restore_tenant(&sub, Utc::now(), RestoreAs::InPlace)
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::NotCovered { .. }), "{err:?}");

    app.services.backup_run(None).await.unwrap();
    let first = moment().await;
    for n in 1..=10 {
        mark(&app, "acme", n).await;
    }
    app.services.backup_run(None).await.unwrap();
    let second = moment().await;
    clear_marks(&app, "acme").await;
    mark(&app, "acme", 11).await;

    let err = app
        .services
        .restore_tenant(&sub, first - chrono::Duration::hours(1), RestoreAs::InPlace)
        .await
        .unwrap_err();
    assert!(matches!(err, RestoreError::Outside { .. }), "{err:?}");

    // The latest snapshot at or before the moment.
    let done = app
        .services
        .restore_tenant(&sub, second, RestoreAs::InPlace)
        .await
        .unwrap();
    assert!(done.snapshot.unwrap() < second);
    assert_eq!(marks(&app, "acme").await, (1..=10).collect::<Vec<_>>());
    let res = app.get("acme.localhost", "/login").await;
    assert_eq!(res.status(), 200);
    let beside = app
        .services
        .restore_tenant(
            &sub,
            first,
            RestoreAs::Beside(Subdomain::parse("acme-then").unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(beside.subdomain, "acme-then");
    assert_eq!(marks(&app, "acme-then").await, Vec::<u32>::new());
    app.services.undo_restore(&sub).await.unwrap();
    assert_eq!(marks(&app, "acme").await, vec![11]);

    // The platform admin sees each company's last restore.
    let html = admin_page(&app).await;
    let row = html
        .split("<tr data-subdomain=\"acme\"")
        .nth(1)
        .unwrap()
        .split("</tr>")
        .next()
        .unwrap();
    assert!(
        row.contains("data-testid=\"restore\"")
            && row.contains(">restored to ")
            && row.contains("beside, as acme-then"),
        "{row}"
    );

    // The command line: what it refuses, and a restore.
    let env = app.cli_env();
    let run = |args: &[&str]| crate::cli::run_server(&env, args, "");
    let (ok, _, err) = run(&[
        "tenant",
        "restore",
        "acme",
        "--to",
        "yesterday",
        "--in-place",
    ]);
    assert!(!ok && err.contains("not an RFC 3339 moment"), "{err}");
    let (ok, _, err) = run(&["tenant", "restore", "acme", "--to", "2026-01-01T00:00:00Z"]);
    assert!(!ok && err.contains("--in-place, or --as"), "{err}");
    let (ok, _, err) = run(&["backup", "setup", "default"]);
    assert!(!ok && err.contains("SQLite files"), "{err}");
    let (ok, out, err) = run(&["backup", "run"]);
    assert!(ok && out.contains("2 SQLite snapshots taken"), "{out}{err}");
    let second_s = second.to_rfc3339();
    let (ok, out, err) = run(&["tenant", "restore", "acme", "--to", &second_s, "--in-place"]);
    assert!(ok && out.contains("restored acme to"), "{out}{err}");
    assert_eq!(marks(&app, "acme").await, (1..=10).collect::<Vec<_>>());
    let (ok, out, err) = run(&["tenant", "restore", "acme", "--undo"]);
    assert!(ok, "{out}{err}");
    assert_eq!(marks(&app, "acme").await, vec![11]);

    // Killed before and after the switch.
    for step in [RestoreStep::Verified, RestoreStep::Switched] {
        let mut dying = app.services.clone();
        dying.restore_crash_after = Some(step);
        let err = dying
            .restore_tenant(&sub, second, RestoreAs::InPlace)
            .await
            .unwrap_err();
        assert!(
            matches!(err, RestoreError::Injected(s) if s == step),
            "{err:?}"
        );
        let r = restore_row(&app, "acme").await;
        tenant_restores::ActiveModel {
            id: sea_orm::Set(r.id),
            updated_at: sea_orm::Set(Utc::now() - chrono::Duration::minutes(5)),
            ..Default::default()
        }
        .update_row(&app.services.registry)
        .await;
        assert_eq!(app.services.recover_restores().await.unwrap(), 1);
        let res = app.get("acme.localhost", "/login").await;
        assert_eq!(res.status(), 200, "{step:?}");
        let want: Vec<u32> = if step == RestoreStep::Switched {
            (1..=10).collect()
        } else {
            vec![11]
        };
        assert_eq!(marks(&app, "acme").await, want, "{step:?}");
        if step == RestoreStep::Switched {
            app.services.undo_restore(&sub).await.unwrap();
        }
    }
}

/// `make bench-restore`: a company of about 100 MB restored in place to a
/// moment `RESTORE_AGO_SECS` (120) in the past while nine others answer a
/// steady load; against the ceiling of the same run: pgBackRest restoring
/// that one database, plus one bare `COPY` of its rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: make bench-restore"]
async fn bench_restoring_a_100_mb_company_in_place_under_load() {
    let env = |k: &str, d: u64| {
        std::env::var(k)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(d)
    };
    let rows = env("RESTORE_ROWS", 400_000) as u32;
    let ago = Duration::from_secs(env("RESTORE_AGO_SECS", 120));
    let rig = rig().await;
    let app = &rig.app;
    let quiet: Vec<String> = (1..=9).map(|i| format!("quiet-{i}")).collect();
    let mut all = quiet.clone();
    all.push("heavy".to_owned());
    app.create_companies(&all, 2).await;
    crate::moves::bulk(app, "heavy", rows).await;
    let db = app.tenant_db("heavy").await;
    db.execute_unprepared("VACUUM ANALYZE audit_log")
        .await
        .unwrap();
    db.close().await.unwrap();
    let heavy = app::ssr::tenancy::request::directory::find_by_subdomain(
        &app.services.registry,
        &Subdomain::parse("heavy").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let name = app::ssr::tenancy::servers::databases::TenantServer::db_name(heavy.id);
    // `name` is `tenant_<hex>`, from the company's id.
    let mb = scalar_count(
        &rig.cluster,
        &format!("SELECT pg_database_size('{name}')::int8"),
    )
    .await as f64
        / 1e6;
    app.services.backup_run(None).await.unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    mark(app, "heavy", 1).await;
    let at = Utc::now();
    mark(app, "heavy", 2).await;

    // The nine under a steady load: before (while the moment ages), then
    // a window as long as a restore with no restore (how far the p99 of so
    // few requests strays on its own on this machine), then during it.
    let load = Load::start(app, &quiet);
    let window = Duration::from_secs(10);
    tokio::time::sleep(ago.saturating_sub(window)).await;
    let before = load.take();
    tokio::time::sleep(window).await;
    let control = load.take();
    // As an operator runs it: `server tenant restore`, a process of its own
    // beside the one serving.
    let mut env = app.cli_env();
    // Each part's time, logged by the restore as it goes.
    env.push((
        "RUST_LOG",
        "warn,app::ssr::tenancy::backups=debug".to_owned(),
    ));
    let at_s = at.to_rfc3339();
    let started = std::time::Instant::now();
    let started_utc = Utc::now();
    // Where each step began (polled from the registry), to split the
    // requests during the restore by what the restore was doing.
    let steps = {
        let (registry, stop) = (app.services.registry.clone(), load.stop.clone());
        tokio::spawn(async move {
            let mut seen: Vec<(String, std::time::Instant)> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let rows = tenant_restores::Entity::find().all(&registry).await;
                let step = rows.ok().and_then(|rs| {
                    rs.into_iter()
                        .find(|r| r.subdomain == "heavy")
                        .map(|r| format!("{:?}", r.step).to_lowercase())
                });
                if let Some(step) = step {
                    if seen.last().is_none_or(|(s, _)| *s != step) {
                        seen.push((step, std::time::Instant::now()));
                    }
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            seen
        })
    };
    let (ok, out, err) = tokio::task::spawn_blocking(move || {
        crate::cli::run_server(
            &env,
            &["tenant", "restore", "heavy", "--to", &at_s, "--in-place"],
            "",
        )
    })
    .await
    .unwrap();
    let took = started.elapsed();
    let during = load.take();
    let parts: Vec<String> = out
        .lines()
        .filter(|l| {
            l.contains("restore: done") || l.contains("temporary server") || l.contains("archiver")
        })
        .map(|l| {
            // Each as seconds from the command, to set beside the slowest
            // requests.
            let (when, rest) = l.split_once(' ').unwrap_or(("", l));
            match chrono::DateTime::parse_from_rfc3339(when) {
                Ok(w) => {
                    let ms = (w.with_timezone(&Utc) - started_utc).num_milliseconds();
                    format!("{:.3}s {}", ms as f64 / 1e3, rest.trim_start())
                }
                Err(_) => l.to_owned(),
            }
        })
        .collect();
    println!(
        "the restore's parts, as it logged them:\n  {}",
        parts.join("\n  ")
    );
    load.stop().await;
    let steps = steps.await.unwrap();
    assert!(ok, "{out}{err}");
    assert_eq!(marks(app, "heavy").await, vec![1]);
    let r = restore_row(app, "heavy").await;
    let paused = Duration::from_millis(r.pause_ms.unwrap() as u64);
    let restored_rows = r.rows.unwrap();

    // The ceiling: the same restore by pgBackRest alone, into the same
    // kind of place (memory or disk), and one COPY; on a clean disk (what
    // the restore wrote and deleted, flushed first: otherwise its debris
    // slows the ceiling, 4.3-4.8 s against 1.8-2.0 s).
    assert!(std::process::Command::new("sync")
        .status()
        .unwrap()
        .success());
    let in_memory = r.scratch.as_deref().unwrap().starts_with("/dev/shm/");
    let (restore_alone, copy_alone) = ceiling(&rig, app, at, in_memory).await;
    println!(
        "the temporary server, and the ceiling's restore: {}",
        if in_memory {
            "in memory (/dev/shm)"
        } else {
            "on disk"
        }
    );
    let ceiling = restore_alone + copy_alone;
    // Command to switched (the target), from the restore's record; the
    // command itself ends later: it cleans up and waits for the server's
    // archiver to archive the WAL the copy wrote (the served companies'
    // requests are measured until then).
    let switched = (r.switched_at.unwrap() - started_utc)
        .to_std()
        .unwrap_or_default();
    println!(
        "command to switched {:.2} s; the command ended at {:.2} s",
        switched.as_secs_f64(),
        took.as_secs_f64()
    );
    println!(
        "\n| company | restore in place, command to switched | writes paused | ceiling: pgBackRest restore {:.1} s + COPY {:.1} s | ratio | nine others: requests, errors, p99 before → during |\n|---|---:|---:|---:|---:|---|\n| {mb:.0} MB, {} rows, {} s back | {:.1} s | {:.2} s | {:.1} s | {:.2}× | {} and {}, {} and {} errors, {:.1} → {:.1} ms |\n",
        restore_alone.as_secs_f64(),
        copy_alone.as_secs_f64(),
        restored_rows,
        ago.as_secs(),
        switched.as_secs_f64(),
        paused.as_secs_f64(),
        ceiling.as_secs_f64(),
        switched.as_secs_f64() / ceiling.as_secs_f64(),
        before.count,
        during.count,
        before.errors,
        during.errors,
        before.p99_ms(),
        during.p99_ms(),
    );
    println!(
        "a {} s window with no restore, just before it: {} requests, {} errors, p99 {:.1} ms ({:.2}× before)",
        window.as_secs(),
        control.count,
        control.errors,
        control.p99_ms(),
        control.p99_ms() / before.p99_ms()
    );
    println!(
        "during, per second from the command (p99/slowest ms): {}",
        during.by_second(started)
    );
    println!(
        "during, the 20 slowest (started, ms): {}",
        during.slowest(started, 20)
    );
    let mut phases = Vec::new();
    let mut from = ("command".to_owned(), started);
    for (step, at) in steps
        .into_iter()
        .chain([("end".to_owned(), started + took)])
    {
        let (n, p99) = during.p99_between(from.1, at);
        phases.push(format!(
            "{} {:.1} s: {n} requests, p99 {p99:.1} ms",
            from.0,
            at.saturating_duration_since(from.1).as_secs_f64()
        ));
        from = (step, at);
    }
    println!(
        "during, by the step the restore was in: {}",
        phases.join("; ")
    );
    assert_eq!(before.errors + control.errors + during.errors, 0);
}

/// Steady requests to each company's `/api/health` (one query on its
/// database), one at a time per company.
pub(crate) struct Load {
    stop: Arc<AtomicBool>,
    seen: Arc<std::sync::Mutex<Seen>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

#[derive(Default)]
pub(crate) struct Seen {
    pub(crate) count: u64,
    pub(crate) errors: u64,
    ms: Vec<f64>,
    /// When each request started.
    at: Vec<std::time::Instant>,
}

impl Seen {
    pub(crate) fn p99_ms(&self) -> f64 {
        let mut v = self.ms.clone();
        v.sort_by(f64::total_cmp);
        v.get((v.len() * 99 / 100).min(v.len().saturating_sub(1)))
            .copied()
            .unwrap_or(0.0)
    }

    /// How many requests started in `[from, to)`, and their p99 in ms.
    pub(crate) fn p99_between(
        &self,
        from: std::time::Instant,
        to: std::time::Instant,
    ) -> (usize, f64) {
        let mut v: Vec<f64> = self
            .at
            .iter()
            .zip(&self.ms)
            .filter(|(at, _)| **at >= from && **at < to)
            .map(|(_, ms)| *ms)
            .collect();
        v.sort_by(f64::total_cmp);
        (v.len(), p99_of_sorted(&v))
    }

    /// The `n` slowest requests, each as when it started (seconds from
    /// `from`) and how long it took (ms), in the order they started: slow
    /// requests that start together point at one stall of all of them.
    pub(crate) fn slowest(&self, from: std::time::Instant, n: usize) -> String {
        let mut v: Vec<(f64, f64)> = self
            .at
            .iter()
            .zip(&self.ms)
            .map(|(at, ms)| (at.saturating_duration_since(from).as_secs_f64(), *ms))
            .collect();
        v.sort_by(|a, b| b.1.total_cmp(&a.1));
        v.truncate(n);
        v.sort_by(|a, b| a.0.total_cmp(&b.0));
        v.iter()
            .map(|(s, ms)| format!("{s:.3}s {ms:.1}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Each second from `from`: its requests' p99 and slowest, in ms
    /// (where in a window the slow requests fall).
    pub(crate) fn by_second(&self, from: std::time::Instant) -> String {
        let mut seconds: Vec<Vec<f64>> = Vec::new();
        for (at, ms) in self.at.iter().zip(&self.ms) {
            let s = at.saturating_duration_since(from).as_secs() as usize;
            if seconds.len() <= s {
                seconds.resize(s + 1, Vec::new());
            }
            seconds[s].push(*ms);
        }
        seconds
            .iter_mut()
            .enumerate()
            .map(|(s, v)| {
                v.sort_by(f64::total_cmp);
                let p99 = p99_of_sorted(v);
                format!("{s}s: {p99:.1}/{:.1}", v.last().copied().unwrap_or(0.0))
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The p99 of `sorted` (its largest when it holds fewer than 100), 0 when empty.
fn p99_of_sorted(sorted: &[f64]) -> f64 {
    sorted
        .get(sorted.len() * 99 / 100)
        .or(sorted.last())
        .copied()
        .unwrap_or(0.0)
}

impl Load {
    pub(crate) fn start(app: &TestApp, subs: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let seen = Arc::new(std::sync::Mutex::new(Seen::default()));
        let tasks = subs
            .iter()
            .map(|s| {
                let (stop, seen) = (stop.clone(), seen.clone());
                let (client, url, host) = (
                    app.client.clone(),
                    format!("{}/api/health", app.address),
                    format!("{s}.localhost"),
                );
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        let t = std::time::Instant::now();
                        let ok = client
                            .get(&url)
                            .header("host", &host)
                            .send()
                            .await
                            .is_ok_and(|r| r.status() == 200);
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        {
                            let mut s = seen.lock().unwrap();
                            s.count += 1;
                            s.errors += u64::from(!ok);
                            s.ms.push(ms);
                            s.at.push(t);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            })
            .collect();
        Self { stop, seen, tasks }
    }

    /// What was seen since the last take.
    pub(crate) fn take(&self) -> Seen {
        std::mem::take(&mut *self.seen.lock().unwrap())
    }

    pub(crate) async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.unwrap();
        }
    }
}

/// pgBackRest restoring the company's database alone (into a directory of
/// its own, not started), and one binary `COPY` of its `audit_log` into a
/// bare table on the same server.
async fn ceiling(
    rig: &Rig,
    app: &TestApp,
    at: chrono::DateTime<Utc>,
    in_memory: bool,
) -> (Duration, Duration) {
    use futures_util::StreamExt;
    use sea_orm::sqlx::{postgres::PgConnection, Connection, Executor};
    let t = app::ssr::tenancy::request::directory::find_by_subdomain(
        &app.services.registry,
        &Subdomain::parse("heavy").unwrap(),
    )
    .await
    .unwrap()
    .unwrap();
    let db = app::ssr::tenancy::servers::databases::TenantServer::db_name(t.id);
    let dir = match in_memory {
        true => PathBuf::from(format!("/dev/shm/enclave-ceiling-{}", std::process::id())),
        false => rig.cluster.dir().join("ceiling"),
    };
    let config = app.settings.pgbackrest_config.clone().unwrap();
    let started = std::time::Instant::now();
    let mut cmd = if is_root() {
        let mut c = std::process::Command::new("runuser");
        c.args(["-u", "postgres", "--", "pgbackrest"]);
        c
    } else {
        std::process::Command::new("pgbackrest")
    };
    let out = cmd
        .arg(format!("--config={}", config.display()))
        .args(["--stanza=default", "--type=time", "--target-action=promote"])
        .arg(format!(
            "--target={}+00",
            app::ssr::tenancy::backups::scratch::target_time(at)
        ))
        .arg(format!("--db-include={db}"))
        .arg(format!("--pg1-path={}", dir.display()))
        .args(["--archive-mode=off", "restore"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restore = started.elapsed();
    std::fs::remove_dir_all(&dir).unwrap();
    let url = rig.cluster.admin_url(&db);
    let mut src = PgConnection::connect(&url).await.unwrap();
    let mut dst = PgConnection::connect(&url).await.unwrap();
    dst.execute("CREATE TABLE public.ceiling (LIKE public.audit_log)")
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let mut copied = src
        .copy_out_raw("COPY public.audit_log TO STDOUT (FORMAT binary)")
        .await
        .unwrap();
    let mut into = dst
        .copy_in_raw("COPY public.ceiling FROM STDIN (FORMAT binary)")
        .await
        .unwrap();
    while let Some(chunk) = copied.next().await {
        into.send(chunk.unwrap()).await.unwrap();
    }
    into.finish().await.unwrap();
    let copy = started.elapsed();
    drop(copied);
    dst.execute("DROP TABLE public.ceiling").await.unwrap();
    (restore, copy)
}

/// The platform admin's Companies page, signed in as a new platform admin.
async fn admin_page(app: &TestApp) -> String {
    use crate::helpers::{call, get, Jar, ADMIN_PASSWORD};
    app::ssr::accounts::platform::create_superadmin(
        &app.services.registry,
        &app::domain::Email::parse("root@platform.test").unwrap(),
        app::domain::Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let mut root = Jar::default();
    let (status, body) = call(
        app,
        "localhost",
        &mut root,
        "admin_login",
        &[
            ("email", "root@platform.test"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let res = get(app, "localhost", &mut root, "/admin").await;
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    res.text().await.unwrap()
}
