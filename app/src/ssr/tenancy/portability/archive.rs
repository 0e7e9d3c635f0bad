//! The archive a company's data travels in: a ZIP holding, per table, a CSV file and a JSON Lines file, and `manifest.json`.
//!
//! Values are written the same from either backend, so that a company
//! exported from SQLite and one exported from PostgreSQL with the same rows
//! give the same files, byte for byte: UUIDs hyphenated, times in UTC to
//! the microsecond (`2026-12-06T14:01:00.000000Z`), booleans `true` and
//! `false`, bytes as `\x` and hex. In CSV a NULL is an empty field and an
//! empty string a quoted one (`""`), as PostgreSQL's `COPY … CSV` reads
//! them. Rows are in primary-key order (text compared byte by byte).
//!
//! Which columns hold credentials is said here, once ([`credential`]): an
//! admin's export leaves them out, an operator's may keep them.
use std::io::Write;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Statement, Value};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::ssr::tenancy::connections::conn::query_err;
use crate::ssr::tenancy::servers::databases::quote_ident;

/// What `manifest.json` says it is.
pub const FORMAT: &str = "enclave-company-export/1";
/// The manifest's own name in the archive.
pub const MANIFEST: &str = "manifest.json";
/// The largest manifest an import reads.
pub const MANIFEST_MAX: u64 = 1 << 20;

/// `manifest.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub company: Company,
    /// The last migration of the company's schema, as `seaql_migrations`
    /// names it.
    pub schema: String,
    /// Whether password hashes, token digests and sessions are included.
    pub credentials: bool,
    pub exported_at: DateTime<Utc>,
    /// `sqlite` or `postgres`: where it was exported from.
    pub backend: String,
    pub tables: Vec<TableEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Company {
    pub id: Uuid,
    pub name: String,
    pub subdomain: String,
    pub created_at: DateTime<Utc>,
    pub admin_user_id: Option<Uuid>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub name: String,
    pub columns: Vec<ColumnEntry>,
    /// Columns of the table left out of this archive (credentials).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub omitted: Vec<String>,
    pub rows: u64,
    pub files: Vec<FileEntry>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ColumnEntry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub nullable: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub sha256: String,
}

/// What a column holds, whichever backend stores it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Uuid,
    Bool,
    Time,
    Int,
    Real,
    Text,
    Bytes,
}

/// A table of a company's database, as its catalog describes it.
#[derive(Clone, Debug)]
pub struct Table {
    pub name: String,
    pub columns: Vec<ColumnEntry>,
    /// The primary key's columns, in order (empty: none).
    pub key: Vec<String>,
}

/// Tables that are not the company's data.
fn bookkeeping(table: &str) -> bool {
    table == "seaql_migrations" || table.starts_with("sqlite_")
}

/// Where a credential is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// The whole table: sessions, reset tokens (its key is a token digest).
    Table,
    /// One column, left out; an import without credentials fills it with
    /// a value that matches nothing (people sign in after a reset).
    Column,
}

/// Whether `table.column` (or the whole table) holds credentials.
pub fn credential(table: &str, column: &str) -> Option<Credential> {
    match (table, column) {
        ("sessions" | "password_resets", _) => Some(Credential::Table),
        ("users", "password_hash") | ("invitations", "token_hash") => Some(Credential::Column),
        _ => None,
    }
}

/// What an import without credentials writes in a left-out column: unique,
/// and neither an argon2 hash nor a token digest.
pub fn no_credential() -> String {
    format!("!none-{}", Uuid::new_v4().simple())
}

/// PostgreSQL's catalog of the company's tables: table, column, declared
/// type, nullable, and place in the primary key (0: none).
const PG_CATALOG: &str = "SELECT cl.relname::text AS tbl, a.attname::text AS col, \
        format_type(a.atttypid, a.atttypmod) AS ty, NOT a.attnotnull AS nullable, \
        coalesce(array_position(i.indkey::int2[], a.attnum), 0)::int8 AS pk \
 FROM pg_class cl JOIN pg_namespace n ON n.oid = cl.relnamespace \
 JOIN pg_attribute a ON a.attrelid = cl.oid AND a.attnum > 0 AND NOT a.attisdropped \
 LEFT JOIN pg_index i ON i.indrelid = cl.oid AND i.indisprimary \
 WHERE n.nspname = 'public' AND cl.relkind IN ('r', 'p') \
 ORDER BY cl.relname COLLATE \"C\", a.attnum";

