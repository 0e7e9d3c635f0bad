//! How a request finds its company: its host ([`host`]), the registry's companies, cached ([`directory`]), and the request's site and tenant context ([`resolve`]).
pub mod directory;
pub mod host;
pub mod resolve;
