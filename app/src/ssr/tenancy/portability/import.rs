//! Importing a company from an archive, on whichever backend and server this installation uses.
//!
//! 1. The archive is checked whole before anything is made: its manifest's
//!    format and schema, every file it lists (present, SHA-256, rows), and
//!    nothing it does not list.
//! 2. The company is created as provisioning creates one (a `provisioning`
//!    row reserving the subdomain, its database, its schema at the
//!    archive's migration), kept fresh by a heartbeat while it loads.
//! 3. Each table is loaded in one transaction, from its JSON Lines file,
//!    checked value by value against the new database's own catalog (the
//!    names of tables and columns in SQL are the catalog's, never the
//!    archive's): on PostgreSQL by `COPY … FROM STDIN`, on SQLite in
//!    multi-row `INSERT`s.
//! 4. An archive of an older schema is migrated up, the member index is
//!    synced, and the company opens.
//!
//! Until then it is `provisioning` and not served; a failure undoes it,
//! and so does recovery once a crashed import's heartbeat has stopped.
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::Utc;
use migration::{MigratorTrait, TenantMigrator};
use sea_orm::{
    sea_query::{Alias, Expr, Query},
    ActiveModelTrait,
    ActiveValue::Set,
    ConnectionTrait, DbBackend, TransactionTrait, Value,
};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use super::archive::{
    self, catalog, credential, from_json, Credential, Manifest, Table, TableEntry, FORMAT,
    MANIFEST, MANIFEST_MAX,
};
use super::PortError;
use crate::domain::{CompanyName, Subdomain};
use crate::ssr::entities::{
    provisioning::{Outcome, Step},
    tenants::{self, TenantStatus},
};
use crate::ssr::heartbeat::Heartbeat;
use crate::ssr::services::Services;
use crate::ssr::tenancy::lifecycle::provisioning::keep_reserved;
use crate::ssr::tenancy::schema::migrate::{latest_tenant_schema, tenant_schema_position};
use crate::ssr::tenancy::servers::databases::{connect_once, quote_ident, TenantServer};

/// How often a running import says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Bind values in one `INSERT` (below SQLite's 32,766 and PostgreSQL's 65,535).
const VALUES_PER_INSERT: usize = 30_000;
/// The longest JSON Lines row an import reads.
const LINE_MAX: usize = 16 << 20;

/// What an import did.
#[derive(Debug)]
pub struct Imported {
    pub id: Uuid,
    pub subdomain: String,
    pub server: String,
    pub tables: usize,
    pub rows: u64,
    /// The archive's schema, when it was older and migrated up.
    pub migrated_from: Option<String>,
    pub took: Duration,
}

