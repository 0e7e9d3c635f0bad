use sea_orm_migration::prelude::*;

/// `sealing`: one row saying whether credentials sealed without their
/// owner bound in (`v1:`) are still opened. `secret rotate` seals every
/// credential again as `v2:` and then sets `legacy_refused`: from then on a
/// `v1:` value (say, one copied from an old backup into another company's
/// row) opens for no one.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared(
                "CREATE TABLE sealing (
                     id SMALLINT PRIMARY KEY CHECK (id = 1),
                     legacy_refused BOOLEAN NOT NULL
                 );
                 INSERT INTO sealing (id, legacy_refused) VALUES (1, false);",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DROP TABLE sealing")
            .await?;
        Ok(())
    }
}
