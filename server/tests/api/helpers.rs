//! `spawn_app`: a real server on a random port with its own registry, and
//! on PostgreSQL its own tenant databases, all dropped by `teardown`.
use app::domain::{CompanyName, Email, Password, Subdomain};
use app::ssr::{
    entities::tenants::{self, TenantStatus},
    secrets::Cipher,
    services::Services,
    tenancy::{lifecycle::provisioning::NewTenant, request::directory},
};
use reqwest::header::{self, HOST};
use reqwest::StatusCode;
use sea_orm::{ActiveModelTrait, ConnectionTrait, Database, Set};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use server::{
    config::{LogFormat, Settings},
    startup::Application,
};
use uuid::Uuid;

/// Where the PostgreSQL tests make their databases (trust auth).
/// TLS is pointless on loopback and costly in debug builds.
pub const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";

pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs one async test body once per backend, as two named tests.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Backend::Postgres).await
            }
        }
    )*};
}

pub struct TestApp {
    pub address: String,
    pub services: Services,
    pub settings: Settings,
    pub client: reqwest::Client,
}

/// Settings for a fresh, isolated app: its own data directory and, on
/// PostgreSQL, its own registry database (created here).
pub async fn test_settings(backend: Backend) -> Settings {
    let id = Uuid::new_v4().simple().to_string();
    let data_dir = std::env::temp_dir().join(format!("enclave-test-{id}"));
    let (registry_url, tenant_db_url) = match backend {
        Backend::Sqlite => (None, None),
        Backend::Postgres => {
            let name = format!("enclave_test_{id}");
            // `name` is built from a UUID above, never from input.
            pg_admin(&format!("CREATE DATABASE \"{name}\"")).await;
            (
                Some(SecretString::from(format!(
                    "postgres://postgres@127.0.0.1:5432/{name}?sslmode=disable"
                ))),
                Some(SecretString::from(PG_ADMIN_URL)),
            )
        }
    };
    Settings {
        base_domain: "localhost".into(),
        data_dir,
        registry_url,
        tenant_db_url,
        secret_key: Some(Cipher::generate_hex_key()),
        secret_key_previous: None,
        tenant_pool_size: 2,
        connection_budget: Some(64),
        busy_budget: 64,
        tenant_queue: 32,
        tenant_statement_timeout_ms: 10_000,
        tenant_idle_in_transaction_ms: 30_000,
        migration_lock_timeout_ms: 5_000,
        migration_statement_timeout_ms: 600_000,
        migration_canaries: String::new(),
        tenant_connection_limit: 20,
        connection_reserve: 10,
        instances: 1,
        tenant_idle_secs: 300,
        tenant_acquire_timeout_ms: 2000,
        tenant_cache_secs: 5,
        directory_stale_secs: 3600,
        tenant_template: true,
        provisioning_timeout_secs: 120,
        secure_cookies: None,
        trusted_proxies: vec![],
        signups_per_hour: 1000,
        invitations_per_day: 200,
        public_url: None,
        company_requests_per_second: 0,
        smtp_url: None,
        mail_from: None,
        provisioning_records_days: 30,
        pgbackrest_config: None,
        backup_os_user: None,
        pg_bin: None,
        backup_retention_full: 2,
        restore_dir: None,
        restore_memory_mb: app::ssr::tenancy::backups::DEFAULT_MEMORY_MB,
        restore_cores: None,
        restore_keep_days: 7,
        snapshot_every: server::config::Every(None),
        snapshot_keep_days: 7,
        deletion_grace_days: 30,
        subdomain_reserved_days: 90,
        backup_full_every_days: 7,
        dns_server: None,
        domain_target: None,
        domain_recheck_secs: 3_600,
        domain_grace_secs: 259_200,
        caddy_ask_listen: None,
        rename_redirect_days: 90,
        rename_reserved_days: 180,
        header_timeout_secs: 10,
        request_timeout_ms: 30_000,
        max_concurrent_requests: 512,
        listen: "127.0.0.1:0".parse().unwrap(),
        site_root: "target/site".into(),
        log_format: LogFormat::Human,
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(backend: Backend, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = test_settings(backend).await;
    tweak(&mut settings);
    start(settings).await
}

/// Starts an app on existing settings (a "restart" when another app used them).
pub async fn start(settings: Settings) -> TestApp {
    let app = Application::build(settings.clone())
        .await
        .expect("app builds");
    let port = app.port();
    let services = app.services().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        services,
        // A request that hangs fails its test instead of the whole run.
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .unwrap(),
        settings,
    }
}

pub fn new_tenant(name: &str, subdomain: &str) -> NewTenant {
    NewTenant {
        name: CompanyName::parse(name).unwrap(),
        subdomain: Subdomain::parse(subdomain).unwrap(),
        admin_email: Email::parse(&format!("admin@{subdomain}.test")).unwrap(),
        admin_password: Password::parse(ADMIN_PASSWORD).unwrap().into(),
    }
}

impl TestApp {
    /// GET `path` as if the browser asked for `host` (e.g. `acme.localhost:3000`).
    pub async fn get(&self, host: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .header(HOST, host)
            .send()
            .await
            .expect("request sent")
    }

    /// A new key, and a cipher that seals with it and still opens what the
    /// app's key sealed: what `secret rotate` works with.
    pub fn rotating_cipher(&self) -> (SecretString, Cipher) {
        let old = self.settings.secret_key.clone().unwrap();
        let new = Cipher::generate_hex_key();
        let rotating = Cipher::from_hex_key(&new)
            .unwrap()
            .with_previous(&old)
            .unwrap();
        (new, rotating)
    }

    /// A connection to company `sub`'s own database, as its own role.
    pub async fn tenant_db(&self, sub: &str) -> sea_orm::DatabaseConnection {
        self.services
            .connect_tenant(&Subdomain::parse(sub).unwrap())
            .await
            .unwrap()
    }

    /// Company `sub`'s connection URL (a secret), as its own role.
    pub async fn tenant_db_url(&self, sub: &str) -> SecretString {
        self.services
            .database_url(&Subdomain::parse(sub).unwrap())
            .await
            .unwrap()
    }

    /// What the site middleware makes of `host`, the way a request does.
    pub async fn resolve(&self, host: &str) -> app::ssr::tenancy::RequestSite {
        app::ssr::tenancy::Resolver::new(
            self.settings.base_domain.clone(),
            self.services.directory.clone(),
            self.services.pools.clone(),
            self.services.addresses.clone(),
        )
        .resolve(host, "http")
        .await
        .unwrap()
    }

    /// The environment that points the `server` binary at this app's
    /// registry, companies and key (for [`crate::cli::run_server`]).
    pub fn cli_env(&self) -> Vec<(&'static str, String)> {
        let s = &self.settings;
        let mut env = vec![
            ("ENCLAVE_DATA_DIR", s.data_dir.display().to_string()),
            (
                "ENCLAVE_SECRET_KEY",
                s.secret_key.as_ref().unwrap().expose_secret().to_owned(),
            ),
        ];
        if let (Some(r), Some(t)) = (&s.registry_url, &s.tenant_db_url) {
            env.push(("ENCLAVE_REGISTRY_URL", r.expose_secret().to_owned()));
            env.push(("ENCLAVE_TENANT_DB_URL", t.expose_secret().to_owned()));
        }
        let paths = [
            ("ENCLAVE_PGBACKREST_CONFIG", &s.pgbackrest_config),
            ("ENCLAVE_PG_BIN", &s.pg_bin),
            ("ENCLAVE_RESTORE_DIR", &s.restore_dir),
        ];
        for (k, v) in paths {
            if let Some(v) = v {
                env.push((k, v.display().to_string()));
            }
        }
        if let Some(user) = &s.backup_os_user {
            env.push(("ENCLAVE_BACKUP_OS_USER", user.clone()));
        }
        env
    }

    /// Companies `subs` (named "Co"), made through the real provisioning
    /// path `at_once` at a time (each hashes its admin's password in one of
    /// the process's hashing slots).
    pub async fn create_companies(&self, subs: &[String], at_once: usize) {
        for chunk in subs.chunks(at_once) {
            let made: Vec<_> = chunk
                .iter()
                .map(|s| {
                    let services = self.services.clone();
                    let s = s.clone();
                    tokio::spawn(async move {
                        services.create_tenant(new_tenant("Co", &s)).await.unwrap()
                    })
                })
                .collect();
            for h in made {
                h.await.unwrap();
            }
        }
    }

    /// A company made through the real provisioning path.
    pub async fn create_company(&self, name: &str, subdomain: &str) -> tenants::Model {
        self.services
            .create_tenant(new_tenant(name, subdomain))
            .await
            .expect("company created")
    }

    pub async fn set_status(&self, subdomain: &str, status: TenantStatus) {
        let t = directory::find_by_subdomain(
            &self.services.registry,
            &Subdomain::parse(subdomain).unwrap(),
        )
        .await
        .unwrap()
        .expect("tenant exists");
        tenants::ActiveModel {
            id: Set(t.id),
            status: Set(status),
            ..Default::default()
        }
        .update(&self.services.registry)
        .await
        .unwrap();
        self.services.directory.invalidate(subdomain);
    }

    /// Drops what this app created. Called at the end of each test; a
    /// failed test leaves its databases for `make clean-test-dbs`.
    pub async fn teardown(self) {
        // Generous: dropping hundreds of PostgreSQL databases takes a while;
        // the bound is only there so a stuck close cannot hang the run.
        let bounded = std::time::Duration::from_secs(300);
        let cleanup = async {
            if let Ok(tenants) = directory::list(&self.services.registry).await {
                for t in tenants {
                    self.services.pools.forget(t.id).await;
                    if let Ok(server) = self
                        .services
                        .provisioner
                        .fleet()
                        .server(t.db_server.as_deref())
                        .await
                    {
                        let _ = server.drop(t.id).await;
                    }
                }
            }
        };
        if tokio::time::timeout(bounded, cleanup).await.is_err() {
            eprintln!("teardown: tenant cleanup took over {bounded:?}; `make clean-test-dbs` removes leftovers");
        }
        // The registry pool is shared with the still-running server, so it
        // is not closed here (closing waits for every checked-out
        // connection); dropping the database or directory is enough.
        drop_registry(&self.settings).await;
    }
}

/// Drops the registry database (PostgreSQL) and the data directory.
pub async fn drop_registry(settings: &Settings) {
    if let Some(url) = &settings.registry_url {
        let name = secrecy::ExposeSecret::expose_secret(url)
            .rsplit('/')
            .next()
            .unwrap()
            .split('?')
            .next()
            .unwrap()
            .to_owned();
        pg_admin(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).await;
    }
    let _ = std::fs::remove_dir_all(&settings.data_dir);
}

/// Runs one statement as the PostgreSQL administrator (on its own
/// connection: `CREATE DATABASE` and friends refuse a transaction block).
pub async fn pg_admin(sql: &str) {
    let admin = Database::connect(PG_ADMIN_URL)
        .await
        .expect("PostgreSQL at 127.0.0.1:5432");
    admin
        .execute_unprepared(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    admin.close().await.ok();
}

// Typed requests as a browser makes them, shared by the test files.

/// A browser's cookie jar for one host.
#[derive(Default, Clone)]
pub struct Jar(pub Option<String>);

impl Jar {
    /// The value of cookie `name`, if the jar holds it.
    pub fn get(&self, name: &str) -> Option<String> {
        self.0
            .iter()
            .flat_map(|c| c.split("; "))
            .filter_map(|pair| pair.split_once('='))
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_owned())
    }

    /// Keeps every cookie the response sets, by name, as a browser does.
    pub fn take_from(&mut self, res: &reqwest::Response) {
        let mut cookies: Vec<(String, String)> = self
            .0
            .iter()
            .flat_map(|c| c.split("; "))
            .filter_map(|pair| pair.split_once('='))
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for set in res.headers().get_all(header::SET_COOKIE) {
            let pair = set.to_str().unwrap().split(';').next().unwrap();
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            cookies.retain(|(n, _)| n != name);
            cookies.push((name.to_owned(), value.to_owned()));
        }
        if !cookies.is_empty() {
            let joined: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
            self.0 = Some(joined.join("; "));
        }
    }
}

/// Calls a server function as the hydrated app does. A redirect it asks
/// for comes back as `Location` (with 200), as leptos does for fetches.
pub async fn call(
    app: &TestApp,
    host: &str,
    jar: &mut Jar,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let (status, body, _) = call_full(app, host, jar, endpoint, form).await;
    (status, body)
}

pub async fn call_full(
    app: &TestApp,
    host: &str,
    jar: &mut Jar,
    endpoint: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value, Option<String>) {
    let mut req = app
        .client
        .post(format!("{}/api/{endpoint}", app.address))
        .header(header::HOST, host)
        .header(header::ACCEPT, "application/json")
        .form(form);
    if let Some(c) = &jar.0 {
        req = req.header(header::COOKIE, c);
    }
    let res = req.send().await.unwrap();
    jar.take_from(&res);
    let status = res.status();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|l| l.to_str().unwrap().to_owned());
    let body = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
        location,
    )
}

