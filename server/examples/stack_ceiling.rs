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
//! `GET /held` runs the same `SELECT 1` on one sqlx connection per company
//! held for good, outside any pool: what the query costs without the ping
//! sqlx's pool sends on every connection it takes back (`sqlx-core`
//! 0.9 `return_to_pool`, not optional), which SeaORM cannot avoid since it
//! runs every statement through a pool.
use std::{sync::Arc, time::Duration};

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    routing::get,
    Json, Router,
};
use sea_orm::sqlx::{Connection, Executor, PgConnection};
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use secrecy::{ExposeSecret, SecretString};
use serde_json::{json, Value};
use tokio::sync::Mutex;

#[derive(Clone)]
struct Stack {
    pools: Arc<Vec<DatabaseConnection>>,
    held: Arc<Vec<Mutex<PgConnection>>>,
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

/// The company a Host names, of `n`: `t00042.localhost` is company 42.
fn company(headers: &HeaderMap, n: usize) -> usize {
    headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.split('.').next())
        .and_then(|label| label.strip_prefix('t'))
        .and_then(|digits| digits.parse::<usize>().ok())
        .unwrap_or(0)
        % n
}

/// 503 when the query failed, so that wrk counts it as a failure.
fn answer(ok: bool) -> (StatusCode, Json<Value>) {
    if ok {
        (StatusCode::OK, Json(json!({"tenant": "t", "status": "ok"})))
    } else {
        let body = Json(json!({"tenant": "t", "status": "unavailable"}));
        (StatusCode::SERVICE_UNAVAILABLE, body)
    }
}

async fn health(State(stack): State<Stack>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let db = &stack.pools[company(&headers, stack.pools.len())];
    answer(db.execute_unprepared("SELECT 1").await.is_ok())
}

async fn held(State(stack): State<Stack>, headers: HeaderMap) -> (StatusCode, Json<Value>) {
    let mut conn = stack.held[company(&headers, stack.held.len())].lock().await;
    answer(conn.execute("SELECT 1").await.is_ok())
}

async fn plain() -> Json<Value> {
    Json(json!({"tenant": "t", "status": "ok"}))
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let url = SecretString::from(std::env::var("STACK_DB_URL").expect("set STACK_DB_URL"));
    let n: usize = env("STACK_N", "10").parse().expect("STACK_N is a number");
    let (mut pools, mut conns) = (Vec::with_capacity(n), Vec::with_capacity(n));
    for _ in 0..n {
        let opts =
            app::ssr::tenancy::servers::databases::connect_options(&url, 1, Duration::from_secs(5));
        pools.push(Database::connect(opts).await.expect("the database answers"));
        let conn = PgConnection::connect(url.expose_secret()).await;
        conns.push(Mutex::new(conn.expect("the database answers")));
    }
    let stack = Stack {
        pools: Arc::new(pools),
        held: Arc::new(conns),
    };
    let router = Router::new()
        .route("/api/health", get(health))
        .route("/held", get(held))
        .route("/plain", get(plain))
        .with_state(stack);
    let listener = tokio::net::TcpListener::bind(env("STACK_LISTEN", "127.0.0.1:3299")).await?;
    server::http_server::serve(
        listener,
        router,
        Duration::from_secs(10),
        std::future::pending(),
    )
    .await
}
