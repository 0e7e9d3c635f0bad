//! The registry on a PostgreSQL cluster of its own, stopped: a company already known keeps serving its signed-in people from its own database alone.
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database};
use secrecy::{ExposeSecret, SecretString};

use crate::helpers::{call, get, sign_in, spawn_app_with, Backend, TestApp, ADMIN_PASSWORD};
use crate::on_both_backends;
use crate::pg_cluster::{with_cluster, PgCluster};

on_both_backends!(a_known_company_keeps_working_while_the_registry_is_stopped);

/// Runs `f` on the cluster off the async runtime (pg_ctl blocks).
pub(crate) async fn on_cluster(cluster: &std::sync::Arc<PgCluster>, f: fn(&PgCluster)) {
    let c = cluster.clone();
    tokio::task::spawn_blocking(move || f(&c)).await.unwrap();
}

/// An app whose registry is a database of `cluster`, named as the one the
/// test settings made on the machine's server (so teardown drops that).
/// A new database on `cluster` for a registry, named as the test settings
/// name the one they make on the machine's server (so teardown drops that).
pub(crate) async fn registry_on(cluster: &PgCluster) -> SecretString {
    let name = format!("enclave_test_{}", uuid::Uuid::new_v4().simple());
    let su = Database::connect(cluster.admin_url("postgres"))
        .await
        .unwrap();
    // A name made from a UUID, never from input.
    su.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
        .await
        .unwrap();
    su.close().await.unwrap();
    SecretString::from(cluster.admin_url(&name))
}

/// An app whose registry is a database of `cluster`.
async fn app_with_registry_on(cluster: &PgCluster, backend: Backend) -> TestApp {
    let url = registry_on(cluster).await;
    spawn_app_with(backend, move |s| {
        s.registry_url = Some(url);
        s.tenant_cache_secs = 1;
    })
    .await
}

async fn a_known_company_keeps_working_while_the_registry_is_stopped(backend: Backend) {
    with_cluster(50, move |cluster| async move {
        let app = app_with_registry_on(&cluster, backend).await;
        assert!(app
            .settings
            .registry_url
            .as_ref()
            .unwrap()
            .expose_secret()
            .contains(&cluster.port.to_string()));
        app.create_company("Acme Corp", "acme").await;
        let host = "acme.localhost";
        let (status, body, mut jar) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            get(&app, host, &mut jar, "/").await.status(),
            StatusCode::OK
        );

        on_cluster(&cluster, PgCluster::stop).await;
        // Past the directory's cache time: what is served comes from the
        // last answer the registry gave.
        tokio::time::sleep(Duration::from_millis(1500)).await;

        for path in ["/", "/users", "/profile"] {
            let res = get(&app, host, &mut jar, path).await;
            assert_eq!(res.status(), StatusCode::OK, "{path}");
            let page = res.text().await.unwrap();
            assert!(
                page.contains("admin@acme.test"),
                "{path} shows who is signed in: {page}"
            );
        }
        let new = "a password chosen while the registry was down";
        let (status, body) = call(
            &app,
            host,
            &mut jar,
            "change_password",
            &[("current", ADMIN_PASSWORD), ("new", new), ("confirm", new)],
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = call(&app, host, &mut jar, "logout", &[]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, me) = call(&app, host, &mut jar, "whoami", &[]).await;
        assert!(me.is_null(), "signed out: {me}");
        let (status, _, _) = sign_in(&app, host, "admin@acme.test", ADMIN_PASSWORD).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "the old password is gone");
        let (status, body, mut jar) = sign_in(&app, host, "admin@acme.test", new).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, me) = call(&app, host, &mut jar, "whoami", &[]).await;
        assert_eq!(me["email"], "admin@acme.test", "{me}");
        let metrics = app
            .services
            .metrics
            .render(&app.services.pools.stats(), &[]);
        let stale = metrics
            .lines()
            .find(|l| l.starts_with("enclave_directory_stale_answers_total "))
            .expect("the stale-answer counter is exported");
        assert!(!stale.ends_with(" 0"), "stale answers are counted: {stale}");

        // What needs the registry says so, quickly: a company not known
        // here, and the health check (which keeps the instance in).
        let started = Instant::now();
        let res = app.get("globex.localhost", "/").await;
        assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{:?}",
            started.elapsed()
        );
        let res = app.get("localhost", "/healthz").await;
        assert_eq!(res.status(), StatusCode::OK);
        let health: serde_json::Value = res.json().await.unwrap();
        assert_eq!(health["registry"], "unavailable", "{health}");

        // Back: a change made through the registry (another instance
        // pausing acme) reaches this one within the cache time.
        on_cluster(&cluster, PgCluster::start_again).await;
        let back = Instant::now();
        let registry =
            Database::connect(app.settings.registry_url.as_ref().unwrap().expose_secret())
                .await
                .unwrap();
        registry
            .execute_unprepared("UPDATE tenants SET status = 'paused' WHERE subdomain = 'acme'")
            .await
            .unwrap();
        registry.close().await.unwrap();
        loop {
            let status = app.get(host, "/api/health").await.status();
            if status == StatusCode::SERVICE_UNAVAILABLE {
                break;
            }
            assert_eq!(status, StatusCode::OK);
            assert!(
                back.elapsed()
                    < Duration::from_secs(2)
                        + Duration::from_secs(app.settings.tenant_cache_secs)
                        + Duration::from_millis(500),
                "acme still served {:?} after the registry came back",
                back.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        app.teardown().await;
    })
    .await;
}
