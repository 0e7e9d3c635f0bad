use sea_orm_migration::prelude::*;

use crate::tenant::{
    m20261126_000003_create_login_failures as create,
    m20261127_000004_login_failures_by_client as by_client,
};

/// Failed platform-admin sign-ins, throttled like a company's: the same
/// `login_failures` table a company database has, made by the same two
/// migrations.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create::Migration.up(manager).await?;
        by_client::Migration.up(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        by_client::Migration.down(manager).await?;
        create::Migration.down(manager).await
    }
}
