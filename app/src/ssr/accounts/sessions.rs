//! Browser sessions (a tower-sessions store), kept where the request's site lives: a company's in its own database, the base domain's in the registry.
//!
//! The server picks the store per request from its site
//! ([`DbSessionStore::for_site`]): a session made on `acme.<base>` is
//! stored, read, renewed and ended in acme's database, so a signed-in page
//! of a company needs no other database; platform admins' sessions stay in
//! the registry; a paused or unknown company's site keeps none. Works on
//! SQLite and PostgreSQL, through sea-orm (published stores pin another
//! sqlx). A session id is a bearer credential, so only its digest is
//! stored: a copy of a `sessions` table signs nobody in.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::OnConflict, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, Set,
};
use tower_sessions::{
    cookie::time::OffsetDateTime,
    session::{Id, Record},
    session_store::{self, ExpiredDeletion, SessionStore},
};

use crate::ssr::entities::sessions;
use crate::ssr::secrets::token_digest;
use crate::ssr::tenancy::{request::resolve::TenantDbError, RequestSite, TenantContext};

/// What the store stores for session `id`.
fn key(id: &Id) -> String {
    token_digest(&id.to_string())
}

/// Where one request's sessions are kept.
#[derive(Clone, Debug)]
enum Home {
    /// The base domain's (platform admins'), in the registry.
    Registry(DatabaseConnection),
    /// An active company's, in its own database.
    Company(TenantContext),
    /// A paused or unknown company's site: nothing is found, nothing kept.
    Nowhere,
}

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    home: Home,
}

/// How a store error that is an outage (the company's database busy or
/// unreachable) begins, so the page answers 503 and not 500
/// (`ssr::http::internal`).
pub const UNAVAILABLE: &str = "the session's database is unavailable";

impl DbSessionStore {
    /// Sessions kept in the registry (the base domain's).
    pub fn in_registry(db: DatabaseConnection) -> Self {
        Self {
            home: Home::Registry(db),
        }
    }

    /// Sessions kept in `tenant`'s own database.
    pub fn in_company(tenant: TenantContext) -> Self {
        Self {
            home: Home::Company(tenant),
        }
    }

    /// The store for a request to `site`: its company's database, the
    /// registry for the base domain, none for a site that serves no one.
    pub fn for_site(site: Option<&RequestSite>, registry: &DatabaseConnection) -> Self {
        let home = match site {
            Some(RequestSite::Tenant(t))
            | Some(RequestSite::Moved {
                company: Some(t), ..
            }) => Home::Company(t.clone()),
            Some(RequestSite::Root { .. }) => Home::Registry(registry.clone()),
            _ => Home::Nowhere,
        };
        Self { home }
    }
}

/// Runs `$op` (an async expression using `$db`, a connection) on the
/// database `$store` keeps its sessions in: `Some` of its outcome, or
/// `None` for a site that keeps none.
macro_rules! in_home {
    ($store:expr, $db:ident => $op:expr) => {
        match &$store.home {
            Home::Registry($db) => Some($op.await.map_err(backend)?),
            Home::Company(tenant) => {
                let lease = tenant.db().await.map_err(lease_error)?;
                let $db = lease.conn();
                Some($op.await.map_err(backend)?)
            }
            Home::Nowhere => None,
        }
    };
}

fn backend(e: DbErr) -> session_store::Error {
    let chain = crate::ssr::http::error_chain(&e);
    if crate::ssr::http::is_outage(&e) {
        session_store::Error::Backend(format!("{UNAVAILABLE}: {chain}"))
    } else {
        session_store::Error::Backend(chain)
    }
}

fn lease_error(e: TenantDbError) -> session_store::Error {
    use crate::ssr::tenancy::connections::pools::PoolError;
    let chain = crate::ssr::http::error_chain(&e);
    match e {
        TenantDbError::Pool(PoolError::Busy | PoolError::Queue) => {
            session_store::Error::Backend(format!("{UNAVAILABLE}: {chain}"))
        }
        TenantDbError::Pool(PoolError::Connect(db)) => backend(db),
        TenantDbError::NotReady => session_store::Error::Backend(chain),
    }
}