/// SQLite's, with the same columns.
const SQLITE_CATALOG: &str =
    "SELECT m.name AS tbl, p.name AS col, p.type AS ty, p.\"notnull\" = 0 AS nullable, \
            p.pk AS pk \
     FROM sqlite_master m JOIN pragma_table_info(m.name) p \
     WHERE m.type = 'table' ORDER BY m.name, p.cid";

/// One row of a catalog: table, column, declared type, nullable, place in
/// the primary key.
type CatalogRow = (String, String, String, bool, i64);

/// The company's tables (bookkeeping left out), with their columns.
pub async fn catalog(db: &impl ConnectionTrait) -> Result<Vec<Table>, DbErr> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => PG_CATALOG,
        _ => SQLITE_CATALOG,
    };
    let rows = db
        .query_all_raw(Statement::from_string(backend, sql))
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("", "tbl")?,
                row.try_get("", "col")?,
                row.try_get("", "ty")?,
                row.try_get("", "nullable")?,
                row.try_get("", "pk")?,
            ))
        })
        .collect::<Result<Vec<CatalogRow>, DbErr>>()?;
    tables_of(rows)
}

/// [`catalog`], read on a PostgreSQL connection of sqlx's.
pub async fn catalog_pg(conn: &mut sea_orm::sqlx::PgConnection) -> Result<Vec<Table>, DbErr> {
    let rows: Vec<CatalogRow> = sea_orm::sqlx::query_as(PG_CATALOG)
        .fetch_all(&mut *conn)
        .await
        .map_err(query_err)?;
    tables_of(rows)
}

fn tables_of(rows: Vec<CatalogRow>) -> Result<Vec<Table>, DbErr> {
    let mut tables: Vec<Table> = Vec::new();
    let mut keys: Vec<Vec<(i64, String)>> = Vec::new();
    for (table, column, declared, nullable, pk) in rows {
        if bookkeeping(&table) {
            continue;
        }
        let kind = kind_of(&declared).ok_or_else(|| {
            DbErr::Custom(format!(
                "{table}.{column} is of type '{declared}', which exports do not know"
            ))
        })?;
        if tables.last().is_none_or(|t| t.name != table) {
            tables.push(Table {
                name: table.clone(),
                columns: Vec::new(),
                key: Vec::new(),
            });
            keys.push(Vec::new());
        }
        if pk > 0 {
            keys.last_mut().unwrap().push((pk, column.clone()));
        }
        tables.last_mut().unwrap().columns.push(ColumnEntry {
            name: column,
            kind,
            nullable,
        });
    }
    for (table, mut key) in tables.iter_mut().zip(keys) {
        key.sort();
        table.key = key.into_iter().map(|(_, c)| c).collect();
    }
    // SQLite's names compare byte by byte already; PostgreSQL's were
    // ordered with "C". Both: the same order.
    Ok(tables)
}

/// The kind of a column from its declared type (PostgreSQL's
/// `format_type`, or what SQLite was told).
fn kind_of(declared: &str) -> Option<Kind> {
    let t = declared.to_ascii_lowercase();
    Some(if t.contains("uuid") {
        Kind::Uuid
    } else if t.contains("bool") {
        Kind::Bool
    } else if t.contains("timestamp") || t.contains("datetime") {
        Kind::Time
    } else if t.contains("int") {
        Kind::Int
    } else if t.contains("char") || t.contains("text") || t.contains("clob") {
        Kind::Text
    } else if t.contains("bytea") || t.contains("blob") || t.contains("binary") {
        Kind::Bytes
    } else if t.contains("real")
        || t.contains("floa")
        || t.contains("doub")
        || t.contains("numeric")
    {
        Kind::Real
    } else {
        return None;
    })
}

