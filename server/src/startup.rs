//! Builds a running application from `Settings`: registry migrated, services assembled, routers built, listener bound.
//!
//! Nothing global but the route list (the same for every app): a test can
//! build as many apps as it likes in one process.
use std::{
    convert::Infallible,
    sync::{Arc, OnceLock},
    time::Duration,
};

use ::leptos::config::LeptosOptions;
use app::api::{EVERY_SITE_FNS, ROOT_FNS, TENANT_FNS};
use app::ssr::{
    limits::{ClientRateLimit, KeyRateLimit},
    mail::{MailError, Mailer},
    metrics::Metrics,
    purge::{purge, Purged},
    secrets::{Cipher, CipherError},
    services::Services,
    tenancy::{
        connections::pools::{PoolSettings, TenantPools},
        lifecycle::provisioning::Provisioner,
        request::directory::Directory,
        servers::databases::{
            close_registry, connect_options, create_private_dir, create_private_file, TenantServer,
            TenantServerError,
        },
        RequestSite, Resolver,
    },
};
use app::App;
use axum::{
    extract::{FromRef, Request},
    http::StatusCode,
    middleware,
    response::Response,
    routing::{any, delete, get, post},
    Router,
};
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use migration::{MigratorTrait, RegistryMigrator};
use sea_orm::{Database, DatabaseConnection, DbErr};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tower::{service_fn, ServiceBuilder, ServiceExt};
use tower_http::timeout::TimeoutLayer;

