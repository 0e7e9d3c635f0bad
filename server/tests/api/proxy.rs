//! Behind a real nginx with `deploy/nginx.conf`, and which forwarded
//! headers are believed.
use std::{
    net::{IpAddr, TcpStream},
    path::PathBuf,
    process::{Child, Command},
    time::{Duration, Instant},
};

use reqwest::header;

use crate::helpers::{spawn_app_with, Backend, TestApp};
use crate::on_both_backends;
use crate::pg_cluster::free_port;

on_both_backends!(two_companies_and_the_base_domain_work_through_nginx,);

/// `deploy/nginx-https.conf` for real, with a self-signed certificate:
/// http goes to https, and https answers carry HSTS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_https_example_redirects_and_sends_hsts() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.base_domain = "example.com".into();
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    app.create_company("Acme Corp", "acme").await;
    let app_port = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let (http, https) = (free_port(), free_port());
    let site = include_str!("../../../deploy/nginx-https.conf")
        .replace("    listen 80;", &format!("    listen 127.0.0.1:{http};"))
        .replace(
            "    listen 443 ssl;",
            &format!("    listen 127.0.0.1:{https} ssl;"),
        );
    let nginx = run_nginx(site, https, app_port, |dir| {
        crate::helpers::self_signed_certificate(
            dir,
            "example.com.key",
            "example.com.pem",
            "example.com",
        )
    });
    // curl blocks: run it off the runtime the app is served on.
    let curl = |args: &[&str]| {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        std::thread::spawn(move || curl_blocking(&args))
            .join()
            .unwrap()
    };
    fn curl_blocking(args: &[String]) -> String {
        let out = Command::new("curl")
            .args(["-sk", "-o", "/dev/null", "-D", "-"])
            .args(args)
            .output()
            .expect("curl is installed");
        String::from_utf8_lossy(&out.stdout).to_lowercase()
    }
    let plain = curl(&[
        "-H",
        "Host: acme.example.com",
        &format!("http://127.0.0.1:{http}/login"),
    ]);
    assert!(plain.starts_with("http/1.1 301"), "{plain}");
    assert!(
        plain.contains("location: https://acme.example.com/login"),
        "{plain}"
    );
    let secure = curl(&[
        "--resolve",
        &format!("acme.example.com:{https}:127.0.0.1"),
        &format!("https://acme.example.com:{https}/api/health"),
    ]);
    assert!(secure.starts_with("http/1.1 200"), "{secure}");
    assert!(
        secure.contains("strict-transport-security: max-age=63072000; includesubdomains"),
        "{secure}"
    );
    assert_eq!(nginx.port, https);
    app.teardown().await;
}

