//! The stack's own ceiling for `GET /api/health`, without Enclave: the same
//! HTTP loop (`server::http_server::serve`), the same pool options
//! (`connect_options`, one connection per company, as Enclave's default)
//! and the same `SELECT 1` through SeaORM, but no middleware, sessions,
//! directory or tenancy. `load.sh` runs it beside `pgbench -S` so that a
//! row can be read against what axum, hyper, SeaORM and sqlx cost alone.
//!
//! `STACK_LISTEN` (127.0.0.1:3299), `STACK_DB_URL` (a PostgreSQL URL),
//! `STACK_N` (10): the Host's first label `tNNNNN` picks pool NNNNN mod N.
//! `GET /plain` answers the same body without a query: HTTP alone.
use std::{sync::Arc, time::Duration};

use axum::{extract::State, http::HeaderMap, routing::get, Json, Router};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::SecretString;
use serde_json::{json, Value};

type Pools = Arc<Vec<DatabaseConnection>>;

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The pool a Host names: `t00042.localhost` is company 42.
fn pool<'a>(pools: &'a Pools, headers: &HeaderMap) -> &'a DatabaseConnection {
    let number = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split('.').next())
        .and_then(|label| label.strip_prefix('t'))
        .and_then(|digits| digits.parse::<usize>().ok())
        .unwrap_or(0);
    &pools[number % pools.len()]
}

async fn health(State(pools): State<Pools>, headers: HeaderMap) -> Json<Value> {
    let status = match pool(&pools, &headers).execute_unprepared("SELECT 1").await {
        Ok(_) => "ok",
        Err(_) => "unavailable",
    };
    Json(json!({"tenant": "t", "status": status}))
}

async fn plain() -> Json<Value> {
    Json(json!({"tenant": "t", "status": "ok"}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let url = SecretString::from(std::env::var("STACK_DB_URL").expect("set STACK_DB_URL"));
    let n: usize = env("STACK_N", "10").parse().expect("STACK_N is a number");
    let mut pools = Vec::with_capacity(n);
    for _ in 0..n {
        let opts = app::ssr::tenancy::databases::connect_options(&url, 1, Duration::from_secs(5));
        pools.push(Database::connect(opts).await.expect("the database answers"));
    }
    let router = Router::new()
        .route("/api/health", get(health))
        .route("/plain", get(plain))
        .with_state(Arc::new(pools));
    let listener = tokio::net::TcpListener::bind(env("STACK_LISTEN", "127.0.0.1:3299")).await?;
    server::http_server::serve(
        listener,
        router,
        Duration::from_secs(10),
        std::future::pending(),
    )
    .await
}