use crate::{
    access_log,
    config::Settings,
    headers, http_server, link_tokens, routes, same_origin, sessions, site,
    turns::{self, Turns},
};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the data directory: {0}")]
    DataDir(std::io::Error),
    #[error("cannot reach the registry database: {0}")]
    Registry(DbErr),
    #[error("cannot migrate the registry database: {0}")]
    RegistryMigration(DbErr),
    #[error("cannot reach the tenant database server: {}", app::ssr::http::error_chain(.0))]
    TenantServer(TenantServerError),
    #[error("ENCLAVE_SECRET_KEY is required when PostgreSQL is used (64 hex characters, e.g. `openssl rand -hex 32`)")]
    MissingKey,
    #[error("ENCLAVE_SECRET_KEY: {0}")]
    BadKey(CipherError),
    #[error(transparent)]
    Mail(#[from] MailError),
    #[error("{0}")]
    PublicUrl(String),
    #[error("cannot set up DNS lookups for custom domains: {0}")]
    Dns(#[from] app::ssr::tenancy::domains::dns::DnsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Connects and migrates the registry, reaches the tenant server and
/// assembles the services the web app and the CLI share.
pub async fn build_services(settings: &Settings) -> Result<Services, StartupError> {
    build_services_with(settings, load_cipher(settings)?).await
}

async fn build_services_with(
    settings: &Settings,
    cipher: Cipher,
) -> Result<Services, StartupError> {
    let registry = connect_registry(settings).await?;
    RegistryMigrator::up(&registry, None)
        .await
        .map_err(StartupError::RegistryMigration)?;
    let cipher = match app::ssr::secrets::legacy_refused(&registry).await {
        Ok(true) => cipher.refusing_legacy(),
        Ok(false) => cipher,
        Err(e) => return Err(StartupError::Registry(e)),
    };
    let server = match &settings.tenant_db_url {
        Some(url) => TenantServer::postgres(url, settings.tenant_template)
            .await
            .map_err(StartupError::TenantServer)?
            .with_limits(settings.role_limits()),
        None => TenantServer::sqlite(settings.tenant_dir()),
    };
    let metrics = Metrics::default();
    let budget = open_budget(settings, &server).await?;
    let pools = TenantPools::new(
        PoolSettings {
            per_tenant: settings.tenant_pool_size,
            budget,
            busy: settings.busy_budget,
            queue: settings.tenant_queue,
            statement_timeout: Duration::from_millis(settings.tenant_statement_timeout_ms),
            acquire_timeout: Duration::from_millis(settings.tenant_acquire_timeout_ms),
            idle_timeout: Duration::from_secs(settings.tenant_idle_secs),
        },
        metrics.pool_counters(),
    );
    let directory = Directory::new(
        registry.clone(),
        cipher.clone(),
        Duration::from_secs(settings.tenant_cache_secs),
    )
    .with_reads(metrics.directory_reads())
    .with_stale_limit(Duration::from_secs(settings.directory_stale_secs));
    let provisioner =
        Provisioner::new(registry.clone(), server, cipher.clone()).with_metrics(metrics.clone());
    let mailer = Mailer::start(
        settings.smtp_url.as_ref(),
        &settings.mail_from(),
        settings.outbox_dir(),
        metrics.clone(),
    )
    .map_err(StartupError::Mail)?;
    Ok(Services {
        registry: registry.clone(),
        directory,
        pools,
        provisioner,
        provisioning_timeout: Duration::from_secs(settings.provisioning_timeout_secs),
        metrics,
        mailer,
        signups: ClientRateLimit::per_hour(settings.signups_per_hour),
        finds: ClientRateLimit::per_hour(10),
        finds_per_email: KeyRateLimit::per_hour(3),
        invitations_per_day: settings.invitations_per_day,
        secure_cookies: settings.secure_cookies(),
        company_rate: (settings.company_requests_per_second > 0)
            .then(|| KeyRateLimit::per_second(settings.company_requests_per_second)),
        public: settings
            .public_origin(settings.listen.port())
            .map_err(StartupError::PublicUrl)?,
        delete_crash_after: None,
        move_crash_after: None,
        backups: std::sync::Arc::new(settings.backup_settings()),
        restore_crash_after: None,
        exports_dir: settings.data_dir.join("exports"),
        offboarding: std::sync::Arc::new(settings.offboarding_settings()),
        addresses: app::ssr::tenancy::domains::Addresses::new(registry.clone()),
        domains: std::sync::Arc::new(settings.domain_settings()?),
        cipher: cipher.clone(),
    })
}

/// How often the verified domains and old subdomains in memory are read
/// again from the registry (one read of each table).
const ADDRESSES_REFRESH: Duration = Duration::from_secs(5);
/// How often custom domains whose check is due are looked at.
const DOMAINS_RECHECK_TICK: Duration = Duration::from_secs(5);

/// Connections of this process's own pools on the database server: the
/// registry's (16) and the administrator's (4).
const OWN_CONNECTIONS: u32 = 20;
/// Files kept for everything else: sockets, the registry, logs.
const FILES_RESERVED: u64 = 1024;
const SQLITE_BUDGET_MAX: u64 = 20_000;

/// The open budget: `ENCLAVE_CONNECTION_BUDGET`, or what the tenant
/// database server can hold open (see the setting's help).
async fn open_budget(settings: &Settings, server: &TenantServer) -> Result<u32, StartupError> {
    if let Some(budget) = settings.connection_budget {
        return Ok(budget);
    }
    let capacity = server
        .connection_capacity()
        .await
        .map_err(|e| StartupError::TenantServer(e.into()))?;
    Ok(match capacity {
        Some(capacity) => {
            let share = capacity.saturating_sub(settings.connection_reserve) / settings.instances;
            share.saturating_sub(OWN_CONNECTIONS).max(1)
        }
        None => {
            // A company's file is one descriptor while open (rollback
            // journal); its journal is a second only while a write is under
            // way, so at most the busy budget's worth of them.
            let files = raise_open_file_limit();
            files
                .saturating_sub(FILES_RESERVED + u64::from(settings.busy_budget))
                .clamp(1, SQLITE_BUDGET_MAX) as u32
        }
    })
}

/// Raises this process's open-file limit to its hard limit (10,000 SQLite
/// companies open need 10,000 descriptors) and returns the limit now.
fn raise_open_file_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => limit,
        Err(e) => {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
        }
    }
}

