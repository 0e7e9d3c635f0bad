//! A company's data out and back in: exported from SQLite, imported on
//! PostgreSQL, exported again and imported on SQLite, with the same rows,
//! ids and hashes each time; an admin's export without credentials; an
//! archive of an older schema migrated up; and tampered archives refused
//! with nothing left behind.
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use app::domain::Subdomain;
use app::ssr::tenancy::portability::{archive::Manifest, PortError};
use migration::{MigratorTrait, TenantMigrator};
use reqwest::StatusCode;
use sea_orm::ConnectionTrait;

use crate::helpers::{sign_in, spawn_app, Backend, TestApp, ADMIN_PASSWORD};

/// Rows that CSV and JSON must carry through unchanged: separators,
/// quotes, line breaks, an empty string, text beyond ASCII.
const AWKWARD: [&str; 5] = [
    "a,b",
    "she said \"hi\"",
    "two\nlines\r\nand more",
    "",
    "Zürich — 東京 🚀",
];

/// Gives company `sub` some of everything: awkward audit lines, a second
/// user, an invitation, and a session (a sign-in).
async fn fill(app: &TestApp, sub: &str) {
    let db = app.tenant_db(sub).await;
    for text in AWKWARD {
        app::ssr::accounts::users::audit(&db, "test", "mark", text.to_owned())
            .await
            .unwrap();
    }
    db.close().await.unwrap();
    let env = app.cli_env();
    let (ok, out, err) = crate::cli::run_server(
        &env,
        &[
            "tenant",
            "add-user",
            sub,
            "--email",
            "member@example.test",
            "--password-stdin",
        ],
        "a member's long password\n",
    );
    assert!(ok, "{out}{err}");
    let (status, body, _) = sign_in(
        app,
        &format!("{sub}.localhost"),
        &format!("admin@{sub}.test"),
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("enclave-export-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// Every file of the archive at `path`, by name.
fn files(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut all = BTreeMap::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        all.insert(f.name().unwrap().into_owned(), bytes);
    }
    all
}

/// Writes `files` as a new archive at `path`.
fn write(path: &Path, files: &BTreeMap<String, Vec<u8>>) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in files {
        zip.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn manifest(path: &Path) -> Manifest {
    serde_json::from_slice(&files(path)["manifest.json"]).unwrap()
}

async fn export(app: &TestApp, sub: &str, credentials: bool) -> (PathBuf, Manifest) {
    let out = scratch(&format!("{sub}.zip"));
    let done = app
        .services
        .export_tenant(&Subdomain::parse(sub).unwrap(), &out, credentials, "test")
        .await
        .unwrap();
    assert_eq!(manifest(&out), done.manifest, "the manifest in the archive");
    (out, done.manifest)
}

async fn import(app: &TestApp, path: &Path, sub: &str) -> Result<(), PortError> {
    app.services
        .import_tenant(path, &Subdomain::parse(sub).unwrap(), None)
        .await
        .map(|_| ())
}

async fn exists(app: &TestApp, sub: &str) -> bool {
    app::ssr::tenancy::request::directory::find_by_subdomain(
        &app.services.registry,
        &Subdomain::parse(sub).unwrap(),
    )
    .await
    .unwrap()
    .is_some()
}

/// The company database files in a SQLite app's data directory.
fn databases(app: &TestApp) -> usize {
    let app::ssr::tenancy::servers::databases::TenantServer::Sqlite { dir } =
        app.services.provisioner.server()
    else {
        panic!("a SQLite app");
    };
    std::fs::read_dir(dir).map_or(0, |d| {
        d.filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_string_lossy();
            name.ends_with(".db") || name.ends_with(".db-wal")
        })
        .count()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_company_goes_from_sqlite_to_postgres_and_back_with_the_same_rows_ids_and_hashes() {
    let lite = spawn_app(Backend::Sqlite).await;
    let pg = spawn_app(Backend::Postgres).await;
    lite.create_company("Acme & Co", "acme").await;
    fill(&lite, "acme").await;

    let (first, m1) = export(&lite, "acme", true).await;
    assert!(m1.credentials && m1.backend == "sqlite");
    assert_eq!(m1.company.name, "Acme & Co");
    let names: Vec<&str> = m1.tables.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "audit_log",
            "invitations",
            "login_failures",
            "password_resets",
            "sessions",
            "users"
        ],
        "every table of a company, its migrations' bookkeeping left out"
    );
    let users = m1.tables.iter().find(|t| t.name == "users").unwrap();
    assert_eq!(users.rows, 2);
    assert!(
        m1.tables
            .iter()
            .find(|t| t.name == "sessions")
            .unwrap()
            .rows
            >= 1
    );
    let archive = files(&first);
    let csv = String::from_utf8(archive["audit_log.csv"].clone()).unwrap();
    assert!(
        csv.starts_with("id,actor,action,detail,created_at\n")
            && csv.contains(",\"she said \"\"hi\"\"\",")
            && csv.contains(",mark,\"\","),
        "{csv}"
    );
    let jsonl = String::from_utf8(archive["audit_log.jsonl"].clone()).unwrap();
    for text in AWKWARD {
        assert!(
            jsonl.contains(&serde_json::to_string(text).unwrap()),
            "{text:?} in {jsonl}"
        );
    }

    // SQLite → PostgreSQL: the same files, byte for byte.
    import(&pg, &first, "acme-pg").await.unwrap();
    let (second, m2) = export(&pg, "acme-pg", true).await;
    assert_eq!(m2.backend, "postgres");
    assert_eq!(m2.tables, m1.tables, "same tables, rows and hashes");
    assert_eq!(m2.schema, m1.schema);
    // The credentials came along: the admin signs in with the same password.
    let (status, body, _) =
        sign_in(&pg, "acme-pg.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // … and back to SQLite.
    import(&lite, &second, "acme-again").await.unwrap();
    let (_, m3) = export(&lite, "acme-again", true).await;
    assert_eq!(m3.tables, m1.tables);

    // A taken subdomain is refused, by the command line too.
    let err = import(&pg, &first, "acme-pg").await.unwrap_err();
    assert!(matches!(err, PortError::Taken(_)), "{err:?}");
    let env = pg.cli_env();
    let out = scratch("cli.zip");
    let out_s = out.display().to_string();
    let (ok, stdout, err) =
        crate::cli::run_server(&env, &["tenant", "export", "acme-pg", "-o", &out_s], "");
    assert!(
        ok && stdout.contains("exported acme-pg to"),
        "{stdout}{err}"
    );
    let (ok, stdout, err) = crate::cli::run_server(
        &env,
        &["tenant", "import", &out_s, "--subdomain", "acme-cli"],
        "",
    );
    assert!(
        ok && stdout.contains("imported acme-cli on default"),
        "{stdout}{err}"
    );
    let (ok, _, err) = crate::cli::run_server(
        &env,
        &["tenant", "import", &out_s, "--subdomain", "acme-cli"],
        "",
    );
    assert!(
        !ok && err.contains("The subdomain 'acme-cli' is taken."),
        "{err}"
    );
    lite.teardown().await;
    pg.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admins_export_holds_no_credentials_and_its_import_signs_no_one_in() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_company("Acme", "acme").await;
    fill(&app, "acme").await;
    let db = app.tenant_db("acme").await;
    let hash: String = db
        .query_one_raw(sea_orm::Statement::from_string(
            db.get_database_backend(),
            "SELECT password_hash FROM users LIMIT 1",
        ))
        .await
        .unwrap()
        .unwrap()
        .try_get("", "password_hash")
        .unwrap();
    db.close().await.unwrap();

    let (path, m) = export(&app, "acme", false).await;
    assert!(!m.credentials);
    let archive = files(&path);
    assert!(
        !archive.contains_key("sessions.jsonl") && !archive.contains_key("password_resets.csv")
    );
    let users = m.tables.iter().find(|t| t.name == "users").unwrap();
    assert_eq!(users.omitted, ["password_hash"]);
    assert!(!String::from_utf8_lossy(&archive["users.csv"]).contains("password_hash"));
    for (name, bytes) in &archive {
        let text = String::from_utf8_lossy(bytes);
        assert!(!text.contains(&hash), "{name} holds a password hash");
        assert!(!text.contains("$argon2"), "{name} holds a password hash");
    }

    // It imports, with everything but the credentials; no one signs in
    // with a password until they reset it.
    import(&app, &path, "acme-copy").await.unwrap();
    let (_, again) = export(&app, "acme-copy", false).await;
    assert_eq!(again.tables, m.tables);
    let (status, _, _) = sign_in(
        &app,
        "acme-copy.localhost",
        "admin@acme.test",
        ADMIN_PASSWORD,
    )
    .await;
    assert_ne!(status, StatusCode::OK);
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_archive_of_an_older_schema_is_loaded_then_migrated_up() {
    let app = spawn_app(Backend::Postgres).await;
    app.create_company("Acme", "acme").await;
    fill(&app, "acme").await;
    let db = app.tenant_db("acme").await;
    TenantMigrator::down(&db, Some(1)).await.unwrap();
    db.close().await.unwrap();
    let (path, m) = export(&app, "acme", true).await;
    let latest = app::ssr::tenancy::schema::migrate::latest_tenant_schema();
    assert!(m.schema < latest, "{} is older", m.schema);

    let done = app
        .services
        .import_tenant(&path, &Subdomain::parse("acme-new").unwrap(), None)
        .await
        .unwrap();
    assert_eq!(done.migrated_from.as_deref(), Some(m.schema.as_str()));
    let (_, now) = export(&app, "acme-new", true).await;
    assert_eq!(now.schema, latest);
    assert_eq!(now.tables, m.tables);
    app.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_archive_is_refused_with_its_reason_and_creates_nothing() {
    let app = spawn_app(Backend::Sqlite).await;
    app.create_company("Acme", "acme").await;
    fill(&app, "acme").await;
    let (path, m) = export(&app, "acme", true).await;
    let good = files(&path);
    let before = databases(&app);

    let mut cases: Vec<(&str, BTreeMap<String, Vec<u8>>, &str)> = Vec::new();
    let mut changed = good.clone();
    let csv = changed.get_mut("audit_log.csv").unwrap();
    let at = csv.len() - 3;
    csv[at] ^= 0x01;
    cases.push((
        "a changed byte",
        changed,
        "audit_log.csv does not match its SHA-256",
    ));
    let mut missing = good.clone();
    missing.remove("users.jsonl");
    cases.push((
        "a missing file",
        missing,
        "users.jsonl is listed in the manifest but missing",
    ));
    let mut added = good.clone();
    let jsonl = added.get_mut("audit_log.jsonl").unwrap();
    let first_line = jsonl[..=jsonl.iter().position(|&b| b == b'\n').unwrap()].to_vec();
    jsonl.extend_from_slice(&first_line);
    cases.push(("a row added", added, "audit_log.jsonl does not match"));
    let mut extra = good.clone();
    extra.insert("notes.txt".into(), b"hello".to_vec());
    cases.push((
        "a file not in the manifest",
        extra,
        "it holds notes.txt, which the manifest does not list",
    ));
    let mut newer = good.clone();
    let mut future = m.clone();
    future.schema = "m29991231_000001_from_the_future".into();
    newer.insert("manifest.json".into(), serde_json::to_vec(&future).unwrap());
    cases.push(("a newer schema", newer, "is newer than this Enclave knows"));
    let mut row_count = good.clone();
    let mut miscounted = m.clone();
    miscounted.tables[0].rows += 1;
    row_count.insert(
        "manifest.json".into(),
        serde_json::to_vec(&miscounted).unwrap(),
    );
    cases.push((
        "a count that the file does not hold",
        row_count,
        "rows; the manifest says",
    ));

    for (what, contents, says) in cases {
        let bad = scratch("bad.zip");
        write(&bad, &contents);
        let err = import(&app, &bad, "acme-bad").await.unwrap_err();
        assert!(
            matches!(err, PortError::Refused(_) | PortError::Newer { .. }),
            "{what}: {err:?}"
        );
        assert!(err.to_string().contains(says), "{what}: {err}");
        assert!(!exists(&app, "acme-bad").await, "{what}: no company");
        assert_eq!(databases(&app), before, "{what}: no database");
    }
    let not_zip = scratch("notes.zip");
    std::fs::write(&not_zip, b"not a zip").unwrap();
    let err = import(&app, &not_zip, "acme-bad").await.unwrap_err();
    assert!(err.to_string().contains("not a ZIP archive"), "{err}");

    // A value of the wrong kind passes the hashes (the manifest was made to
    // match) but not the load: the company made for it is undone.
    let mut wrong = good.clone();
    let users = String::from_utf8(wrong["users.jsonl"].clone()).unwrap();
    let users = users.replacen("\"disabled\":false", "\"disabled\":\"no\"", 1);
    let mut fixed = m.clone();
    let entry = fixed.tables.iter_mut().find(|t| t.name == "users").unwrap();
    entry.files[1].sha256 = app::ssr::tenancy::portability::archive::hex(&{
        use sha2::Digest;
        sha2::Sha256::digest(users.as_bytes())
    });
    wrong.insert("users.jsonl".into(), users.into_bytes());
    wrong.insert("manifest.json".into(), serde_json::to_vec(&fixed).unwrap());
    let bad = scratch("wrong.zip");
    write(&bad, &wrong);
    let err = import(&app, &bad, "acme-bad").await.unwrap_err();
    assert!(
        err.to_string()
            .contains("users.jsonl line 1: 'disabled' is not true or false"),
        "{err}"
    );
    assert!(!exists(&app, "acme-bad").await);
    assert_eq!(databases(&app), before);
    app.teardown().await;
}
