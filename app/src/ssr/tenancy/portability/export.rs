//! Exporting one company: its database read in one snapshot, streamed into a ZIP on disk.
//!
//! The reading is async (the company's connection; on PostgreSQL each
//! table's rows come as `COPY … (FORMAT binary)` tuples, which the writers
//! read their fields from); the writing runs on
//! two blocking threads, one per form, each fed the same batches of rows
//! through its own bounded channel, so memory stays at a few batches
//! whatever the company's size, and both cores write. The CSV thread writes
//! the archive: each table's CSV straight into it (formatted, hashed,
//! deflated). The JSON Lines thread writes each table's JSON Lines, hashed
//! and deflated, into a ZIP of its own in an unlinked scratch file, whose
//! entry the CSV thread then copies into the archive as it is (no second
//! deflate). The archive is written as `<out>.partial` and renamed when
//! whole.
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use futures_util::StreamExt;
use sea_orm::sqlx::{pool::PoolConnection, Postgres};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, Statement, StreamTrait,
    TransactionTrait,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use zip::write::SimpleFileOptions;

use super::archive::{
    self, catalog, credential, csv_field, ColumnEntry, Company, Credential, FileEntry, Hashing,
    Kind, Manifest, Rows, TableEntry, FORMAT, MANIFEST,
};
use super::PortError;
use crate::domain::Subdomain;
use crate::ssr::entities::tenants::TenantStatus;
use crate::ssr::services::Services;
use crate::ssr::tenancy::connections::conn::{acquire_err, query_err};
use crate::ssr::tenancy::request::directory::find_by_subdomain;
use crate::ssr::tenancy::servers::databases::{connect_once, create_private_file};

/// Rows sent to the writer at a time.
const BATCH: usize = 1000;

/// Bytes of PostgreSQL's tuples after which a batch is sent, even short of
/// [`BATCH`] rows (rows with long text).
const COPY_BATCH_BYTES: usize = 1 << 18;

/// Batches each writer may have waiting: enough that neither the reader
/// nor a writer waits on the other's pace from batch to batch, few enough
/// that memory stays at a few megabytes.
const QUEUED: usize = 16;

/// What an export did.
#[derive(Debug)]
pub struct Exported {
    pub manifest: Manifest,
    pub bytes: u64,
    pub took: Duration,
}

impl Exported {
    pub fn rows(&self) -> u64 {
        self.manifest.tables.iter().map(|t| t.rows).sum()
    }
}

/// How far an export has come, for its page.
#[derive(Debug, Default)]
pub struct Progress {
    pub tables_total: AtomicU64,
    pub tables_done: AtomicU64,
    pub rows: AtomicU64,
}

/// What the reader sends the writers (both get every part).
#[derive(Clone)]
enum Part {
    Table(TableEntry),
    Rows(Arc<Rows>),
    End,
    /// Every table read: the manifest (its tables filled in by the writer).
    Done(Manifest),
}

/// The reader's two channels, one per writer.
struct Writers {
    csv: mpsc::Sender<Part>,
    jsonl: mpsc::Sender<Part>,
}

impl Writers {
    /// Sends `part` to both; false once either has stopped (its error is
    /// what the export reports).
    async fn send(&self, part: Part) -> bool {
        self.jsonl.send(part.clone()).await.is_ok() && self.csv.send(part).await.is_ok()
    }
}

/// Where an export reads its rows, in one snapshot: SQLite through
/// SeaORM, PostgreSQL through `COPY (SELECT …) TO STDOUT (FORMAT binary)`
/// on the export's own connection (no per-row decoding in the reader: the
/// writers read the fields from the tuples' bytes).
enum Source {
    Sea(DatabaseTransaction),
    Pg(PoolConnection<Postgres>),
}

