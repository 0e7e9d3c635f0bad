//! The sea-orm session store, in both of its homes (the registry, a company's database), on both backends.
use std::collections::HashMap;

use app::ssr::{accounts::sessions::DbSessionStore, tenancy::RequestSite};
use sea_orm::{DatabaseConnection, EntityTrait, PaginatorTrait};
use tower_sessions::{
    cookie::time::{Duration, OffsetDateTime},
    session::{Id, Record},
    session_store::{ExpiredDeletion, SessionStore},
};

use crate::helpers::{spawn_app, Backend, TestApp};
use crate::on_both_backends;

on_both_backends!(
    sessions_are_created_saved_loaded_and_deleted,
    expired_sessions_are_neither_loaded_nor_kept,
    a_paused_companys_site_keeps_no_sessions,
);

fn record(expiry: OffsetDateTime) -> Record {
    let mut data = HashMap::new();
    data.insert("who".to_string(), serde_json::json!({"user": 7}));
    Record {
        id: Id::default(),
        data,
        expiry_date: expiry,
    }
}

/// The registry's store and acme's, each with the database it writes to.
async fn stores(app: &TestApp) -> Vec<(DbSessionStore, DatabaseConnection)> {
    app.create_company("Acme Corp", "acme").await;
    let RequestSite::Tenant(acme) = app.resolve("acme.localhost").await else {
        panic!("acme is served")
    };
    vec![
        (
            DbSessionStore::in_registry(app.services.registry.clone()),
            app.services.registry.clone(),
        ),
        (
            DbSessionStore::in_company(acme),
            app.tenant_db("acme").await,
        ),
    ]
}

async fn count(db: &DatabaseConnection) -> u64 {
    app::ssr::entities::sessions::Entity::find()
        .count(db)
        .await
        .unwrap()
}

async fn sessions_are_created_saved_loaded_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    for (store, db) in stores(&app).await {
        let mut r = record(OffsetDateTime::now_utc() + Duration::hours(1));
        store.create(&mut r).await.unwrap();
        assert_eq!(count(&db).await, 1, "{store:?}");
        let loaded = store.load(&r.id).await.unwrap().expect("stored");
        assert_eq!(loaded.data, r.data);
        assert_eq!(
            loaded.expiry_date.unix_timestamp(),
            r.expiry_date.unix_timestamp()
        );

        r.data.insert("more".into(), serde_json::json!(1));
        store.save(&r).await.unwrap();
        assert_eq!(store.load(&r.id).await.unwrap().unwrap().data.len(), 2);

        // A second create with a colliding id gets a fresh one.
        let mut twin = r.clone();
        store.create(&mut twin).await.unwrap();
        assert_ne!(twin.id, r.id);

        store.delete(&r.id).await.unwrap();
        assert!(store.load(&r.id).await.unwrap().is_none());
        assert!(store.load(&twin.id).await.unwrap().is_some());
        store.delete(&twin.id).await.unwrap();
    }
    app.teardown().await;
}

async fn expired_sessions_are_neither_loaded_nor_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    for (store, db) in stores(&app).await {
        let mut old = record(OffsetDateTime::now_utc() - Duration::minutes(1));
        let mut live = record(OffsetDateTime::now_utc() + Duration::hours(1));
        store.create(&mut old).await.unwrap();
        store.create(&mut live).await.unwrap();
        assert!(store.load(&old.id).await.unwrap().is_none());
        store.delete_expired().await.unwrap();
        assert_eq!(count(&db).await, 1, "{store:?}");
        assert!(store.load(&live.id).await.unwrap().is_some());
    }
    app.teardown().await;
}

async fn a_paused_companys_site_keeps_no_sessions(backend: Backend) {
    use app::ssr::entities::tenants::TenantStatus;
    let app = spawn_app(backend).await;
    app.create_company("Acme Corp", "acme").await;
    app.set_status("acme", TenantStatus::Paused).await;
    let site = app.resolve("acme.localhost").await;
    assert!(matches!(site, RequestSite::Paused { .. }), "{site:?}");
    let store = DbSessionStore::for_site(Some(&site), &app.services.registry);
    let mut r = record(OffsetDateTime::now_utc() + Duration::hours(1));
    store.create(&mut r).await.unwrap();
    assert!(store.load(&r.id).await.unwrap().is_none());
    assert_eq!(count(&app.services.registry).await, 0);
    assert_eq!(count(&app.tenant_db("acme").await).await, 0);
    app.teardown().await;
}
