use sea_orm_migration::{prelude::*, schema::*};

/// `signup_holds` made again without `password_hash` and without a unique
/// subdomain: a signup no longer holds its subdomain nor keeps a password
/// typed before its email was proven; both come when the link is opened.
/// Signups waiting for their link when this runs must sign up again (their
/// links last an hour; SQLite cannot drop a unique column in place).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SignupHolds {
    Table,
    TokenHash,
    Subdomain,
    Name,
    Email,
    PasswordHash,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SignupHolds::Table).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SignupHolds::Table)
                    .col(string_len(SignupHolds::TokenHash, 128).primary_key())
                    .col(string_len(SignupHolds::Subdomain, 63))
                    .col(string_len(SignupHolds::Name, 100))
                    .col(string_len(SignupHolds::Email, 254))
                    .col(timestamp_with_time_zone(SignupHolds::CreatedAt))
                    .col(timestamp_with_time_zone(SignupHolds::ExpiresAt))
                    .col(timestamp_with_time_zone_null(SignupHolds::UsedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SignupHolds::Table).to_owned())
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SignupHolds::Table)
                    .col(string_len(SignupHolds::TokenHash, 128).primary_key())
                    .col(string_len_uniq(SignupHolds::Subdomain, 63))
                    .col(string_len(SignupHolds::Name, 100))
                    .col(string_len(SignupHolds::Email, 254))
                    .col(text(SignupHolds::PasswordHash))
                    .col(timestamp_with_time_zone(SignupHolds::CreatedAt))
                    .col(timestamp_with_time_zone(SignupHolds::ExpiresAt))
                    .col(timestamp_with_time_zone_null(SignupHolds::UsedAt))
                    .to_owned(),
            )
            .await
    }
}
