//! A company's other addresses: a renamed subdomain that keeps redirecting and hands people over, and custom domains proven by a TXT record on a real DNS server (dnsmasq), served over HTTPS by a real Caddy with `deploy/Caddyfile`.
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use app::domain::Subdomain;
use app::ssr::entities::subdomain_aliases;
use app::ssr::tenancy::request::directory;
use reqwest::{header, StatusCode};
use sea_orm::{sea_query::Expr, ColumnTrait, EntityTrait, QueryFilter};

use crate::helpers::{get, post_plain_form, sign_in, spawn_app_with, Backend, Jar, ADMIN_PASSWORD};
use crate::on_both_backends;
use crate::pg_cluster::free_port;

on_both_backends!(a_renamed_company_redirects_its_old_address_and_hands_people_over,);

async fn a_renamed_company_redirects_its_old_address_and_hands_people_over(backend: Backend) {
    let app = spawn_app_with(backend, |_| {}).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Rival", "rival").await;
    let (status, _, mut jar) =
        sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);

    // The admin changes the address on the settings page, as a plain form.
    let res = post_plain_form(
        &app,
        "acme.localhost",
        &mut jar,
        "change_subdomain",
        &[("subdomain", "acme-corp")],
        "/settings",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        crate::helpers::location_path(&res),
        "/settings?address=changed#address"
    );

    // Where it sends them is the old host now: a signed-in person is handed
    // over with a one-time token, in an answer no browser keeps.
    let res = get(
        &app,
        "acme.localhost",
        &mut jar,
        "/settings?address=changed",
    )
    .await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    let to = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let handoff = to
        .strip_prefix("http://acme-corp.localhost/")
        .unwrap_or_else(|| panic!("to the new host: {to}"));
    assert!(handoff.starts_with("auth/handoff?token="), "{to}");
    assert!(
        handoff.ends_with("&next=%2Fsettings%3Faddress%3Dchanged"),
        "{to}"
    );
    let mut there = Jar::default();
    let res = get(
        &app,
        "acme-corp.localhost",
        &mut there,
        &format!("/{handoff}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        crate::helpers::location_path(&res),
        "/settings?address=changed"
    );
    let page = get(
        &app,
        "acme-corp.localhost",
        &mut there,
        "/settings?address=changed",
    )
    .await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("The company has its new address."),
        "signed in at the new host"
    );
    assert!(
        html.contains("http://acme-corp.localhost:"),
        "its address shown: {html}"
    );
    // The token was spent.
    let again = get(
        &app,
        "acme-corp.localhost",
        &mut Jar::default(),
        &format!("/{handoff}"),
    )
    .await;
    assert_eq!(
        crate::helpers::location_path(&again),
        "/login?handoff=expired"
    );

    // Anyone else, any path and query, any method: 308 to the same place,
    // kept by a browser for a day at most.
    for (method, path) in [
        ("GET", "/users?page=2&q=a%20b"),
        ("POST", "/api/login"),
        ("GET", "/"),
    ] {
        let res = app
            .client
            .request(method.parse().unwrap(), format!("{}{path}", app.address))
            .header(header::HOST, "acme.localhost:3000")
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::PERMANENT_REDIRECT,
            "{method} {path}"
        );
        assert_eq!(
            res.headers()[header::LOCATION],
            format!("http://acme-corp.localhost:3000{path}").as_str()
        );
        assert_eq!(res.headers()[header::CACHE_CONTROL], "max-age=86400");
    }

    // A one-time link made before the rename goes on to the new host whole.
    let res = app
        .get(
            "acme.localhost",
            &format!("/password/reset/{}", "ab".repeat(32)),
        )
        .await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        res.headers()[header::LOCATION],
        format!(
            "http://acme-corp.localhost/password/reset/{}",
            "ab".repeat(32)
        )
        .as_str()
    );
    assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
    assert!(
        res.headers().get(header::SET_COOKIE).is_none(),
        "no cookie for the old host"
    );

    // The old name is no one else's: not at signup, not by renaming.
    let acme = Subdomain::parse("acme").unwrap();
    assert!(directory::subdomain_taken(&app.services.registry, &acme)
        .await
        .unwrap());
    assert!(app
        .services
        .create_tenant(crate::helpers::new_tenant("Imposter", "acme"))
        .await
        .is_err());
    let taken = app
        .services
        .rename_company(&Subdomain::parse("rival").unwrap(), &acme, "test")
        .await
        .unwrap_err();
    assert!(taken.to_string().contains("acme is taken"), "{taken}");
    // A name in use is refused with a message, and nothing changes.
    let res = post_plain_form(
        &app,
        "acme-corp.localhost",
        &mut there,
        "change_subdomain",
        &[("subdomain", "rival")],
        "/settings",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = get(
        &app,
        "acme-corp.localhost",
        &mut there,
        &crate::helpers::location_path(&res),
    )
    .await;
    assert!(back
        .text()
        .await
        .unwrap()
        .contains("rival is taken; choose another"));

    // The company's audit log and its admins' mail say what happened.
    let db = app.tenant_db("acme-corp").await;
    let audit = app::ssr::accounts::users::audit_page(&db, 0, 50)
        .await
        .unwrap();
    assert!(
        audit.iter().any(|r| r.action == "company.address_changed"
            && r.detail.contains("from acme to acme-corp")),
        "{audit:?}"
    );
    let outbox = app.services.mailer.outbox().unwrap().to_owned();
    let mail = crate::mailbox::wait_for(&outbox, "admin@acme.test", 1).await;
    assert!(mail.iter().any(|m| m.contains("has a new address")));

    // It may take its old name back; the name it leaves redirects then.
    app.services
        .rename_company(&Subdomain::parse("acme-corp").unwrap(), &acme, "test")
        .await
        .unwrap();
    assert_eq!(
        app.get("acme.localhost", "/login").await.status(),
        StatusCode::OK
    );
    let res = app.get("acme-corp.localhost", "/login").await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        res.headers()[header::LOCATION],
        "http://acme.localhost/login"
    );

    // After its redirect period the old name answers as no company's, yet
    // stays reserved for the rest of its time.
    subdomain_aliases::Entity::update_many()
        .col_expr(
            subdomain_aliases::Column::RedirectUntil,
            Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(subdomain_aliases::Column::Subdomain.eq("acme-corp"))
        .exec(&app.services.registry)
        .await
        .unwrap();
    app.services.addresses.refresh().await.unwrap();
    assert_eq!(
        app.get("acme-corp.localhost", "/login").await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(directory::subdomain_taken(
        &app.services.registry,
        &Subdomain::parse("acme-corp").unwrap()
    )
    .await
    .unwrap());
    app.teardown().await;
}

/// Custom domains end to end: refused names, one domain per company,
/// nothing served or certified before the TXT record proves it, HTTPS
/// through Caddy once it does, and served no more once the record has
/// been gone past the grace period; Caddy's `ask` keeps its last answers
/// with the registry gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn custom_domains_are_served_over_https_only_once_their_txt_record_proves_them() {
    let dir =
        std::env::temp_dir().join(format!("enclave-domains-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut dns = Dnsmasq::start(&dir, &[]);
    let ask_port = free_port();
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.base_domain = "enclave.test".into();
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        s.dns_server = Some(format!("127.0.0.1:{}", dns.port).parse().unwrap());
        s.caddy_ask_listen = Some(format!("127.0.0.1:{ask_port}").parse().unwrap());
        s.domain_recheck_secs = 1;
        s.domain_grace_secs = 3;
    })
    .await;
    let acme = app.create_company("Acme Corp", "acme").await;
    let rival = app.create_company("Rival", "rival").await;
    let s = &app.services;

    // Names that cannot be a company's, and one domain per company.
    for (bad, why) in [
        ("127.0.0.1", "IP addresses"),
        ("acme.enclave.test", "part of this platform"),
        ("enclave.test", "part of this platform"),
        ("localhost", "at least two labels"),
        ("ac_me.test", "not a valid domain name"),
    ] {
        let e = s.add_domain(acme.id, bad).await.unwrap_err();
        assert!(e.to_string().contains(why), "{bad}: {e}");
    }
    let app_domain = s
        .add_domain(acme.id, "https://App.Acme.TEST./login")
        .await
        .unwrap();
    assert_eq!(app_domain.domain, "app.acme.test");
    let gone = s.add_domain(acme.id, "gone.acme.test").await.unwrap();
    let e = s.add_domain(rival.id, "APP.acme.test").await.unwrap_err();
    assert!(e.to_string().contains("already added"), "{e}");

    let app_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let caddy = Caddy::start(&dir, app_port, ask_port);
    let ask = |name: &str| {
        let url = format!("http://127.0.0.1:{ask_port}/ask?domain={name}");
        async move { reqwest::get(url).await.unwrap().status() }
    };

    // Not yet proven: not served, and Caddy is refused a certificate.
    assert_eq!(ask("app.acme.test").await, StatusCode::NOT_FOUND);
    assert_eq!(
        app.get("app.acme.test", "/login").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert!(tokio::task::block_in_place(|| caddy.https("app.acme.test", "/login")).is_err());
    assert!(
        caddy.certificates_for("app.acme.test").is_empty(),
        "no certificate issued"
    );

    // The records are published; the background recheck finds them.
    tokio::task::block_in_place(|| {
        dns.restart(&[
            (
                format!("_enclave-challenge.{}", app_domain.domain),
                app_domain.token.clone(),
            ),
            (
                format!("_enclave-challenge.{}", gone.domain),
                gone.token.clone(),
            ),
            (
                "_enclave-challenge.evil.test".into(),
                app_domain.token.clone(),
            ),
        ])
    });
    let published = Instant::now();
    let page = loop {
        if let Ok(page) = tokio::task::block_in_place(|| caddy.https("app.acme.test", "/login")) {
            break page;
        }
        assert!(
            published.elapsed() < Duration::from_secs(120),
            "not served within 2 minutes"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "served over https {:.1} s after the TXT record was published",
        published.elapsed().as_secs_f64()
    );
    assert!(page.starts_with("200 "), "{page}");
    assert!(
        page.contains("Sign in") && page.contains("Acme Corp"),
        "the company's sign-in page: {page}"
    );
    assert!(!caddy.certificates_for("app.acme.test").is_empty());
    // A name whose record holds someone's token but that no company added.
    assert_eq!(ask("evil.test").await, StatusCode::NOT_FOUND);
    assert!(tokio::task::block_in_place(|| caddy.https("evil.test", "/")).is_err());
    assert!(caddy.certificates_for("evil.test").is_empty());

    // Over the domain, the company as through its subdomain: sign-in too.
    let (status, _, mut jar) =
        sign_in(&app, "app.acme.test", "admin@acme.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    let home = get(&app, "app.acme.test", &mut jar, "/").await;
    assert_eq!(home.status(), StatusCode::OK);
    // A link from the domain to the subdomain hands the person over.
    let res = get(
        &app,
        "app.acme.test",
        &mut jar,
        "/auth/over?to=acme&next=/users",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let path = to
        .strip_prefix("http://acme.enclave.test")
        .unwrap_or_else(|| panic!("to the subdomain: {to}"));
    assert!(
        path.starts_with("/auth/handoff?token=") && path.ends_with("&next=%2Fusers"),
        "{to}"
    );
    let mut at_subdomain = Jar::default();
    let res = get(&app, "acme.enclave.test", &mut at_subdomain, path).await;
    assert_eq!(crate::helpers::location_path(&res), "/users");
    let users = get(&app, "acme.enclave.test", &mut at_subdomain, "/users").await;
    assert_eq!(users.status(), StatusCode::OK);
    // It leads to the company's own addresses only.
    for elsewhere in ["rival", "evil.test", "rival.enclave.test"] {
        let res = get(
            &app,
            "app.acme.test",
            &mut jar,
            &format!("/auth/over?to={elsewhere}"),
        )
        .await;
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{elsewhere}");
    }

    // The primary address: mail links use it, and the subdomain can send
    // people there (a signed-in one handed over).
    s.verify_domain(acme.id, "gone.acme.test").await.unwrap();
    s.set_primary_domain(acme.id, Some("app.acme.test"), true)
        .await
        .unwrap();
    assert!(s
        .company_url(acme.id, "acme")
        .starts_with("http://app.acme.test:"));
    let res = app.get("acme.enclave.test", "/users?x=1").await;
    assert_eq!(res.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        res.headers()[header::LOCATION],
        "http://app.acme.test/users?x=1"
    );
    s.set_primary_domain(acme.id, None, false).await.unwrap();
    assert_eq!(
        app.get("acme.enclave.test", "/login").await.status(),
        StatusCode::OK
    );

    // One record taken away: served through the grace period, then not.
    tokio::task::block_in_place(|| {
        dns.restart(&[(
            format!("_enclave-challenge.{}", app_domain.domain),
            app_domain.token.clone(),
        )])
    });
    let removed = Instant::now();
    while ask("gone.acme.test").await == StatusCode::OK {
        assert!(
            removed.elapsed() < Duration::from_secs(60),
            "still served a minute later"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(
        removed.elapsed() >= Duration::from_secs(3),
        "not before the grace period"
    );
    assert_eq!(
        app.get("gone.acme.test", "/login").await.status(),
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        ask("app.acme.test").await,
        StatusCode::OK,
        "the other one stays"
    );

    // The registry gone: the ask answers from what it last knew.
    app.services.registry.clone().close().await.unwrap();
    assert!(app.services.addresses.refresh().await.is_err());
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(ask("app.acme.test").await, StatusCode::OK);
    assert_eq!(ask("gone.acme.test").await, StatusCode::NOT_FOUND);
    assert_eq!(ask("unknown.example").await, StatusCode::NOT_FOUND);
    drop(caddy);
    drop(dns);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `deploy/Caddyfile` does not parse without the ask, and with it hands
/// certificates out only on demand, after asking.
#[test]
fn the_caddyfile_cannot_start_without_the_ask() {
    let dir = std::env::temp_dir().join(format!(
        "enclave-caddyfile-{}",
        uuid::Uuid::new_v4().simple()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    wildcard_certificate(&dir);
    let adapt = |ask: Option<&str>| {
        let mut cmd = Command::new("caddy");
        cmd.args(["adapt", "--adapter", "caddyfile", "--config"])
            .arg(caddyfile())
            .env("ENCLAVE_BASE_DOMAIN", "enclave.test")
            .env("ENCLAVE_WILDCARD_CERT", dir.join("cert.pem"))
            .env("ENCLAVE_WILDCARD_KEY", dir.join("key.pem"))
            .env_remove("ENCLAVE_CADDY_ASK");
        if let Some(ask) = ask {
            cmd.env("ENCLAVE_CADDY_ASK", ask);
        }
        cmd.output()
            .expect("caddy is installed (make setup installs it)")
    };
    let without = adapt(None);
    assert!(!without.status.success());
    assert!(
        String::from_utf8_lossy(&without.stderr).contains("ask"),
        "{}",
        String::from_utf8_lossy(&without.stderr)
    );
    let with = adapt(Some("http://127.0.0.1:3099/ask"));
    assert!(
        with.status.success(),
        "{}",
        String::from_utf8_lossy(&with.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&with.stdout).unwrap();
    let automation = &json["apps"]["tls"]["automation"];
    assert_eq!(automation["on_demand"]["ask"], "http://127.0.0.1:3099/ask");
    assert!(
        automation["policies"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["on_demand"] == true),
        "{automation}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

fn caddyfile() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/Caddyfile")
}

fn wildcard_certificate(dir: &Path) {
    crate::helpers::self_signed_certificate(dir, "key.pem", "cert.pem", "enclave.test");
}

/// A real DNS server (Debian's dnsmasq) on a loopback port, answering
/// only the TXT records it was started with.
struct Dnsmasq {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Dnsmasq {
    fn start(dir: &Path, records: &[(String, String)]) -> Self {
        let port = free_port();
        let mut this = Self {
            child: Self::spawn(dir, port, records),
            port,
            dir: dir.to_owned(),
        };
        this.wait_ready();
        this
    }

    fn spawn(dir: &Path, port: u16, records: &[(String, String)]) -> Child {
        let mut cmd = Command::new("dnsmasq");
        cmd.args([
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
        ])
        .args([
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--user=root",
            "--pid-file",
        ])
        .arg(format!("--port={port}"))
        .arg(format!(
            "--log-facility={}",
            dir.join("dnsmasq.log").display()
        ))
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
        for (name, value) in records {
            cmd.arg(format!("--txt-record={name},{value}"));
        }
        cmd.spawn()
            .expect("dnsmasq is installed (make setup installs it)")
    }

    fn wait_ready(&mut self) {
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(self.child.try_wait().unwrap().is_none(), "dnsmasq exited");
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "dnsmasq did not start"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The same server, now answering `records` (dnsmasq reads TXT records
    /// only at start).
    fn restart(&mut self, records: &[(String, String)]) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.child = Self::spawn(&self.dir, self.port, records);
        self.wait_ready();
    }
}

impl Drop for Dnsmasq {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Caddy running `deploy/Caddyfile`, its on-demand names from its
/// internal CA, its storage in a directory of the test's.
struct Caddy {
    child: Child,
    https_port: u16,
    data: PathBuf,
}

impl Caddy {
    fn start(dir: &Path, app_port: u16, ask_port: u16) -> Self {
        wildcard_certificate(dir);
        let (http_port, https_port) = (free_port(), free_port());
        let data = dir.join("caddy-data");
        let child = Command::new("caddy")
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(caddyfile())
            .env("XDG_DATA_HOME", &data)
            .env("XDG_CONFIG_HOME", dir.join("caddy-config"))
            .env("ENCLAVE_BASE_DOMAIN", "enclave.test")
            .env("ENCLAVE_UPSTREAM", format!("127.0.0.1:{app_port}"))
            .env(
                "ENCLAVE_CADDY_ASK",
                format!("http://127.0.0.1:{ask_port}/ask"),
            )
            .env("ENCLAVE_WILDCARD_CERT", dir.join("cert.pem"))
            .env("ENCLAVE_WILDCARD_KEY", dir.join("key.pem"))
            .env("ENCLAVE_CADDY_ISSUER", "internal")
            .env("ENCLAVE_CADDY_HTTP_PORT", http_port.to_string())
            .env("ENCLAVE_CADDY_HTTPS_PORT", https_port.to_string())
            .env("ENCLAVE_CADDY_ADMIN", "off")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("caddy.log")).unwrap())
            .spawn()
            .expect("caddy is installed (make setup installs it)");
        let mut caddy = Self {
            child,
            https_port,
            data,
        };
        let start = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", https_port)).is_err() {
            assert!(
                caddy.child.try_wait().unwrap().is_none(),
                "caddy exited: see {}",
                dir.join("caddy.log").display()
            );
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "caddy did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        caddy
    }

    /// `GET https://<name>:<port><path>` through Caddy, trusting only its
    /// internal CA: `"<status> <body>"`, or why curl failed.
    fn https(&self, name: &str, path: &str) -> Result<String, String> {
        let root = self.data.join("caddy/pki/authorities/local/root.crt");
        let out = Command::new("curl")
            .args(["-s", "--max-time", "10", "-w", "\n%{http_code}"])
            .arg("--cacert")
            .arg(&root)
            .arg("--resolve")
            .arg(format!("{name}:{}:127.0.0.1", self.https_port))
            .arg(format!("https://{name}:{}{path}", self.https_port))
            .output()
            .expect("curl is installed");
        if !out.status.success() {
            return Err(format!("curl exit {:?}", out.status.code()));
        }
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", &text));
        Ok(format!("{code} {body}"))
    }

    /// The files Caddy's storage holds for `name`'s certificate.
    fn certificates_for(&self, name: &str) -> Vec<PathBuf> {
        fn walk(dir: &Path, name: &str, found: &mut Vec<PathBuf>) {
            for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    walk(&path, name, found);
                } else if path
                    .file_name()
                    .is_some_and(|f| f.to_string_lossy().starts_with(name))
                {
                    found.push(path);
                }
            }
        }
        let mut found = Vec::new();
        walk(&self.data.join("caddy/certificates"), name, &mut found);
        found
    }
}

impl Drop for Caddy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `make bench-domains`: Caddy's ask over 10,000 asks for 1,000 verified
/// and 1,000 unknown names, with the registry up and then stopped (its own
/// cluster), beside the same listener's bare 404 (the ceiling: an HTTP
/// round trip that does nothing); and a company's pages through one of
/// its domains against the same through its subdomain (wrk, same run).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark: make bench-domains"]
async fn bench_custom_domains_ask_and_throughput() {
    use crate::pg_cluster::{with_cluster, PgCluster};
    use crate::registry_outage::on_cluster;
    use app::ssr::entities::tenant_domains;
    use sea_orm::{ActiveValue::Set, EntityTrait};

    with_cluster(50, |cluster| async move {
        let ask_port = free_port();
        let mut settings = app_settings_for_bench(&cluster).await;
        settings.caddy_ask_listen = Some(format!("127.0.0.1:{ask_port}").parse().unwrap());
        let app = crate::helpers::start(settings).await;
        let acme = app.create_company("Acme Corp", "acme").await;
        let now = chrono::Utc::now();
        let rows: Vec<_> = (0..1000)
            .map(|i| tenant_domains::ActiveModel {
                domain: Set(format!("d{i}.bench.example")),
                tenant_id: Set(acme.id),
                token: Set(format!("{i:032x}")),
                created_at: Set(now),
                verified_at: Set(Some(now)),
                seen_at: Set(Some(now)),
                missing_since: Set(None),
                next_check_at: Set(now + chrono::Duration::days(1)),
                failures: Set(0),
                is_primary: Set(false),
                redirect: Set(false),
            })
            .collect();
        for chunk in rows.chunks(200) {
            tenant_domains::Entity::insert_many(chunk.to_vec())
                .exec(&app.services.registry)
                .await
                .unwrap();
        }
        app.services.addresses.refresh().await.unwrap();
        assert_eq!(app.services.addresses.served_count(), 1000);
        let client = reqwest::Client::new();
        let asks = |label: &'static str| {
            let client = client.clone();
            async move {
                let base = format!("http://127.0.0.1:{ask_port}");
                let (mut ask, mut bare, mut wrong) = (Vec::new(), Vec::new(), 0);
                for i in 0..10_500usize {
                    let (name, served) = if i % 2 == 0 {
                        (format!("d{}.bench.example", (i / 2) % 1000), true)
                    } else {
                        (format!("u{}.nowhere.example", (i / 2) % 1000), false)
                    };
                    let t = Instant::now();
                    let status = client.get(format!("{base}/ask?domain={name}")).send().await.unwrap().status();
                    let took = t.elapsed();
                    let t = Instant::now();
                    client.get(format!("{base}/nothing")).send().await.unwrap();
                    let bare_took = t.elapsed();
                    if i >= 500 {
                        ask.push(took);
                        bare.push(bare_took);
                        wrong += usize::from((status == StatusCode::OK) != served);
                    }
                }
                let p = |v: &mut Vec<Duration>, q: f64| {
                    v.sort();
                    v[((v.len() as f64) * q) as usize - 1].as_secs_f64() * 1e3
                };
                let (p50, p99) = (p(&mut ask, 0.50), p(&mut ask, 0.99));
                let (b50, b99) = (p(&mut bare, 0.50), p(&mut bare, 0.99));
                println!(
                    "ask, registry {label}: 10,000 asks, p50 {p50:.3} ms, p99 {p99:.3} ms (ceiling, a bare 404 of the same listener: p50 {b50:.3} ms, p99 {b99:.3} ms; p99 ratio {:.2}), wrong answers {wrong}",
                    p99 / b99
                );
                assert_eq!(wrong, 0);
                p99
            }
        };
        let up = asks("up").await;
        on_cluster(&cluster, PgCluster::stop).await;
        tokio::time::sleep(Duration::from_secs(6)).await;
        let down = asks("stopped").await;
        on_cluster(&cluster, PgCluster::start_again).await;
        println!("ask p99: {up:.3} ms with the registry up, {down:.3} ms stopped (target ≤ 5 ms)");

        // Throughput: the sign-in page through the subdomain and the domain.
        let app_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
        let wrk = move |host: &'static str| {
            let out = Command::new("wrk")
                .args(["-t2", "-c16", "-d4s", "-H"])
                .arg(format!("Host: {host}"))
                .arg(format!("http://127.0.0.1:{app_port}/login"))
                .output()
                .expect("wrk is installed (make setup installs it)");
            let text = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(!text.contains("Non-2xx"), "{text}");
            text.lines()
                .find_map(|l| l.strip_prefix("Requests/sec:"))
                .and_then(|v| v.trim().parse::<f64>().ok())
                .unwrap_or_else(|| panic!("wrk: {text}"))
        };
        for host in ["acme.enclave.test", "d7.bench.example"] {
            let page = app.get(host, "/login").await;
            assert_eq!(page.status(), StatusCode::OK);
            println!("GET /login as {host}: {} bytes", page.bytes().await.unwrap().len());
        }
        // Alternated pairs, in both orders, so neither side always runs
        // first; the figure is the median of the pairs' ratios.
        let (mut ratios, mut sub, mut dom) = (Vec::new(), Vec::new(), Vec::new());
        for pair in 0..6 {
            let (s, d) = if pair % 2 == 0 {
                let s = tokio::task::spawn_blocking(move || wrk("acme.enclave.test")).await.unwrap();
                let d = tokio::task::spawn_blocking(move || wrk("d7.bench.example")).await.unwrap();
                (s, d)
            } else {
                let d = tokio::task::spawn_blocking(move || wrk("d7.bench.example")).await.unwrap();
                let s = tokio::task::spawn_blocking(move || wrk("acme.enclave.test")).await.unwrap();
                (s, d)
            };
            sub.push(s);
            dom.push(d);
            ratios.push(d / s);
        }
        ratios.sort_by(f64::total_cmp);
        let median = (ratios[2] + ratios[3]) / 2.0;
        println!(
            "GET /login, 6 alternated pairs of 4 s: subdomain {sub:.0?} req/s, custom domain {dom:.0?} req/s; ratio per pair {ratios:.3?}, median {median:.3} (target ≥ 0.9)"
        );
        app.teardown().await;
    })
    .await;
}

/// Settings for an app whose registry is on `cluster`, served as
/// `enclave.test`.
async fn app_settings_for_bench(
    cluster: &crate::pg_cluster::PgCluster,
) -> server::config::Settings {
    let mut s = crate::helpers::test_settings(Backend::Sqlite).await;
    s.registry_url = Some(crate::registry_outage::registry_on(cluster).await);
    s.base_domain = "enclave.test".into();
    s
}