/// GETs a page as a browser does.
pub async fn get(app: &TestApp, host: &str, jar: &mut Jar, path: &str) -> reqwest::Response {
    let mut req = app
        .client
        .get(format!("{}{path}", app.address))
        .header(header::HOST, host)
        .header(header::ACCEPT, "text/html");
    if let Some(c) = &jar.0 {
        req = req.header(header::COOKIE, c);
    }
    let res = req.send().await.unwrap();
    jar.take_from(&res);
    res
}

/// Posts a form as a browser without JavaScript does (or before the page
/// hydrated): HTML accepted, the page it was on as `Referer`.
pub async fn post_plain_form(
    app: &TestApp,
    host: &str,
    jar: &mut Jar,
    endpoint: &str,
    form: &[(&str, &str)],
    from_page: &str,
) -> reqwest::Response {
    let mut req = app
        .client
        .post(format!("{}/api/{endpoint}", app.address))
        .header(header::HOST, host)
        .header(header::ACCEPT, "text/html,application/xhtml+xml")
        .header(header::REFERER, format!("http://{host}{from_page}"))
        .form(form);
    if let Some(c) = &jar.0 {
        req = req.header(header::COOKIE, c);
    }
    let res = req.send().await.unwrap();
    jar.take_from(&res);
    res
}

