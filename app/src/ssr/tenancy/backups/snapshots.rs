//! SQLite: each company's database copied whole (`VACUUM INTO`) into `<data dir>/snapshots/<company id>/<unix ms>.db`, on a schedule.
//!
//! `serve`'s housekeeping snapshots, one company at a time, every company
//! whose newest snapshot is older than `ENCLAVE_SNAPSHOT_EVERY`, and
//! removes those older than the retention (the newest always stays). A
//! snapshot is written under a temporary name and renamed, so a file with
//! a snapshot's name is always whole. A restore takes the latest snapshot
//! at or before the moment asked for: SQLite companies go back to a
//! snapshot, PostgreSQL ones to any second inside the retention.
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use uuid::Uuid;

use super::pgbackrest::BackupError;
use crate::ssr::entities::tenants::{self, TenantStatus};
use crate::ssr::services::Services;
use crate::ssr::tenancy::servers::databases::{create_private_dir, TenantServer};

/// A company's snapshots, oldest first.
pub fn list(root: &Path, id: Uuid) -> Vec<(DateTime<Utc>, PathBuf)> {
    let dir = root.join(id.to_string());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let ms: i64 = name.strip_suffix(".db")?.parse().ok()?;
            Some((DateTime::from_timestamp_millis(ms)?, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// Copies the SQLite database at `live` into a new snapshot of company
/// `id` under `root`. Blocking.
pub fn take(root: &Path, id: Uuid, live: &Path) -> Result<PathBuf, BackupError> {
    let dir = root.join(id.to_string());
    create_private_dir(root)?;
    create_private_dir(&dir)?;
    let now = Utc::now().timestamp_millis();
    let path = dir.join(format!("{now}.db"));
    let partial = dir.join(format!("{now}.db.partial"));
    let _ = std::fs::remove_file(&partial);
    let conn = rusqlite::Connection::open_with_flags(
        live,
        rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(to_io)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(to_io)?;
    // The path is made of the data directory, a UUID and digits: bound as a
    // parameter, not spliced.
    conn.execute("VACUUM INTO ?1", [partial.to_string_lossy()])
        .map_err(to_io)?;
    drop(conn);
    std::fs::rename(&partial, &path)?;
    Ok(path)
}

fn to_io(e: rusqlite::Error) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

/// Removes company `id`'s snapshots taken before `before`, but never the
/// newest. Returns how many.
pub fn prune(root: &Path, id: Uuid, before: DateTime<Utc>) -> usize {
    let all = list(root, id);
    let Some((_, rest)) = all.split_last() else {
        return 0;
    };
    rest.iter()
        .filter(|(at, _)| *at < before)
        .filter(|(_, p)| std::fs::remove_file(p).is_ok())
        .count()
}

impl Services {
    /// Snapshots every SQLite company whose newest snapshot is older than
    /// `ENCLAVE_SNAPSHOT_EVERY` (each one with `all`), one at a time, and
    /// prunes past the retention. Returns how many it took.
    pub async fn snapshot_all(&self, all: bool) -> Result<usize, BackupError> {
        let fleet = self.provisioner.fleet();
        let TenantServer::Sqlite { dir } = fleet.first().clone() else {
            return Ok(0);
        };
        let b = self.backups.clone();
        let every = match (all, b.snapshot_every) {
            (true, _) => Duration::ZERO,
            (false, Some(every)) => every,
            (false, None) => return Ok(0),
        };
        let companies = tenants::Entity::find()
            .filter(tenants::Column::Status.is_in([TenantStatus::Active, TenantStatus::Paused]))
            .all(&self.registry)
            .await?;
        let now = Utc::now();
        let keep = chrono::Duration::from_std(b.snapshot_keep).unwrap_or_default();
        let mut taken = 0;
        for t in companies {
            let root = b.snapshot_dir.clone();
            let newest = list(&root, t.id).last().map(|(at, _)| *at);
            let due = newest
                .is_none_or(|at| now - at >= chrono::Duration::from_std(every).unwrap_or_default());
            let live = TenantServer::sqlite_path(&dir, t.id);
            let id = t.id;
            let result = tokio::task::spawn_blocking(move || {
                let took = if due && live.exists() {
                    Some(take(&root, id, &live)?)
                } else {
                    None
                };
                prune(&root, id, now - keep);
                Ok::<_, BackupError>(took)
            })
            .await
            .map_err(|e| BackupError::Io(std::io::Error::other(e.to_string())))?;
            match result {
                Ok(Some(_)) => taken += 1,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(tenant = %t.subdomain, error = %crate::ssr::http::error_chain(&e), "cannot snapshot a company")
                }
            }
        }
        if taken > 0 {
            tracing::info!(taken, "companies snapshotted");
        }
        Ok(taken)
    }
}
