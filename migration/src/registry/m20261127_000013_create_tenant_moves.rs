use sea_orm_migration::{prelude::*, schema::*};

/// `tenant_moves`: a company's move from one database server to another,
/// recorded step by step (`server tenant move`) so that a process that dies
/// midway leaves what recovery needs to finish or undo it. One row per
/// company: its last move.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantMoves::Table)
                    .if_not_exists()
                    .col(uuid(TenantMoves::TenantId).primary_key())
                    .col(string_len(TenantMoves::Subdomain, 63))
                    .col(string_len(TenantMoves::Source, 63))
                    .col(string_len(TenantMoves::Target, 63))
                    .col(string_len(TenantMoves::Step, 16))
                    .col(string_len(TenantMoves::Outcome, 16))
                    .col(text_null(TenantMoves::TargetUrl))
                    .col(big_integer_null(TenantMoves::Rows))
                    .col(big_integer_null(TenantMoves::PauseMs))
                    .col(text_null(TenantMoves::Error))
                    .col(timestamp_with_time_zone(TenantMoves::StartedAt))
                    .col(timestamp_with_time_zone(TenantMoves::UpdatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantMoves::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TenantMoves {
    Table,
    TenantId,
    Subdomain,
    Source,
    Target,
    Step,
    Outcome,
    TargetUrl,
    Rows,
    PauseMs,
    Error,
    StartedAt,
    UpdatedAt,
}
