//! A company database's schema over time: [`migrate`] brings companies to the latest tenant migration.
pub mod migrate;
