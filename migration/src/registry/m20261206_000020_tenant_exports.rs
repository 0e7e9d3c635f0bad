use sea_orm_migration::{prelude::*, schema::*};

/// `tenant_exports`: the archives company admins ask for from their
/// settings page, made in the background. A row says how far one has come,
/// and until when its file (`<data dir>/exports/<id>.zip`) may be
/// downloaded. At most one export of a company runs at a time (a partial
/// unique index). An export made for the admins of a company scheduled for
/// deletion has a download link of its own (`link_digest`, a token's
/// digest), valid until the purge.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantExports::Table)
                    .if_not_exists()
                    .col(uuid(TenantExports::Id).primary_key())
                    .col(uuid(TenantExports::TenantId))
                    .col(string_len(TenantExports::RequestedBy, 254))
                    .col(string_len(TenantExports::Status, 16))
                    .col(big_integer(TenantExports::TablesDone))
                    .col(big_integer(TenantExports::TablesTotal))
                    .col(big_integer(TenantExports::Rows))
                    .col(big_integer_null(TenantExports::Bytes))
                    .col(text_null(TenantExports::Error))
                    .col(timestamp_with_time_zone(TenantExports::StartedAt))
                    .col(timestamp_with_time_zone(TenantExports::UpdatedAt))
                    .col(timestamp_with_time_zone_null(TenantExports::ExpiresAt))
                    .col(string_len_null(TenantExports::LinkDigest, 128))
                    .to_owned(),
            )
            .await?;
        // The same statements on PostgreSQL and SQLite.
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE UNIQUE INDEX IF NOT EXISTS tenant_exports_one_running \
                 ON tenant_exports (tenant_id) WHERE status = 'running'; \
                 CREATE INDEX IF NOT EXISTS tenant_exports_by_tenant \
                 ON tenant_exports (tenant_id, started_at)",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantExports::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TenantExports {
    Table,
    Id,
    TenantId,
    RequestedBy,
    Status,
    TablesDone,
    TablesTotal,
    Rows,
    Bytes,
    Error,
    StartedAt,
    UpdatedAt,
    ExpiresAt,
    LinkDigest,
}
