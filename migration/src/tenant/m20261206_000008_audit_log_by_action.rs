use sea_orm_migration::prelude::*;

/// An index for the audit log read by action and time (the daily
/// invitation quota counts a company's invitations of the last day; without
/// it, every invitation read the whole log). Expand only: the code before
/// it runs the same queries, slower, so a company not yet migrated is
/// served as well as one migrated.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("audit_log_action_created_at_idx")
                    .table(AuditLog::Table)
                    .col(AuditLog::Action)
                    .col(AuditLog::CreatedAt)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("audit_log_action_created_at_idx")
                    .table(AuditLog::Table)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AuditLog {
    Table,
    Action,
    CreatedAt,
}
