//! Tenancy: which company a request is for, and everything about company databases.
//!
//! A request's path through this module: [`host`] parses and classifies the
//! `Host` header; [`resolve::Resolver`] looks the subdomain up in the
//! [`directory`] (the registry, cached) and gives the request's
//! [`RequestSite`]; for an active company it holds a [`TenantContext`], whose
//! [`TenantContext::db`] is the only way a request reaches the connection
//! cache in [`pools`], whose statements [`conn`] runs (SQLite's through
//! rusqlite, in `lite`).
//!
//! Outside requests: [`databases`] creates, drops and connects to company
//! databases (SQLite files or PostgreSQL databases with their own roles),
//! copying the PostgreSQL [`template`], on the servers of the [`fleet`] (the
//! first, and those added with `dbserver add`); [`provisioning`] creates a company as
//! a recorded state machine; [`schema`] brings every company to the latest
//! schema; [`lifecycle`] creates, pauses, resumes, deletes and recovers
//! companies for the pages, the platform API and the CLI; [`moves`] moves a
//! company to another server, as a recorded state machine.
pub mod conn;
pub mod databases;
pub mod directory;
pub mod fleet;
pub mod host;
pub mod lifecycle;
mod lite;
pub mod moves;
pub mod pools;
pub mod provisioning;
pub mod resolve;
pub mod schema;
pub mod template;

pub use resolve::{RequestSite, Resolver, TenantContext};
