//! Prometheus metrics of one process, served at `/metrics`.
use std::sync::Arc;

use prometheus_client::{
    encoding::text::encode,
    metrics::{
        counter::Counter,
        family::Family,
        gauge::Gauge,
        histogram::{exponential_buckets, Histogram},
    },
    registry::Registry,
};

use super::tenancy::connections::pools::{PoolCounters, PoolStats};
use super::tenancy::request::directory::DirectoryReads;
use super::tenancy::servers::fleet::ServerHealth;

type Labels = Vec<(&'static str, String)>;

/// Cheap to clone; all clones count into one registry.
#[derive(Clone)]
pub struct Metrics {
    registry: Arc<Registry>,
    requests: Family<Labels, Counter>,
    provisioning_seconds: Histogram,
    provisionings: Family<Labels, Counter>,
    migrations: Family<Labels, Counter>,
    mail: Family<Labels, Counter>,
    pools_open: Gauge,
    connections_open: Gauge,
    connections_in_use: Gauge,
    connections_reserved: Gauge,
    connections_budget: Gauge,
    busy_budget: Gauge,
    pool_counters: PoolCounters,
    directory_reads: DirectoryReads,
    provisioning_steps: Family<Labels, Histogram>,
    db_server_up: Family<Labels, Gauge>,
    db_server_open_budget: Family<Labels, Gauge>,
    db_server_companies: Family<Labels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("enclave");
        let requests = Family::<Labels, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by status",
            requests.clone(),
        );
        let provisioning_seconds = Histogram::new(exponential_buckets(0.025, 2.0, 10));
        registry.register(
            "provisioning_seconds",
            "Time to create a company",
            provisioning_seconds.clone(),
        );
        let provisionings = Family::<Labels, Counter>::default();
        registry.register(
            "provisionings",
            "Company creations, by outcome",
            provisionings.clone(),
        );
        let migrations = Family::<Labels, Counter>::default();
        registry.register(
            "tenant_migrations",
            "Tenant database migrations, by outcome",
            migrations.clone(),
        );
        let mail = Family::<Labels, Counter>::default();
        registry.register(
            "mail_messages",
            "Email messages, by kind and outcome (sent, written to the outbox, failed after retries, dropped with the queue full)",
            mail.clone(),
        );
        let provisioning_steps =
            Family::<Labels, Histogram>::new_with_constructor(step_histogram as fn() -> Histogram);
        registry.register(
            "provisioning_step_seconds",
            "Time of each step of creating a company (PostgreSQL: role, copy, owner, admin, registry)",
            provisioning_steps.clone(),
        );
        let pool_counters = PoolCounters::default();
        registry.register(
            "tenant_pool_hits",
            "Requests whose company's pool was already open",
            pool_counters.hits.clone(),
        );
        registry.register(
            "tenant_pool_misses",
            "Requests that opened their company's pool",
            pool_counters.misses.clone(),
        );
        registry.register(
            "tenant_pool_evictions",
            "Tenant pools closed to make room for another company's",
            pool_counters.evictions.clone(),
        );
        let directory_reads = DirectoryReads::default();
        registry.register(
            "directory_version_reads",
            "Reads of the registry's directory version (about one per tenant cache time while companies are asked for; lookups running side by side may each read it)",
            directory_reads.version.clone(),
        );
        registry.register(
            "directory_company_reads",
            "Reads of one company's registry row (a subdomain not cached, or changed since it was read)",
            directory_reads.company.clone(),
        );
        registry.register(
            "directory_stale_answers",
            "Requests answered from a company's last known directory entry, past its cache time, because the registry could not be reached",
            directory_reads.stale.clone(),
        );
        let gauge = |registry: &mut Registry, name: &str, help: &str| {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            g
        };
        let pools_open = gauge(
            &mut registry,
            "tenant_pools_open",
            "Tenant connection pools open",
        );
        let connections_open = gauge(
            &mut registry,
            "tenant_connections_open",
            "Connections open to tenant databases",
        );
        let connections_in_use = gauge(
            &mut registry,
            "tenant_connections_in_use",
            "Connections to tenant databases serving a request now",
        );
        let connections_reserved = gauge(
            &mut registry,
            "tenant_connections_reserved",
            "Connections reserved by open pools (an upper bound on those open)",
        );
        let connections_budget = gauge(
            &mut registry,
            "tenant_connections_budget",
            "Connections all tenant pools may hold open together (the open budget)",
        );
        let busy_budget = gauge(
            &mut registry,
            "tenant_connections_busy_budget",
            "Tenant connections that may serve requests at once (the busy budget)",
        );
        let db_server_up = Family::<Labels, Gauge>::default();
        registry.register(
            "db_server_up",
            "Whether each database server answered its administrator within 2 s (1) or not (0)",
            db_server_up.clone(),
        );
        let db_server_companies = Family::<Labels, Gauge>::default();
        registry.register(
            "db_server_companies",
            "Companies placed on each database server",
            db_server_companies.clone(),
        );
        let db_server_open_budget = Family::<Labels, Gauge>::default();
        registry.register(
            "db_server_open_budget",
            "Connections this process's pools may hold open on each database server",
            db_server_open_budget.clone(),
        );
        Self {
            db_server_up,
            db_server_open_budget,
            db_server_companies,
            registry: Arc::new(registry),
            requests,
            provisioning_seconds,
            provisionings,
            migrations,
            mail,
            pools_open,
            connections_open,
            connections_in_use,
            connections_reserved,
            connections_budget,
            busy_budget,
            pool_counters,
            directory_reads,
            provisioning_steps,
        }
    }
}

