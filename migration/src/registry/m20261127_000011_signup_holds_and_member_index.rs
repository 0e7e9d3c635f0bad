use sea_orm_migration::{prelude::*, schema::*};

/// `signup_holds`: a signup waiting for its email to be confirmed holds
/// its subdomain for an hour; the admin's password is kept only as its
/// argon2 hash, the link only as a digest.
///
/// `member_emails`: for "find your workspace", which companies an email
/// is an active user of, by a keyed digest of the email (never the
/// address); `member_index` records which key the digests were made with.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SignupHolds::Table)
                    .if_not_exists()
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
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MemberEmails::Table)
                    .if_not_exists()
                    .col(string_len(MemberEmails::EmailDigest, 64))
                    .col(uuid(MemberEmails::TenantId))
                    .primary_key(
                        Index::create()
                            .col(MemberEmails::EmailDigest)
                            .col(MemberEmails::TenantId),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("member_emails_tenant_idx")
                    .table(MemberEmails::Table)
                    .col(MemberEmails::TenantId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MemberIndex::Table)
                    .if_not_exists()
                    .col(integer(MemberIndex::Id).primary_key())
                    .col(string_len(MemberIndex::KeyId, 64))
                    .col(timestamp_with_time_zone(MemberIndex::BuiltAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SignupHolds::Table.into_iden(),
            MemberEmails::Table.into_iden(),
            MemberIndex::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

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

#[derive(DeriveIden)]
enum MemberEmails {
    Table,
    EmailDigest,
    TenantId,
}

#[derive(DeriveIden)]
enum MemberIndex {
    Table,
    Id,
    KeyId,
    BuiltAt,
}
