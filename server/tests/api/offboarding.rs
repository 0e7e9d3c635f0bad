//! Deleting a company in two steps, end to end: closed for a grace period
//! (its site says until when) and undeletable, then purged, after which a
//! scan of the database server, the data directory and every registry
//! table finds nothing of it but its tombstone; the subdomain stays
//! reserved; the signed receipt verifies, and a changed one does not.
use std::path::Path;

use app::domain::Subdomain;
use app::ssr::entities::tenants::TenantStatus;
use app::ssr::tenancy::lifecycle::{offboarding::Deletion, DeleteStep};
use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::helpers::{open_link, sign_in, spawn_app, Backend, TestApp, ADMIN_PASSWORD};
use crate::on_both_backends;

on_both_backends!(
    a_deleted_company_waits_out_its_grace_then_only_its_tombstone_is_left,
    a_purge_killed_midway_is_finished_by_the_next_run,
);

/// Every registry row, each as text (PostgreSQL: the row; SQLite: each
/// column in hex), with its table's name.
async fn registry_rows(app: &TestApp) -> Vec<(String, String)> {
    let reg = &app.services.registry;
    let backend = reg.get_database_backend();
    let tables_sql = match backend {
        DbBackend::Postgres => {
            "SELECT table_name::text AS t FROM information_schema.tables \
             WHERE table_schema = 'public' AND table_type = 'BASE TABLE'"
        }
        _ => "SELECT name AS t FROM sqlite_master WHERE type = 'table'",
    };
    let tables: Vec<String> = reg
        .query_all_raw(Statement::from_string(backend, tables_sql))
        .await
        .unwrap()
        .iter()
        .map(|r| r.try_get("", "t").unwrap())
        .collect();
    let mut rows = Vec::new();
    for table in tables {
        // Names from the catalog, in a test.
        let sql = match backend {
            DbBackend::Postgres => format!("SELECT x::text AS v FROM \"{table}\" x"),
            _ => {
                let cols: Vec<String> = reg
                    .query_all_raw(Statement::from_string(
                        backend,
                        format!("SELECT name FROM pragma_table_info('{table}')"),
                    ))
                    .await
                    .unwrap()
                    .iter()
                    .map(|r| {
                        format!(
                            "coalesce(hex(\"{}\"), '')",
                            r.try_get::<String>("", "name").unwrap()
                        )
                    })
                    .collect();
                format!("SELECT {} AS v FROM \"{table}\"", cols.join(" || ' ' || "))
            }
        };
        for r in reg
            .query_all_raw(Statement::from_string(backend, sql))
            .await
            .unwrap()
        {
            rows.push((table.clone(), r.try_get::<String>("", "v").unwrap()));
        }
    }
    rows
}