impl Metrics {
    pub fn request(&self, status: u16) {
        self.requests
            .get_or_create(&vec![("status", status.to_string())])
            .inc();
    }

    pub fn provisioned(&self, outcome: &'static str, seconds: f64) {
        self.provisionings
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
        if outcome == "created" {
            self.provisioning_seconds.observe(seconds);
        }
    }

    /// Counters the tenant pools count into.
    pub fn pool_counters(&self) -> PoolCounters {
        self.pool_counters.clone()
    }

    /// Counters the company directory counts its registry reads into.
    pub fn directory_reads(&self) -> DirectoryReads {
        self.directory_reads.clone()
    }

    /// One step of creating a company took `seconds`.
    pub fn provisioning_step(&self, step: &'static str, seconds: f64) {
        self.provisioning_steps
            .get_or_create(&vec![("step", step.to_owned())])
            .observe(seconds);
    }

    pub fn migrated(&self, outcome: &'static str) {
        self.migrations
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    pub fn mail(&self, kind: &'static str, outcome: &'static str) {
        self.mail
            .get_or_create(&vec![
                ("kind", kind.to_owned()),
                ("outcome", outcome.to_owned()),
            ])
            .inc();
    }

    /// The text exposition, with the pool gauges read now and the database
    /// servers as `servers` found them.
    pub fn render(&self, pools: &PoolStats, servers: &[ServerHealth]) -> String {
        for s in servers {
            let server = vec![("server", s.name.clone())];
            self.db_server_up
                .get_or_create(&server)
                .set(i64::from(s.up));
            self.db_server_companies
                .get_or_create(&server)
                .set(s.companies as i64);
            let budget = pools
                .server_budgets
                .iter()
                .find(|(name, _)| *name == s.name)
                .map_or(pools.budget, |(_, b)| *b);
            self.db_server_open_budget
                .get_or_create(&server)
                .set(i64::from(budget));
        }
        self.pools_open.set(pools.cached_pools as i64);
        self.connections_open.set(pools.open_connections as i64);
        self.connections_in_use.set(pools.connections_in_use as i64);
        self.connections_reserved
            .set(pools.reserved_connections as i64);
        self.connections_budget.set(pools.budget as i64);
        self.busy_budget.set(pools.busy_budget as i64);
        let mut out = String::new();
        encode(&mut out, &self.registry).expect("writing to a String cannot fail");
        out
    }
}

/// Buckets from 1 ms to about 4 s for the steps of provisioning.
fn step_histogram() -> Histogram {
    Histogram::new(exponential_buckets(0.001, 2.0, 13))
}
