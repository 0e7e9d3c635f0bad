//! Micro-benchmarks of what every tenant request goes through, and of a
//! whole server-rendered dashboard, in-process (no sockets):
//! `cargo bench -p server --bench hot_path` (or `make bench-micro`).
//!
//! The fixture is one company on SQLite in a temporary directory, with its
//! admin signed in. Async benchmarks drive a Tokio runtime with `block_on`,
//! whose own cost (well under a microsecond) is included.
use std::sync::LazyLock;

use app::domain::{CompanyName, Email, Password, Subdomain};
use app::ssr::{
    services::Services,
    tenancy::{lifecycle::provisioning::NewTenant, request::host::Host, RequestSite, Resolver},
};
use axum::{
    body::Body,
    http::{header, Request, StatusCode},
    Router,
};
use clap::Parser;
use divan::{black_box, Bencher};
use server::{cli::Cli, startup::Application};
use tower::ServiceExt;

fn main() {
    divan::main();
}

const PASSWORD: &str = "correct horse battery staple";

struct Fixture {
    rt: tokio::runtime::Runtime,
    services: Services,
    router: Router,
    cookie: String,
    _dir: tempdir::Dir,
}

/// A directory removed when the fixture goes (at exit it may not: divan
/// exits the process; it lives under the system temp dir).
mod tempdir {
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let dir = std::env::temp_dir().join(format!("enclave-bench-{}", std::process::id()));
    let cli = Cli::try_parse_from([
        "enclave",
        "--listen",
        "127.0.0.1:0",
        "--base-domain",
        "localhost",
        "--data-dir",
        dir.to_str().unwrap(),
    ])
    .expect("settings");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (services, router, cookie) = rt.block_on(async {
        let app = Application::build(cli.settings).await.expect("app builds");
        let services = app.services().clone();
        services
            .create_tenant(NewTenant {
                name: CompanyName::parse("Acme Corp").unwrap(),
                subdomain: Subdomain::parse("acme").unwrap(),
                admin_email: Email::parse("admin@acme.test").unwrap(),
                admin_password: Password::parse(PASSWORD).unwrap().into(),
            })
            .await
            .expect("company created");
        let router = app.router();
        let login = Request::post("/api/login")
            .header(header::HOST, "acme.localhost")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(format!(
                "email=admin%40acme.test&password={}",
                PASSWORD.replace(' ', "+")
            )))
            .unwrap();
        let response = router.clone().oneshot(login).await.unwrap();
        let cookie = response
            .headers()
            .get(header::SET_COOKIE)
            .expect("signed in")
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        (services, router, cookie)
    });
    let fixture = Fixture {
        rt,
        services,
        router,
        cookie,
        _dir: tempdir::Dir(dir),
    };
    // The dashboard really is the dashboard, signed in.
    let (status, body) = fixture.rt.block_on(dashboard(&fixture));
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains("data-testid=\"company-name\"") && body.contains("Recent activity"),
        "{body}"
    );
    fixture
});

fn acme() -> Subdomain {
    Subdomain::parse("acme").unwrap()
}

#[divan::bench]
fn host_parse_and_classify() -> bool {
    let host = Host::parse(black_box("Acme.Enclave.example:8443")).unwrap();
    matches!(
        host.kind(black_box("enclave.example")),
        Ok(app::ssr::tenancy::request::host::HostKind::Sub(_))
    )
}

#[divan::bench]
fn subdomain_parse() -> Subdomain {
    Subdomain::parse(black_box("acme-corp")).unwrap()
}

/// The directory lookup a request makes, answered from the cache.
#[divan::bench]
fn cached_tenant_lookup(bencher: Bencher) {
    let f = &*FIXTURE;
    let sub = acme();
    f.rt.block_on(f.services.directory.lookup(&sub)).unwrap();
    bencher.bench_local(|| {
        f.rt.block_on(f.services.directory.lookup(black_box(&sub)))
            .unwrap()
            .unwrap()
    });
}

/// Checking out a lease on the (open) pool of a company through its
/// request context, and giving it back.
#[divan::bench]
fn pool_checkout(bencher: Bencher) {
    let f = &*FIXTURE;
    let resolver = Resolver::new(
        "localhost".into(),
        f.services.directory.clone(),
        f.services.pools.clone(),
        f.services.addresses.clone(),
    );
    let Ok(RequestSite::Tenant(tenant)) = f.rt.block_on(resolver.resolve("acme.localhost", "http"))
    else {
        panic!("acme is served")
    };
    f.rt.block_on(tenant.db()).unwrap();
    bencher.bench_local(|| drop(f.rt.block_on(black_box(&tenant).db()).unwrap()));
}

/// `GET /api/health` through the whole router: host, lookup, pool, one query.
#[divan::bench]
fn tenant_health_request(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher.bench_local(|| {
        f.rt.block_on(async {
            let req = Request::get("/api/health")
                .header(header::HOST, "acme.localhost")
                .body(Body::empty())
                .unwrap();
            let res = f.router.clone().oneshot(req).await.unwrap();
            assert_eq!(res.status(), StatusCode::OK);
            axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .unwrap()
        })
    });
}

async fn dashboard(f: &Fixture) -> (StatusCode, String) {
    let req = Request::get("/")
        .header(header::HOST, "acme.localhost")
        .header(header::ACCEPT, "text/html")
        .header(header::COOKIE, &f.cookie)
        .body(Body::empty())
        .unwrap();
    let res = f.router.clone().oneshot(req).await.unwrap();
    let status = res.status();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The signed-in dashboard, server-rendered, whole body collected (T5).
#[divan::bench(sample_count = 200)]
fn dashboard_ssr(bencher: Bencher) {
    let f = &*FIXTURE;
    bencher.bench_local(|| f.rt.block_on(dashboard(f)));
}
