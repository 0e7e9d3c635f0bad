//! A company's data in and out of Enclave: one archive per company ([`archive`]), made by [`export`] and read by [`import`].
//!
//! Export reads the company's database in one read-only snapshot and
//! streams it into a ZIP on disk, table by table: nothing is held in memory
//! but a batch of rows. Import checks the whole archive against its manifest
//! before anything is made, then creates the company as provisioning does
//! (reserved, database, schema), loads each table in one transaction while
//! the company is not yet served, migrates it up if the archive is older,
//! and opens it; any failure, or recovery after a crash, undoes it.
//! [`requests`] makes exports in the background for company admins.
pub mod archive;
pub mod export;
pub mod import;
pub mod requests;

use sea_orm::DbErr;

#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("no company has the subdomain '{0}'")]
    NotFound(String),
    #[error("the company '{0}' is not active or paused")]
    NotSettled(String),
    #[error("The subdomain '{0}' is taken.")]
    Taken(String),
    /// The archive is not one this Enclave can load; says why.
    #[error("the archive is refused: {0}")]
    Refused(String),
    #[error("the archive's schema '{archive}' is newer than this Enclave knows (its latest is '{latest}'): import it with a newer release")]
    Newer { archive: String, latest: String },
    #[error(transparent)]
    Fleet(#[from] crate::ssr::tenancy::servers::fleet::FleetError),
    #[error("the company's database server")]
    Server(#[from] crate::ssr::tenancy::servers::databases::TenantServerError),
    #[error("registry or company database")]
    Db(#[from] DbErr),
    #[error("reading or writing the archive")]
    Io(#[from] std::io::Error),
    #[error("reading or writing the archive")]
    Zip(#[from] zip::result::ZipError),
    #[error("loading into PostgreSQL")]
    Copy(#[from] sea_orm::sqlx::Error),
    #[error(transparent)]
    Cipher(#[from] crate::ssr::secrets::CipherError),
}

impl PortError {
    fn refused(why: impl Into<String>) -> Self {
        PortError::Refused(why.into())
    }
}