fn hex_upper(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

/// Where the registry still holds `id` or `sub`, by table.
async fn traces(app: &TestApp, id: uuid::Uuid, sub: &str) -> Vec<String> {
    let needles = [
        id.hyphenated().to_string(),
        id.simple().to_string(),
        hex_upper(id.as_bytes()),
        hex_upper(id.hyphenated().to_string().as_bytes()),
        sub.to_owned(),
        hex_upper(sub.as_bytes()),
    ];
    registry_rows(app)
        .await
        .into_iter()
        .filter(|(_, v)| {
            let lower = v.to_lowercase();
            needles
                .iter()
                .any(|n| v.contains(n.as_str()) || lower.contains(&n.to_lowercase()))
        })
        .map(|(t, _)| t)
        .collect()
}

/// Files under `dir` whose name or contents hold `id` or `sub`, but the
/// registry's own file (scanned row by row above: SQLite keeps freed pages
/// until they are reused), the receipts the operator sends, and the mail
/// outbox (what SMTP would have carried away).
fn files_holding(dir: &Path, id: uuid::Uuid, sub: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let path = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if ["receipts", "outbox"].contains(&name.as_str()) || name.starts_with("registry.db") {
                continue;
            }
            if path.is_dir() {
                stack.push(path.clone());
            }
            let bytes = if path.is_file() {
                std::fs::read(&path).unwrap()
            } else {
                Vec::new()
            };
            let text = String::from_utf8_lossy(&bytes);
            if name.contains(&id.to_string())
                || text.contains(&id.to_string())
                || text.contains(sub)
                || bytes.windows(16).any(|w| w == id.as_bytes())
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

async fn a_deleted_company_waits_out_its_grace_then_only_its_tombstone_is_left(backend: Backend) {
    let app = spawn_app(backend).await;
    let sub_name = format!("doomed{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let host = format!("{sub_name}.localhost");
    let t = app.create_company("Doomed Ltd", &sub_name).await;
    app.create_company("Globex", "globex").await;
    let sub = Subdomain::parse(&sub_name).unwrap();
    // Something of it everywhere: sessions, an export, a snapshot (SQLite).
    let (status, _, _) = sign_in(
        &app,
        &host,
        &format!("admin@{sub_name}.test"),
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let export = app
        .services
        .request_export(t.id, &sub, &format!("admin@{sub_name}.test"))
        .await
        .unwrap();
    for _ in 0..100 {
        if app
            .services
            .export_download(t.id, export)
            .await
            .unwrap()
            .is_some()
        {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(app.services.export_path(export).exists());
    if backend == Backend::Sqlite {
        app.services.backup_run(None).await.unwrap();
    }

    // Deleted: closed, saying until when; undeleted: back as it was.
    let env = app.cli_env();
    let run = |args: &[&str]| crate::cli::run_server(&env, args, "");
    let (ok, out, err) = run(&["tenant", "delete", &sub_name, "--yes"]);
    assert!(ok && out.contains("will be purged at"), "{out}{err}");
    // Its admins were mailed its data: a link on the base domain that needs
    // no sign-in (the site is closed), swapped for a cookie when opened.
    assert!(
        out.contains("its admins were mailed a link to its data"),
        "{out}{err}"
    );
    let outbox = app.services.mailer.outbox().unwrap().to_owned();
    let token = crate::mailbox::wait_for_link(
        &outbox,
        &format!("admin@{sub_name}.test"),
        "/exports/download/",
    )
    .await;
    let res = open_link(&app, "localhost", &format!("/exports/download/{token}")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/zip");
    let zip = res.bytes().await.unwrap();
    assert!(zip.starts_with(b"PK"), "a ZIP");
    let res = app
        .get(
            "localhost",
            &format!("/exports/download/{}", "0".repeat(64)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "swapped, then refused");
    // Another process deleted it: this one sees it once its cache entry
    // goes (within the directory's TTL).
    app.services.directory.invalidate(&sub_name);
    let page = app.get(&host, "/").await;
    assert_eq!(page.status(), 503);
    let page = page.text().await.unwrap();
    assert!(
        page.contains("scheduled for deletion") && page.contains("will be deleted for good on"),
        "{page}"
    );
    let (ok, out, err) = run(&["tenant", "undelete", &sub_name]);
    assert!(ok && out.contains("is back"), "{out}{err}");
    app.services.directory.invalidate(&sub_name);
    // Back: the deletion's export and its link go.
    let res = open_link(&app, "localhost", &format!("/exports/download/{token}")).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let (status, _, _) = sign_in(
        &app,
        &host,
        &format!("admin@{sub_name}.test"),
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "undeleted unchanged");

    // The grace period ends: housekeeping purges it.
    app.services
        .schedule_deletion(&sub, Deletion::Grace)
        .await
        .unwrap();
    let reg = &app.services.registry;
    reg.execute_raw(Statement::from_sql_and_values(
        reg.get_database_backend(),
        match reg.get_database_backend() {
            DbBackend::Postgres => {
                "UPDATE tenants SET purge_after = $1, updated_at = $1 WHERE id = $2"
            }
            _ => "UPDATE tenants SET purge_after = ?, updated_at = ? WHERE id = ?",
        },
        match reg.get_database_backend() {
            DbBackend::Postgres => vec![
                (chrono::Utc::now() - chrono::Duration::seconds(1)).into(),
                t.id.into(),
            ],
            _ => vec![
                (chrono::Utc::now() - chrono::Duration::seconds(1)).into(),
                (chrono::Utc::now() - chrono::Duration::seconds(1)).into(),
                t.id.into(),
            ],
        },
    ))
    .await
    .unwrap();
    let (ok, _, err) = run(&["tenant", "undelete", &sub_name]);
    assert!(!ok && err.contains("grace period is over"), "{err}");
    assert_eq!(app.services.purge_due(chrono::Utc::now()).await, 1);

    // Nothing of it is left but its tombstone.
    assert_eq!(traces(&app, t.id, &sub_name).await, ["tenant_tombstones"]);
    assert!(!app
        .services
        .provisioner
        .server()
        .exists(t.id)
        .await
        .unwrap());
    if let app::ssr::tenancy::servers::databases::TenantServer::Postgres { admin, .. } =
        app.services.provisioner.server()
    {
        let like = format!("%{}%", t.id.simple());
        for sql in [
            "SELECT count(*) AS n FROM pg_database WHERE datname LIKE $1",
            "SELECT count(*) AS n FROM pg_roles WHERE rolname LIKE $1",
        ] {
            let n: i64 = admin
                .query_one_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    sql,
                    [like.clone().into()],
                ))
                .await
                .unwrap()
                .unwrap()
                .try_get("", "n")
                .unwrap();
            assert_eq!(n, 0, "{sql}");
        }
    }
    assert_eq!(
        files_holding(&app.settings.data_dir, t.id, &sub_name),
        Vec::<String>::new()
    );
    assert_eq!(app.get(&host, "/").await.status(), 404);

    // The subdomain stays reserved: for signup too.
    let again = app
        .services
        .create_tenant(crate::helpers::new_tenant("Again", &sub_name))
        .await;
    assert!(again.is_err(), "{again:?}");

    // The receipt: kept for the operator, verified, and a changed one not.
    let path = app
        .settings
        .data_dir
        .join("receipts")
        .join(format!("{}.json", t.id));
    let text = std::fs::read_to_string(&path).unwrap();
    let receipt: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = &receipt["receipt"];
    assert_eq!(r["company"]["subdomain"], sub_name.as_str());
    let removed = r["removed"].to_string();
    assert!(
        removed.contains("registry rows") && removed.contains("export file"),
        "{removed}"
    );
    if backend == Backend::Sqlite {
        assert!(removed.contains("snapshots"), "{removed}");
        assert_eq!(r["backups_hold_it_until"], r["purged_at"]);
    } else {
        assert!(r["backups"]
            .as_str()
            .unwrap()
            .contains("pgBackRest keeps the 2 newest"));
    }
    let path_s = path.display().to_string();
    let (ok, out, err) = run(&["receipt", "verify", &path_s]);
    assert!(ok && out.contains("valid:"), "{out}{err}");
    let changed = scratch_file(&text.replace(&sub_name, "someone-else"));
    let (ok, _, err) = run(&["receipt", "verify", &changed]);
    assert!(!ok && err.contains("does not match"), "{err}");
    app.teardown().await;
}

fn scratch_file(text: &str) -> String {
    let path = std::env::temp_dir().join(format!("receipt-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

async fn a_purge_killed_midway_is_finished_by_the_next_run(backend: Backend) {
    let app = spawn_app(backend).await;
    for step in [DeleteStep::Serving, DeleteStep::Database] {
        let name = format!("dying-{}", format!("{step:?}").to_lowercase());
        let sub = Subdomain::parse(&name).unwrap();
        let t = app.create_company("Dying", &name).await;
        let mut dying = app.services.clone();
        dying.delete_crash_after = Some(step);
        assert!(dying.schedule_deletion(&sub, Deletion::Now).await.is_err());
        let left =
            app::ssr::tenancy::request::directory::find_by_subdomain(&app.services.registry, &sub)
                .await
                .unwrap()
                .unwrap();
        assert_eq!(left.status, TenantStatus::Deleting);
        assert_eq!(
            app.services.purge_due(chrono::Utc::now()).await,
            1,
            "{step:?}"
        );
        assert_eq!(
            traces(&app, t.id, &name).await,
            ["tenant_tombstones"],
            "{step:?}"
        );
        assert!(!app
            .services
            .provisioner
            .server()
            .exists(t.id)
            .await
            .unwrap());
    }
    app.teardown().await;
}
