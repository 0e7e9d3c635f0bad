//! A company database's schema over time: [`migrate`] brings companies to the latest tenant migration, in [`waves`] when asked, each run recorded ([`runs`]).
pub mod migrate;
pub mod runs;
pub mod waves;