async fn migrate_sqlite_tenants(services: &Services) {
    use app::ssr::tenancy::schema::migrate::{migrate_tenants, MigrateOptions};
    let opts = MigrateOptions {
        concurrency: 4,
        only: None,
        ..Default::default()
    };
    match migrate_tenants::<migration::TenantMigrator>(services, &opts, |_| {}, |_| {}).await {
        Ok(summary) => {
            let failed: Vec<_> = summary.failed().collect();
            if summary.migrated() > 0 || !failed.is_empty() {
                tracing::info!(
                    migrated = summary.migrated(),
                    failed = failed.len(),
                    "company databases migrated"
                );
            }
            for (sub, e) in failed {
                tracing::error!(
                    tenant = sub,
                    error = e,
                    "company database failed to migrate"
                );
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot migrate company databases"),
    }
}

/// The credential key: from settings, or with SQLite only, from (or newly
/// into) `<data dir>/secret.key`.
pub fn load_cipher(settings: &Settings) -> Result<Cipher, StartupError> {
    let key = match &settings.secret_key {
        Some(key) => key.clone(),
        None if settings.uses_postgres() => return Err(StartupError::MissingKey),
        None => {
            create_private_dir(&settings.data_dir).map_err(StartupError::DataDir)?;
            let path = settings.data_dir.join("secret.key");
            match std::fs::read_to_string(&path) {
                Ok(k) => SecretString::from(k.trim().to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    let key = Cipher::generate_hex_key();
                    write_private(&path, key.expose_secret()).map_err(StartupError::DataDir)?;
                    key
                }
                Err(e) => return Err(StartupError::DataDir(e)),
            }
        }
    };
    let cipher = Cipher::from_hex_key(&key).map_err(StartupError::BadKey)?;
    match &settings.secret_key_previous {
        Some(previous) => cipher.with_previous(previous).map_err(StartupError::BadKey),
        None => Ok(cipher),
    }
}

fn write_private(path: &std::path::Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents.as_bytes())
}

/// Connects to the registry, failing within seconds when it is unreachable.
pub async fn connect_registry(settings: &Settings) -> Result<DatabaseConnection, StartupError> {
    if let Some(path) = settings.registry_sqlite_path() {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            create_private_dir(dir).map_err(StartupError::DataDir)?;
        }
        create_private_file(&path, false).map_err(StartupError::DataDir)?;
    }
    let opts = connect_options(&settings.registry_url(), 16, Duration::from_secs(2));
    Database::connect(opts)
        .await
        .map_err(StartupError::Registry)
}

/// What every handler and middleware reads. Cloned for each of them on
/// every request, so it is one reference count, not one per field.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

pub struct Shared {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    pub resolver: Resolver,
    pub settings: Settings,
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

impl FromRef<AppState> for LeptosOptions {
    fn from_ref(state: &AppState) -> Self {
        state.leptos_options.clone()
    }
}

pub struct Application {
    listener: TcpListener,
    /// Caddy's `ask` (`ENCLAVE_CADDY_ASK_LISTEN`), with its routes.
    ask: Option<(TcpListener, Router)>,
    router: Router,
    services: Services,
    header_timeout: Duration,
    provisioning_records_days: u32,
    sizing: BudgetSizing,
}

/// How added database servers' open budgets are sized: from each server
/// (`reserve` and `instances` as for the first), or all as the first when
/// `ENCLAVE_CONNECTION_BUDGET` is set.
#[derive(Clone, Copy, Debug)]
pub struct BudgetSizing {
    derived: bool,
    reserve: u32,
    instances: u32,
}

impl BudgetSizing {
    pub fn of(settings: &Settings) -> Self {
        Self {
            derived: settings.connection_budget.is_none(),
            reserve: settings.connection_reserve,
            instances: settings.instances,
        }
    }
}

/// Sizes each added database server's open budget from that server (unless
/// `ENCLAVE_CONNECTION_BUDGET` gives every server the same). `serve` calls
/// it at start and every 30 s, so a server added meanwhile is sized too.
pub async fn size_server_budgets(services: &Services, sizing: BudgetSizing) {
    if !sizing.derived {
        return;
    }
    let fleet = services.provisioner.fleet();
    for (server, budget) in fleet.budgets(sizing.reserve, sizing.instances).await {
        if services.pools.server_budget(&server) != Some(budget) {
            tracing::info!(server, open = budget, "database server's open budget");
        }
        services.pools.set_server_budget(&server, budget);
    }
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let services = build_services(&settings).await?;
        // Company roles must reach nothing but their own database.
        let mut warnings = close_registry(&services.registry).await;
        warnings.extend(services.provisioner.server().isolation_warnings().await);
        for warning in warnings {
            tracing::warn!("{warning}");
        }
        services.recover().await;
        if !settings.uses_postgres() {
            // The one-command SQLite setup must always run: bring company
            // databases up to date too (PostgreSQL deployments run `migrate`).
            migrate_sqlite_tenants(&services).await;
        }
        Self::with_services(settings, services).await
    }

