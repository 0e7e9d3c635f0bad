//! `sqlite-drivers <sqlx|sqlx-lean|rusqlite> <dir> <n>`: opens `n` SQLite
//! files (one per company, rollback journal, as Enclave does) through SeaORM
//! with the given driver (`sqlx-lean`: sqlx with a page cache of 64 KiB and
//! 16 cached statements per connection),
//! keeps them all open, and prints one line: microseconds per open, RSS per
//! open connection (KiB), threads, and microseconds per `SELECT 1` over the
//! open connections. Run each driver in a process of its own.
use std::time::Instant;

fn status(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn url(dir: &str, i: usize) -> String {
    format!("sqlite://{dir}/c{i:05}.db?mode=rwc")
}

fn report(driver: &str, n: usize, open_s: f64, rss_before: u64, query_s: f64, queries: usize) {
    let rss = status("VmRSS:");
    println!(
        "driver={driver} n={n} open_us={:.0} rss_per_connection_kib={:.1} rss_mib={} threads={} select1_us={:.1}",
        open_s * 1e6 / n as f64,
        (rss.saturating_sub(rss_before)) as f64 / n as f64,
        rss / 1024,
        status("Threads:"),
        query_s * 1e6 / queries as f64,
    );
}

const ROUNDS: usize = 5;

fn with_rusqlite(dir: &str, n: usize) {
    use orm_sync::{ConnectionTrait, Database};
    let before = status("VmRSS:");
    let started = Instant::now();
    let conns: Vec<_> = (0..n)
        .map(|i| {
            let db = Database::connect(url(dir, i)).unwrap();
            db.execute_unprepared("SELECT 1").unwrap();
            db
        })
        .collect();
    let open_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for db in &conns {
            db.execute_unprepared("SELECT 1").unwrap();
        }
    }
    report(
        "rusqlite",
        n,
        open_s,
        before,
        started.elapsed().as_secs_f64(),
        ROUNDS * n,
    );
}

async fn with_sqlx(dir: &str, n: usize, lean: bool) {
    use sea_orm::{ConnectOptions, ConnectionTrait, Database};
    let before = status("VmRSS:");
    let started = Instant::now();
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        let mut opts = ConnectOptions::new(url(dir, i));
        opts.max_connections(1)
            .min_connections(0)
            .sqlx_logging(false);
        if lean {
            opts.map_sqlx_sqlite_opts(|o| {
                o.pragma("cache_size", "-64").statement_cache_capacity(16)
            });
        }
        let db = Database::connect(opts).await.unwrap();
        db.execute_unprepared("SELECT 1").await.unwrap();
        conns.push(db);
    }
    let open_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    for _ in 0..ROUNDS {
        for db in &conns {
            db.execute_unprepared("SELECT 1").await.unwrap();
        }
    }
    let name = if lean { "sqlx-lean" } else { "sqlx" };
    report(
        name,
        n,
        open_s,
        before,
        started.elapsed().as_secs_f64(),
        ROUNDS * n,
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (driver, dir, n) = match &args[..] {
        [_, d, dir, n] => (d.as_str(), dir.as_str(), n.parse::<usize>().expect("n")),
        _ => panic!("usage: sqlite-drivers <sqlx|sqlx-lean|rusqlite> <dir> <n>"),
    };
    std::fs::create_dir_all(dir).unwrap();
    match driver {
        "rusqlite" => with_rusqlite(dir, n),
        "sqlx" | "sqlx-lean" => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(with_sqlx(dir, n, driver == "sqlx-lean")),
        other => panic!("unknown driver {other}"),
    }
}
