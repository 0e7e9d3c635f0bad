//! Enclave's server binary, as a library so tests can build whole apps: the axum glue around `app`.
//!
//! * [`config`]: the typed `Settings`, from flags, environment and `.env`.
//! * [`startup`]: connects the registry, migrates it, assembles the
//!   services and builds the routers (one for the base domain, one for a
//!   company, one for unknown and paused ones); `Application::build` is what
//!   `serve` and the integration tests call.
//! * [`site`]: the middleware that asks tenancy's resolver which site a
//!   request is for; [`access_log`]: the log line and request counter;
//!   [`same_origin`]: refuses state changes sent from other sites;
//!   [`headers`]: security headers and the pages' Content-Security-Policy;
//!   [`sessions`]: each request's session, from its site's store.
//! * [`routes`]: the Leptos handlers (pages, server functions), health
//!   checks, the signup handoff and the platform API.
//! * [`http_server`]: the accept loop, with a header-read timeout.
//! * [`link_tokens`]: one-time links' tokens swapped for a cookie and a
//!   clean address on first view.
//! * [`cli`]: `serve` and the operations subcommands.
//! * [`telemetry`]: tracing setup; [`turns`]: the request-concurrency
//!   limit, divided fairly between sites.
pub mod access_log;
pub mod cli;
pub mod config;
pub mod headers;
pub mod http_server;
pub mod link_tokens;
pub mod routes;
pub mod same_origin;
pub mod sessions;
pub mod site;
pub mod startup;
pub mod telemetry;
pub mod turns;