impl Services {
    /// Creates company `sub` from the archive at `path`, on server `server`
    /// (a name from `dbserver list`), or where new companies go.
    pub async fn import_tenant(
        &self,
        path: &Path,
        sub: &Subdomain,
        server: Option<&str>,
    ) -> Result<Imported, PortError> {
        let started = Instant::now();
        let owned = path.to_owned();
        let manifest = tokio::task::spawn_blocking(move || check_archive(&owned))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))??;
        let (at, of) = match tenant_schema_position(&manifest.schema) {
            Some(p) => p,
            None if manifest.schema.as_str() > latest_tenant_schema().as_str() => {
                return Err(PortError::Newer {
                    archive: manifest.schema.clone(),
                    latest: latest_tenant_schema(),
                })
            }
            None => {
                return Err(PortError::refused(format!(
                    "its schema '{}' is not one of this Enclave's migrations",
                    manifest.schema
                )))
            }
        };
        let name = CompanyName::parse(&manifest.company.name)
            .map_err(|e| PortError::refused(format!("the company's name in the manifest: {e}")))?;
        let fleet = self.provisioner.fleet();
        let (placed, target) = match server {
            Some(name) => (name.to_owned(), fleet.named(name).await?),
            None => fleet.place().await?,
        };

        let id = Uuid::new_v4();
        self.reserve_import(id, &name, sub, &placed).await?;
        let registry = self.registry.clone();
        let alive = Heartbeat::every(HEARTBEAT, move || {
            let registry = registry.clone();
            async move { keep_reserved(&registry, id).await }
        });
        let result = self.load(id, sub, path, &manifest, &target, (at, of)).await;
        drop(alive);
        match result {
            Ok((admin, rows)) => {
                let now = Utc::now();
                tenants::ActiveModel {
                    id: Set(id),
                    status: Set(TenantStatus::Active),
                    admin_user_id: Set(admin),
                    schema_version: Set(Some(latest_tenant_schema())),
                    updated_at: Set(now),
                    ..Default::default()
                }
                .update(&self.registry)
                .await?;
                let _ = self
                    .provisioner
                    .record(
                        id,
                        sub.as_str(),
                        Step::Admin,
                        Outcome::Succeeded,
                        None,
                        None,
                    )
                    .await;
                self.directory.invalidate(sub.as_str());
                tracing::info!(tenant = %sub, rows, from = %manifest.company.subdomain, "company imported");
                Ok(Imported {
                    id,
                    subdomain: sub.to_string(),
                    server: placed,
                    tables: manifest.tables.len(),
                    rows,
                    migrated_from: (at < of).then(|| manifest.schema.clone()),
                    took: started.elapsed(),
                })
            }
            Err(e) => {
                let reason = crate::ssr::http::error_chain(&e);
                tracing::error!(tenant = %sub, error = %reason, "import failed; undoing");
                if let Err(undo) = self.provisioner.undo(id, &reason).await {
                    tracing::error!(tenant = %sub, error = %crate::ssr::http::error_chain(&undo), "undo failed; recovery will retry");
                }
                Err(e)
            }
        }
    }

    /// The company row, `provisioning`, and its record: the subdomain is
    /// taken from here on, and recovery undoes it if this process dies.
    async fn reserve_import(
        &self,
        id: Uuid,
        name: &CompanyName,
        sub: &Subdomain,
        server: &str,
    ) -> Result<(), PortError> {
        let reserved = crate::ssr::tenancy::lifecycle::provisioning::reserve(
            &self.registry,
            id,
            name.as_str(),
            sub.as_str(),
            server,
        )
        .await?;
        if !reserved {
            return Err(PortError::Taken(sub.to_string()));
        }
        self.provisioner
            .record(
                id,
                sub.as_str(),
                Step::Reserved,
                Outcome::Running,
                None,
                None,
            )
            .await?;
        Ok(())
    }

    /// Creates the database at the archive's schema and loads it; returns
    /// the first admin's id and the rows loaded.
    async fn load(
        &self,
        id: Uuid,
        sub: &Subdomain,
        path: &Path,
        manifest: &Manifest,
        server: &TenantServer,
        (at, of): (usize, usize),
    ) -> Result<(Option<Uuid>, u64), PortError> {
        let sub = sub.as_str();
        let mut created = server.create(id).await?;
        if let Some(session) = created.session.take() {
            let _ = session.close().await;
        }
        tenants::ActiveModel {
            id: Set(id),
            db_url: Set(Some(self.cipher.encrypt(id, &created.url))),
            updated_at: Set(Utc::now()),
            ..Default::default()
        }
        .update(&self.registry)
        .await?;
        self.provisioner
            .record(id, sub, Step::Database, Outcome::Running, None, None)
            .await?;
        let db = connect_once(&created.url).await?;
        let loaded = async {
            // The archive's schema: a template copy is at the latest.
            if created.from_template {
                if at < of {
                    TenantMigrator::down(&db, Some((of - at) as u32)).await?;
                }
            } else {
                TenantMigrator::up(&db, Some(at as u32)).await?;
            }
            self.provisioner
                .record(id, sub, Step::Migrated, Outcome::Running, None, None)
                .await?;
            let tables = catalog(&db).await?;
            let plan = match_tables(manifest, &tables)?;
            let rows = match db.get_database_backend() {
                DbBackend::Postgres => copy_tables(&created.url, path, plan).await?,
                _ => load_tables(&db, path, plan).await?,
            };
            if at < of {
                TenantMigrator::up(&db, None).await?;
            }
            crate::ssr::accounts::workspaces::sync(&self.registry, &self.cipher, id, &db).await?;
            Ok::<_, PortError>(rows)
        }
        .await;
        let _ = db.close().await;
        let rows = loaded?;
        Ok((manifest.company.admin_user_id, rows))
    }
}

