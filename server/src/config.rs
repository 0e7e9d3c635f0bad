//! Settings, each from a flag or an environment variable (a `.env` file is read first); nothing else reads the environment.
use std::{net::SocketAddr, path::PathBuf};

use secrecy::{ExposeSecret, SecretString};

#[derive(clap::Args, Clone, Debug)]
pub struct Settings {
    /// Domain that companies live under: the landing page is served on it,
    /// company `acme` on `acme.<base domain>`.
    #[arg(long, global = true, env = "ENCLAVE_BASE_DOMAIN", default_value = "localhost", value_parser = parse_base_domain)]
    pub base_domain: String,

    /// Directory for the SQLite registry and tenant databases.
    #[arg(long, global = true, env = "ENCLAVE_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,

    /// Registry database URL, `sqlite://…` or `postgres://…`
    /// [default: sqlite file `<data dir>/registry.db`].
    #[arg(long, global = true, env = "ENCLAVE_REGISTRY_URL", hide_env_values = true, value_parser = parse_secret)]
    pub registry_url: Option<SecretString>,

    /// Where tenant databases are created: a PostgreSQL administrator URL
    /// (`postgres://admin@host:5432/postgres`, needs CREATEDB and CREATEROLE)
    /// [default: SQLite files in `<data dir>/tenants`].
    #[arg(long, global = true, env = "ENCLAVE_TENANT_DB_URL", hide_env_values = true, value_parser = parse_secret)]
    pub tenant_db_url: Option<SecretString>,

    /// Key that encrypts stored database credentials: 64 hex characters
    /// (`openssl rand -hex 32`). Required with PostgreSQL; with SQLite only,
    /// one is generated into `<data dir>/secret.key` if unset.
    #[arg(long, global = true, env = "ENCLAVE_SECRET_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub secret_key: Option<SecretString>,

    /// During a key rotation: the key being replaced, which still opens
    /// what it sealed until `secret rotate` has sealed everything again
    /// under `ENCLAVE_SECRET_KEY`.
    #[arg(long, global = true, env = "ENCLAVE_SECRET_KEY_PREVIOUS", hide_env_values = true, value_parser = parse_secret)]
    pub secret_key_previous: Option<SecretString>,

    /// Connections one company's pool may open (1: a company's queries
    /// take turns on one connection, which holds the most companies open).
    #[arg(long, global = true, env = "ENCLAVE_TENANT_POOL_SIZE", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub tenant_pool_size: u32,

    /// Connections all company pools of this process may hold open
    /// together (the open budget) [default: derived from the server: on
    /// PostgreSQL, `max_connections` minus its reserved slots, minus
    /// `ENCLAVE_CONNECTION_RESERVE`, shared by `ENCLAVE_INSTANCES`, minus
    /// this process's own registry and administrator pools; on SQLite, the
    /// open-file limit (one per open company, plus a journal per busy
    /// connection) less 1,024 for the rest, at most 20,000].
    #[arg(long, global = true, env = "ENCLAVE_CONNECTION_BUDGET", value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub connection_budget: Option<u32>,

    /// Connections to company databases in use at once (the busy budget);
    /// more requests wait their turn. A few times the database server's
    /// cores; fewer requests in flight also keep more of the popular
    /// companies' connections open when companies outnumber the open budget.
    #[arg(long, global = true, env = "ENCLAVE_BUSY_BUDGET", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub busy_budget: u32,

    /// A company's requests that may wait for its database connection past
    /// those using it (`ENCLAVE_TENANT_POOL_SIZE`, which is at most half the
    /// busy budget); the next one is answered 503 with `Retry-After` at once.
    #[arg(long, global = true, env = "ENCLAVE_TENANT_QUEUE", default_value_t = 32, value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub tenant_queue: u32,