/// Where a redirect goes, as a path on the same host.
pub fn location_path(res: &reqwest::Response) -> String {
    let location = res.headers()[header::LOCATION].to_str().unwrap();
    match location.split_once("://") {
        Some((_, rest)) => rest[rest.find('/').unwrap_or(rest.len())..].to_owned(),
        None => location.to_owned(),
    }
}

pub async fn sign_in(
    app: &TestApp,
    host: &str,
    email: &str,
    password: &str,
) -> (StatusCode, Value, Jar) {
    let mut jar = Jar::default();
    let (status, body, location) = call_full(
        app,
        host,
        &mut jar,
        "login",
        &[("email", email), ("password", password)],
    )
    .await;
    if status == StatusCode::OK {
        assert_eq!(
            location.as_deref(),
            Some("/"),
            "sign-in goes on to the dashboard"
        );
    }
    (status, body, jar)
}

/// The token of the newest signup-confirmation link mailed to `email`
/// (from the outbox), waiting for it if need be.
pub async fn signup_link(app: &TestApp, email: &str, nth: usize) -> String {
    let outbox = app.services.mailer.outbox().expect("the outbox").to_owned();
    let messages = crate::mailbox::wait_for(&outbox, email, nth).await;
    crate::mailbox::link_token(&messages[nth - 1], "/verify/")
}