/// The statement reading `columns` of `table` in key order.
pub fn select(backend: DbBackend, table: &Table, columns: &[&ColumnEntry]) -> Statement {
    let list: Vec<String> = columns
        .iter()
        .map(|c| {
            let id = quote_ident(&c.name);
            match (backend, c.kind) {
                // sqlx reads PostgreSQL's integers and floats only at their
                // own width.
                (DbBackend::Postgres, Kind::Int) => format!("{id}::int8"),
                (DbBackend::Postgres, Kind::Real) => format!("{id}::float8"),
                (DbBackend::Postgres, Kind::Text) => format!("{id}::text"),
                _ => id,
            }
        })
        .collect();
    let order: Vec<String> = if table.key.is_empty() {
        table.columns.iter().map(|c| c.name.clone()).collect()
    } else {
        table.key.clone()
    };
    let order: Vec<String> = order
        .iter()
        .map(|name| {
            let id = quote_ident(name);
            let text = table
                .columns
                .iter()
                .any(|c| &c.name == name && c.kind == Kind::Text);
            match (backend, text) {
                (DbBackend::Postgres, true) => format!("{id} COLLATE \"C\""),
                _ => id,
            }
        })
        .collect();
    Statement::from_string(
        backend,
        format!(
            "SELECT {} FROM {} ORDER BY {}",
            list.join(", "),
            quote_ident(&table.name),
            order.join(", ")
        ),
    )
}

/// One row's values, read by kind.
pub fn read_row(row: &QueryResult, columns: &[&ColumnEntry]) -> Result<Vec<Value>, DbErr> {
    columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Ok(match c.kind {
                Kind::Uuid => Value::Uuid(row.try_get_by_index::<Option<Uuid>>(i)?),
                Kind::Bool => Value::Bool(row.try_get_by_index::<Option<bool>>(i)?),
                Kind::Time => {
                    Value::ChronoDateTimeUtc(row.try_get_by_index::<Option<DateTime<Utc>>>(i)?)
                }
                Kind::Int => Value::BigInt(row.try_get_by_index::<Option<i64>>(i)?),
                Kind::Real => Value::Double(row.try_get_by_index::<Option<f64>>(i)?),
                Kind::Text => Value::String(row.try_get_by_index::<Option<String>>(i)?),
                Kind::Bytes => Value::Bytes(row.try_get_by_index::<Option<Vec<u8>>>(i)?),
            })
        })
        .collect()
}

/// One value of a row as the writers see it, borrowed from the row where
/// it can be (a PostgreSQL row's text and bytes are never copied).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Field<'a> {
    Null,
    Uuid(Uuid),
    Bool(bool),
    Time(DateTime<Utc>),
    Int(i64),
    Real(f64),
    Text(&'a str),
    Bytes(&'a [u8]),
}

impl<'a> From<&'a Value> for Field<'a> {
    fn from(value: &'a Value) -> Self {
        match value {
            Value::Uuid(Some(u)) => Field::Uuid(*u),
            Value::Bool(Some(b)) => Field::Bool(*b),
            Value::ChronoDateTimeUtc(Some(t)) => Field::Time(*t),
            Value::BigInt(Some(n)) => Field::Int(*n),
            Value::Double(Some(f)) => Field::Real(*f),
            Value::String(Some(s)) => Field::Text(s),
            Value::Bytes(Some(b)) => Field::Bytes(b),
            _ => Field::Null,
        }
    }
}

/// A batch of a table's rows, as read.
pub enum Rows {
    /// Read into values ([`read_row`]).
    Values(Vec<Vec<Value>>),
    /// PostgreSQL's rows as `COPY … (FORMAT binary)` sent them, one tuple
    /// after another (header and trailer left out), read by each writer
    /// without copying their text.
    Copy { tuples: Vec<u8>, rows: usize },
}

