//! The Leptos app: pages, components and server functions, shared by the
//! server (SSR, feature `ssr`) and the browser (WASM, feature `hydrate`).
//!
//! * [`site`]: which site a request is for (root domain, a company, an unknown
//!   or paused one), as the browser sees it.
//! * [`domain`]: validation types that both sides use (`Subdomain::parse`).
//! * [`pages`], [`components`]: one module per page, reusable pieces.
//! * `ssr` (server only): entities, registry queries, tenancy and provisioning.
#![recursion_limit = "256"]

pub mod api;
pub mod app;
pub mod components;
pub mod domain;
pub mod pages;
pub mod site;
pub mod wire;

#[cfg(feature = "ssr")]
pub mod ssr;

#[cfg(feature = "ssr")]
pub use app::island_scripts;
pub use app::{shell, App};
