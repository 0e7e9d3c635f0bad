use sea_orm_migration::{prelude::*, schema::*};

/// A company's own addresses: `tenant_domains` (custom domains, each with
/// the token its TXT record must carry, when it was verified and when its
/// record was last seen or first missed, and whether it is the company's
/// primary address) and `subdomain_aliases` (a renamed company's old
/// subdomains: redirected until `redirect_until`, no one else's until
/// `reserved_until`).
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(TenantDomains::Table)
                    .if_not_exists()
                    .col(string_len(TenantDomains::Domain, 253).primary_key())
                    .col(uuid(TenantDomains::TenantId))
                    .col(string_len(TenantDomains::Token, 64))
                    .col(timestamp_with_time_zone(TenantDomains::CreatedAt))
                    .col(timestamp_with_time_zone_null(TenantDomains::VerifiedAt))
                    .col(timestamp_with_time_zone_null(TenantDomains::SeenAt))
                    .col(timestamp_with_time_zone_null(TenantDomains::MissingSince))
                    .col(timestamp_with_time_zone(TenantDomains::NextCheckAt))
                    .col(integer(TenantDomains::Failures).default(0))
                    .col(boolean(TenantDomains::IsPrimary).default(false))
                    .col(boolean(TenantDomains::Redirect).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("tenant_domains_by_tenant")
                    .table(TenantDomains::Table)
                    .col(TenantDomains::TenantId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SubdomainAliases::Table)
                    .if_not_exists()
                    .col(string_len(SubdomainAliases::Subdomain, 63).primary_key())
                    .col(uuid(SubdomainAliases::TenantId))
                    .col(timestamp_with_time_zone(SubdomainAliases::RenamedAt))
                    .col(timestamp_with_time_zone(SubdomainAliases::RedirectUntil))
                    .col(timestamp_with_time_zone(SubdomainAliases::ReservedUntil))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("subdomain_aliases_by_tenant")
                    .table(SubdomainAliases::Table)
                    .col(SubdomainAliases::TenantId)
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(SubdomainAliases::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(TenantDomains::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum TenantDomains {
    Table,
    Domain,
    TenantId,
    Token,
    CreatedAt,
    VerifiedAt,
    SeenAt,
    MissingSince,
    NextCheckAt,
    Failures,
    IsPrimary,
    Redirect,
}

#[derive(DeriveIden)]
enum SubdomainAliases {
    Table,
    Subdomain,
    TenantId,
    RenamedAt,
    RedirectUntil,
    ReservedUntil,
}