/// Drops the registry and the role of an administrator a test made (with
/// only CREATEDB and CREATEROLE), giving what it still owns (a template it
/// built) to postgres first. `su` is the server's superuser.
pub async fn drop_lean_admin(su: &sea_orm::DatabaseConnection, registry: &str, admin: &str) {
    // Names a test built from a UUID, never from input.
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{registry}\" WITH (FORCE)"),
        format!("REASSIGN OWNED BY \"{admin}\" TO postgres"),
        format!("DROP OWNED BY \"{admin}\""),
        format!("DROP ROLE \"{admin}\""),
    ] {
        su.execute_unprepared(&sql).await.unwrap();
    }
}

/// Opens a one-time link as a browser does: its first view swaps the token
/// for a cookie and redirects to the clean address, which is then loaded
/// with that cookie. Returns the clean address's response.
pub async fn open_link(app: &TestApp, host: &str, path: &str) -> reqwest::Response {
    let mut link = Jar::default();
    let first = get(app, host, &mut link, path).await;
    assert_eq!(
        first.status(),
        StatusCode::SEE_OTHER,
        "a link's first view is swapped for a cookie"
    );
    let clean = location_path(&first);
    get(app, host, &mut link, &clean).await
}

/// A tenant migrator as a release might ship: `$base`'s migrations, then
/// one more for each `name => SQL` given.
#[macro_export]
macro_rules! release {
    ($(#[$doc:meta])* $release:ident = $base:ty $(, $name:expr => $sql:expr)* $(,)?) => {
        $(#[$doc])*
        struct $release;

        impl migration::MigratorTrait for $release {
            fn migrations() -> Vec<Box<dyn migration::MigrationTrait>> {
                #[allow(unused_mut)]
                let mut all = <$base as migration::MigratorTrait>::migrations();
                $(all.push(Box::new($crate::helpers::SqlMigration { name: $name, sql: $sql }));)*
                all
            }
        }
    };
}

/// One SQL statement as a tenant migration, as a release might add
/// (tests' constants, never input).
pub struct SqlMigration {
    pub name: &'static str,
    pub sql: &'static str,
}

impl migration::MigrationName for SqlMigration {
    fn name(&self) -> &str {
        self.name
    }
}

#[async_trait::async_trait]
impl migration::MigrationTrait for SqlMigration {
    async fn up(&self, manager: &migration::SchemaManager) -> Result<(), sea_orm::DbErr> {
        manager
            .get_connection()
            .execute_unprepared(self.sql)
            .await
            .map(|_| ())
    }
}

/// A self-signed certificate for `domain` and `*.domain` in `dir` (key and
/// certificate files named as given), made with openssl.
pub fn self_signed_certificate(dir: &std::path::Path, key: &str, cert: &str, domain: &str) {
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "1", "-subj", &format!("/CN={domain}")])
        .args([
            "-addext",
            &format!("subjectAltName=DNS:{domain},DNS:*.{domain}"),
        ])
        .arg("-keyout")
        .arg(dir.join(key))
        .arg("-out")
        .arg(dir.join(cert))
        .output()
        .expect("openssl is installed (make setup installs it)");
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
}
