//! Enclave's server binary, as a library so tests can build whole apps.
//!
//! * [`config`]: the typed `Settings`, from flags, environment and `.env`.
//! * [`startup`]: connects the registry, migrates it and builds the router;
//!   `Application::build` is what `serve` and the integration tests call.
//! * [`tenancy`]: `Host` header → site, the one place a request gets a tenant.
//! * [`routes`]: the Leptos handlers (pages, server functions) and health checks.
//! * [`cli`]: `serve` and the operations subcommands.
//! * [`telemetry`]: tracing setup.
pub mod cli;
pub mod config;
pub mod routes;
pub mod startup;
pub mod telemetry;
pub mod tenancy;
