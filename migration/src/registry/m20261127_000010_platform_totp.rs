use sea_orm_migration::{prelude::*, schema::*};

/// An optional second factor for platform admins: their TOTP secret
/// (sealed with the platform key) and the last time step a code was
/// accepted for, so that no code works twice.
#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [
            text_null(Users::TotpSecret),
            big_integer_null(Users::TotpLastStep),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for col in [Users::TotpSecret, Users::TotpLastStep] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    TotpSecret,
    TotpLastStep,
}
