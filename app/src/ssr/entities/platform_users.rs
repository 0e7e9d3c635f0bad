use sea_orm::entity::prelude::*;

/// Registry: platform users (superadmins).
#[derive(Clone, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub email: String,
    pub password_hash: String,
    pub role: PlatformRole,
    pub tenant_id: Option<Uuid>,
    pub created_at: DateTimeUtc,
    /// The TOTP secret, sealed for this user (see `ssr::secrets`).
    pub totp_secret: Option<String>,
    /// The last time step a code was accepted for.
    pub totp_last_step: Option<i64>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformUser")
            .field("id", &self.id)
            .field("email", &self.email)
            .field("role", &self.role)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// What a platform user may do. Only superadmins exist so far.
#[derive(Copy, Clone, Debug, PartialEq, Eq, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum PlatformRole {
    #[sea_orm(string_value = "superadmin")]
    Superadmin,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
