//! No secret in any log line: passwords, role passwords, database URLs
//! with credentials, handoff tokens, reset links, session ids, the secret key.
use std::sync::{Arc, Mutex, OnceLock};

use reqwest::header;
use secrecy::ExposeSecret;

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(no_secret_reaches_the_logs_even_at_trace_level,);

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Every log line of this test process from now on, at the most verbose
/// level production's filter allows.
fn captured() -> Capture {
    static CAPTURE: OnceLock<Capture> = OnceLock::new();
    CAPTURE
        .get_or_init(|| {
            let capture = Capture::default();
            let writer = capture.clone();
            tracing_subscriber::fmt()
                .with_env_filter(server::telemetry::filter(Some(
                    "info,server=trace,app=trace,tower_sessions=trace,sea_orm=trace,sqlx=trace,sea_orm_migration=trace",
                )))
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .try_init()
                .expect("the first subscriber of this process");
            capture
        })
        .clone()
}

async fn no_secret_reaches_the_logs_even_at_trace_level(backend: Backend) {
    let logs = captured();
    let app = spawn_app(backend).await;
    let sub = match backend {
        Backend::Sqlite => "logged-lite",
        Backend::Postgres => "logged-pg",
    };
    let password = format!("{sub} Sup3r-secret passphrase");
    let res = app
        .client
        .post(format!("{}/api/signup", app.address))
        .header(header::HOST, "localhost")
        .header(header::ACCEPT, "text/html")
        .form(&[
            ("company", "Logged"),
            ("subdomain", sub),
            ("email", "boss@logged.test"),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_redirection(), "{:?}", res.status());
    let verify = crate::helpers::signup_link(&app, "boss@logged.test", 1).await;
    let res = app
        .client
        .post(format!("{}/api/verify_signup", app.address))
        .header(header::HOST, "localhost")
        .header(header::ACCEPT, "text/html")
        .form(&[
            ("token", verify.as_str()),
            ("password", password.as_str()),
            ("confirm", password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    let token = location.rsplit("token=").next().unwrap().to_owned();
    let res = app
        .client
        .get(format!("{}/auth/handoff?token={token}", app.address))
        .header(header::HOST, format!("{sub}.localhost"))
        .send()
        .await
        .unwrap();
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    let session_id = cookie
        .split(';')
        .next()
        .unwrap()
        .split('=')
        .nth(1)
        .unwrap()
        .to_owned();
    let wrong = format!("{sub} wrong-but-secret");
    app.client
        .post(format!("{}/api/login", app.address))
        .header(header::HOST, format!("{sub}.localhost"))
        .form(&[("email", "boss@logged.test"), ("password", wrong.as_str())])
        .send()
        .await
        .unwrap();
    // A password-reset link: asked for, opened and used.
    let host = format!("{sub}.localhost");
    app.client
        .post(format!("{}/api/forgot_password", app.address))
        .header(header::HOST, &host)
        .form(&[("email", "boss@logged.test")])
        .send()
        .await
        .unwrap();
    let outbox = app.services.mailer.outbox().unwrap().to_owned();
    let reset =
        crate::mailbox::wait_for_link(&outbox, "boss@logged.test", "/password/reset/").await;
    app.client
        .get(format!("{}/password/reset/{reset}", app.address))
        .header(header::HOST, &host)
        .send()
        .await
        .unwrap();
    let new_password = format!("{sub} new-and-secret");
    let res = app
        .client
        .post(format!("{}/api/reset_password", app.address))
        .header(header::HOST, &host)
        .form(&[
            ("token", reset.as_str()),
            ("new", new_password.as_str()),
            ("confirm", new_password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());
    let url = app.tenant_db_url(sub).await.expose_secret().to_owned();

    let text = String::from_utf8_lossy(&logs.0.lock().unwrap()).into_owned();
    // The capture works: this test's requests are there, with their tenant.
    assert!(
        text.contains(&format!("tenant={sub}")),
        "no request lines captured"
    );
    assert!(
        text.contains("company provisioned"),
        "no provisioning line captured"
    );
    assert!(
        text.contains("path=/password/reset/[token]"),
        "no reset line captured"
    );
    assert!(
        text.contains("mail written to the outbox"),
        "no mail line captured"
    );
    let mut secrets = vec![
        password.clone(),
        wrong.clone(),
        token.clone(),
        verify,
        reset,
        new_password,
        session_id,
        url.clone(),
    ];
    secrets.push(
        app.settings
            .secret_key
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned(),
    );
    if let Some(role_password) = url::Url::parse(&url)
        .ok()
        .and_then(|u| u.password().map(str::to_owned))
    {
        secrets.push(role_password);
    }
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret reached the logs: {secret}"
        );
    }
    app.teardown().await;
}