    pub async fn with_services(
        settings: Settings,
        mut services: Services,
    ) -> Result<Self, StartupError> {
        let addr = settings.listen;
        let listen_err = |source| StartupError::Listen {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
        // Unset, links in mail name the port really bound (`:0` is any).
        let port = listener.local_addr().map_err(listen_err)?.port();
        services.public = settings
            .public_origin(port)
            .map_err(StartupError::PublicUrl)?;
        let leptos_options = LeptosOptions::builder()
            .output_name("enclave")
            .site_root(settings.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(listener.local_addr().map_err(listen_err)?)
            // cargo-leptos names assets by their hash and lists the hashes
            // in `hash.txt` beside the binary; without it, plain names.
            .hash_files(hash_file_beside_binary())
            .build();
        let resolver = Resolver::new(
            settings.base_domain.clone(),
            services.directory.clone(),
            services.pools.clone(),
            services.addresses.clone(),
        );
        let ask_listener = match settings.caddy_ask_listen {
            Some(addr) => {
                Some(
                    TcpListener::bind(addr)
                        .await
                        .map_err(|source| StartupError::Listen {
                            addr: addr.to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        // Requests to custom domains and old subdomains are answered from
        // memory: filled before the first request.
        if let Err(e) = services.addresses.refresh().await {
            tracing::warn!(error = %e, "custom domains not read at startup");
        }
        let state = AppState(Arc::new(Shared {
            leptos_options,
            services: services.clone(),
            resolver,
            settings,
        }));
        Ok(Self {
            ask: ask_listener.map(|l| (l, routes::addresses::ask_routes(state.clone()))),
            listener,
            sizing: BudgetSizing::of(&state.settings),
            header_timeout: Duration::from_secs(state.settings.header_timeout_secs),
            provisioning_records_days: state.settings.provisioning_records_days,
            router: router(state),
            services,
        })
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    pub fn services(&self) -> &Services {
        &self.services
    }

    /// The router, to drive in-process (benchmarks).
    pub fn router(&self) -> Router {
        self.router.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let budgets = self.services.pools.settings();
        tracing::info!(
            open = budgets.budget,
            busy = budgets.busy,
            per_company = budgets.per_tenant,
            "tenant connection budgets"
        );
        tracing::info!(addr = %self.listener.local_addr()?, "Enclave is listening");
        let services = self.services.clone();
        let keep_records = chrono::TimeDelta::days(self.provisioning_records_days.into());
        // The first company after a deploy should not wait for the tenant
        // template to be built (PostgreSQL only).
        let server = self.services.provisioner.server().clone();
        tokio::spawn(async move { server.prepare_template().await });
        // "Find your workspace" needs every company's users in the index
        // under the current key: rebuilt once after an upgrade or rotation.
        let for_index = self.services.clone();
        tokio::spawn(async move {
            if let Err(e) = app::ssr::accounts::workspaces::rebuild_if_stale(&for_index).await {
                tracing::warn!(error = %e, "member index not rebuilt; next start tries again");
            }
        });
        // Custom domains: the set in memory refreshed, the records
        // rechecked, and Caddy's `ask` answered.
        let refreshing = self.services.addresses.keep_fresh(ADDRESSES_REFRESH);
        let for_domains = self.services.clone();
        let rechecking = tokio::spawn(async move {
            loop {
                tokio::time::sleep(DOMAINS_RECHECK_TICK).await;
                if let Err(e) = for_domains.recheck_domains().await {
                    tracing::debug!(error = %e, "custom domains not rechecked");
                }
            }
        });
        let asking = self.ask.map(|(listener, routes)| {
            if let Ok(addr) = listener.local_addr() {
                tracing::info!(%addr, "answering Caddy's on-demand TLS ask");
            }
            tokio::spawn(async move { axum::serve(listener, routes).await })
        });
        let sizing = self.sizing;
        let housekeeping = tokio::spawn(async move {
            size_server_budgets(&services, sizing).await;
            // Startup has just recovered; the first check is a period away.
            let period = Duration::from_secs(30);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            loop {
                tick.tick().await;
                size_server_budgets(&services, sizing).await;
                services.pools.reap_idle();
                services.signups.forget_idle();
                services.finds.forget_idle();
                services.finds_per_email.forget_idle();
                if let Some(rate) = &services.company_rate {
                    rate.forget_idle();
                }
                services.recover().await;
                if let Err(e) = services.snapshot_all(false).await {
                    tracing::warn!(error = %app::ssr::http::error_chain(&e), "cannot snapshot companies");
                }
                match purge(&services.registry, keep_records).await {
                    Ok(purged) if purged != Purged::default() => {
                        tracing::debug!(?purged, "purged the registry")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "cannot purge the registry"),
                }
            }
        });
        let served = http_server::serve(
            self.listener,
            self.router,
            self.header_timeout,
            shutdown_signal(),
        )
        .await;
        housekeeping.abort();
        refreshing.abort();
        rechecking.abort();
        if let Some(asking) = asking {
            asking.abort();
        }
        served
    }
}

/// The app's routes, generated once per process: while Leptos generates a
/// route list it stops resource loading process-wide, and a page whose
/// resource is first polled in that window never answers (leptos#4773).
/// A second app built in a running process (tests, benchmarks) must not
/// generate them again under a page being rendered.
fn route_list() -> Vec<AxumRouteListing> {
    static ROUTES: OnceLock<Vec<AxumRouteListing>> = OnceLock::new();
    ROUTES.get_or_init(|| generate_route_list(App)).clone()
}

fn hash_file_beside_binary() -> bool {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("hash.txt").is_file()))
        .unwrap_or(false)
}

/// The whole app: static assets, then every other request resolved to its
/// site and handed to that site's router. Routes of the base domain are
/// not even reachable on a company's host, and the other way round.
///
/// The middleware is stacked with `ServiceBuilder` around two services,
/// not with `Router::layer`: that boxes every route once per layer, and
/// axum clones a route's boxes on every request (measured with DHAT: 52 of
/// 149 allocations per `GET /api/health`).
pub fn router(state: AppState) -> Router {
    let sites = Sites {
        root: root_routes().with_state(state.clone()),
        tenant: tenant_routes().with_state(state.clone()),
        unserved: unserved_routes().with_state(state.clone()),
        moved: Router::new()
            .fallback(routes::addresses::moved)
            .with_state(state.clone()),
    };
    // Innermost last: the site is resolved, then the request is logged and
    // counted, checked for its origin, and given its session.
    let sites = ServiceBuilder::new()
        .layer(middleware::from_fn_with_state(
            state.clone(),
            site::resolve_site,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            access_log::log_and_count,
        ))
        .layer(middleware::from_fn(same_origin::refuse_cross_origin))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            link_tokens::swap_for_cookie,
        ))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            sessions::give_session,
        ))
        .service(service_fn(move |req: Request| {
            let sites = sites.clone();
            async move { Ok::<_, Infallible>(sites.dispatch(req).await) }
        }));
    let assets = leptos_axum::site_pkg_dir_service(&state.leptos_options);
    // Static assets need no tenant: served before resolution, from the
    // site root that cargo-leptos fills (`pkg/` and the `public/` files).
    let app = Router::new()
        .route_service("/pkg/{*path}", assets.clone())
        .route_service("/favicon.svg", assets.clone())
        .route_service("/robots.txt", assets)
        .fallback_service(sites);
    let outer = ServiceBuilder::new()
        // Outermost: a request waits for a turn within its time, not after.
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(state.settings.request_timeout_ms),
        ))
        // Each site waits for its own share of the slots before it takes
        // one (turns.rs): a flooded company cannot hold them all.
        .layer(middleware::from_fn_with_state(
            Turns::new(
                state.settings.max_concurrent_requests,
                Duration::from_millis(state.settings.request_timeout_ms),
            ),
            turns::take_turn,
        ))
        .layer(middleware::from_fn(headers::security_headers))
        .service(app);
    Router::new().fallback_service(outer)
}

