//! Server-only code (feature `ssr`): everything that needs a database or the HTTP response.
//!
//! * [`tenancy`]: everything about companies and their databases: `Host` →
//!   site, the registry directory, connection pools, where databases live,
//!   the template, provisioning, migration and the lifecycle.
//! * [`accounts`]: people: sign-in, sessions, the signup handoff, a
//!   company's users and audit log, passwords, platform admins and tokens.
//! * [`context`]: every accessor of what the request handlers provide
//!   (`use_context`), in one place.
//! * [`entities`]: SeaORM entities of the registry and of company databases.
//! * [`services`]: what one process shares between requests and commands.
//! * [`purge`]: what grows with traffic, removed on a schedule.
//! * [`shares`]: fair shares of what the companies of one process share.
//! * [`heartbeat`]: a long job's "still alive" in the registry, until dropped.
//! * [`secrets`], [`metrics`], [`http`], [`limits`]: credential encryption,
//!   Prometheus metrics, how errors become responses, per-client quotas.
pub mod accounts;
pub mod context;
pub mod entities;
pub mod heartbeat;
pub mod http;
pub mod limits;
pub mod mail;
pub mod metrics;
pub mod purge;
pub mod secrets;
pub mod services;
pub mod shares;
pub mod tenancy;