    /// Milliseconds one statement of a company may run (PostgreSQL: its
    /// role's `statement_timeout`; SQLite: the busy timeout, then the
    /// statement is interrupted); past it the request gets 503.
    #[arg(long, global = true, env = "ENCLAVE_TENANT_STATEMENT_TIMEOUT_MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    pub tenant_statement_timeout_ms: u64,

    /// Companies that lead every migration run in waves (the platform's own
    /// test or demo companies), comma-separated subdomains; one no longer
    /// there is passed over.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_MIGRATION_CANARIES",
        default_value = ""
    )]
    pub migration_canaries: String,

    /// Milliseconds one company's migration (`migrate`) may wait for a
    /// lock (PostgreSQL's `lock_timeout`; SQLite's busy timeout): a
    /// migration stuck behind a long transaction fails that company's step
    /// instead of holding up its requests.
    #[arg(long, global = true, env = "ENCLAVE_MIGRATION_LOCK_TIMEOUT_MS", default_value_t = 5_000, value_parser = clap::value_parser!(u64).range(10..=86_400_000))]
    pub migration_lock_timeout_ms: u64,

    /// Milliseconds one statement of a company's migration may run
    /// (PostgreSQL's `statement_timeout` for `migrate`, above the company
    /// role's own).
    #[arg(long, global = true, env = "ENCLAVE_MIGRATION_STATEMENT_TIMEOUT_MS", default_value_t = 600_000, value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    pub migration_statement_timeout_ms: u64,

    /// Milliseconds a company's transaction may sit idle before PostgreSQL
    /// ends its session (its role's `idle_in_transaction_session_timeout`).
    #[arg(long, global = true, env = "ENCLAVE_TENANT_IDLE_IN_TRANSACTION_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(100..=86_400_000))]
    pub tenant_idle_in_transaction_ms: u64,

    /// Connections one company's role may hold on PostgreSQL, from every
    /// instance and tool together (`CONNECTION LIMIT`); more than
    /// `ENCLAVE_TENANT_POOL_SIZE × ENCLAVE_INSTANCES`, with room for
    /// `migrate` and moves.
    #[arg(long, global = true, env = "ENCLAVE_TENANT_CONNECTION_LIMIT", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub tenant_connection_limit: u32,

    /// PostgreSQL connections the derived open budget leaves to others
    /// (psql, backups, monitoring, `migrate`).
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_CONNECTION_RESERVE",
        default_value_t = 10
    )]
    pub connection_reserve: u32,

    /// Enclave processes sharing the tenant database server; each derives
    /// an equal share of its connections.
    #[arg(long, global = true, env = "ENCLAVE_INSTANCES", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub instances: u32,

    /// Seconds a company's pool may stay unused before it is closed.
    #[arg(long, global = true, env = "ENCLAVE_TENANT_IDLE_SECS", default_value_t = 300, value_parser = clap::value_parser!(u64).range(1..))]
    pub tenant_idle_secs: u64,

    /// Milliseconds a request waits for a tenant connection (or room for
    /// one) before answering 503.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_TENANT_ACQUIRE_TIMEOUT_MS",
        default_value_t = 2000
    )]
    pub tenant_acquire_timeout_ms: u64,

    /// Seconds a subdomain lookup is cached; changes made by other
    /// instances are seen within this time.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_TENANT_CACHE_SECS",
        default_value_t = 5
    )]
    pub tenant_cache_secs: u64,

    /// Seconds a company already known is still served from the last
    /// answer the registry gave while the registry cannot be reached
    /// (0: never; unknown subdomains, signup and the platform admin answer
    /// 503 while it is down).
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_DIRECTORY_STALE_SECS",
        default_value_t = 3600
    )]
    pub directory_stale_secs: u64,

    /// PostgreSQL: copy new company databases from a template kept at the
    /// latest tenant migration (`enclave_tpl_…`); `false` migrates each
    /// one from empty.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_TENANT_TEMPLATE",
        default_value_t = true,
        action = clap::ArgAction::Set
    )]
    pub tenant_template: bool,

    /// A company creation that has not progressed for this many seconds is
    /// presumed dead (its process crashed) and undone.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_PROVISIONING_TIMEOUT_SECS",
        default_value_t = 120
    )]
    pub provisioning_timeout_secs: u64,

    /// Addresses of reverse proxies (comma-separated) whose
    /// `X-Forwarded-Proto` and `X-Forwarded-For` are believed; from anyone
    /// else those headers are ignored.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_TRUSTED_PROXIES",
        value_delimiter = ','
    )]
    pub trusted_proxies: Vec<std::net::IpAddr>,

    /// Mark session cookies `Secure` and name them `__Host-…` (https only)
    /// [default: true, unless the base domain is `localhost`].
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_SECURE_COOKIES",
        action = clap::ArgAction::Set
    )]
    pub secure_cookies: Option<bool>,

    /// Days a finished provisioning record (created, undone, deleted) is
    /// kept in the registry before the housekeeping purges it.
    #[arg(long, global = true, env = "ENCLAVE_PROVISIONING_RECORDS_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub provisioning_records_days: u32,

    /// pgBackRest's configuration file, which `backup setup --write` adds
    /// each server's stanza to [default: pgBackRest's own,
    /// `/etc/pgbackrest/pgbackrest.conf`].
    #[arg(long, global = true, env = "ENCLAVE_PGBACKREST_CONFIG")]
    pub pgbackrest_config: Option<PathBuf>,

    /// The operating-system user that owns PostgreSQL's data (`postgres`):
    /// pgBackRest and a restore's temporary server run as it (`runuser`
    /// when Enclave runs as root, `sudo -n -u` otherwise) [default:
    /// Enclave's own user].
    #[arg(long, global = true, env = "ENCLAVE_BACKUP_OS_USER")]
    pub backup_os_user: Option<String>,

    /// Where `pg_ctl` of the servers' PostgreSQL version is, for a
    /// restore's temporary server [default: `/usr/lib/postgresql/<major>/bin`].
    #[arg(long, global = true, env = "ENCLAVE_PG_BIN")]
    pub pg_bin: Option<PathBuf>,

    /// Full backups kept per server; older ones, and the WAL only they
    /// need, expire after each backup (so companies go back as far as the
    /// oldest kept full backup).
    #[arg(long, global = true, env = "ENCLAVE_BACKUP_RETENTION_FULL", default_value_t = 2, value_parser = clap::value_parser!(u32).range(1..=9_999_999))]
    pub backup_retention_full: u32,

    /// Where a restore makes its temporary server, writable by
    /// `ENCLAVE_BACKUP_OS_USER` [default: `<data dir>/restores`].
    #[arg(long, global = true, env = "ENCLAVE_RESTORE_DIR")]
    pub restore_dir: Option<PathBuf>,

    /// A restore whose temporary server needs at most this many MB (the
    /// company's database and the WAL it replays) makes it in memory
    /// (`/dev/shm`), off the disk the served companies use, when the
    /// machine has twice that free; 0: always in `ENCLAVE_RESTORE_DIR`.
    #[arg(long, global = true, env = "ENCLAVE_RESTORE_MEMORY_MB", default_value_t = app::ssr::tenancy::backups::DEFAULT_MEMORY_MB, value_parser = clap::value_parser!(u64).range(0..=16_777_216))]
    pub restore_memory_mb: u64,

    /// How many cores a restore's own work (pgBackRest, the temporary
    /// cluster, the copy and its checksums) may run on: the last ones this
    /// process may use, so the first ones always serve. Default: half of
    /// them (at least one); 0: all.
    #[arg(long, global = true, env = "ENCLAVE_RESTORE_CORES", value_parser = clap::value_parser!(u32).range(0..=65_536))]
    pub restore_cores: Option<u32>,

    /// Days a restore in place keeps the database it replaced, for
    /// `tenant restore --undo`.
    #[arg(long, global = true, env = "ENCLAVE_RESTORE_KEEP_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub restore_keep_days: u32,

    /// SQLite: how often each company is snapshotted, `30m`, `6h`, `1d`,
    /// or `off`.
    #[arg(long, global = true, env = "ENCLAVE_SNAPSHOT_EVERY", default_value = "1h", value_parser = parse_every)]
    pub snapshot_every: Every,

    /// SQLite: days snapshots are kept (a company's newest always is).
    #[arg(long, global = true, env = "ENCLAVE_SNAPSHOT_KEEP_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3_650))]
    pub snapshot_keep_days: u32,

    /// Days a deleted company waits before it is purged (its site says
    /// until when; `tenant undelete` brings it back meanwhile).
    #[arg(long, global = true, env = "ENCLAVE_DELETION_GRACE_DAYS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub deletion_grace_days: u32,

    /// Days a purged company's subdomain stays out of anyone else's reach.
    #[arg(long, global = true, env = "ENCLAVE_SUBDOMAIN_RESERVED_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub subdomain_reserved_days: u32,

    /// Days between full backups in the operator's schedule: with the
    /// retention, when a purged company leaves the backups (its receipt).
    #[arg(long, global = true, env = "ENCLAVE_BACKUP_FULL_EVERY_DAYS", default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=3_650))]
    pub backup_full_every_days: u32,

    /// The DNS server custom domains' TXT records are looked up at,
    /// `address:port` [default: the system's resolvers, /etc/resolv.conf].
    #[arg(long, global = true, env = "ENCLAVE_DNS_SERVER")]
    pub dns_server: Option<std::net::SocketAddr>,

    /// What a company's custom domain's CNAME must point at (shown on its
    /// settings page) [default: the base domain].
    #[arg(long, global = true, env = "ENCLAVE_DOMAIN_TARGET")]
    pub domain_target: Option<String>,

    /// Seconds between looks at a verified domain's TXT record.
    #[arg(long, global = true, env = "ENCLAVE_DOMAIN_RECHECK_SECS", default_value_t = 3_600, value_parser = clap::value_parser!(u64).range(1..=604_800))]
    pub domain_recheck_secs: u64,

    /// Seconds a verified domain's TXT record may be missing before the
    /// domain stops being served (72 hours).
    #[arg(long, global = true, env = "ENCLAVE_DOMAIN_GRACE_SECS", default_value_t = 259_200, value_parser = clap::value_parser!(u64).range(0..=31_536_000))]
    pub domain_grace_secs: u64,

    /// Where Caddy's on-demand TLS asks whether a name may have a
    /// certificate (`address:port`, loopback) [default: not served].
    #[arg(long, global = true, env = "ENCLAVE_CADDY_ASK_LISTEN")]
    pub caddy_ask_listen: Option<std::net::SocketAddr>,

    /// Days a renamed company's old subdomain redirects to the new one.
    #[arg(long, global = true, env = "ENCLAVE_RENAME_REDIRECT_DAYS", default_value_t = 90, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub rename_redirect_days: u32,

    /// Days no other company may take a renamed company's old subdomain.
    #[arg(long, global = true, env = "ENCLAVE_RENAME_RESERVED_DAYS", default_value_t = 180, value_parser = clap::value_parser!(u32).range(0..=3_650))]
    pub rename_reserved_days: u32,

    /// SMTP server for outgoing mail, as a URL: `smtp://host:25` (plain),
    /// `smtp://user:pass@host:587?tls=required` (STARTTLS) or
    /// `smtps://user:pass@host` [default: none: each message is written as
    /// an `.eml` file to `<data dir>/outbox/`].
    #[arg(long, global = true, env = "ENCLAVE_SMTP_URL", hide_env_values = true, value_parser = parse_secret)]
    pub smtp_url: Option<SecretString>,

    /// The sender of outgoing mail, `Name <address>` or `address`
    /// [default: `Enclave <no-reply@<base domain>>`].
    #[arg(long, global = true, env = "ENCLAVE_MAIL_FROM")]
    pub mail_from: Option<String>,

    /// Companies one client address may create through signup in an hour
    /// (the platform API and the CLI are not limited).
    #[arg(long, global = true, env = "ENCLAVE_SIGNUPS_PER_HOUR", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub signups_per_hour: u32,

    /// Where people reach Enclave, `https://example.com` (scheme, the base
    /// domain, and a port if not the scheme's): every link in mail starts
    /// here, never at the `Host` or scheme a request came with. Unset:
    /// `http://<base domain>:<listen port>`, for development.
    #[arg(long, global = true, env = "ENCLAVE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Invitations (sent or sent again) one company may mail in a day;
    /// past that, 429 until the oldest is a day old.
    #[arg(long, global = true, env = "ENCLAVE_INVITATIONS_PER_DAY", default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub invitations_per_day: u32,

    /// Requests one company's site may take in a second, in bursts of as
    /// many; past that, 429 with `Retry-After`. 0 (the default): no limit
    /// (the fair shares of connections and request slots still hold).
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_COMPANY_REQUESTS_PER_SECOND",
        default_value_t = 0
    )]
    pub company_requests_per_second: u32,

    /// Seconds a client has to send a request's headers before the
    /// connection is closed (slow clients cannot hold connections).
    #[arg(long, global = true, env = "ENCLAVE_HEADER_TIMEOUT_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout_secs: u64,

    /// Milliseconds a request may take, queueing included, before it is
    /// answered 408.
    #[arg(long, global = true, env = "ENCLAVE_REQUEST_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..=3_600_000))]
    pub request_timeout_ms: u64,

    /// Requests served at once; more wait their turn (within the request
    /// timeout). One site (a company, the base domain) holds at most a
    /// quarter of them, with as many again waiting; past that, 503 at once.
    #[arg(long, global = true, env = "ENCLAVE_MAX_CONCURRENT_REQUESTS", default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_concurrent_requests: u32,

    /// Address the HTTP server listens on.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_LISTEN",
        default_value = "127.0.0.1:3000"
    )]
    pub listen: SocketAddr,

    /// Directory with the built site (WASM, JS, CSS); cargo-leptos sets it.
    #[arg(
        long,
        global = true,
        env = "LEPTOS_SITE_ROOT",
        default_value = "target/site"
    )]
    pub site_root: String,

    /// Log format: `human` or `json`.
    #[arg(
        long,
        global = true,
        env = "ENCLAVE_LOG_FORMAT",
        default_value = "human"
    )]
    pub log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Human,
    Json,
}