/// One router per kind of site.
#[derive(Clone)]
struct Sites {
    root: Router,
    tenant: Router,
    unserved: Router,
    /// An old address: every path answers 308 to the new one.
    moved: Router,
}

impl Sites {
    async fn dispatch(self, req: Request) -> Response {
        let router = match req.extensions().get::<RequestSite>() {
            Some(RequestSite::Root { .. }) => self.root,
            Some(RequestSite::Tenant(_)) => self.tenant,
            Some(RequestSite::Moved { .. }) => self.moved,
            _ => self.unserved,
        };
        match router.oneshot(req).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

/// What every site serves: its pages (a page that belongs to another kind
/// of site renders as not found), which site it is, and metrics.
fn every_site_routes(fns: &[&'static str]) -> Router<AppState> {
    let router = Router::new()
        .leptos_routes_with_handler(route_list(), get(routes::render_page))
        .route("/api/{*fn_name}", any(routes::no_server_fn))
        .route("/api/admin/{*path}", any(routes::platform_api::not_here))
        .route("/metrics", get(routes::health::metrics))
        .fallback(routes::render_page);
    EVERY_SITE_FNS
        .iter()
        .chain(fns)
        .fold(router, |r, path| r.route(path, any(routes::server_fn)))
}

/// The base domain: landing, signup, platform admin and API, health.
fn root_routes() -> Router<AppState> {
    use routes::platform_api;
    every_site_routes(ROOT_FNS)
        .route("/healthz", get(routes::health::healthz))
        .route("/go", get(routes::auth::go))
        .route(
            "/api/admin/tenants",
            get(platform_api::list_tenants).post(platform_api::create_tenant),
        )
        .route(
            "/api/admin/tenants/{subdomain}",
            delete(platform_api::delete),
        )
        .route(
            "/api/admin/tenants/{subdomain}/pause",
            post(platform_api::pause),
        )
        .route(
            "/api/admin/tenants/{subdomain}/resume",
            post(platform_api::resume),
        )
        .route(
            "/api/admin/tenants/{subdomain}/users",
            post(platform_api::add_user),
        )
        .route(
            "/api/admin/tenants/{subdomain}/export",
            get(routes::exports::platform_export),
        )
        .route(
            "/api/admin/tenants/{subdomain}/undelete",
            post(platform_api::undelete),
        )
        .route(
            "/api/admin/tenants/{subdomain}/rename",
            post(platform_api::addresses::rename),
        )
        .route(
            "/api/admin/tenants/{subdomain}/domains",
            get(platform_api::addresses::list).post(platform_api::addresses::add),
        )
        .route(
            "/api/admin/tenants/{subdomain}/domains/{domain}",
            delete(platform_api::addresses::remove),
        )
        .route(
            "/api/admin/tenants/{subdomain}/domains/{domain}/verify",
            post(platform_api::addresses::verify),
        )
        .route(
            "/exports/download/{token}",
            get(routes::exports::deletion_download),
        )
}

/// An active company's site.
fn tenant_routes() -> Router<AppState> {
    every_site_routes(TENANT_FNS)
        .route("/api/health", get(routes::health::tenant_health))
        .route("/auth/handoff", get(routes::auth::handoff))
        .route("/auth/over", get(routes::addresses::over))
        .route("/exports/{id}", get(routes::exports::download))
}

/// A subdomain that is paused or holds no company: its pages say so.
fn unserved_routes() -> Router<AppState> {
    every_site_routes(&[]).route("/api/health", get(routes::health::unserved_health))
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
