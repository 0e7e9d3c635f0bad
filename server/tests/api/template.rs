//! PostgreSQL: new companies are copies of the tenant template, owned by
//! their own role; a missing template is rebuilt, a stale one dropped, and
//! without a template provisioning still works.
use app::ssr::tenancy::servers::template;
use migration::{MigratorTrait, TenantMigrator};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::{pg_admin, spawn_app, spawn_app_with, Backend, PG_ADMIN_URL};

async fn scalar(db: &DatabaseConnection, sql: &str) -> i64 {
    db.query_one_raw(Statement::from_string(db.get_database_backend(), sql))
        .await
        .unwrap()
        .unwrap()
        .try_get_by_index::<i64>(0)
        .unwrap()
}

async fn database_exists(name: &str) -> bool {
    let admin = Database::connect(PG_ADMIN_URL).await.unwrap();
    let n = scalar(
        &admin,
        &format!("SELECT count(*) FROM pg_database WHERE datname = '{name}'"),
    )
    .await;
    admin.close().await.ok();
    n > 0
}

/// When each tenant migration was applied, in this database.
async fn applied_at(db: &DatabaseConnection) -> Vec<(String, i64)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT version, applied_at FROM seaql_migrations ORDER BY version",
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.try_get::<String>("", "version").unwrap(),
            r.try_get::<i64>("", "applied_at").unwrap(),
        )
    })
    .collect()
}

/// One test, not three: it drops the template, which would race with
/// another test reading it.
#[tokio::test]
async fn companies_are_copies_of_the_template_which_is_rebuilt_when_dropped() {
    let app = spawn_app(Backend::Postgres).await;
    let server = app.services.provisioner.server();
    let name = template::template_name();
    assert!(server.prepare_template().await);
    assert!(database_exists(&name).await);

    app.create_company("Acme", "acme").await;
    assert_eq!(server.template_copies(), 1, "copied, not migrated");
    let db = app.tenant_db("acme").await;
    assert_eq!(
        applied_at(&db).await.len(),
        TenantMigrator::migrations().len()
    );
    // Everything in it belongs to the company's role, which can change its
    // own schema; the template's owner keeps no rights.
    let foreign = scalar(
        &db,
        "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
         WHERE n.nspname = 'public' AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = current_user)",
    )
    .await;
    assert_eq!(foreign, 0, "objects not owned by the tenant role");
    db.execute_unprepared("CREATE TABLE probe (x int); DROP TABLE probe")
        .await
        .expect("the tenant role owns its schema");
    let template_rights = scalar(
        &db,
        &format!(
            "SELECT count(*) FROM (SELECT has_schema_privilege('{}', 'public', 'CREATE') AS c) p WHERE c",
            template::OWNER_ROLE
        ),
    )
    .await;
    assert_eq!(template_rights, 0);
    // The admin user is there, as after a migration.
    assert_eq!(scalar(&db, "SELECT count(*) FROM users").await, 1);
    db.close().await.ok();
    assert_eq!(app.get("acme.localhost", "/api/health").await.status(), 200);

    // Dropped behind the app's back: the copy fails, the company is
    // migrated from empty instead, and the template is built again for
    // the next one, which also drops a stale template it finds and a build
    // abandoned by a process that died, but not a build someone is
    // connected to (another process's, in progress).
    let stale = "enclave_tpl_00000000000000ff";
    let abandoned = "enclave_tpl_00000000000000ff_b0badc0de";
    let in_progress = "enclave_tpl_00000000000000ff_bc0ffee00";
    for db in [stale, abandoned, in_progress] {
        pg_admin(&format!("DROP DATABASE IF EXISTS {db}")).await;
        pg_admin(&format!("CREATE DATABASE {db}")).await;
    }
    let building =
        Database::connect(PG_ADMIN_URL.replace("/postgres?", &format!("/{in_progress}?")))
            .await
            .unwrap();
    building.execute_unprepared("SELECT 1").await.unwrap();
    pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    app.create_company("One", "one").await;
    assert_eq!(server.template_copies(), 1, "migrated from empty");
    let db = app.tenant_db("one").await;
    assert_eq!(
        applied_at(&db).await.len(),
        TenantMigrator::migrations().len()
    );
    assert_eq!(scalar(&db, "SELECT count(*) FROM users").await, 1);
    db.close().await.ok();
    app.create_company("Two", "two").await;
    assert_eq!(server.template_copies(), 2, "copied again");
    assert!(database_exists(&name).await, "rebuilt");
    assert!(!database_exists(stale).await, "a stale template is dropped");
    assert!(
        !database_exists(abandoned).await,
        "an abandoned build is dropped"
    );
    assert!(
        database_exists(in_progress).await,
        "a build in progress stays"
    );
    building.close().await.ok();
    pg_admin(&format!("DROP DATABASE {in_progress}")).await;
    for sub in ["one", "two"] {
        assert_eq!(
            app.get(&format!("{sub}.localhost"), "/api/health")
                .await
                .status(),
            200
        );
    }
    app.teardown().await;
}

#[tokio::test]
async fn without_the_template_companies_are_migrated_from_empty() {
    let app = spawn_app_with(Backend::Postgres, |s| s.tenant_template = false).await;
    let server = app.services.provisioner.server();
    assert!(!server.prepare_template().await);
    app.create_company("Plain", "plain").await;
    assert_eq!(server.template_copies(), 0);
    let db = app.tenant_db("plain").await;
    assert_eq!(
        applied_at(&db).await.len(),
        TenantMigrator::migrations().len()
    );
    db.close().await.ok();
    assert_eq!(
        app.get("plain.localhost", "/api/health").await.status(),
        200
    );
    app.teardown().await;
}
