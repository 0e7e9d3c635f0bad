//! Server-only code: everything here needs a database or the HTTP response
//! and is compiled only with the `ssr` feature.
//!
//! * [`entities`]: SeaORM entities of the registry and of tenant databases.
//! * [`registry`], [`directory`]: registry queries, and the cached
//!   subdomain → tenant lookup the request path uses.
//! * [`tenant_server`]: where tenant databases live (SQLite files or a
//!   PostgreSQL server) — create, drop, connect; [`template`]: the
//!   PostgreSQL database new tenants are copied from.
//! * [`provisioning`]: creating a company as a recorded state machine.
//! * [`migrate`]: every tenant database to the latest schema.
//! * [`pools`]: per-tenant pools inside one connection budget.
//! * [`tenancy`]: the per-request tenant context.
//! * [`auth`], [`sessions`], [`handoff`]: who is signed in, the session
//!   store, and the signup → subdomain handoff.
//! * [`users`]: a company's users and audit log.
//! * [`secrets`], [`passwords`]: credential encryption, argon2id.
//! * [`services`]: what one process shares between requests and commands.
//! * [`http`]: response details set while rendering.
pub mod auth;
pub mod directory;
pub mod entities;
pub mod handoff;
pub mod http;
pub mod metrics;
pub mod migrate;
pub mod passwords;
pub mod platform;
pub mod pools;
pub mod provisioning;
pub mod registry;
pub mod secrets;
pub mod services;
pub mod sessions;
pub mod template;
pub mod tenancy;
pub mod tenant_server;
pub mod users;
