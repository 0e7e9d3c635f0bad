use sea_orm_migration::{prelude::*, schema::*};

/// `tenant_restores`: each `tenant restore` of a company to a moment,
/// recorded step by step like a move, so that a process that dies midway
/// leaves what recovery needs to finish or undo it, and `--undo` finds the
/// database the company had before. At most one restore of a company runs
/// at a time (a partial unique index).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantRestores::Table)
                    .if_not_exists()
                    .col(uuid(TenantRestores::Id).primary_key())
                    .col(uuid(TenantRestores::TenantId))
                    .col(string_len(TenantRestores::Subdomain, 63))
                    .col(string_len(TenantRestores::Server, 63))
                    .col(timestamp_with_time_zone(TenantRestores::TargetTime))
                    .col(string_len_null(TenantRestores::AsSubdomain, 63))
                    .col(uuid_null(TenantRestores::NewTenantId))
                    .col(string_len(TenantRestores::Step, 16))
                    .col(string_len(TenantRestores::Outcome, 16))
                    .col(text_null(TenantRestores::Scratch))
                    .col(string_len_null(TenantRestores::Kept, 63))
                    .col(timestamp_with_time_zone_null(TenantRestores::KeptUntil))
                    .col(timestamp_with_time_zone_null(TenantRestores::RestoredFrom))
                    .col(big_integer_null(TenantRestores::Rows))
                    .col(big_integer_null(TenantRestores::PauseMs))
                    .col(timestamp_with_time_zone_null(TenantRestores::SwitchedAt))
                    .col(text_null(TenantRestores::Error))
                    .col(timestamp_with_time_zone(TenantRestores::StartedAt))
                    .col(timestamp_with_time_zone(TenantRestores::UpdatedAt))
                    .to_owned(),
            )
            .await?;
        // The same statements on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS tenant_restores_one_running \
                 ON tenant_restores (tenant_id) WHERE outcome = 'running'; \
                 CREATE INDEX IF NOT EXISTS tenant_restores_by_tenant \
                 ON tenant_restores (tenant_id, started_at)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantRestores::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TenantRestores {
    Table,
    Id,
    TenantId,
    Subdomain,
    Server,
    TargetTime,
    AsSubdomain,
    NewTenantId,
    Step,
    Outcome,
    Scratch,
    Kept,
    KeptUntil,
    RestoredFrom,
    Rows,
    PauseMs,
    SwitchedAt,
    Error,
    StartedAt,
    UpdatedAt,
}