impl Rows {
    pub fn len(&self) -> usize {
        match self {
            Rows::Values(v) => v.len(),
            Rows::Copy { rows, .. } => *rows,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Calls `each` with every row's fields, in order; `kinds` are the
    /// columns' (as [`select`] read them).
    pub fn each(
        &self,
        kinds: &[Kind],
        mut each: impl FnMut(&[Field<'_>]) -> std::io::Result<()>,
    ) -> std::io::Result<()> {
        let mut fields = Vec::with_capacity(kinds.len());
        match self {
            Rows::Values(rows) => {
                for row in rows {
                    fields.clear();
                    fields.extend(row.iter().map(Field::from));
                    each(&fields)?;
                }
            }
            Rows::Copy { tuples, .. } => {
                let mut rest = tuples.as_slice();
                while !rest.is_empty() {
                    fields.clear();
                    rest = copy_tuple(rest, kinds, &mut fields)?;
                    each(&fields)?;
                }
            }
        }
        Ok(())
    }
}

/// What starts a `COPY … (FORMAT binary)` stream: its signature, then
/// flags and the length of a header extension (32-bit each).
const COPY_SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";

/// The first message of a binary `COPY` without its header: the rest is
/// the first tuple (or the trailer, when there are no rows).
pub fn copy_after_header(message: &[u8]) -> std::io::Result<&[u8]> {
    let bad = || std::io::Error::other("PostgreSQL's binary COPY began with no header");
    let rest = message.strip_prefix(COPY_SIGNATURE).ok_or_else(bad)?;
    let extension = rest
        .get(4..8)
        .and_then(|b| b.try_into().ok())
        .map(u32::from_be_bytes)
        .ok_or_else(bad)? as usize;
    rest.get(8 + extension..).ok_or_else(bad)
}

/// Whether a message of a binary `COPY` is its trailer.
pub fn copy_trailer(message: &[u8]) -> bool {
    message == [0xff, 0xff]
}

/// PostgreSQL's epoch (2000-01-01) in Unix microseconds.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Reads one tuple of a binary `COPY` from the start of `bytes` into
/// `out`, by kind, borrowing its text and bytes; returns what follows it.
/// The values come as [`select`] cast them (`int8`, `float8`, `text`, and
/// `uuid`, `bool`, `timestamptz`, `bytea` as stored).
fn copy_tuple<'r>(
    bytes: &'r [u8],
    kinds: &[Kind],
    out: &mut Vec<Field<'r>>,
) -> std::io::Result<&'r [u8]> {
    let short = || std::io::Error::other("a row of PostgreSQL's binary COPY ends early");
    let (count, mut rest) = bytes.split_first_chunk::<2>().ok_or_else(short)?;
    if i16::from_be_bytes(*count) as usize != kinds.len() {
        return Err(std::io::Error::other(format!(
            "a row of PostgreSQL's binary COPY has {} fields, not {}",
            i16::from_be_bytes(*count),
            kinds.len()
        )));
    }
    for (i, kind) in kinds.iter().enumerate() {
        let (len, after) = rest.split_first_chunk::<4>().ok_or_else(short)?;
        let len = i32::from_be_bytes(*len);
        if len < 0 {
            out.push(Field::Null);
            rest = after;
            continue;
        }
        let (value, after) = after.split_at_checked(len as usize).ok_or_else(short)?;
        out.push(binary_field(*kind, value, i)?);
        rest = after;
    }
    Ok(rest)
}

/// A value in PostgreSQL's binary format, by kind.
fn binary_field(kind: Kind, bytes: &[u8], column: usize) -> std::io::Result<Field<'_>> {
    let bad = || {
        std::io::Error::other(format!(
            "column {column} is not {} in binary",
            article(kind)
        ))
    };
    let word = || bytes.try_into().map_err(|_| bad());
    Ok(match kind {
        Kind::Uuid => Field::Uuid(Uuid::from_slice(bytes).map_err(|_| bad())?),
        Kind::Bool => match bytes {
            [b] => Field::Bool(*b != 0),
            _ => return Err(bad()),
        },
        Kind::Time => Field::Time(
            i64::from_be_bytes(word()?)
                .checked_add(PG_EPOCH_MICROS)
                .and_then(DateTime::from_timestamp_micros)
                .ok_or_else(bad)?,
        ),
        Kind::Int => Field::Int(i64::from_be_bytes(word()?)),
        Kind::Real => Field::Real(f64::from_be_bytes(word()?)),
        Kind::Text => Field::Text(std::str::from_utf8(bytes).map_err(|_| bad())?),
        Kind::Bytes => Field::Bytes(bytes),
    })
}

/// A time as archives write it: UTC, to the microsecond.
fn time_text(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Appends [`time_text`], without an allocation where it can.
fn push_time(out: &mut Vec<u8>, t: &DateTime<Utc>) {
    match time_digits(t) {
        Some(b) => out.extend_from_slice(&b),
        None => out.extend_from_slice(time_text(t).as_bytes()),
    }
}

/// Appends a UUID hyphenated, without an allocation.
fn push_uuid(out: &mut Vec<u8>, u: &Uuid) {
    out.extend_from_slice(
        u.hyphenated()
            .encode_lower(&mut Uuid::encode_buffer())
            .as_bytes(),
    );
}

/// [`time_text`] as bytes, for years 0 to 9999 outside a leap second
/// (chrono writes the others).
fn time_digits(t: &DateTime<Utc>) -> Option<[u8; 27]> {
    use chrono::{Datelike, Timelike};
    let (year, nanos) = (t.year(), t.nanosecond());
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut b = *b"0000-00-00T00:00:00.000000Z";
    let mut put = |at: usize, width: usize, mut n: u32| {
        for i in (at..at + width).rev() {
            b[i] = b'0' + (n % 10) as u8;
            n /= 10;
        }
    };
    put(0, 4, year as u32);
    put(5, 2, t.month());
    put(8, 2, t.day());
    put(11, 2, t.hour());
    put(14, 2, t.minute());
    put(17, 2, t.second());
    put(20, 6, nanos / 1000);
    Some(b)
}

fn bytes_text(b: &[u8]) -> String {
    format!("\\x{}", hex::encode(b))
}

/// Whether a CSV field must be quoted: empty (an empty string, not NULL),
/// or holding a comma, a quote or a line break.
fn csv_quoted(s: &str) -> bool {
    s.is_empty()
        || memchr::memchr3(b',', b'"', b'\n', s.as_bytes()).is_some()
        || memchr::memchr(b'\r', s.as_bytes()).is_some()
}

/// Appends `field` as a CSV field.
pub fn csv_field(out: &mut Vec<u8>, field: &Field<'_>) {
    match field {
        Field::Uuid(u) => push_uuid(out, u),
        Field::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Field::Time(t) => push_time(out, t),
        Field::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Field::Real(f) => {
            if let Some(n) = serde_json::Number::from_f64(*f) {
                out.extend_from_slice(n.to_string().as_bytes())
            }
        }
        Field::Bytes(b) => out.extend_from_slice(bytes_text(b).as_bytes()),
        Field::Text(s) => {
            if csv_quoted(s) {
                out.push(b'"');
                for b in s.bytes() {
                    if b == b'"' {
                        out.push(b'"');
                    }
                    out.push(b);
                }
                out.push(b'"');
            } else {
                out.extend_from_slice(s.as_bytes());
            }
        }
        // NULL: an empty field.
        Field::Null => {}
    }
}

/// Appends `field` as JSON, as serde_json would write its value, without
/// building a `serde_json::Value` first.
pub fn write_json(out: &mut Vec<u8>, field: &Field<'_>) -> serde_json::Result<()> {
    match field {
        Field::Text(s) => return serde_json::to_writer(out, s),
        // Neither needs escaping.
        Field::Uuid(u) => {
            out.push(b'"');
            push_uuid(out, u);
            out.push(b'"');
        }
        Field::Time(t) => {
            out.push(b'"');
            push_time(out, t);
            out.push(b'"');
        }
        Field::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Field::Int(n) => out.extend_from_slice(itoa::Buffer::new().format(*n).as_bytes()),
        Field::Real(f) => match serde_json::Number::from_f64(*f) {
            Some(n) => return serde_json::to_writer(out, &n),
            None => out.extend_from_slice(b"null"),
        },
        // `\x` and hex, its backslash escaped.
        Field::Bytes(b) => {
            out.extend_from_slice(b"\"\\\\x");
            out.extend_from_slice(hex::encode(b).as_bytes());
            out.push(b'"');
        }
        Field::Null => out.extend_from_slice(b"null"),
    }
    Ok(())
}

/// Appends `row` as a line of PostgreSQL's `COPY … FROM STDIN` text format
/// (tab-separated, `\N` for NULL, backslash escapes).
pub fn copy_text_row(row: &[Value], out: &mut Vec<u8>) {
    for (i, value) in row.iter().enumerate() {
        if i > 0 {
            out.push(b'\t');
        }
        match value {
            Value::String(Some(s)) => {
                for b in s.bytes() {
                    match b {
                        b'\\' => out.extend_from_slice(b"\\\\"),
                        b'\t' => out.extend_from_slice(b"\\t"),
                        b'\n' => out.extend_from_slice(b"\\n"),
                        b'\r' => out.extend_from_slice(b"\\r"),
                        b => out.push(b),
                    }
                }
            }
            Value::Uuid(Some(u)) => out.extend_from_slice(u.hyphenated().to_string().as_bytes()),
            Value::Bool(Some(b)) => out.push(if *b { b't' } else { b'f' }),
            Value::ChronoDateTimeUtc(Some(t)) => out.extend_from_slice(time_text(t).as_bytes()),
            Value::BigInt(Some(n)) => out.extend_from_slice(n.to_string().as_bytes()),
            Value::Double(Some(f)) => out.extend_from_slice(f.to_string().as_bytes()),
            // `\x…` with its backslash escaped.
            Value::Bytes(Some(b)) => {
                out.push(b'\\');
                out.extend_from_slice(bytes_text(b).as_bytes());
            }
            _ => out.extend_from_slice(b"\\N"),
        }
    }
    out.push(b'\n');
}

/// The value a JSON Lines field holds, checked against its column.
pub fn from_json(column: &ColumnEntry, v: &serde_json::Value) -> Result<Value, String> {
    use serde_json::Value as J;
    if v.is_null() {
        if !column.nullable {
            return Err("is empty, and the column may not be".into());
        }
        return Ok(match column.kind {
            Kind::Uuid => Value::Uuid(None),
            Kind::Bool => Value::Bool(None),
            Kind::Time => Value::ChronoDateTimeUtc(None),
            Kind::Int => Value::BigInt(None),
            Kind::Real => Value::Double(None),
            Kind::Text => Value::String(None),
            Kind::Bytes => Value::Bytes(None),
        });
    }
    let wrong = || format!("is not {}", article(column.kind));
    Ok(match (column.kind, v) {
        (Kind::Uuid, J::String(s)) => Value::Uuid(Some(Uuid::parse_str(s).map_err(|_| wrong())?)),
        (Kind::Bool, J::Bool(b)) => Value::Bool(Some(*b)),
        (Kind::Time, J::String(s)) => Value::ChronoDateTimeUtc(Some(
            DateTime::parse_from_rfc3339(s)
                .map_err(|_| wrong())?
                .with_timezone(&Utc),
        )),
        (Kind::Int, J::Number(n)) => Value::BigInt(Some(n.as_i64().ok_or_else(wrong)?)),
        (Kind::Real, J::Number(n)) => Value::Double(Some(n.as_f64().ok_or_else(wrong)?)),
        (Kind::Text, J::String(s)) => Value::String(Some(s.clone())),
        (Kind::Bytes, J::String(s)) => Value::Bytes(Some(parse_bytes(s).ok_or_else(wrong)?)),
        _ => return Err(wrong()),
    })
}

fn article(kind: Kind) -> &'static str {
    match kind {
        Kind::Uuid => "a UUID",
        Kind::Bool => "true or false",
        Kind::Time => "an RFC 3339 time",
        Kind::Int => "a whole number",
        Kind::Real => "a number",
        Kind::Text => "a string",
        Kind::Bytes => "bytes (\\x and hex)",
    }
}

fn parse_bytes(s: &str) -> Option<Vec<u8>> {
    hex::decode(s.strip_prefix("\\x")?).ok()
}

/// A writer that counts and hashes what passes through it.
pub struct Hashing<W> {
    inner: W,
    hash: Sha256,
    pub bytes: u64,
}

impl<W: Write> Hashing<W> {
    pub fn new(inner: W) -> Self {
        Self {
            inner,
            hash: Sha256::new(),
            bytes: 0,
        }
    }

