use sea_orm_migration::{prelude::*, schema::*};

/// Browser sessions (tower-sessions), shared by every app instance.
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
                    .col(string_len(Sessions::Id, 64).primary_key())
                    .col(text(Sessions::Data))
                    .col(timestamp_with_time_zone(Sessions::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sessions_expires_at_idx")
                    .table(Sessions::Table)
                    .col(Sessions::ExpiresAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(HandoffTokens::Table)
                    .if_not_exists()
                    // BLAKE2b of the token: the token itself is never stored.
                    .col(string_len(HandoffTokens::TokenHash, 128).primary_key())
                    .col(uuid(HandoffTokens::TenantId))
                    .col(uuid(HandoffTokens::UserId))
                    .col(timestamp_with_time_zone(HandoffTokens::ExpiresAt))
                    .col(timestamp_with_time_zone_null(HandoffTokens::UsedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(HandoffTokens::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Sessions::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Sessions {
    Table,
    Id,
    Data,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum HandoffTokens {
    Table,
    TokenHash,
    TenantId,
    UserId,
    ExpiresAt,
    UsedAt,
}
