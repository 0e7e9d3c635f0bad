use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Tenants::Table)
                    .if_not_exists()
                    .col(uuid(Tenants::Id).primary_key())
                    .col(string_len(Tenants::Name, 100))
                    .col(string_len(Tenants::Subdomain, 63))
                    .col(string_len(Tenants::DbName, 63))
                    // Ciphertext (nonce + AEAD output, base64); never plaintext.
                    .col(text_null(Tenants::DbUrl))
                    .col(string_len_null(Tenants::DbServer, 255))
                    .col(string_len(Tenants::Status, 16))
                    .col(uuid_null(Tenants::AdminUserId))
                    .col(string_len_null(Tenants::SchemaVersion, 128))
                    .col(timestamp_with_time_zone(Tenants::CreatedAt))
                    .col(timestamp_with_time_zone(Tenants::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // Named so a violation is recognised by constraint, not by message text.
        manager
            .create_index(
                Index::create()
                    .name("tenants_subdomain_key")
                    .table(Tenants::Table)
                    .col(Tenants::Subdomain)
                    .unique()
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Tenants::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    Id,
    Name,
    Subdomain,
    DbName,
    DbUrl,
    DbServer,
    Status,
    AdminUserId,
    SchemaVersion,
    CreatedAt,
    UpdatedAt,
}