impl Source {
    async fn open(db: &DatabaseConnection) -> Result<Self, PortError> {
        if db.get_database_backend() != DbBackend::Postgres {
            return Ok(Source::Sea(db.begin().await?));
        }
        let mut conn = db
            .get_postgres_connection_pool()
            .acquire()
            .await
            .map_err(acquire_err)?;
        sea_orm::sqlx::raw_sql("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *conn)
            .await
            .map_err(query_err)?;
        Ok(Source::Pg(conn))
    }

    fn backend(&self) -> DbBackend {
        match self {
            Source::Sea(txn) => ConnectionTrait::get_database_backend(txn),
            Source::Pg(_) => DbBackend::Postgres,
        }
    }

    /// The latest migration applied.
    async fn schema(&mut self) -> Result<Option<String>, PortError> {
        const SQL: &str = "SELECT max(version) AS v FROM seaql_migrations";
        Ok(match self {
            Source::Sea(txn) => txn
                .query_one_raw(Statement::from_string(
                    ConnectionTrait::get_database_backend(txn),
                    SQL,
                ))
                .await?
                .and_then(|r| r.try_get("", "v").ok()),
            Source::Pg(conn) => sea_orm::sqlx::query_scalar(SQL)
                .fetch_one(&mut **conn)
                .await
                .map_err(query_err)?,
        })
    }

    async fn catalog(&mut self) -> Result<Vec<archive::Table>, PortError> {
        Ok(match self {
            Source::Sea(txn) => catalog(&*txn).await?,
            Source::Pg(conn) => archive::catalog_pg(conn).await?,
        })
    }

    /// Sends `kept` columns of every row of `table` to the writers, in
    /// batches; false once a writer has stopped.
    async fn send_rows(
        &mut self,
        table: &archive::Table,
        kept: &[&ColumnEntry],
        tx: &Writers,
        progress: &Progress,
    ) -> Result<bool, PortError> {
        let select = archive::select(self.backend(), table, kept);
        match self {
            Source::Sea(txn) => {
                let mut rows = txn.stream_raw(select).await?;
                let mut batch = Vec::with_capacity(BATCH);
                while let Some(row) = rows.next().await {
                    batch.push(archive::read_row(&row?, kept)?);
                    if batch.len() == BATCH {
                        progress.rows.fetch_add(BATCH as u64, Ordering::Relaxed);
                        let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                        if !tx.send(Part::Rows(Arc::new(Rows::Values(full)))).await {
                            return Ok(false);
                        }
                    }
                }
                progress
                    .rows
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                Ok(tx.send(Part::Rows(Arc::new(Rows::Values(batch)))).await)
            }
            Source::Pg(conn) => {
                let copy = format!("COPY ({}) TO STDOUT (FORMAT binary)", select.sql);
                let mut messages = conn.copy_out_raw(&copy).await.map_err(query_err)?;
                let mut first = true;
                let (mut tuples, mut rows) = (Vec::with_capacity(COPY_BATCH_BYTES), 0);
                while let Some(message) = messages.next().await {
                    let message = message.map_err(query_err)?;
                    let mut tuple = message.as_ref();
                    if std::mem::take(&mut first) {
                        tuple = archive::copy_after_header(tuple)?;
                    }
                    // Each message is one row (the protocol's rule), or the
                    // trailer.
                    if archive::copy_trailer(tuple) {
                        continue;
                    }
                    tuples.extend_from_slice(tuple);
                    rows += 1;
                    if rows == BATCH || tuples.len() >= COPY_BATCH_BYTES {
                        progress.rows.fetch_add(rows as u64, Ordering::Relaxed);
                        let full =
                            std::mem::replace(&mut tuples, Vec::with_capacity(COPY_BATCH_BYTES));
                        let part = Part::Rows(Arc::new(Rows::Copy {
                            tuples: full,
                            rows: std::mem::take(&mut rows),
                        }));
                        if !tx.send(part).await {
                            return Ok(false);
                        }
                    }
                }
                progress.rows.fetch_add(rows as u64, Ordering::Relaxed);
                Ok(tx
                    .send(Part::Rows(Arc::new(Rows::Copy { tuples, rows })))
                    .await)
            }
        }
    }

    /// Ends the snapshot.
    async fn close(self) -> Result<(), PortError> {
        match self {
            Source::Sea(txn) => txn.rollback().await?,
            Source::Pg(mut conn) => {
                sea_orm::sqlx::raw_sql("ROLLBACK")
                    .execute(&mut *conn)
                    .await
                    .map_err(query_err)?;
            }
        }
        Ok(())
    }
}

impl Services {
    /// Writes company `sub`'s archive to `out`. `credentials`: an
    /// operator's export for moving the company (password hashes, token
    /// digests and sessions included). `by` is named in its audit log.
    pub async fn export_tenant(
        &self,
        sub: &Subdomain,
        out: &Path,
        credentials: bool,
        by: &str,
    ) -> Result<Exported, PortError> {
        self.export_tenant_with(sub, out, credentials, by, &Progress::default())
            .await
    }

