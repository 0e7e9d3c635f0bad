//! Tenant resolution: the one place where a request is tied to a site.
//!
//! [`host`] classifies the `Host` header against the base domain; [`layer`]
//! looks the subdomain up in the registry and puts the resulting
//! `RequestSite` in the request's extensions, from where the handlers
//! provide it to SSR and server functions.
pub mod host;
pub mod layer;

pub use layer::resolve_site;
