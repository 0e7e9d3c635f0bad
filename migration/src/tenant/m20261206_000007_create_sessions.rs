use sea_orm_migration::{prelude::*, schema::*};

/// The company's own browser sessions: a session made on the company's
/// site lives in its database, so a signed-in page needs no other. As in
/// the registry, a row is keyed by the digest of the session id (never
/// the id) and names whose session it is (`subject`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Sessions::Table)
                    .if_not_exists()
                    .col(string_len(Sessions::Id, 128).primary_key())
                    .col(text(Sessions::Data))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .col(string_len_null(Sessions::Subject, 100))
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("sessions_expires_at_idx", Sessions::ExpiresAt),
            ("sessions_subject_idx", Sessions::Subject),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(Sessions::Table)
                        .col(col)
                        .if_not_exists()
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Sessions {
    Table,
    Id,
    Data,
    ExpiresAt,
    Subject,
}
