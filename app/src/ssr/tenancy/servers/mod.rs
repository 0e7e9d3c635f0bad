//! Where company databases live: creating and dropping them ([`databases`]), the PostgreSQL [`template`], the database servers and placement ([`fleet`]), and moving a company between servers ([`moves`]).
pub mod databases;
pub mod fleet;
pub mod moves;
pub mod template;
