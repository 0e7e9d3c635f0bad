use sea_orm_migration::{prelude::*, schema::*};

/// `migration_runs` and `migration_run_companies`: each `migrate` run, its
/// waves, and what became of each company in it, so that a stopped run can
/// be resumed and `migrate status` can say which company is on which
/// version and why one failed. At most one run is `running` at a time (a
/// partial unique index: two processes cannot both start one).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MigrationRuns::Table)
                    .if_not_exists()
                    .col(uuid(MigrationRuns::Id).primary_key())
                    .col(string_len(MigrationRuns::State, 16))
                    .col(string_len(MigrationRuns::Target, 200))
                    .col(text_null(MigrationRuns::Canary))
                    .col(double(MigrationRuns::Growth))
                    .col(integer(MigrationRuns::Parallel))
                    .col(double(MigrationRuns::AbortRate))
                    .col(integer(MigrationRuns::Waves))
                    .col(integer(MigrationRuns::Wave))
                    .col(text_null(MigrationRuns::StopReason))
                    .col(timestamp_with_time_zone(MigrationRuns::StartedAt))
                    .col(timestamp_with_time_zone(MigrationRuns::UpdatedAt))
                    .col(timestamp_with_time_zone_null(MigrationRuns::FinishedAt))
                    .to_owned(),
            )
            .await?;
        // The same statement on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS migration_runs_one_running \
                 ON migration_runs (state) WHERE state = 'running'",
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MigrationRunCompanies::Table)
                    .if_not_exists()
                    .col(uuid(MigrationRunCompanies::RunId))
                    .col(uuid(MigrationRunCompanies::TenantId))
                    .col(string_len(MigrationRunCompanies::Subdomain, 63))
                    .col(integer(MigrationRunCompanies::Wave))
                    .col(string_len(MigrationRunCompanies::Outcome, 16))
                    .col(string_len_null(MigrationRunCompanies::Reached, 200))
                    .col(text_null(MigrationRunCompanies::Error))
                    .col(string_len_null(MigrationRunCompanies::Sqlstate, 16))
                    .col(timestamp_with_time_zone_null(
                        MigrationRunCompanies::StartedAt,
                    ))
                    .col(timestamp_with_time_zone_null(
                        MigrationRunCompanies::FinishedAt,
                    ))
                    .primary_key(
                        Index::create()
                            .col(MigrationRunCompanies::RunId)
                            .col(MigrationRunCompanies::TenantId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(MigrationRunCompanies::Table, MigrationRunCompanies::RunId)
                            .to(MigrationRuns::Table, MigrationRuns::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MigrationRunCompanies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(MigrationRuns::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum MigrationRuns {
    Table,
    Id,
    State,
    Target,
    Canary,
    Growth,
    Parallel,
    AbortRate,
    Waves,
    Wave,
    StopReason,
    StartedAt,
    UpdatedAt,
    FinishedAt,
}

#[derive(DeriveIden)]
enum MigrationRunCompanies {
    Table,
    RunId,
    TenantId,
    Subdomain,
    Wave,
    Outcome,
    Reached,
    Error,
    Sqlstate,
    StartedAt,
    FinishedAt,
}
