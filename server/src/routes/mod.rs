//! HTTP handlers. Pages and server functions go through Leptos with the
//! resolved site provided as context; health checks are plain axum.
pub mod auth;
pub mod health;
pub mod leptos;
pub mod platform_api;

pub use self::leptos::{render_page, server_fn};
