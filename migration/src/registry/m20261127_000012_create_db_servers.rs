use sea_orm_migration::{prelude::*, schema::*};

/// `db_servers`: the PostgreSQL servers company databases are placed on.
/// Each has a name, its administrator URL (sealed like company credentials,
/// for the row's id), a capacity in companies (none: no limit) and a state
/// (`active`, or `draining`: no new companies). A company's
/// `tenants.db_server` names its server: the companies made before (whose
/// row holds the server's `host:port`, or nothing) are on the first one,
/// `default`.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(DbServers::Table)
                    .if_not_exists()
                    .col(uuid(DbServers::Id).primary_key())
                    .col(string_len_uniq(DbServers::Name, 63))
                    .col(text(DbServers::AdminUrl))
                    .col(integer_null(DbServers::Capacity))
                    .col(string_len(DbServers::State, 16))
                    .col(timestamp_with_time_zone(DbServers::CreatedAt))
                    .to_owned(),
            )
            .await?;
        // Placement counts companies per server, and each server's companies
        // share its open budget: one name per server.
        manager
            .get_connection()
            .execute_unprepared("UPDATE tenants SET db_server = 'default'")
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tenants_db_server_idx")
                    .table(Tenants::Table)
                    .col(Tenants::DbServer)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("tenants_db_server_idx")
                    .table(Tenants::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(DbServers::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum DbServers {
    Table,
    Id,
    Name,
    AdminUrl,
    Capacity,
    State,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Tenants {
    Table,
    DbServer,
}
