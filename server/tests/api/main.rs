//! Integration tests: one binary, one module per area. Each test builds its
//! own app (fresh registry, port 0) on SQLite and on PostgreSQL.
mod accounts;
mod assets;
mod cli;
mod companies_page;
mod company_settings;
mod connections;
mod find_workspace;
mod fleet;
mod helpers;
mod host_routing;
mod invitations;
mod logs;
mod mailbox;
mod metrics;
mod moves;
mod operations;
mod password_reset;
mod pg_cluster;
mod platform_api;
mod provisioning;
mod proxy;
mod rendering;
mod security;
mod sessions;
mod signup_holds;
mod template;
