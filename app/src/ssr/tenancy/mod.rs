//! Tenancy: which company a request is for, and everything about company databases, one folder per concern.
//!
//! - [`request`]: how a request finds its company. [`request::host`] parses
//!   and classifies the `Host` header; [`request::resolve::Resolver`] looks
//!   the subdomain up in the [`request::directory`] (the registry, cached)
//!   and gives the request's [`RequestSite`]; for an active company it holds
//!   a [`TenantContext`], whose [`TenantContext::db`] is the only way a
//!   request reaches its company's connection.
//! - [`connections`]: the connection cache ([`connections::pools`]), the
//!   statements it runs ([`connections::conn`]), SQLite's through rusqlite.
//! - [`servers`]: where company databases live. [`servers::databases`]
//!   creates, drops and connects to them (SQLite files, or PostgreSQL
//!   databases with their own roles), copying the PostgreSQL
//!   [`servers::template`], on the servers of the [`servers::fleet`] (the
//!   first, and those added with `dbserver add`); [`servers::moves`] moves a
//!   company to another server, as a recorded state machine.
//! - [`lifecycle`]: a company's life. [`lifecycle::provisioning`] creates one
//!   as a recorded state machine; [`lifecycle::offboarding`] deletes one in
//!   two steps (closed for a grace period, then purged to a tombstone, with
//!   a signed [`lifecycle::receipt`]); [`lifecycle`] itself pauses, resumes
//!   and recovers companies for the pages, the platform API and the CLI.
//! - [`schema`]: company schemas over time (`migrate`, in waves).
//! - [`backups`]: pgBackRest backups of every PostgreSQL server, SQLite
//!   snapshots, and one company restored to a moment
//!   ([`backups::restore`]), in place or beside.
//! - [`portability`]: a company's data out and in: an archive of every
//!   table as CSV and JSON Lines with a manifest ([`portability::export`]),
//!   and a company created from one ([`portability::import`]), on either
//!   backend.
//! - [`domains`]: a company's own addresses: custom domains proven by a
//!   TXT record ([`domains::names`], [`domains::dns`]), held in memory for
//!   requests and Caddy ([`domains::addresses`]), and renaming its
//!   subdomain with the old one redirecting ([`domains::rename`]).
pub mod backups;
pub mod connections;
pub mod domains;
pub mod lifecycle;
pub mod portability;
pub mod request;
pub mod schema;
pub mod servers;

pub use request::resolve::{RequestSite, Resolver, TenantContext};

/// A setting's length of time (bounded by its parser, so it always fits)
/// as a span to add to a moment.
pub(crate) fn span(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or_default()
}