    /// [`Services::export_tenant`], telling `progress` how far it has come.
    pub async fn export_tenant_with(
        &self,
        sub: &Subdomain,
        out: &Path,
        credentials: bool,
        by: &str,
        progress: &Progress,
    ) -> Result<Exported, PortError> {
        let started = Instant::now();
        let t = find_by_subdomain(&self.registry, sub)
            .await?
            .ok_or_else(|| PortError::NotFound(sub.to_string()))?;
        // A company scheduled for deletion still has its data: its admins'
        // export is made then.
        if !matches!(
            t.status,
            TenantStatus::Active | TenantStatus::Paused | TenantStatus::Deleting
        ) {
            return Err(PortError::NotSettled(sub.to_string()));
        }
        let url = self
            .directory
            .connection_url(&t)?
            .ok_or_else(|| PortError::NotSettled(sub.to_string()))?;
        let db = connect_once(&url).await?;
        let partial = partial_path(out);
        let result = async {
            let backend = db.get_database_backend();
            // One snapshot for every table.
            let mut source = Source::open(&db).await?;
            let schema = source.schema().await?.ok_or_else(|| {
                PortError::refused("the company's database has no migrations recorded")
            })?;
            let tables = source.catalog().await?;

            let (csv, csv_rx) = mpsc::channel::<Part>(QUEUED);
            let (jsonl, jsonl_rx) = mpsc::channel::<Part>(QUEUED);
            let tx = Writers { csv, jsonl };
            let (jsonl_done, jsonl_files) = std::sync::mpsc::sync_channel(1);
            let target = partial.clone();
            let writer =
                tokio::task::spawn_blocking(move || write_archive(&target, csv_rx, jsonl_files));
            let scratch = jsonl_scratch(&partial);
            let jsonl_writer =
                tokio::task::spawn_blocking(move || write_jsonl(&scratch, jsonl_rx, jsonl_done));
            progress
                .tables_total
                .store(tables.len() as u64, Ordering::Relaxed);
            let read = async {
                for table in &tables {
                    if !archive::plain_name(&table.name) {
                        return Err(PortError::refused(format!(
                            "the table name '{}' cannot be a file name",
                            table.name
                        )));
                    }
                    let whole = table
                        .columns
                        .iter()
                        .any(|c| credential(&table.name, &c.name) == Some(Credential::Table));
                    if whole && !credentials {
                        progress.tables_done.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    let (kept, omitted): (Vec<&ColumnEntry>, Vec<&ColumnEntry>) =
                        table.columns.iter().partition(|c| {
                            credentials
                                || credential(&table.name, &c.name) != Some(Credential::Column)
                        });
                    let entry = TableEntry {
                        name: table.name.clone(),
                        columns: kept.iter().map(|c| (*c).clone()).collect(),
                        omitted: omitted.iter().map(|c| c.name.clone()).collect(),
                        rows: 0,
                        files: Vec::new(),
                    };
                    if !tx.send(Part::Table(entry)).await {
                        return Ok(());
                    }
                    if !source.send_rows(table, &kept, &tx, progress).await? {
                        return Ok(());
                    }
                    progress.tables_done.fetch_add(1, Ordering::Relaxed);
                    if !tx.send(Part::End).await {
                        return Ok(());
                    }
                }
                let manifest = Manifest {
                    format: FORMAT.into(),
                    company: Company {
                        id: t.id,
                        name: t.name.clone(),
                        subdomain: t.subdomain.clone(),
                        created_at: t.created_at,
                        admin_user_id: t.admin_user_id,
                    },
                    schema,
                    credentials,
                    exported_at: Utc::now(),
                    backend: match backend {
                        DbBackend::Postgres => "postgres",
                        _ => "sqlite",
                    }
                    .into(),
                    tables: Vec::new(),
                };
                let _ = tx.send(Part::Done(manifest)).await;
                Ok::<_, PortError>(())
            }
            .await;
            drop(tx);
            let written = writer
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            jsonl_writer
                .await
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            read?;
            let (manifest, bytes) = written?;
            source.close().await?;
            tokio::fs::rename(&partial, out).await?;
            crate::ssr::accounts::users::audit(
                &db,
                by,
                "company.exported",
                format!(
                    "exported {} rows {} credentials",
                    manifest.tables.iter().map(|t| t.rows).sum::<u64>(),
                    if credentials { "with" } else { "without" }
                ),
            )
            .await?;
            Ok(Exported {
                manifest,
                bytes,
                took: started.elapsed(),
            })
        }
        .await;
        let _ = db.close().await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&partial).await;
        }
        result
    }
}

