//! Validated values. After parsing, the type is proof: code that takes a
//! `Subdomain` never checks it again. Compiled for the browser too, so forms
//! can show the same messages while the person types.
pub mod company;
pub mod subdomain;

pub use company::{CompanyName, Email, InputError, Password, Role};
pub use subdomain::{is_dns_label, Subdomain, SubdomainError};
