//! Accounts through the server functions, as the browser calls them:
//! signup and handoff, sign-in, sessions per company, authorisation of
//! admin functions, the sign-in throttle.
use app::domain::{Email, Password, Role};
use reqwest::{header, StatusCode};
use serde_json::Value;

use crate::helpers::{
    call, call_full, get, location_path, post_plain_form, sign_in, signup_link, spawn_app, Backend,
    Jar, TestApp, ADMIN_PASSWORD,
};
use crate::on_both_backends;

on_both_backends!(
    signing_in_again_rotates_the_session_id,
    the_platform_admin_deletes_a_company_only_with_typed_confirmation,
    signup_lands_the_admin_signed_in_on_the_new_subdomain,
    a_handoff_token_works_once_and_only_on_its_own_subdomain,
    signup_refuses_bad_input_and_taken_subdomains_with_clear_errors,
    a_member_calling_admin_functions_directly_gets_403,
    a_session_from_one_company_is_signed_out_on_another,
    five_failed_sign_ins_for_one_email_are_throttled,
    the_last_admin_cannot_be_demoted_disabled_or_removed,
    plain_form_posts_end_on_the_page_showing_the_outcome,
);

async fn add_member(app: &TestApp, sub: &str, email: &str) {
    let db = app.tenant_db(sub).await;
    let app::ssr::tenancy::RequestSite::Tenant(company) =
        app.resolve(&format!("{sub}.localhost")).await
    else {
        panic!("{sub} is served")
    };
    app::ssr::accounts::users::add(
        &db,
        company.id(),
        "test",
        &Email::parse(email).unwrap(),
        Role::Member,
        Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    db.close().await.ok();
}

async fn signup_lands_the_admin_signed_in_on_the_new_subdomain(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut root = Jar::default();
    // From the hydrated page: the redirect comes back for the app to follow,
    // to the page that says a link is on its way.
    let (status, _, location) = call_full(
        &app,
        "localhost:3000",
        &mut root,
        "signup",
        &[
            ("company", "Acme Corp"),
            ("subdomain", "Acme"),
            ("email", "Boss@Acme.test"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(location.as_deref(), Some("/signup?sent=1"));
    let token = signup_link(&app, "boss@acme.test", 1).await;
    let (status, body, location) = call_full(
        &app,
        "localhost:3000",
        &mut root,
        "verify_signup",
        &[
            ("token", &token),
            ("password", ADMIN_PASSWORD),
            ("confirm", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(location
        .unwrap()
        .starts_with("http://acme.localhost:3000/auth/handoff?token="));
    // As a plain HTML form (no JavaScript): real redirects, 303 See Other.
    let res = app
        .client
        .post(format!("{}/api/signup", app.address))
        .header(header::HOST, "localhost:3000")
        .header(header::ACCEPT, "text/html")
        .form(&[
            ("company", "Other"),
            ("subdomain", "other"),
            ("email", "x@other.test"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location_path(&res), "/signup?sent=1");
    let page = get(
        &app,
        "localhost:3000",
        &mut Jar::default(),
        "/signup?sent=1",
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(page.contains("Check your inbox"), "{page}");
    let token = signup_link(&app, "x@other.test", 1).await;
    // The link's page says what will be made; its button makes it.
    let page = crate::helpers::open_link(&app, "localhost:3000", &format!("/verify/{token}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("Create Other") && page.contains("x@other.test"),
        "{page}"
    );
    let res = post_plain_form(
        &app,
        "localhost:3000",
        &mut Jar::default(),
        "verify_signup",
        &[
            ("token", &token),
            ("password", ADMIN_PASSWORD),
            ("confirm", ADMIN_PASSWORD),
        ],
        &format!("/verify/{token}"),
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let location = res.headers()[header::LOCATION].to_str().unwrap().to_owned();
    assert!(
        location.starts_with("http://other.localhost:3000/auth/handoff?token="),
        "{location}"
    );

    let path = location.trim_start_matches("http://other.localhost:3000");
    let mut jar = Jar::default();
    let res = get(&app, "other.localhost:3000", &mut jar, path).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[header::LOCATION], "/");
    let cookie = res.headers()[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    assert!(
        !cookie.to_lowercase().contains("domain="),
        "host-only: {cookie}"
    );

    let res = get(&app, "other.localhost:3000", &mut jar, "/").await;
    assert_eq!(res.status(), StatusCode::OK);
    let body = res.text().await.unwrap();
    assert!(
        body.contains("x@other.test") && body.contains("Other"),
        "{body}"
    );
    app.teardown().await;
}

async fn a_handoff_token_works_once_and_only_on_its_own_subdomain(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Globex", "globex").await;
    let signup = |sub: &'static str| {
        let app = &app;
        async move {
            let res = app
                .client
                .post(format!("{}/api/signup", app.address))
                .header(header::HOST, "localhost")
                .form(&[
                    ("company", "Acme"),
                    ("subdomain", sub),
                    ("email", "a@acme.test"),
                ])
                .send()
                .await
                .unwrap();
            assert!(res.status().is_success(), "{:?}", res.status());
            let token = signup_link(app, "a@acme.test", 1).await;
            let (_, _, location) = call_full(
                app,
                "localhost",
                &mut Jar::default(),
                "verify_signup",
                &[
                    ("token", &token),
                    ("password", ADMIN_PASSWORD),
                    ("confirm", ADMIN_PASSWORD),
                ],
            )
            .await;
            let location = location.expect("on to the company");
            location[location.find("/auth/").unwrap()..].to_owned()
        }
    };
    let path = signup("acme").await;
    // On another company's host the token is worthless, and not spent.
    let res = get(&app, "globex.localhost", &mut Jar::default(), &path).await;
    assert_eq!(res.headers()[header::LOCATION], "/login?handoff=expired");
    assert!(res.headers().get(header::SET_COOKIE).is_none());
    let res = get(&app, "acme.localhost", &mut Jar::default(), &path).await;
    assert_eq!(res.headers()[header::LOCATION], "/");
    // Never twice.
    let res = get(&app, "acme.localhost", &mut Jar::default(), &path).await;
    assert_eq!(res.headers()[header::LOCATION], "/login?handoff=expired");
    let res = get(
        &app,
        "acme.localhost",
        &mut Jar::default(),
        "/auth/handoff?token=nonsense",
    )
    .await;
    assert_eq!(res.headers()[header::LOCATION], "/login?handoff=expired");
    app.teardown().await;
}

async fn signup_refuses_bad_input_and_taken_subdomains_with_clear_errors(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    let good = [
        ("company", "NewCo"),
        ("subdomain", "newco"),
        ("email", "a@newco.test"),
    ];
    let cases: &[(&str, &str, u16, &str)] = &[
        ("subdomain", "acme", 409, "The subdomain 'acme' is taken."),
        ("subdomain", "ab", 422, "at least 3 characters"),
        (
            "subdomain",
            "acme; DROP DATABASE x",
            422,
            "';' is not allowed",
        ),
        ("subdomain", "www", 422, "reserved"),
        ("company", " ", 422, "Enter the company's name."),
        ("email", "nope", 422, "email address like"),
    ];
    for (field, value, status, message) in cases {
        let form: Vec<(&str, &str)> = good
            .iter()
            .map(|(k, v)| (*k, if k == field { *value } else { *v }))
            .collect();
        let (got, body) = call(&app, "localhost", &mut Jar::default(), "signup", &form).await;
        assert_eq!(got.as_u16(), *status, "{field}={value}: {body}");
        let err = body.to_string();
        assert!(err.contains(message), "{field}={value}: {err}");
        assert!(err.contains(field), "the error names the field: {err}");
    }
    // Only the one company exists.
    assert_eq!(
        app::ssr::tenancy::request::directory::list(&app.services.registry)
            .await
            .unwrap()
            .len(),
        1
    );
    // Signup is for the base domain only.
    let (status, _) = call(&app, "acme.localhost", &mut Jar::default(), "signup", &good).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.teardown().await;
}

async fn a_member_calling_admin_functions_directly_gets_403(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    add_member(&app, "acme", "member@acme.test").await;
    let (status, _, mut member) =
        sign_in(&app, "acme.localhost", "member@acme.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::OK);
    for (endpoint, form) in [
        ("list_users", vec![]),
        (
            "add_user",
            vec![
                ("email", "x@acme.test"),
                ("role", "admin"),
                ("password", ADMIN_PASSWORD),
            ],
        ),
        (
            "set_user_role",
            vec![
                ("id", "00000000-0000-0000-0000-000000000000"),
                ("role", "admin"),
            ],
        ),
        (
            "remove_user",
            vec![("id", "00000000-0000-0000-0000-000000000000")],
        ),
    ] {
        let (status, body) = call(&app, "acme.localhost", &mut member, endpoint, &form).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{endpoint}: {body}");
    }
    // The page answers 403 too; the member's own pages work.
    assert_eq!(
        get(&app, "acme.localhost", &mut member, "/users")
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&app, "acme.localhost", &mut member, "/profile")
            .await
            .status(),
        StatusCode::OK
    );
    // Signed out, admin functions answer 401.
    let (status, _) = call(
        &app,
        "acme.localhost",
        &mut Jar::default(),
        "list_users",
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // The admin can.
    let (_, _, mut admin) =
        sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    let (status, body) = call(&app, "acme.localhost", &mut admin, "list_users", &[]).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 2);
    app.teardown().await;
}

async fn a_session_from_one_company_is_signed_out_on_another(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.create_company("Globex", "globex").await;
    let (_, _, mut acme) = sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    let (status, me) = call(&app, "acme.localhost", &mut acme, "whoami", &[]).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "admin@acme.test");

    // The same cookie, copied to another company's host.
    let mut copied = acme.clone();
    let (status, me) = call(&app, "globex.localhost", &mut copied, "whoami", &[]).await;
    assert_eq!((status, me), (StatusCode::OK, Value::Null));
    let (status, _) = call(&app, "globex.localhost", &mut copied, "list_users", &[]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let res = get(&app, "globex.localhost", &mut copied, "/").await;
    assert_eq!(res.status(), StatusCode::FOUND);

    // Sign-out ends it where it was made.
    let (status, _, location) = call_full(&app, "acme.localhost", &mut acme, "logout", &[]).await;
    assert_eq!(
        (status, location.as_deref()),
        (StatusCode::OK, Some("/login"))
    );
    let (_, me) = call(&app, "acme.localhost", &mut acme, "whoami", &[]).await;
    assert_eq!(me, Value::Null);
    app.teardown().await;
}

async fn five_failed_sign_ins_for_one_email_are_throttled(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    for _ in 0..5 {
        let (status, body, _) =
            sign_in(&app, "acme.localhost", "admin@acme.test", "wrong password!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(body.to_string().contains("BadCredentials"), "{body}");
    }
    let (status, body, _) =
        sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let retry = body["Throttled"]["retry_after_secs"].as_u64().unwrap();
    assert!(retry > 14 * 60 && retry <= 15 * 60, "{retry}");
    // Another email is not affected; unknown emails fail the same way.
    let (status, _, _) = sign_in(
        &app,
        "acme.localhost",
        "nobody@acme.test",
        "wrong password!",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    app.teardown().await;
}

async fn the_last_admin_cannot_be_demoted_disabled_or_removed(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    let admin_id = t.admin_user_id.unwrap().to_string();
    let (_, _, mut admin) =
        sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    for (endpoint, form) in [
        (
            "set_user_role",
            vec![("id", admin_id.as_str()), ("role", "member")],
        ),
        (
            "set_user_disabled",
            vec![("id", admin_id.as_str()), ("disabled", "true")],
        ),
        ("remove_user", vec![("id", admin_id.as_str())]),
    ] {
        let (status, body) = call(&app, "acme.localhost", &mut admin, endpoint, &form).await;
        assert_eq!(status, StatusCode::CONFLICT, "{endpoint}: {body}");
        assert!(
            body.to_string().contains("at least one active admin"),
            "{body}"
        );
    }
    // With a second admin, the first may step down.
    let (status, body) = call(
        &app,
        "acme.localhost",
        &mut admin,
        "add_user",
        &[
            ("email", "second@acme.test"),
            ("role", "admin"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = call(
        &app,
        "acme.localhost",
        &mut admin,
        "set_user_role",
        &[("id", &admin_id), ("role", "member")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "Member");
    // Every change is in the audit log.
    let (_, mut second) = {
        let (s, _, j) = sign_in(&app, "acme.localhost", "second@acme.test", ADMIN_PASSWORD).await;
        (s, j)
    };
    let body = get(&app, "acme.localhost", &mut second, "/")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("Added second@acme.test as admin")
            && body.contains("Made admin@acme.test member"),
        "{body}"
    );
    app.teardown().await;
}

async fn signing_in_again_rotates_the_session_id(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    add_member(&app, "acme", "member@acme.test").await;
    let (_, _, mut jar) = sign_in(&app, "acme.localhost", "admin@acme.test", ADMIN_PASSWORD).await;
    let first = jar.0.clone().unwrap();
    let (status, _) = call(
        &app,
        "acme.localhost",
        &mut jar,
        "login",
        &[("email", "member@acme.test"), ("password", ADMIN_PASSWORD)],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let second = jar.0.clone().unwrap();
    assert_ne!(first, second, "a new id at sign-in");
    // The old id is worthless now.
    let (_, me) = call(&app, "acme.localhost", &mut Jar(Some(first)), "whoami", &[]).await;
    assert_eq!(me, Value::Null);
    let (_, me) = call(&app, "acme.localhost", &mut jar, "whoami", &[]).await;
    assert_eq!(me["email"], "member@acme.test");
    app.teardown().await;
}

async fn the_platform_admin_deletes_a_company_only_with_typed_confirmation(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    app::ssr::accounts::platform::create_superadmin(
        &app.services.registry,
        &Email::parse("root@platform.test").unwrap(),
        Password::parse(ADMIN_PASSWORD).unwrap(),
    )
    .await
    .unwrap();
    let mut root = Jar::default();
    // Not signed in: refused.
    let (status, _) = call(
        &app,
        "localhost",
        &mut root,
        "delete_tenant",
        &[("subdomain", "acme"), ("confirm", "acme")],
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, body) = call(
        &app,
        "localhost",
        &mut root,
        "admin_login",
        &[
            ("email", "root@platform.test"),
            ("password", ADMIN_PASSWORD),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // A company admin's session is no platform session, and vice versa.
    let (status, _) = call(&app, "acme.localhost", &mut root, "list_tenants", &[]).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let (status, body) = call(
        &app,
        "localhost",
        &mut root,
        "delete_tenant",
        &[("subdomain", "acme"), ("confirm", "acm")],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.to_string().contains("Type acme to confirm."), "{body}");
    assert!(app
        .services
        .provisioner
        .server()
        .exists(t.id)
        .await
        .unwrap());

    let (status, body) = call(
        &app,
        "localhost",
        &mut root,
        "delete_tenant",
        &[("subdomain", "acme"), ("confirm", "acme")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // Closed for the grace period, its data kept; undelete brings it back.
    assert!(app
        .services
        .provisioner
        .server()
        .exists(t.id)
        .await
        .unwrap());
    app.services.directory.invalidate("acme");
    assert_eq!(
        get(&app, "acme.localhost", &mut Jar::default(), "/login")
            .await
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let (_, list) = call(&app, "localhost", &mut root, "list_tenants", &[]).await;
    assert_eq!(list["rows"][0]["status"], "deleting", "{list}");
    assert!(list["rows"][0]["purge_after"].is_string(), "{list}");
    let (status, body) = call(
        &app,
        "localhost",
        &mut root,
        "undelete_tenant",
        &[("subdomain", "acme")],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    app.services.directory.invalidate("acme");
    assert_eq!(
        get(&app, "acme.localhost", &mut Jar::default(), "/login")
            .await
            .status(),
        StatusCode::OK
    );
    app.teardown().await;
}

async fn plain_form_posts_end_on_the_page_showing_the_outcome(backend: Backend) {
    let app = spawn_app(backend).await;
    let t = app.create_company("Acme Corp", "acme").await;
    let admin_id = t.admin_user_id.unwrap().to_string();
    let host = "acme.localhost";

    // Where to go after sign-in is in the served HTML itself (an
    // attribute, not a property set by hydration), so a plain post has it.
    let mut jar = Jar::default();
    let page = get(&app, host, &mut jar, "/login?next=/users")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(r#"type="hidden" name="next" value="/users""#),
        "{page}"
    );

    // A refused sign-in: 303 back to the form, which shows why.
    let res = post_plain_form(
        &app,
        host,
        &mut jar,
        "login",
        &[
            ("email", "admin@acme.test"),
            ("password", "wrong password!"),
        ],
        "/login",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location_path(&res);
    assert!(back.starts_with("/login?"), "{back}");
    let page = get(&app, host, &mut jar, &back).await.text().await.unwrap();
    assert!(page.contains("Wrong email or password."), "{page}");
    // What was typed comes back in the form; the password never does.
    assert!(page.contains(r#"value="admin@acme.test""#), "{page}");
    assert!(
        !back.contains("wrong") && !page.contains("wrong password!"),
        "{back}"
    );

    // So does a refused signup's, each field in its place.
    let res = post_plain_form(
        &app,
        "localhost",
        &mut Jar::default(),
        "signup",
        &[
            ("company", "Acme & Sons"),
            ("subdomain", "acme"),
            ("email", "boss@sons.test"),
            ("password", "a secret password"),
        ],
        "/signup",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location_path(&res);
    let page = get(&app, "localhost", &mut Jar::default(), &back)
        .await
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("The subdomain &#x27;acme&#x27; is taken.")
            || page.contains("The subdomain 'acme' is taken."),
        "{page}"
    );
    for kept in [
        r#"value="Acme &amp; Sons""#,
        r#"value="acme""#,
        r#"value="boss@sons.test""#,
    ] {
        assert!(page.contains(kept), "{kept}: {page}");
    }
    assert!(!back.contains("secret") && !page.contains("a secret password"));

    // A sign-in that works: 303 on to the dashboard, signed in.
    let res = post_plain_form(
        &app,
        host,
        &mut jar,
        "login",
        &[("email", "admin@acme.test"), ("password", ADMIN_PASSWORD)],
        "/login",
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location_path(&res), "/");
    let page = get(&app, host, &mut jar, "/").await.text().await.unwrap();
    assert!(page.contains("data-testid=\"company-name\""), "{page}");

    // Each refused change of the last admin: 303 back to /users, which
    // says why, never a JSON body.
    for (endpoint, form) in [
        (
            "set_user_role",
            vec![("id", admin_id.as_str()), ("role", "member")],
        ),
        (
            "set_user_disabled",
            vec![("id", admin_id.as_str()), ("disabled", "true")],
        ),
        ("remove_user", vec![("id", admin_id.as_str())]),
    ] {
        let res = post_plain_form(&app, host, &mut jar, endpoint, &form, "/users").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{endpoint}");
        let back = location_path(&res);
        assert!(back.starts_with("/users?"), "{endpoint}: {back}");
        let res = get(&app, host, &mut jar, &back).await;
        assert_eq!(res.status(), StatusCode::OK, "{endpoint}");
        let page = res.text().await.unwrap();
        assert!(
            page.contains("The company needs at least one active admin."),
            "{endpoint}: {page}"
        );
    }
    app.teardown().await;
}