/// The kinds of `entry`'s columns, as the reader read them.
fn kinds(entry: &TableEntry) -> Vec<Kind> {
    entry.columns.iter().map(|c| c.kind).collect()
}

fn partial_path(out: &Path) -> PathBuf {
    let mut name = out.file_name().unwrap_or_default().to_owned();
    name.push(".partial");
    out.with_file_name(name)
}

fn jsonl_scratch(partial: &Path) -> PathBuf {
    partial.with_extension("jsonl-scratch")
}

fn options() -> SimpleFileOptions {
    SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1))
        .large_file(true)
        .unix_permissions(0o600)
}

/// A table's JSON Lines, written by [`write_jsonl`]: its digest, and the
/// one-entry ZIP holding it deflated.
type JsonlFile = Result<(String, zip::ZipArchive<File>), PortError>;

/// The CSV thread: every table's CSV into the ZIP at `path`, each
/// followed by its JSON Lines from `jsonl_files`, then `manifest.json`;
/// returns the manifest and the archive's size.
fn write_archive(
    path: &Path,
    mut rx: mpsc::Receiver<Part>,
    jsonl_files: std::sync::mpsc::Receiver<JsonlFile>,
) -> Result<(Manifest, u64), PortError> {
    create_private_file(path, false)?;
    let file = File::options().write(true).truncate(true).open(path)?;
    let mut zip = zip::ZipWriter::new(BufWriter::with_capacity(1 << 16, file));
    let mut done = Vec::new();
    let mut current: Option<(Vec<Kind>, TableEntry, Sha256)> = None;
    let mut text = Vec::with_capacity(1 << 18);
    while let Some(part) = rx.blocking_recv() {
        match part {
            Part::Table(entry) => {
                zip.start_file(format!("{}.csv", entry.name), options())?;
                let header: Vec<&str> = entry.columns.iter().map(|c| c.name.as_str()).collect();
                let mut csv = Sha256::new();
                let header = format!("{}\n", header.join(","));
                zip.write_all(header.as_bytes())?;
                csv.update(header.as_bytes());
                current = Some((kinds(&entry), entry, csv));
            }
            Part::Rows(rows) => {
                let Some((kinds, entry, csv)) = current.as_mut() else {
                    continue;
                };
                text.clear();
                rows.each(kinds, |row| {
                    for (i, field) in row.iter().enumerate() {
                        if i > 0 {
                            text.push(b',');
                        }
                        csv_field(&mut text, field);
                    }
                    text.push(b'\n');
                    Ok(())
                })?;
                zip.write_all(&text)?;
                csv.update(&text);
                entry.rows += rows.len() as u64;
            }
            Part::End => {
                let Some((_, mut entry, csv)) = current.take() else {
                    continue;
                };
                let csv_sha = hex::encode(csv.finalize());
                let (jsonl_sha, mut jsonl) = jsonl_files
                    .recv()
                    .map_err(|_| PortError::refused("the export stopped before its end"))??;
                zip.raw_copy_file(jsonl.by_index_raw(0)?)?;
                entry.files = vec![
                    FileEntry {
                        path: format!("{}.csv", entry.name),
                        sha256: csv_sha,
                    },
                    FileEntry {
                        path: format!("{}.jsonl", entry.name),
                        sha256: jsonl_sha,
                    },
                ];
                done.push(entry);
            }
            Part::Done(mut manifest) => {
                manifest.tables = std::mem::take(&mut done);
                zip.start_file(MANIFEST, options())?;
                serde_json::to_writer_pretty(&mut zip, &manifest).map_err(std::io::Error::other)?;
                let file = zip.finish()?.into_inner().map_err(|e| e.into_error())?;
                file.sync_all()?;
                return Ok((manifest, file.metadata()?.len()));
            }
        }
    }
    // The reader stopped: for the JSON Lines thread's error, if it had one.
    match jsonl_files.try_recv() {
        Ok(Err(e)) => Err(e),
        _ => Err(PortError::refused("the export stopped before its end")),
    }
}

