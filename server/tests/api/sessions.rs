//! The sea-orm session store, against both registries.
use std::collections::HashMap;

use app::ssr::accounts::sessions::DbSessionStore;
use tower_sessions::{
    cookie::time::{Duration, OffsetDateTime},
    session::{Id, Record},
    session_store::{ExpiredDeletion, SessionStore},
};

use crate::helpers::{spawn_app, Backend};
use crate::on_both_backends;

on_both_backends!(
    sessions_are_created_saved_loaded_and_deleted,
    expired_sessions_are_neither_loaded_nor_kept,
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

async fn sessions_are_created_saved_loaded_and_deleted(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = DbSessionStore::new(app.services.registry.clone());
    let mut r = record(OffsetDateTime::now_utc() + Duration::hours(1));
    store.create(&mut r).await.unwrap();
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
    app.teardown().await;
}

async fn expired_sessions_are_neither_loaded_nor_kept(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = DbSessionStore::new(app.services.registry.clone());
    let mut old = record(OffsetDateTime::now_utc() - Duration::minutes(1));
    let mut live = record(OffsetDateTime::now_utc() + Duration::hours(1));
    store.create(&mut old).await.unwrap();
    store.create(&mut live).await.unwrap();
    assert!(store.load(&old.id).await.unwrap().is_none());
    store.delete_expired().await.unwrap();
    use sea_orm::{EntityTrait, PaginatorTrait};
    let left = app::ssr::entities::sessions::Entity::find()
        .count(&app.services.registry)
        .await
        .unwrap();
    assert_eq!(left, 1);
    assert!(store.load(&live.id).await.unwrap().is_some());
    app.teardown().await;
}
