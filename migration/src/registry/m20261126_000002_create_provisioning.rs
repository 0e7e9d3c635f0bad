use sea_orm_migration::{prelude::*, schema::*};

/// One row per attempt to create a tenant: how far it got, and how it ended.
/// Kept after the tenant row is undone, so failures stay visible.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Provisioning::Table)
                    .if_not_exists()
                    .col(uuid(Provisioning::TenantId).primary_key())
                    .col(string_len(Provisioning::Subdomain, 63))
                    .col(string_len(Provisioning::Step, 32))
                    .col(string_len(Provisioning::Outcome, 16))
                    .col(text_null(Provisioning::Error))
                    .col(timestamp_with_time_zone(Provisioning::StartedAt))
                    .col(timestamp_with_time_zone(Provisioning::UpdatedAt))
                    .col(big_integer_null(Provisioning::DurationMs))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Provisioning::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum Provisioning {
    Table,
    TenantId,
    Subdomain,
    Step,
    Outcome,
    Error,
    StartedAt,
    UpdatedAt,
    DurationMs,
}