/// nginx running `deploy/nginx.conf` on a loopback port, in front of an app.
struct Nginx {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // A graceful stop takes the workers down too (SIGKILL would orphan them).
        let _ = Command::new("nginx")
            .arg("-p")
            .arg(&self.dir)
            .arg("-c")
            .arg(self.dir.join("nginx.conf"))
            .args(["-s", "stop"])
            .status();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_nginx(app_port: u16) -> Nginx {
    let port = free_port();
    let site = include_str!("../../../deploy/nginx.conf")
        .replace("    listen 80;", &format!("    listen 127.0.0.1:{port};"));
    run_nginx(site, port, app_port, |_| {})
}

/// Runs `site` (a shipped config, its listen lines already made loopback)
/// with the app on `app_port`; `prepare` may write files into its directory.
fn run_nginx(
    site: String,
    port: u16,
    app_port: u16,
    prepare: impl FnOnce(&std::path::Path),
) -> Nginx {
    let dir = std::env::temp_dir().join(format!("enclave-nginx-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    prepare(&dir);
    let site = site
        .replace(
            "    server 127.0.0.1:3000;",
            &format!("    server 127.0.0.1:{app_port};"),
        )
        .replace("/etc/ssl/enclave/", &format!("{}/", dir.display()))
        .replace("/var/log/nginx/", &format!("{}/", dir.display()));
    assert!(
        site.contains(&format!(":{port}")) && site.contains(&format!(":{app_port};")),
        "the shipped config changed shape"
    );
    std::fs::write(dir.join("site.conf"), site).unwrap();
    let d = dir.display();
    let main = format!(
        "worker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\nevents {{ worker_connections 256; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
         fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n"
    );
    std::fs::write(dir.join("nginx.conf"), main).unwrap();
    let child = Command::new("nginx")
        .arg("-p")
        .arg(&dir)
        .arg("-c")
        .arg(dir.join("nginx.conf"))
        .args(["-g", "daemon off;"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nginx is installed (make setup installs it)");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "nginx did not start: {:?}",
            std::fs::read_to_string(dir.join("error.log"))
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Nginx { child, port, dir }
}

async fn via(app: &TestApp, nginx: &Nginx, host: &str, path: &str) -> reqwest::Response {
    app.client
        .get(format!("http://127.0.0.1:{}{path}", nginx.port))
        .header(header::HOST, host)
        .send()
        .await
        .unwrap()
}

async fn two_companies_and_the_base_domain_work_through_nginx(backend: Backend) {
    let app = spawn_app_with(backend, |s| {
        s.base_domain = "example.com".into();
        s.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let port = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let nginx = start_nginx(port);

    // Pages are compressed on the way out for clients that take gzip.
    let res = app
        .client
        .get(format!("http://127.0.0.1:{}/", nginx.port))
        .header(header::HOST, "example.com")
        .header(header::ACCEPT_ENCODING, "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()[header::CONTENT_ENCODING], "gzip");
    assert_eq!(res.headers()[header::CACHE_CONTROL], "private, no-cache");

    let res = via(&app, &nginx, "example.com", "/").await;
    assert_eq!(res.status(), 200);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("http://your-company.example.com/"));
    assert_eq!(
        via(&app, &nginx, "example.com", "/healthz").await.status(),
        200
    );
    for (sub, name) in [("acme", "Acme Corp"), ("globex", "Globex")] {
        let host = format!("{sub}.example.com");
        let res = via(&app, &nginx, &host, "/api/health").await;
        assert_eq!(res.status(), 200, "{host}");
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap()["tenant"],
            sub
        );
        let page = via(&app, &nginx, &host, "/login")
            .await
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("Sign in to {name}")), "{host}");
    }
    assert_eq!(
        via(&app, &nginx, "nobody.example.com", "/login")
            .await
            .status(),
        404
    );
    assert_eq!(
        via(&app, &nginx, "a.b.example.com", "/").await.status(),
        400
    );
    assert_eq!(via(&app, &nginx, "evil.com", "/").await.status(), 400);

    // One-time tokens are masked in the shipped config's access log.
    let token = "ab".repeat(32);
    for path in [
        format!("/password/reset/{token}"),
        format!("/invite/{token}"),
        format!("/auth/handoff?token={token}&x=1"),
    ] {
        via(&app, &nginx, "acme.example.com", &path).await;
    }
    via(&app, &nginx, "example.com", &format!("/verify/{token}")).await;
    // nginx writes a request's line after it has sent the answer (its log
    // phase), so the last line may come a moment after the client has it.
    let log_path = nginx.dir.join("enclave.access.log");
    let waited = Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(&log_path).unwrap();
        if log.contains("/verify/") || waited.elapsed() > Duration::from_secs(5) {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(!log.contains(&token), "{log}");
    for masked in [
        "/password/reset/*** ",
        "/invite/*** ",
        "/verify/*** ",
        "/auth/handoff?token=***&x=1 ",
    ] {
        assert!(log.contains(masked), "{masked} in {log}");
    }
    assert!(
        log.contains("GET /login "),
        "other paths as they were: {log}"
    );
    drop(nginx);
    app.teardown().await;
}

/// The landing page shows the scheme the app believes the visitor used.
async fn scheme_seen(app: &TestApp, from: IpAddr) -> String {
    let client = reqwest::Client::builder()
        .local_address(from)
        .build()
        .unwrap();
    let body = client
        .get(format!("{}/", app.address))
        .header(header::HOST, "example.com")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    if body.contains("https://your-company.example.com/") {
        "https".into()
    } else {
        assert!(body.contains("http://your-company.example.com/"));
        "http".into()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_headers_are_believed_only_from_trusted_proxies() {
    let app = spawn_app_with(Backend::Sqlite, |s| {
        s.base_domain = "example.com".into();
        s.trusted_proxies = vec!["127.0.0.2".parse().unwrap()];
    })
    .await;
    assert_eq!(
        scheme_seen(&app, "127.0.0.2".parse().unwrap()).await,
        "https"
    );
    assert_eq!(
        scheme_seen(&app, "127.0.0.1".parse().unwrap()).await,
        "http"
    );
    app.teardown().await;
}