fn to_chrono(t: OffsetDateTime) -> DateTime<Utc> {
    DateTime::from_timestamp(t.unix_timestamp(), t.nanosecond()).unwrap_or_default()
}

fn row(record: &Record) -> session_store::Result<sessions::ActiveModel> {
    Ok(sessions::ActiveModel {
        id: Set(key(&record.id)),
        subject: Set(super::auth::session_subject(&record.data)),
        data: Set(serde_json::to_string(&record.data)
            .map_err(|e| session_store::Error::Encode(e.to_string()))?),
        expires_at: Set(to_chrono(record.expiry_date)),
    })
}

/// Inserts `row`; false when its id is taken.
async fn insert(db: &impl ConnectionTrait, row: sessions::ActiveModel) -> Result<bool, DbErr> {
    match sessions::Entity::insert(row).exec(db).await {
        Ok(_) => Ok(true),
        Err(e) if crate::ssr::tenancy::connections::conn::is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Inserts or replaces `row`.
async fn upsert(db: &impl ConnectionTrait, row: sessions::ActiveModel) -> Result<(), DbErr> {
    sessions::Entity::insert(row)
        .on_conflict(
            OnConflict::column(sessions::Column::Id)
                .update_columns([
                    sessions::Column::Data,
                    sessions::Column::ExpiresAt,
                    sessions::Column::Subject,
                ])
                .to_owned(),
        )
        .exec(db)
        .await
        .map(|_| ())
}

/// The live row stored under `key`.
async fn find(db: &impl ConnectionTrait, key: String) -> Result<Option<sessions::Model>, DbErr> {
    sessions::Entity::find_by_id(key)
        .filter(sessions::Column::ExpiresAt.gt(Utc::now()))
        .one(db)
        .await
}

async fn delete(db: &impl ConnectionTrait, key: String) -> Result<(), DbErr> {
    sessions::Entity::delete_by_id(key)
        .exec(db)
        .await
        .map(|_| ())
}

/// Removes expired sessions from one session table.
pub async fn delete_expired(db: &impl ConnectionTrait) -> Result<u64, DbErr> {
    Ok(sessions::Entity::delete_many()
        .filter(sessions::Column::ExpiresAt.lte(Utc::now()))
        .exec(db)
        .await?
        .rows_affected)
}

#[async_trait]
impl SessionStore for DbSessionStore {
    /// Inserts under a fresh id, drawing another on the (unlikely)
    /// collision. A company's table is swept of expired sessions here, at
    /// sign-in: no housekeeping has to visit every company's database.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        if matches!(self.home, Home::Company(_)) {
            in_home!(self, db => delete_expired(db));
        }
        loop {
            let row = row(record)?;
            match in_home!(self, db => insert(db, row)) {
                Some(false) => record.id = Id::default(),
                Some(true) | None => return Ok(()),
            }
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let row = row(record)?;
        in_home!(self, db => upsert(db, row));
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let Some(found) = in_home!(self, db => find(db, key(id))).flatten() else {
            return Ok(None);
        };
        let data = serde_json::from_str(&found.data)
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        let expiry_date = OffsetDateTime::from_unix_timestamp(found.expires_at.timestamp())
            .map_err(|e| session_store::Error::Decode(e.to_string()))?;
        Ok(Some(Record {
            id: *id,
            data,
            expiry_date,
        }))
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        in_home!(self, db => delete(db, key(id)));
        Ok(())
    }
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        in_home!(self, db => delete_expired(db));
        Ok(())
    }
}

/// Ends every session of `subject` but `keep` (the one making the change),
/// in the session table of `db`: the company's database for its users, the
/// registry for platform admins.
pub async fn end_sessions_of(
    db: &impl ConnectionTrait,
    subject: &str,
    keep: Option<Id>,
) -> Result<u64, DbErr> {
    let mut delete = sessions::Entity::delete_many().filter(sessions::Column::Subject.eq(subject));
    if let Some(keep) = keep {
        delete = delete.filter(sessions::Column::Id.ne(key(&keep)));
    }
    Ok(delete.exec(db).await?.rows_affected)
}
