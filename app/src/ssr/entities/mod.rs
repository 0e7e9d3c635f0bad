//! SeaORM entities, in the shape `sea-orm-cli generate entity` gives.
//! Behaviour lives in the query modules beside them, not here.
pub mod audit_log;
pub mod provisioning;
pub mod tenant_users;
pub mod tenants;
