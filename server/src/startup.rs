//! Builds a running application from `Settings`: registry connected and
//! migrated, services assembled, router built, listener bound. Nothing
//! global but the route list (the same for every app): a test can build as
//! many apps as it likes in one process.
use std::{
    sync::{Arc, OnceLock},
    time::Duration,
};

use ::leptos::config::LeptosOptions;
use app::ssr::{
    directory::Directory,
    pools::{PoolSettings, TenantPools},
    provisioning::Provisioner,
    secrets::{Cipher, CipherError},
    services::Services,
    sessions::DbSessionStore,
    tenant_server::{TenantServer, TenantServerError},
};
use app::App;
use axum::{
    extract::FromRef,
    middleware,
    routing::{any, delete, get, post},
    Router,
};
use leptos_axum::{generate_route_list, AxumRouteListing, LeptosRoutes};
use migration::{MigratorTrait, RegistryMigrator};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr};
use secrecy::{ExposeSecret, SecretString};
use tokio::net::TcpListener;
use tower_sessions::{
    cookie::SameSite, session_store::ExpiredDeletion, Expiry, SessionManagerLayer,
};

use crate::{config::Settings, routes, tenancy};

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot prepare the data directory: {0}")]
    DataDir(std::io::Error),
    #[error("cannot reach the registry database: {0}")]
    Registry(DbErr),
    #[error("cannot migrate the registry database: {0}")]
    RegistryMigration(DbErr),
    #[error("cannot reach the tenant database server: {0}")]
    TenantServer(TenantServerError),
    #[error("ENCLAVE_SECRET_KEY is required when PostgreSQL is used (64 hex characters, e.g. `openssl rand -hex 32`)")]
    MissingKey,
    #[error("ENCLAVE_SECRET_KEY: {0}")]
    BadKey(CipherError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Connects and migrates the registry, reaches the tenant server and
/// assembles the services the web app and the CLI share.
pub async fn build_services(settings: &Settings) -> Result<Services, StartupError> {
    let cipher = load_cipher(settings)?;
    let registry = connect_registry(settings).await?;
    RegistryMigrator::up(&registry, None)
        .await
        .map_err(StartupError::RegistryMigration)?;
    let server = match &settings.tenant_db_url {
        Some(url) => TenantServer::postgres(url, settings.tenant_template)
            .await
            .map_err(StartupError::TenantServer)?,
        None => TenantServer::sqlite(settings.tenant_dir()),
    };
    let pools = TenantPools::new(PoolSettings {
        per_tenant: settings.tenant_pool_size,
        budget: settings.connection_budget,
        acquire_timeout: Duration::from_millis(settings.tenant_acquire_timeout_ms),
        ..PoolSettings::default()
    });
    let directory = Directory::new(
        registry.clone(),
        cipher.clone(),
        Duration::from_secs(settings.tenant_cache_secs),
    );
    let provisioner = Provisioner::new(registry.clone(), server, cipher);
    Ok(Services {
        registry,
        directory,
        pools,
        provisioner,
        provisioning_timeout: Duration::from_secs(settings.provisioning_timeout_secs),
        metrics: Default::default(),
    })
}

async fn migrate_sqlite_tenants(services: &Services) {
    use app::ssr::migrate::{migrate_tenants, MigrateOptions};
    let opts = MigrateOptions {
        concurrency: 4,
        only: None,
        dry_run: false,
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
fn load_cipher(settings: &Settings) -> Result<Cipher, StartupError> {
    let key = match &settings.secret_key {
        Some(key) => key.clone(),
        None if settings.uses_postgres() => return Err(StartupError::MissingKey),
        None => {
            std::fs::create_dir_all(&settings.data_dir).map_err(StartupError::DataDir)?;
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
    Cipher::from_hex_key(&key).map_err(StartupError::BadKey)
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
    if settings.registry_is_sqlite() {
        std::fs::create_dir_all(&settings.data_dir).map_err(StartupError::DataDir)?;
    }
    let mut opts = ConnectOptions::new(settings.registry_url().expose_secret().to_owned());
    opts.max_connections(16)
        .min_connections(0)
        .connect_timeout(Duration::from_secs(2))
        .acquire_timeout(Duration::from_secs(2))
        .test_before_acquire_if_idle_for(Duration::from_secs(5))
        .sqlx_logging(false);
    Database::connect(opts)
        .await
        .map_err(StartupError::Registry)
}

#[derive(Clone, FromRef)]
pub struct AppState {
    pub leptos_options: LeptosOptions,
    pub services: Services,
    pub settings: Arc<Settings>,
}

pub struct Application {
    listener: TcpListener,
    router: Router,
    services: Services,
}

impl Application {
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        let services = build_services(&settings).await?;
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
        services: Services,
    ) -> Result<Self, StartupError> {
        let addr = settings.listen;
        let listen_err = |source| StartupError::Listen {
            addr: addr.to_string(),
            source,
        };
        let listener = TcpListener::bind(addr).await.map_err(listen_err)?;
        let leptos_options = LeptosOptions::builder()
            .output_name("enclave")
            .site_root(settings.site_root.as_str())
            .site_pkg_dir("pkg")
            .site_addr(listener.local_addr().map_err(listen_err)?)
            .build();
        let state = AppState {
            leptos_options,
            services: services.clone(),
            settings: Arc::new(settings),
        };
        Ok(Self {
            listener,
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
        tracing::info!(addr = %self.listener.local_addr()?, "Enclave is listening");
        let services = self.services.clone();
        // The first company after a deploy should not wait for the tenant
        // template to be built (PostgreSQL only).
        let server = self.services.provisioner.server().clone();
        tokio::spawn(async move { server.prepare_template().await });
        let housekeeping = tokio::spawn(async move {
            // Startup has just recovered; the first check is a period away.
            let period = Duration::from_secs(30);
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
            let sessions = DbSessionStore::new(services.registry.clone());
            loop {
                tick.tick().await;
                services.pools.reap_idle();
                services.recover().await;
                if let Err(e) = sessions.delete_expired().await {
                    tracing::warn!(error = %e, "cannot delete expired sessions");
                }
            }
        });
        let served = axum::serve(
            self.listener,
            self.router
                .into_make_service_with_connect_info::<std::net::SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown_signal())
        .await;
        housekeeping.abort();
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

pub fn router(state: AppState) -> Router {
    Router::new()
        .leptos_routes_with_handler(route_list(), get(routes::render_page))
        .route("/api/health", get(routes::health::tenant_health))
        .route(
            "/api/admin/tenants",
            get(routes::platform_api::list_tenants).post(routes::platform_api::create_tenant),
        )
        .route(
            "/api/admin/tenants/{subdomain}",
            delete(routes::platform_api::delete),
        )
        .route(
            "/api/admin/tenants/{subdomain}/pause",
            post(routes::platform_api::pause),
        )
        .route(
            "/api/admin/tenants/{subdomain}/resume",
            post(routes::platform_api::resume),
        )
        .route("/api/{*fn_name}", any(routes::server_fn))
        .route("/healthz", get(routes::health::healthz))
        .route("/metrics", get(routes::health::metrics))
        .route("/auth/handoff", get(routes::auth::handoff))
        .route("/logout", get(routes::auth::logout))
        .fallback(routes::render_page)
        .layer(sessions(&state))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            tenancy::resolve_site,
        ))
        // Static assets need no tenant: served before resolution, from the
        // site root that cargo-leptos fills (`pkg/` and the `public/` files).
        .route_service(
            "/pkg/{*path}",
            leptos_axum::site_pkg_dir_service(&state.leptos_options),
        )
        .route_service(
            "/favicon.svg",
            leptos_axum::site_pkg_dir_service(&state.leptos_options),
        )
        .route_service(
            "/robots.txt",
            leptos_axum::site_pkg_dir_service(&state.leptos_options),
        )
        .with_state(state)
}

/// Database-backed sessions with host-only cookies, so a session made on
/// one subdomain is never even sent to another.
fn sessions(state: &AppState) -> SessionManagerLayer<DbSessionStore> {
    SessionManagerLayer::new(DbSessionStore::new(state.services.registry.clone()))
        .with_name("enclave_session")
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(state.settings.secure_cookies)
        .with_expiry(Expiry::OnInactivity(
            tower_sessions::cookie::time::Duration::days(7),
        ))
}

async fn shutdown_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
