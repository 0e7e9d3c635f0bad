//! Server functions, grouped by who calls them. Each is a few lines: take
//! the request's context, call one function of `ssr`, map to wire types.
//! Authorisation is checked here, on the server, for every call.
pub mod account;
pub mod company;
pub mod platform;
pub mod signup;
