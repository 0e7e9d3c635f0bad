//! Queries on the central registry database.
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};

use super::entities::tenants;
use crate::domain::Subdomain;

pub async fn find_tenant_by_subdomain(
    db: &impl ConnectionTrait,
    subdomain: &Subdomain,
) -> Result<Option<tenants::Model>, DbErr> {
    tenants::Entity::find()
        .filter(tenants::Column::Subdomain.eq(subdomain.as_str()))
        .one(db)
        .await
}

pub async fn list_tenants(db: &impl ConnectionTrait) -> Result<Vec<tenants::Model>, DbErr> {
    tenants::Entity::find()
        .order_by_asc(tenants::Column::Subdomain)
        .all(db)
        .await
}
