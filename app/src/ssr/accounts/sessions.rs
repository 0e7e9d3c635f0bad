//! A tower-sessions store on the registry database, so several app instances share sessions.
//!
//! Works on SQLite and PostgreSQL. Published stores pin another sqlx than
//! sea-orm's; this one goes through sea-orm. A session id is a bearer
//! credential, so the registry keeps only its digest: a copy of the
//! `sessions` table signs nobody in.
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sea_orm::{
    sea_query::OnConflict, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, SqlErr,
};
use tower_sessions::{
    cookie::time::OffsetDateTime,
    session::{Id, Record},
    session_store::{self, ExpiredDeletion, SessionStore},
};

use crate::ssr::entities::sessions;
use crate::ssr::secrets::token_digest;

/// What the registry stores for session `id`.
fn key(id: &Id) -> String {
    token_digest(&id.to_string())
}

#[derive(Clone, Debug)]
pub struct DbSessionStore {
    db: DatabaseConnection,
}

impl DbSessionStore {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }
}

fn backend(e: impl std::fmt::Display) -> session_store::Error {
    session_store::Error::Backend(e.to_string())
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

#[async_trait]
impl SessionStore for DbSessionStore {
    /// Inserts under a fresh id, drawing another on the (unlikely) collision.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        loop {
            match sessions::Entity::insert(row(record)?).exec(&self.db).await {
                Ok(_) => return Ok(()),
                Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
                    record.id = Id::default();
                }
                Err(e) => return Err(backend(e)),
            }
        }
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        sessions::Entity::insert(row(record)?)
            .on_conflict(
                OnConflict::column(sessions::Column::Id)
                    .update_columns([
                        sessions::Column::Data,
                        sessions::Column::ExpiresAt,
                        sessions::Column::Subject,
                    ])
                    .to_owned(),
            )
            .exec(&self.db)
            .await
            .map(|_| ())
            .map_err(backend)
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let found = sessions::Entity::find_by_id(key(id))
            .filter(sessions::Column::ExpiresAt.gt(Utc::now()))
            .one(&self.db)
            .await
            .map_err(backend)?;
        let Some(found) = found else { return Ok(None) };
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
        sessions::Entity::delete_by_id(key(id))
            .exec(&self.db)
            .await
            .map(|_| ())
            .map_err(backend)
    }
}

/// Ends every session of `subject` but `keep` (the one making the change).
pub async fn end_sessions_of(
    registry: &DatabaseConnection,
    subject: &str,
    keep: Option<Id>,
) -> Result<u64, sea_orm::DbErr> {
    let mut delete = sessions::Entity::delete_many().filter(sessions::Column::Subject.eq(subject));
    if let Some(keep) = keep {
        delete = delete.filter(sessions::Column::Id.ne(key(&keep)));
    }
    Ok(delete.exec(registry).await?.rows_affected)
}

#[async_trait]
impl ExpiredDeletion for DbSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        sessions::Entity::delete_many()
            .filter(sessions::Column::ExpiresAt.lte(Utc::now()))
            .exec(&self.db)
            .await
            .map(|_| ())
            .map_err(backend)
    }
}
