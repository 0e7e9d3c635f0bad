//! Assets: precompressed copies sent to browsers that take them, hashed
//! names cached for a year, pages only to be asked for again.
use reqwest::{header, StatusCode};

use crate::helpers::{spawn_app_with, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn assets_go_out_precompressed_and_hashed_names_are_cached_for_a_year() {
    let root = std::env::temp_dir().join(format!("enclave-site-{}", uuid::Uuid::new_v4().simple()));
    let pkg = root.join("pkg");
    std::fs::create_dir_all(&pkg).unwrap();
    let hashed = "enclave.Ab3_x-9Zq1w2e3r4.wasm";
    std::fs::write(pkg.join(hashed), b"plain wasm bytes").unwrap();
    std::fs::write(pkg.join(format!("{hashed}.br")), b"brotli bytes").unwrap();
    std::fs::write(pkg.join(format!("{hashed}.gz")), b"gzip bytes").unwrap();
    std::fs::write(pkg.join("enclave.css"), b"body{}").unwrap();
    let site_root = root.to_str().unwrap().to_owned();
    let app = spawn_app_with(Backend::Sqlite, |s| s.site_root = site_root).await;
    let asset = |path: String, accept: &'static str| {
        let app = &app;
        async move {
            let mut req = app
                .client
                .get(format!("{}{path}", app.address))
                .header(header::HOST, "localhost");
            if !accept.is_empty() {
                req = req.header(header::ACCEPT_ENCODING, accept);
            }
            req.send().await.unwrap()
        }
    };
    let header_of = |res: &reqwest::Response, name: header::HeaderName| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };

    for (accept, encoding, body) in [
        ("br, gzip", Some("br"), "brotli bytes"),
        ("gzip", Some("gzip"), "gzip bytes"),
        ("", None, "plain wasm bytes"),
    ] {
        let res = asset(format!("/pkg/{hashed}"), accept).await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(
            header_of(&res, header::CONTENT_ENCODING).as_deref(),
            encoding,
            "{accept}"
        );
        assert_eq!(
            header_of(&res, header::CACHE_CONTROL).as_deref(),
            Some("public, max-age=31536000, immutable")
        );
        assert_eq!(res.bytes().await.unwrap(), body.as_bytes());
    }
    // An asset without a hash in its name is checked again on each use.
    let res = asset("/pkg/enclave.css".into(), "br").await;
    assert_eq!(
        header_of(&res, header::CACHE_CONTROL).as_deref(),
        Some("no-cache")
    );
    assert!(header_of(&res, header::LAST_MODIFIED).is_some());
    // A page: kept only to be asked for again; a missing asset: not cached.
    let res = asset("/".into(), "").await;
    assert_eq!(
        header_of(&res, header::CACHE_CONTROL).as_deref(),
        Some("private, no-cache")
    );
    let res = asset("/pkg/enclave.Zz9Zz9Zz9Zz9Zz9Z.js".into(), "").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert_eq!(header_of(&res, header::CACHE_CONTROL), None);
    app.teardown().await;
    let _ = std::fs::remove_dir_all(&root);
}
