use sea_orm_migration::prelude::*;

/// Company users' sessions now live in their company's database; the
/// registry keeps platform admins' (and not-yet-signed-in ones'). Company
/// sessions held here are ended once: their owners sign in again.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .get_connection()
            .execute_unprepared("DELETE FROM sessions WHERE subject LIKE 't:%'")
            .await?;
        Ok(())
    }

    /// Nothing to bring back: the sessions ended.
    async fn down(&self, _manager: &SchemaManager) -> Result<(), DbErr> {
        Ok(())
    }
}
