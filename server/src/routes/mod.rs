//! HTTP handlers: pages and server functions through Leptos, the rest plain axum.
pub mod addresses;
pub mod auth;
pub mod exports;
pub mod extract;
pub mod health;
pub mod leptos;
pub mod platform_api;

pub use self::leptos::{no_server_fn, render_page, server_fn};