    /// The inner writer and the hex digest.
    pub fn finish(self) -> (W, String) {
        (self.inner, hex::encode(self.hash.finalize()))
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Whether `name` may be a table's file name in an archive.
pub fn plain_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_copy_tuples_are_read_by_kind() {
        let kinds = [
            Kind::Uuid,
            Kind::Bool,
            Kind::Time,
            Kind::Int,
            Kind::Real,
            Kind::Text,
            Kind::Bytes,
            Kind::Text,
        ];
        let u = Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef);
        let t = DateTime::parse_from_rfc3339("2026-12-06T14:01:00.123456Z")
            .unwrap()
            .with_timezone(&Utc);
        let mut tuple = (kinds.len() as i16).to_be_bytes().to_vec();
        let mut field = |b: &[u8]| {
            tuple.extend_from_slice(&(b.len() as i32).to_be_bytes());
            tuple.extend_from_slice(b);
        };
        field(u.as_bytes());
        field(&[1]);
        field(&(t.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes());
        field(&(-42i64).to_be_bytes());
        field(&1.5f64.to_be_bytes());
        field("h\u{e9}llo, \"you\"".as_bytes());
        field(&[0, 255]);
        tuple.extend_from_slice(&(-1i32).to_be_bytes());
        let expected = [
            Field::Uuid(u),
            Field::Bool(true),
            Field::Time(t),
            Field::Int(-42),
            Field::Real(1.5),
            Field::Text("h\u{e9}llo, \"you\""),
            Field::Bytes(&[0, 255]),
            Field::Null,
        ];

        // The first message: the header (with an extension), then a row.
        let mut first = COPY_SIGNATURE.to_vec();
        first.extend_from_slice(&0u32.to_be_bytes());
        first.extend_from_slice(&3u32.to_be_bytes());
        first.extend_from_slice(b"ext");
        first.extend_from_slice(&tuple);
        let mut tuples = copy_after_header(&first).unwrap().to_vec();
        tuples.extend_from_slice(&tuple);
        let rows = Rows::Copy { tuples, rows: 2 };
        let mut seen = 0;
        rows.each(&kinds, |fields| {
            assert_eq!(fields, expected);
            seen += 1;
            Ok(())
        })
        .unwrap();
        assert_eq!((seen, rows.len()), (2, 2));
        assert!(copy_trailer(&[0xff, 0xff]) && !copy_trailer(&tuple));

        // A cut row, a row of another width, a stream without its header.
        let cut = Rows::Copy {
            tuples: tuple[..tuple.len() - 3].to_vec(),
            rows: 1,
        };
        assert!(cut.each(&kinds, |_| Ok(())).is_err());
        assert!(rows.each(&kinds[..7], |_| Ok(())).is_err());
        assert!(copy_after_header(&tuple).is_err());
        let mut not_text = (1i16).to_be_bytes().to_vec();
        not_text.extend_from_slice(&2i32.to_be_bytes());
        not_text.extend_from_slice(&[0xc3, 0x28]);
        let not_text = Rows::Copy {
            tuples: not_text,
            rows: 1,
        };
        assert!(not_text.each(&[Kind::Text], |_| Ok(())).is_err());
    }

    /// `value` as JSON through serde_json: what [`write_json`] must write.
    fn json_value(value: &Value) -> serde_json::Value {
        use serde_json::Value as J;
        match value {
            Value::Uuid(Some(u)) => J::String(u.hyphenated().to_string()),
            Value::Bool(Some(b)) => J::Bool(*b),
            Value::ChronoDateTimeUtc(Some(t)) => J::String(time_text(t)),
            Value::BigInt(Some(n)) => J::from(*n),
            Value::Double(Some(f)) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Bytes(Some(b)) => J::String(bytes_text(b)),
            Value::String(Some(s)) => J::String(s.clone()),
            _ => J::Null,
        }
    }

    fn text_column(nullable: bool) -> ColumnEntry {
        ColumnEntry {
            name: "t".into(),
            kind: Kind::Text,
            nullable,
        }
    }

    #[test]
    fn csv_tells_null_from_empty_and_quotes_what_it_must() {
        let mut line = Vec::new();
        for (i, v) in [
            Value::String(None),
            Value::String(Some(String::new())),
            Value::String(Some("a,\"b\"\nc".into())),
            Value::String(Some("plain".into())),
        ]
        .iter()
        .enumerate()
        {
            if i > 0 {
                line.push(b',');
            }
            csv_field(&mut line, &Field::from(v));
        }
        assert_eq!(line, b",\"\",\"a,\"\"b\"\"\nc\",plain");
    }

    #[test]
    fn values_written_directly_are_what_chrono_and_serde_json_write() {
        let times = [
            "2026-12-06T14:01:00.123456789Z",
            "0001-01-01T00:00:00Z",
            "9999-12-31T23:59:59.999999Z",
            "1970-01-01T00:00:00.000001+02:00",
        ];
        let mut values: Vec<Value> = times
            .iter()
            .map(|t| {
                Value::ChronoDateTimeUtc(Some(
                    DateTime::parse_from_rfc3339(t).unwrap().with_timezone(&Utc),
                ))
            })
            .collect();
        values.extend([
            Value::Uuid(Some(Uuid::new_v4())),
            Value::Bool(Some(false)),
            Value::BigInt(Some(i64::MIN)),
            Value::BigInt(Some(42)),
            Value::Double(Some(0.1)),
            Value::Bytes(Some(vec![0, 255])),
            Value::Double(Some(f64::NAN)),
            Value::String(Some("é \\ \u{1}".into())),
            Value::Uuid(None),
        ]);
        for v in &values {
            let mut json = Vec::new();
            write_json(&mut json, &Field::from(v)).unwrap();
            let expected = serde_json::to_vec(&json_value(v)).unwrap();
            assert_eq!(
                String::from_utf8(json).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            if let Value::ChronoDateTimeUtc(Some(t)) = v {
                let mut csv = Vec::new();
                csv_field(&mut csv, &Field::from(v));
                let chrono = t.to_rfc3339_opts(SecondsFormat::Micros, true);
                assert_eq!(String::from_utf8(csv).unwrap(), chrono);
            }
        }
    }

    #[test]
    fn copy_text_escapes_what_would_end_a_field_or_a_line() {
        let mut out = Vec::new();
        copy_text_row(
            &[
                Value::String(Some("a\tb\\c\nd".into())),
                Value::String(None),
                Value::Bool(Some(true)),
                Value::Bytes(Some(vec![1, 255])),
            ],
            &mut out,
        );
        assert_eq!(out, b"a\\tb\\\\c\\nd\t\\N\tt\t\\\\x01ff\n");
    }

    #[test]
    fn values_survive_json_and_times_keep_microseconds() {
        let at = DateTime::parse_from_rfc3339("2026-12-06T14:01:00.123456789Z")
            .unwrap()
            .with_timezone(&Utc);
        let time = ColumnEntry {
            name: "at".into(),
            kind: Kind::Time,
            nullable: false,
        };
        let json = json_value(&Value::ChronoDateTimeUtc(Some(at)));
        assert_eq!(json, "2026-12-06T14:01:00.123456Z");
        let back = from_json(&time, &json).unwrap();
        let mut written = Vec::new();
        write_json(&mut written, &Field::Text("a \"q\"\n")).unwrap();
        assert_eq!(written, br#""a \"q\"\n""#);
        assert_eq!(
            json_value(&back),
            json,
            "a time read back writes the same text"
        );
        let bytes = ColumnEntry {
            name: "b".into(),
            kind: Kind::Bytes,
            nullable: false,
        };
        let v = Value::Bytes(Some(vec![0, 255, 16]));
        assert_eq!(from_json(&bytes, &json_value(&v)).unwrap(), v);
    }

    #[test]
    fn a_value_of_the_wrong_kind_or_a_missing_one_is_refused_with_its_reason() {
        assert_eq!(
            from_json(&text_column(false), &serde_json::Value::Null).unwrap_err(),
            "is empty, and the column may not be"
        );
        assert_eq!(
            from_json(&text_column(true), &serde_json::json!(3)).unwrap_err(),
            "is not a string"
        );
        assert!(from_json(&text_column(true), &serde_json::Value::Null).is_ok());
    }
}