/// Reads and checks the archive at `path`: its manifest, and each file it
/// lists against its SHA-256 (and a JSON Lines file's lines against the
/// table's rows). Files it does not list are refused too.
fn check_archive(path: &Path) -> Result<Manifest, PortError> {
    let mut zip = zip::ZipArchive::new(File::open(path)?)
        .map_err(|e| PortError::refused(format!("it is not a ZIP archive ({e})")))?;
    let manifest: Manifest = {
        let entry = zip.by_name(MANIFEST).map_err(|_| {
            PortError::refused(format!("it holds no {MANIFEST}: is it an Enclave export?"))
        })?;
        let mut text = String::new();
        entry
            .take(MANIFEST_MAX)
            .read_to_string(&mut text)
            .map_err(|e| PortError::refused(format!("{MANIFEST} cannot be read ({e})")))?;
        serde_json::from_str(&text)
            .map_err(|e| PortError::refused(format!("{MANIFEST} is not a manifest ({e})")))?
    };
    if manifest.format != FORMAT {
        return Err(PortError::refused(format!(
            "its format is '{}', not '{FORMAT}'",
            manifest.format
        )));
    }
    let mut listed = HashSet::from([MANIFEST.to_owned()]);
    for table in &manifest.tables {
        if !archive::plain_name(&table.name) {
            return Err(PortError::refused(format!(
                "the manifest names a table '{}'",
                table.name
            )));
        }
        let expected = [
            format!("{}.csv", table.name),
            format!("{}.jsonl", table.name),
        ];
        let paths: Vec<&str> = table.files.iter().map(|f| f.path.as_str()).collect();
        if paths != expected.iter().map(String::as_str).collect::<Vec<_>>() {
            return Err(PortError::refused(format!(
                "the manifest lists {paths:?} for table '{}', not {expected:?}",
                table.name
            )));
        }
        for file in &table.files {
            listed.insert(file.path.clone());
            let entry = zip.by_name(&file.path).map_err(|_| {
                PortError::refused(format!(
                    "{} is listed in the manifest but missing",
                    file.path
                ))
            })?;
            let (sha, lines) = digest(entry)
                .map_err(|e| PortError::refused(format!("{} cannot be read ({e})", file.path)))?;
            if sha != file.sha256 {
                return Err(PortError::refused(format!(
                    "{} does not match its SHA-256 in the manifest: it was changed",
                    file.path
                )));
            }
            let rows = if file.path.ends_with(".csv") {
                None
            } else {
                Some(lines)
            };
            if rows.is_some_and(|r| r != table.rows) {
                return Err(PortError::refused(format!(
                    "{} holds {lines} rows; the manifest says {}",
                    file.path, table.rows
                )));
            }
        }
    }
    for name in zip.file_names() {
        let name =
            name.map_err(|e| PortError::refused(format!("a file name cannot be read ({e})")))?;
        if !listed.contains(name.as_ref()) {
            return Err(PortError::refused(format!(
                "it holds {name}, which the manifest does not list"
            )));
        }
    }
    Ok(manifest)
}

/// SHA-256 (hex) and newline count of what `r` reads.
fn digest(mut r: impl Read) -> std::io::Result<(String, u64)> {
    let mut hash = Sha256::new();
    let mut lines = 0u64;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = r.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((hex::encode(hash.finalize()), lines))
}

/// One table to load: the catalog's table, and where each of its columns
/// comes from in the archive's rows (`None`: a credential the archive left
/// out).
struct Load {
    table: Table,
    file: String,
    from: Vec<Option<String>>,
    rows: u64,
}

