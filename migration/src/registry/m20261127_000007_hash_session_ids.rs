use sea_orm_migration::{prelude::*, sea_orm::DbBackend};

/// Sessions are stored under the digest of their id (128 hex characters),
/// never the id itself. Sessions stored before are ended: their rows hold
/// plain ids, which no digest will ever match.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM sessions").await?;
        // SQLite does not enforce a varchar length.
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE sessions ALTER COLUMN id TYPE varchar(128)")
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM sessions").await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE sessions ALTER COLUMN id TYPE varchar(64)")
                .await?;
        }
        Ok(())
    }
}
