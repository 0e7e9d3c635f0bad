use sea_orm_migration::{prelude::*, schema::*};

/// Deleting a company in two steps: `tenants.deleted_at` (asked) and
/// `purge_after` (the end of the grace period, when housekeeping purges
/// it), and `tenant_tombstones`, all that is left once it is purged: its
/// id, a digest of its subdomain (which stays reserved until
/// `reserved_until`), and its times.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds one column per statement.
        for col in [Tenants::DeletedAt, Tenants::PurgeAfter] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tenants::Table)
                        .add_column(timestamp_with_time_zone_null(col))
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(TenantTombstones::Table)
                    .if_not_exists()
                    .col(uuid(TenantTombstones::Id).primary_key())
                    .col(string_len(TenantTombstones::SubdomainDigest, 64))
                    .col(timestamp_with_time_zone(TenantTombstones::CreatedAt))
                    .col(timestamp_with_time_zone(TenantTombstones::DeletedAt))
                    .col(timestamp_with_time_zone(TenantTombstones::PurgedAt))
                    .col(timestamp_with_time_zone(TenantTombstones::ReservedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tenant_tombstones_by_subdomain")
                    .table(TenantTombstones::Table)
                    .col(TenantTombstones::SubdomainDigest)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(TenantTombstones::Table).to_owned())
            .await?;
        for col in [Tenants::DeletedAt, Tenants::PurgeAfter] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Tenants::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden, Clone, Copy)]
enum Tenants {
    Table,
    DeletedAt,
    PurgeAfter,
}

#[derive(DeriveIden)]
enum TenantTombstones {
    Table,
    Id,
    SubdomainDigest,
    CreatedAt,
    DeletedAt,
    PurgedAt,
    ReservedUntil,
}