/// Pairs the archive's tables with the new database's: same names, same
/// columns of the same kinds. A table the archive lacks may only be one
/// of credentials that it left out.
fn match_tables(manifest: &Manifest, tables: &[Table]) -> Result<Vec<Load>, PortError> {
    let by_name: HashMap<&str, &TableEntry> = manifest
        .tables
        .iter()
        .map(|t| (t.name.as_str(), t))
        .collect();
    for t in &manifest.tables {
        if !tables.iter().any(|c| c.name == t.name) {
            return Err(PortError::refused(format!(
                "it holds a table '{}' that schema '{}' does not have",
                t.name, manifest.schema
            )));
        }
    }
    let mut plan = Vec::new();
    for table in tables {
        let Some(entry) = by_name.get(table.name.as_str()) else {
            let left_out = table
                .columns
                .iter()
                .any(|c| credential(&table.name, &c.name) == Some(Credential::Table));
            if left_out && !manifest.credentials {
                continue;
            }
            return Err(PortError::refused(format!(
                "it lacks the table '{}'",
                table.name
            )));
        };
        let mut from = Vec::new();
        for column in &table.columns {
            match entry.columns.iter().find(|c| c.name == column.name) {
                Some(c) if c.kind == column.kind => from.push(Some(c.name.clone())),
                Some(c) => {
                    return Err(PortError::refused(format!(
                        "{}.{} is {:?} in the archive and {:?} here",
                        table.name, column.name, c.kind, column.kind
                    )))
                }
                None if !manifest.credentials
                    && entry.omitted.contains(&column.name)
                    && credential(&table.name, &column.name) == Some(Credential::Column) =>
                {
                    from.push(None)
                }
                None => {
                    return Err(PortError::refused(format!(
                        "it lacks the column {}.{}",
                        table.name, column.name
                    )))
                }
            }
        }
        if let Some(extra) = entry
            .columns
            .iter()
            .find(|c| !table.columns.iter().any(|t| t.name == c.name))
        {
            return Err(PortError::refused(format!(
                "it holds a column {}.{} that schema '{}' does not have",
                table.name, extra.name, manifest.schema
            )));
        }
        plan.push(Load {
            table: table.clone(),
            file: format!("{}.jsonl", table.name),
            from,
            rows: entry.rows,
        });
    }
    Ok(plan)
}

/// What the archive's reader sends the loader.
enum Batch {
    Rows(Vec<Vec<Value>>),
    Failed(PortError),
}

/// Starts the archive's reader for `load`: its rows, checked, in batches.
fn read_table(path: &Path, load: &Load, per_batch: usize) -> mpsc::Receiver<Batch> {
    let (tx, rx) = mpsc::channel::<Batch>(4);
    let path: PathBuf = path.to_owned();
    let file = load.file.clone();
    let columns = load.table.columns.clone();
    let from = load.from.clone();
    tokio::task::spawn_blocking(move || {
        if let Err(e) = read_rows(&path, &file, &columns, &from, per_batch, &tx) {
            let _ = tx.blocking_send(Batch::Failed(e));
        }
    });
    rx
}

