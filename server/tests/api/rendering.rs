//! Page rendering is never stalled by another app of the same process
//! starting up.
//!
//! While Leptos generates a route list it suppresses resource loading for
//! the whole process, and a resource first polled in that window never
//! loads (leptos#4773): its page never answers. Every page reads the site
//! resource, so with the route list generated per app, a test (or a
//! benchmark) that starts an app while another serves could hang a
//! request for good. The route list is generated once per process.
use std::time::Duration;

use reqwest::header::HOST;
use tokio::task::JoinSet;

use crate::helpers::{spawn_app, Backend};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_keep_rendering_while_other_apps_start() {
    let app = spawn_app(Backend::Sqlite).await;
    let starting = tokio::spawn(async {
        for _ in 0..12 {
            spawn_app(Backend::Sqlite).await.teardown().await;
        }
    });
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut rendered = 0;
    while !starting.is_finished() {
        let mut batch = JoinSet::new();
        for _ in 0..8 {
            let request = client
                .get(format!("{}/", app.address))
                .header(HOST, "localhost")
                .send();
            batch.spawn(async move { request.await.map(|r| r.status().as_u16()) });
        }
        while let Some(done) = batch.join_next().await {
            let status = done.unwrap().expect("the page answered within 10 s");
            assert_eq!(status, 200);
            rendered += 1;
        }
    }
    starting.await.unwrap();
    assert!(rendered >= 8, "only {rendered} pages rendered");
    app.teardown().await;
}