impl Settings {
    /// What each company's database role may take of its server.
    pub fn role_limits(&self) -> app::ssr::tenancy::servers::databases::RoleLimits {
        app::ssr::tenancy::servers::databases::RoleLimits {
            statement_timeout_ms: self.tenant_statement_timeout_ms,
            idle_in_transaction_ms: self.tenant_idle_in_transaction_ms,
            connection_limit: self.tenant_connection_limit,
        }
    }

    /// The registry URL, defaulting to a SQLite file in the data directory.
    pub fn registry_url(&self) -> SecretString {
        match &self.registry_url {
            Some(url) => url.clone(),
            None => SecretString::from(format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("registry.db").display()
            )),
        }
    }

    /// The registry's file when it is SQLite: what follows `sqlite://` up
    /// to any `?` (`:memory:` has none).
    pub fn registry_sqlite_path(&self) -> Option<PathBuf> {
        let url = self.registry_url();
        let rest = url.expose_secret().strip_prefix("sqlite:")?;
        let path = rest.trim_start_matches("//").split('?').next()?;
        (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
    }

    pub fn registry_is_sqlite(&self) -> bool {
        self.registry_url().expose_secret().starts_with("sqlite:")
    }

    /// Whether any database is on PostgreSQL (which then needs a real key).
    pub fn uses_postgres(&self) -> bool {
        !self.registry_is_sqlite() || self.tenant_db_url.is_some()
    }

    /// Where links in mail point: [`Settings::public_url`], or plain http
    /// to the base domain on `port` (the port this process listens on).
    pub fn public_origin(&self, port: u16) -> Result<app::site::Origin, String> {
        let Some(raw) = &self.public_url else {
            return Ok(app::site::Origin {
                scheme: "http".into(),
                base: match port {
                    80 => self.base_domain.clone(),
                    p => format!("{}:{p}", self.base_domain),
                },
            });
        };
        let url = url::Url::parse(raw).map_err(|e| format!("ENCLAVE_PUBLIC_URL: {e}"))?;
        let scheme = url.scheme();
        if !matches!(scheme, "http" | "https") {
            return Err("ENCLAVE_PUBLIC_URL must start with https:// or http://".into());
        }
        if url.host_str() != Some(self.base_domain.as_str()) {
            return Err(format!(
                "ENCLAVE_PUBLIC_URL must name the base domain, {}",
                self.base_domain
            ));
        }
        if url.path() != "/" || url.query().is_some() || !url.username().is_empty() {
            return Err("ENCLAVE_PUBLIC_URL is a scheme, the base domain and a port only".into());
        }
        Ok(app::site::Origin {
            scheme: scheme.to_owned(),
            base: match url.port() {
                Some(p) => format!("{}:{p}", self.base_domain),
                None => self.base_domain.clone(),
            },
        })
    }

    /// Whether session cookies are `Secure`: as set, or unless the base
    /// domain is `localhost` (plain http in development).
    pub fn secure_cookies(&self) -> bool {
        self.secure_cookies
            .unwrap_or(self.base_domain != "localhost" && !self.base_domain.ends_with(".localhost"))
    }

    /// Where messages go when no SMTP server is set.
    pub fn outbox_dir(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    pub fn mail_from(&self) -> String {
        self.mail_from
            .clone()
            .unwrap_or_else(|| format!("Enclave <no-reply@{}>", self.base_domain))
    }

    /// What backups and restores are configured with.
    pub fn backup_settings(&self) -> app::ssr::tenancy::backups::BackupSettings {
        let days = |d: u32| std::time::Duration::from_secs(u64::from(d) * 86_400);
        app::ssr::tenancy::backups::BackupSettings {
            pgbackrest_config: self.pgbackrest_config.clone(),
            os_user: self.backup_os_user.clone(),
            pg_bin: self.pg_bin.clone(),
            retention_full: self.backup_retention_full,
            scratch_dir: self
                .restore_dir
                .clone()
                .unwrap_or_else(|| self.data_dir.join("restores")),
            memory_limit: self.restore_memory_mb << 20,
            cores: app::ssr::tenancy::backups::priority::restore_cores(self.restore_cores),
            keep: days(self.restore_keep_days),
            snapshot_every: self.snapshot_every.0,
            snapshot_keep: days(self.snapshot_keep_days),
            snapshot_dir: self.data_dir.join("snapshots"),
        }
    }

    pub fn offboarding_settings(
        &self,
    ) -> app::ssr::tenancy::lifecycle::offboarding::OffboardingSettings {
        let days = |d: u32| std::time::Duration::from_secs(u64::from(d) * 86_400);
        app::ssr::tenancy::lifecycle::offboarding::OffboardingSettings {
            grace: days(self.deletion_grace_days),
            reserved: days(self.subdomain_reserved_days),
            full_backup_every: days(self.backup_full_every_days),
            receipts_dir: self.data_dir.join("receipts"),
        }
    }

    pub fn domain_settings(
        &self,
    ) -> Result<app::ssr::tenancy::domains::DomainSettings, app::ssr::tenancy::domains::dns::DnsError>
    {
        let days = |d: u32| std::time::Duration::from_secs(u64::from(d) * 86_400);
        Ok(app::ssr::tenancy::domains::DomainSettings {
            dns: app::ssr::tenancy::domains::dns::TxtLookup::new(self.dns_server)?,
            target: self
                .domain_target
                .clone()
                .unwrap_or_else(|| self.base_domain.clone()),
            base_domain: self.base_domain.clone(),
            recheck: std::time::Duration::from_secs(self.domain_recheck_secs),
            grace: std::time::Duration::from_secs(self.domain_grace_secs),
            rename_redirect: days(self.rename_redirect_days),
            rename_reserved: days(self.rename_reserved_days),
        })
    }

    pub fn tenant_dir(&self) -> PathBuf {
        self.data_dir.join("tenants")
    }
}

/// A period, or none (`off`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Every(pub Option<std::time::Duration>);

/// `30m`, `6h`, `1d` (a number and a unit: s, m, h, d) or `off`.
fn parse_every(s: &str) -> Result<Every, String> {
    let s = s.trim();
    if s == "off" {
        return Ok(Every(None));
    }
    let unit = match s.chars().last() {
        Some('s') => 1,
        Some('m') => 60,
        Some('h') => 3_600,
        Some('d') => 86_400,
        _ => {
            return Err(format!(
                "'{s}' is not a period: write e.g. 30m, 6h, 1d, or off"
            ))
        }
    };
    match s[..s.len() - 1].parse::<u64>() {
        Ok(n) if n > 0 && n <= 3_650 * 86_400 / unit => {
            Ok(Every(Some(std::time::Duration::from_secs(n * unit))))
        }
        _ => Err(format!(
            "'{s}' is not a period: write e.g. 30m, 6h, 1d, or off"
        )),
    }
}

fn parse_secret(s: &str) -> Result<SecretString, std::convert::Infallible> {
    Ok(SecretString::from(s))
}

/// Lower-cased, without a trailing dot; must look like a DNS name.
fn parse_base_domain(s: &str) -> Result<String, String> {
    let d = s.trim().trim_end_matches('.').to_ascii_lowercase();
    if d.is_empty() || d.len() > 200 || !d.split('.').all(app::domain::is_dns_label) {
        return Err(format!("'{s}' is not a domain name"));
    }
    if d.parse::<std::net::IpAddr>().is_ok()
        || d.split('.').all(|l| l.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err("the base domain must be a name, not an IP address".into());
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_domain_is_normalised_and_checked() {
        assert_eq!(parse_base_domain("Example.COM.").unwrap(), "example.com");
        assert!(parse_base_domain("127.0.0.1").is_err());
        assert!(parse_base_domain("exa mple.com").is_err());
        assert!(parse_base_domain("").is_err());
    }

    #[test]
    fn the_public_url_names_the_base_domain_and_nothing_more() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            s: Settings,
        }
        let with = |url: Option<&str>| {
            let mut args = vec!["x", "--base-domain", "example.com"];
            if let Some(u) = url {
                args.extend(["--public-url", u]);
            }
            T::parse_from(args).s
        };
        let o = with(Some("https://example.com"))
            .public_origin(3000)
            .unwrap();
        assert_eq!(o.tenant_url("acme"), "https://acme.example.com/");
        let o = with(Some("https://example.com:8443/"))
            .public_origin(3000)
            .unwrap();
        assert_eq!(o.root_url(), "https://example.com:8443/");
        let o = with(None).public_origin(3000).unwrap();
        assert_eq!(o.root_url(), "http://example.com:3000/");
        for bad in [
            "https://evil.test",
            "ftp://example.com",
            "https://example.com/x",
            "https://u:p@example.com",
        ] {
            assert!(with(Some(bad)).public_origin(3000).is_err(), "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_registry_url() {
        use clap::Parser;
        #[derive(Parser)]
        struct T {
            #[command(flatten)]
            s: Settings,
        }
        let t = T::parse_from(["x", "--registry-url", "postgres://u:hunter2@db/reg"]);
        let shown = format!("{:?}", t.s);
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