/// PostgreSQL: loads every table with `COPY … FROM STDIN`, each in one
/// transaction on a connection of the company's role; returns the rows.
async fn copy_tables(
    url: &secrecy::SecretString,
    path: &Path,
    plan: Vec<Load>,
) -> Result<u64, PortError> {
    use sea_orm::sqlx::{postgres::PgConnectOptions, ConnectOptions, Connection};
    use secrecy::ExposeSecret;
    let options: PgConnectOptions = url
        .expose_secret()
        .parse()
        .map_err(|e: sea_orm::sqlx::Error| PortError::Copy(e))?;
    let mut conn = options.connect().await?;
    let mut total = 0;
    let mut buf = Vec::with_capacity(1 << 20);
    for load in plan {
        let mut rx = read_table(path, &load, 1000);
        let mut tx = conn.begin().await?;
        let columns: Vec<String> = load
            .table
            .columns
            .iter()
            .map(|c| quote_ident(&c.name))
            .collect();
        // The names are the catalog's.
        let mut sink = tx
            .copy_in_raw(&format!(
                "COPY {} ({}) FROM STDIN",
                quote_ident(&load.table.name),
                columns.join(", ")
            ))
            .await?;
        let mut max_int: HashMap<usize, i64> = HashMap::new();
        let mut rows = 0u64;
        while let Some(batch) = rx.recv().await {
            let batch = match batch {
                Batch::Rows(b) => b,
                Batch::Failed(e) => {
                    let _ = sink.abort("the archive failed").await;
                    return Err(e);
                }
            };
            buf.clear();
            for row in &batch {
                note_ints(row, &mut max_int);
                archive::copy_text_row(row, &mut buf);
            }
            rows += batch.len() as u64;
            sink.send(buf.as_slice()).await?;
        }
        sink.finish().await?;
        if rows != load.rows {
            return Err(PortError::refused(format!(
                "{} gave {rows} rows; the manifest says {}",
                load.file, load.rows
            )));
        }
        for (i, max) in max_int {
            sea_orm::sqlx::query(
                "SELECT setval(s, $3) FROM (SELECT pg_get_serial_sequence($1, $2) AS s) q \
                 WHERE s IS NOT NULL",
            )
            .bind(&load.table.name)
            .bind(&load.table.columns[i].name)
            .bind(max)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        total += rows;
    }
    let _ = conn.close().await;
    Ok(total)
}

/// Keeps the largest value of each integer column (sequences continue
/// after it).
fn note_ints(row: &[Value], max_int: &mut HashMap<usize, i64>) {
    for (i, v) in row.iter().enumerate() {
        if let Value::BigInt(Some(n)) = v {
            let m = max_int.entry(i).or_insert(*n);
            *m = (*m).max(*n);
        }
    }
}

/// SQLite: loads every table, each in one transaction, in multi-row
/// `INSERT`s; returns the rows loaded.
async fn load_tables(
    db: &sea_orm::DatabaseConnection,
    path: &Path,
    plan: Vec<Load>,
) -> Result<u64, PortError> {
    let mut total = 0;
    for load in plan {
        let per_insert = (VALUES_PER_INSERT / load.table.columns.len().max(1)).clamp(1, 1000);
        let mut rx = read_table(path, &load, per_insert);
        let txn = db.begin().await?;
        let mut rows = 0u64;
        while let Some(batch) = rx.recv().await {
            let batch = match batch {
                Batch::Rows(b) => b,
                Batch::Failed(e) => return Err(e),
            };
            rows += batch.len() as u64;
            let mut insert = Query::insert();
            insert
                .into_table(Alias::new(load.table.name.as_str()))
                .columns(
                    load.table
                        .columns
                        .iter()
                        .map(|c| Alias::new(c.name.as_str())),
                );
            for row in batch {
                insert
                    .values(row.into_iter().map(Expr::val))
                    .map_err(|e| PortError::refused(e.to_string()))?;
            }
            txn.execute(&insert).await?;
        }
        if rows != load.rows {
            return Err(PortError::refused(format!(
                "{} gave {rows} rows; the manifest says {}",
                load.file, load.rows
            )));
        }
        txn.commit().await?;
        total += rows;
    }
    Ok(total)
}

/// The reader's side: `file`'s rows, checked against `columns`, in
/// batches of `per_insert`.
fn read_rows(
    path: &Path,
    file: &str,
    columns: &[archive::ColumnEntry],
    from: &[Option<String>],
    per_insert: usize,
    tx: &mpsc::Sender<Batch>,
) -> Result<(), PortError> {
    let mut zip = zip::ZipArchive::new(File::open(path)?)?;
    let entry = zip.by_name(file)?;
    let mut lines = BufReader::with_capacity(1 << 16, entry);
    let mut line = String::new();
    let mut batch = Vec::with_capacity(per_insert);
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut lines)
            .take(LINE_MAX as u64 + 1)
            .read_line(&mut line)?;
        if n == 0 {
            break;
        }
        number += 1;
        if n > LINE_MAX {
            return Err(PortError::refused(format!(
                "{file} line {number} is longer than {LINE_MAX} bytes"
            )));
        }
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&line)
            .map_err(|e| PortError::refused(format!("{file} line {number}: {e}")))?;
        let mut row = Vec::with_capacity(columns.len());
        for (column, source) in columns.iter().zip(from) {
            let value = match source {
                Some(key) => {
                    let v = object.get(key).ok_or_else(|| {
                        PortError::refused(format!("{file} line {number} lacks '{key}'"))
                    })?;
                    from_json(column, v).map_err(|why| {
                        PortError::refused(format!("{file} line {number}: '{key}' {why}"))
                    })?
                }
                None => Value::String(Some(archive::no_credential())),
            };
            row.push(value);
        }
        if object.len() != from.iter().flatten().count() {
            return Err(PortError::refused(format!(
                "{file} line {number} has fields its table does not"
            )));
        }
        batch.push(row);
        if batch.len() == per_insert {
            let full = std::mem::replace(&mut batch, Vec::with_capacity(per_insert));
            if tx.blocking_send(Batch::Rows(full)).is_err() {
                return Ok(());
            }
        }
    }
    if !batch.is_empty() {
        let _ = tx.blocking_send(Batch::Rows(batch));
    }
    Ok(())
}
