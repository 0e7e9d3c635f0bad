use sea_orm_migration::{prelude::*, schema::*, sea_orm::DbBackend};

/// Sessions are stored under the digest of their id (128 hex characters),
/// never the id itself, and name whose they are (`subject`), so that a
/// person's other sessions can be ended when their password changes.
/// Sessions stored before are ended: their rows hold plain ids, which no
/// digest will ever match.
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
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(string_len_null(Sessions::Subject, 100))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_subject_idx")
                    .table(Sessions::Table)
                    .col(Sessions::Subject)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        db.execute_unprepared("DELETE FROM sessions").await?;
        manager
            .drop_index(
                Index::drop()
                    .name("sessions_subject_idx")
                    .table(Sessions::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .drop_column(Sessions::Subject)
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared("ALTER TABLE sessions ALTER COLUMN id TYPE varchar(64)")
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Subject,
}