/// The JSON Lines thread: each table's JSON Lines, hashed, into a ZIP of
/// its own in a scratch file (unlinked at once, so nothing is left behind
/// whatever happens), handed to the CSV thread through `files` when the
/// table ends.
fn write_jsonl(
    scratch: &Path,
    mut rx: mpsc::Receiver<Part>,
    files: std::sync::mpsc::SyncSender<JsonlFile>,
) {
    let mut current: Option<(Vec<Kind>, Vec<Vec<u8>>, Hashing<zip::ZipWriter<File>>)> = None;
    let mut text = Vec::with_capacity(1 << 18);
    while let Some(part) = rx.blocking_recv() {
        let step = (|| -> Result<Option<(String, zip::ZipArchive<File>)>, PortError> {
            match part {
                Part::Table(entry) => {
                    create_private_file(scratch, false)?;
                    let file = File::options()
                        .read(true)
                        .write(true)
                        .truncate(true)
                        .open(scratch)?;
                    std::fs::remove_file(scratch)?;
                    let mut zip = zip::ZipWriter::new(file);
                    zip.start_file(format!("{}.jsonl", entry.name), options())?;
                    // Each column's `"name":`, written once.
                    let keys = entry
                        .columns
                        .iter()
                        .map(|c| {
                            let mut key = serde_json::to_vec(&c.name)?;
                            key.push(b':');
                            Ok(key)
                        })
                        .collect::<serde_json::Result<Vec<_>>>()
                        .map_err(std::io::Error::other)?;
                    current = Some((kinds(&entry), keys, Hashing::new(zip)));
                }
                Part::Rows(rows) => {
                    let Some((kinds, keys, jsonl)) = current.as_mut() else {
                        return Ok(None);
                    };
                    text.clear();
                    rows.each(kinds, |row| {
                        text.push(b'{');
                        for (i, (field, key)) in row.iter().zip(keys.iter()).enumerate() {
                            if i > 0 {
                                text.push(b',');
                            }
                            text.extend_from_slice(key);
                            archive::write_json(&mut text, field).map_err(std::io::Error::other)?;
                        }
                        text.extend_from_slice(b"}\n");
                        Ok(())
                    })?;
                    jsonl.write_all(&text)?;
                }
                Part::End => {
                    if let Some((_, _, jsonl)) = current.take() {
                        let (zip, sha) = jsonl.finish();
                        return Ok(Some((sha, zip.finish_into_readable()?)));
                    }
                }
                Part::Done(_) => {}
            }
            Ok(None)
        })();
        match step {
            Ok(None) => {}
            Ok(Some(file)) => {
                if files.send(Ok(file)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = files.send(Err(e));
                return;
            }
        }
    }
}
