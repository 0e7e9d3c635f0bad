//! A company's connections: the cache of pools with its budgets and fair shares ([`pools`]), and the statements they run ([`conn`]; SQLite's through rusqlite, in `lite`).
pub mod conn;
pub(in crate::ssr::tenancy) mod lite;
pub mod pools;
