//! Company databases on SQLite, run by rusqlite: a connection is a file
//! handle and SQLite's state, with no thread of its own.
//!
//! sqlx gives every SQLite connection a worker thread, and 10,000 open
//! companies were 10,000 parked threads and the stacks they touched. Here a
//! statement runs on tokio's blocking pool, which keeps only as many
//! threads as statements run at once. Registry, migrations and provisioning
//! stay on sqlx; only the statements of a company's requests come here
//! ([`crate::ssr::tenancy::connections::conn`]).
//!
//! **Same bytes as sqlx.** Company files are written by both, so values are
//! bound as sqlx binds them (`sea-query-sqlx`): UUIDs as 16-byte blobs,
//! times as RFC 3339 text, booleans as integers.
//!
//! **Rows.** SeaORM has no public way to make a row of its own but its
//! `proxy` and `mock` rows (`proxy` does not build in SeaORM 2.0.4 with
//! sea-query 1.0); both are read by column name, and their getters want the
//! exact [`Value`] kind of the Rust field. Rows here are mock rows, made by
//! SeaORM's [`MockDatabase`] without a connection. A column's
//! kind comes from its declared type: `uuid…` a UUID, `bool…` a boolean,
//! `timestamp…`/`datetime…` a UTC time, any other `…int…` an `i64`, text and
//! blobs as they are; an expression (no declared type) by what SQLite
//! stored. So integer columns of company tables are read as `i64`, and a
//! row is read by column name: by index, columns come in name order.
use std::{
    collections::BTreeMap,
    path::PathBuf,
    str::FromStr,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::Duration,
};

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use rusqlite::{
    types::{ToSqlOutput, Value as SqlValue, ValueRef},
    OpenFlags,
};
use sea_orm::{
    sea_query::{OptionEnum, Value},
    sqlx::{
        self,
        error::{DatabaseError, ErrorKind},
        sqlite::SqliteConnectOptions,
    },
    DbBackend, ExecResult, MockDatabase, MockDatabaseTrait, MockExecResult, QueryResult, Statement,
};

/// How long a statement waits for another connection's lock, as sqlx's.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Where a company's connections come from, and how many are open.
#[derive(Clone)]
pub(in crate::ssr::tenancy) struct Opener {
    path: PathBuf,
    flags: OpenFlags,
    open: Arc<AtomicU32>,
    /// How long a statement may wait for the file and run.
    limit: Duration,
}

impl Opener {
    /// From a `sqlite://` URL as the registry keeps it (sqlx's syntax,
    /// parsed by sqlx; `mode` is `rw`, `rwc` or `ro`).
    pub(in crate::ssr::tenancy) fn from_url(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?;
        let mode = url
            .split_once('?')
            .and_then(|(_, q)| {
                url::form_urlencoded::parse(q.as_bytes())
                    .find(|(k, _)| k == "mode")
                    .map(|(_, v)| v.into_owned())
            })
            .unwrap_or_else(|| "rw".into());
        let access = match mode.as_str() {
            "ro" => OpenFlags::SQLITE_OPEN_READ_ONLY,
            "rwc" => OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE,
            _ => OpenFlags::SQLITE_OPEN_READ_WRITE,
        };
        Ok(Self {
            path: options.get_filename().to_owned(),
            // As sqlx opens: no mutex (one statement at a time, by the
            // connection's lock), no cache shared with other connections.
            flags: access | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_PRIVATE_CACHE,
            open: Arc::new(AtomicU32::new(0)),
            limit: BUSY_TIMEOUT,
        })
    }

    /// Statements wait at most `limit` for another connection's lock, and
    /// are interrupted once they have run that long (`SQLITE_INTERRUPT`).
    pub(in crate::ssr::tenancy) fn with_limit(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Connections open now.
    pub(in crate::ssr::tenancy) fn open_count(&self) -> u32 {
        self.open.load(Ordering::Relaxed)
    }

    /// Opens a connection, with sqlx's settings: foreign keys enforced,
    /// the limit's time of waiting for locks, and statements interrupted
    /// past it. Blocks: call it on the blocking pool.
    pub(in crate::ssr::tenancy) fn connect(&self) -> Result<Lite, sqlx::Error> {
        let conn = rusqlite::Connection::open_with_flags(&self.path, self.flags).map_err(error)?;
        conn.busy_timeout(self.limit).map_err(error)?;
        // Checked every 10,000 virtual-machine steps: a clock read and a load.
        let began = Arc::new(AtomicU64::new(0));
        let epoch = std::time::Instant::now();
        let (since, limit) = (began.clone(), self.limit.as_millis() as u64);
        conn.progress_handler(
            10_000,
            Some(move || {
                (epoch.elapsed().as_millis() as u64).saturating_sub(since.load(Ordering::Relaxed))
                    > limit
            }),
        )
        .map_err(error)?;
        conn.execute_batch("PRAGMA foreign_keys = ON")
            .map_err(error)?;
        self.open.fetch_add(1, Ordering::Relaxed);
        Ok(Arc::new(Mutex::new(LiteConn {
            conn,
            open: self.open.clone(),
            began,
            epoch,
        })))
    }
}

/// One open connection. Shared with the blocking task running its
/// statement, so a request that stops waiting leaves it whole.
pub(in crate::ssr::tenancy) type Lite = Arc<Mutex<LiteConn>>;

pub(in crate::ssr::tenancy) struct LiteConn {
    conn: rusqlite::Connection,
    open: Arc<AtomicU32>,
    /// When the running statement began, in ms after `epoch`: what the
    /// progress handler measures against the limit.
    began: Arc<AtomicU64>,
    epoch: std::time::Instant,
}

impl Drop for LiteConn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Runs `f` on `conn` on the blocking pool.
async fn run<T, F>(conn: &Lite, f: F) -> Result<T, sqlx::Error>
where
    T: Send + 'static,
    F: FnOnce(&rusqlite::Connection) -> Result<T, sqlx::Error> + Send + 'static,
{
    let conn = conn.clone();
    tokio::task::spawn_blocking(move || run_here(&conn, f))
        .await
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "a SQLite statement's task failed");
            Err(sqlx::Error::WorkerCrashed)
        })
}

/// Runs `f` on `conn` here, blocking the thread: for what must be done
/// before anything else runs on it and takes no time (undoing a savepoint).
pub(in crate::ssr::tenancy) fn run_here<T>(
    conn: &Lite,
    f: impl FnOnce(&rusqlite::Connection) -> Result<T, sqlx::Error>,
) -> Result<T, sqlx::Error> {
    let conn = conn.lock().unwrap_or_else(|e| e.into_inner());
    conn.began
        .store(conn.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
    f(&conn.conn)
}

/// Runs a statement that returns no rows, on the blocking pool.
pub(in crate::ssr::tenancy) async fn execute(
    conn: &Lite,
    stmt: Statement,
) -> Result<ExecResult, sqlx::Error> {
    run(conn, move |c| execute_here(c, stmt)).await
}

/// Runs `sql` as it is (possibly several statements), on the blocking pool.
pub(in crate::ssr::tenancy) async fn execute_batch(
    conn: &Lite,
    sql: String,
) -> Result<ExecResult, sqlx::Error> {
    run(conn, move |c| execute_batch_here(c, &sql)).await
}

/// Runs a query on the blocking pool; at most `limit` rows.
pub(in crate::ssr::tenancy) async fn query(
    conn: &Lite,
    stmt: Statement,
    limit: usize,
) -> Result<Vec<QueryResult>, sqlx::Error> {
    run(conn, move |c| query_here(c, stmt, limit)).await
}

fn execute_here(conn: &rusqlite::Connection, stmt: Statement) -> Result<ExecResult, sqlx::Error> {
    let mut prepared = conn.prepare_cached(&stmt.sql).map_err(error)?;
    bind(&mut prepared, stmt.values)?;
    let rows_affected = prepared.raw_execute().map_err(error)? as u64;
    Ok(exec_result(conn, rows_affected))
}

/// SeaORM's result of a statement that changed `rows_affected` rows.
fn exec_result(conn: &rusqlite::Connection, rows_affected: u64) -> ExecResult {
    MockDatabase::new(DbBackend::Sqlite)
        .append_exec_results([MockExecResult {
            last_insert_id: conn.last_insert_rowid() as u64,
            rows_affected,
        }])
        .execute(0, no_statement())
        .expect("one result given, one taken")
}

/// What `MockDatabase` logs for a result taken from it.
fn no_statement() -> Statement {
    Statement::from_string(DbBackend::Sqlite, String::new())
}

/// Runs `sql` as it is, possibly several statements.
pub(in crate::ssr::tenancy) fn execute_batch_here(
    conn: &rusqlite::Connection,
    sql: &str,
) -> Result<ExecResult, sqlx::Error> {
    let before = conn.total_changes();
    conn.execute_batch(sql).map_err(error)?;
    Ok(exec_result(
        conn,
        conn.total_changes().saturating_sub(before),
    ))
}

fn query_here(
    conn: &rusqlite::Connection,
    stmt: Statement,
    limit: usize,
) -> Result<Vec<QueryResult>, sqlx::Error> {
    let mut prepared = conn.prepare_cached(&stmt.sql).map_err(error)?;
    bind(&mut prepared, stmt.values)?;
    let columns: Vec<(String, Kind)> = prepared
        .columns()
        .iter()
        .map(|c| (c.name().to_owned(), Kind::declared(c.decl_type())))
        .collect();
    let mut rows = prepared.raw_query();
    let mut out: Vec<BTreeMap<String, Value>> = Vec::new();
    while out.len() < limit {
        let Some(row) = rows.next().map_err(error)? else {
            break;
        };
        let mut values = BTreeMap::new();
        for (i, (name, kind)) in columns.iter().enumerate() {
            let value = kind.read(row.get_ref(i).map_err(error)?)?;
            values.insert(name.clone(), value);
        }
        out.push(values);
    }
    Ok(MockDatabase::new(DbBackend::Sqlite)
        .append_query_results([out])
        .query(0, no_statement())
        .expect("one result given, one taken"))
}

fn bind(
    prepared: &mut rusqlite::CachedStatement<'_>,
    values: Option<sea_orm::Values>,
) -> Result<(), sqlx::Error> {
    let values = values.map(|v| v.0).unwrap_or_default();
    let expected = prepared.parameter_count();
    if values.len() != expected {
        return Err(sqlx::Error::Encode(
            format!("{} values for {expected} parameters", values.len()).into(),
        ));
    }
    for (i, value) in values.into_iter().enumerate() {
        prepared
            .raw_bind_parameter(i + 1, to_sql(value)?)
            .map_err(error)?;
    }
    Ok(())
}

/// `value` as sqlx binds it for SQLite.
fn to_sql(value: Value) -> Result<ToSqlOutput<'static>, sqlx::Error> {
    fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> SqlValue) -> ToSqlOutput<'static> {
        ToSqlOutput::Owned(v.map_or(SqlValue::Null, f))
    }
    Ok(match value {
        Value::Bool(v) => opt(v, |b| SqlValue::Integer(b.into())),
        Value::TinyInt(v) => opt(v, |n| SqlValue::Integer(n.into())),
        Value::SmallInt(v) => opt(v, |n| SqlValue::Integer(n.into())),
        Value::Int(v) => opt(v, |n| SqlValue::Integer(n.into())),
        Value::BigInt(v) => opt(v, SqlValue::Integer),
        Value::TinyUnsigned(v) => opt(v, |n| SqlValue::Integer(n.into())),
        Value::SmallUnsigned(v) => opt(v, |n| SqlValue::Integer(n.into())),
        Value::Unsigned(v) => opt(v, |n| SqlValue::Integer(n.into())),
        Value::BigUnsigned(v) => match v.map(i64::try_from).transpose() {
            Ok(v) => opt(v, SqlValue::Integer),
            Err(e) => return Err(sqlx::Error::Encode(e.into())),
        },
        Value::Float(v) => opt(v, |f| SqlValue::Real(f.into())),
        Value::Double(v) => opt(v, SqlValue::Real),
        Value::String(v) => opt(v, SqlValue::Text),
        Value::Char(v) => opt(v, |c| SqlValue::Text(c.to_string())),
        Value::Enum(e) => match e {
            OptionEnum::Some(v) => ToSqlOutput::Owned(SqlValue::Text(v.value.into_owned())),
            OptionEnum::None(_) => ToSqlOutput::Owned(SqlValue::Null),
        },
        Value::Bytes(v) => opt(v, SqlValue::Blob),
        Value::Uuid(v) => opt(v, |u| SqlValue::Blob(u.as_bytes().to_vec())),
        Value::ChronoDateTimeUtc(v) => opt(v, |t| {
            SqlValue::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        }),
        Value::ChronoDateTimeWithTimeZone(v) => opt(v, |t| {
            SqlValue::Text(t.to_rfc3339_opts(SecondsFormat::AutoSi, false))
        }),
        Value::ChronoDateTime(v) => opt(v, |t| SqlValue::Text(t.format("%F %T%.f").to_string())),
        Value::ChronoDate(v) => opt(v, |d| SqlValue::Text(d.format("%F").to_string())),
        Value::ChronoTime(v) => opt(v, |t| SqlValue::Text(t.format("%T%.f").to_string())),
        // Not the value itself: it could be a secret.
        _ => {
            return Err(sqlx::Error::Encode(
                "a value of a kind with no SQLite encoding here".into(),
            ))
        }
    })
}

/// What a column is read as.
#[derive(Clone, Copy)]
enum Kind {
    Uuid,
    Bool,
    Time,
    Int,
    Real,
    Text,
    Blob,
    /// An expression: as SQLite stored it.
    Stored,
}

impl Kind {
    fn declared(decl: Option<&str>) -> Self {
        let Some(decl) = decl else {
            return Kind::Stored;
        };
        // Without a lowercase copy per column of every query.
        let has = |word: &str| {
            decl.as_bytes()
                .windows(word.len())
                .any(|w| w.eq_ignore_ascii_case(word.as_bytes()))
        };
        if has("uuid") {
            Kind::Uuid
        } else if has("bool") {
            Kind::Bool
        } else if has("timestamp") || has("datetime") {
            Kind::Time
        } else if has("int") {
            Kind::Int
        } else if has("char") || has("text") || has("clob") {
            Kind::Text
        } else if has("blob") || has("binary") {
            Kind::Blob
        } else if has("real") || has("floa") || has("doub") {
            Kind::Real
        } else {
            Kind::Stored
        }
    }

    fn read(self, v: ValueRef<'_>) -> Result<Value, sqlx::Error> {
        let null = matches!(v, ValueRef::Null);
        Ok(match self {
            Kind::Uuid => Value::Uuid(if null { None } else { Some(uuid(v)?) }),
            Kind::Bool => Value::Bool(if null { None } else { Some(int(v)? != 0) }),
            Kind::Time => Value::ChronoDateTimeUtc(if null { None } else { Some(time(v)?) }),
            Kind::Int => Value::BigInt(if null { None } else { Some(int(v)?) }),
            Kind::Real => Value::Double(match v {
                ValueRef::Null => None,
                ValueRef::Real(f) => Some(f),
                ValueRef::Integer(n) => Some(n as f64),
                _ => return Err(decode("a number", v)),
            }),
            Kind::Text => Value::String(if null {
                None
            } else {
                Some(text(v)?.to_owned())
            }),
            Kind::Blob => Value::Bytes(match v {
                ValueRef::Null => None,
                ValueRef::Blob(b) | ValueRef::Text(b) => Some(b.to_vec()),
                _ => return Err(decode("bytes", v)),
            }),
            Kind::Stored => match v {
                // No type to go by: a NULL read as a missing string.
                ValueRef::Null => Value::String(None),
                ValueRef::Integer(n) => Value::BigInt(Some(n)),
                ValueRef::Real(f) => Value::Double(Some(f)),
                ValueRef::Text(_) => Value::String(Some(text(v)?.to_owned())),
                ValueRef::Blob(b) => Value::Bytes(Some(b.to_vec())),
            },
        })
    }
}

fn decode(wanted: &str, v: ValueRef<'_>) -> sqlx::Error {
    sqlx::Error::Decode(format!("expected {wanted}, found SQLite {}", v.data_type()).into())
}

fn int(v: ValueRef<'_>) -> Result<i64, sqlx::Error> {
    match v {
        ValueRef::Integer(n) => Ok(n),
        _ => Err(decode("an integer", v)),
    }
}

fn text(v: ValueRef<'_>) -> Result<&str, sqlx::Error> {
    match v {
        ValueRef::Text(t) => std::str::from_utf8(t).map_err(|e| sqlx::Error::Decode(e.into())),
        _ => Err(decode("text", v)),
    }
}

/// A UUID as sqlx writes it (16 bytes) or as text.
fn uuid(v: ValueRef<'_>) -> Result<uuid::Uuid, sqlx::Error> {
    match v {
        ValueRef::Blob(b) => uuid::Uuid::from_slice(b).map_err(|e| sqlx::Error::Decode(e.into())),
        ValueRef::Text(_) => {
            uuid::Uuid::parse_str(text(v)?).map_err(|e| sqlx::Error::Decode(e.into()))
        }
        _ => Err(decode("a UUID", v)),
    }
}

/// A time as sqlx reads one: RFC 3339 text (what it writes), SQLite's own
/// `YYYY-MM-DD HH:MM:SS[.fff]` taken as UTC, or Unix seconds.
fn time(v: ValueRef<'_>) -> Result<DateTime<Utc>, sqlx::Error> {
    match v {
        ValueRef::Integer(n) => DateTime::from_timestamp(n, 0).ok_or_else(|| decode("a time", v)),
        ValueRef::Text(_) => {
            let s = text(v)?;
            if let Ok(t) = DateTime::parse_from_rfc3339(s) {
                return Ok(t.with_timezone(&Utc));
            }
            ["%F %T%.f", "%FT%T%.f", "%F %R", "%FT%R"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
                .map(|t| t.and_utc())
                .ok_or_else(|| sqlx::Error::Decode(format!("invalid time: {s}").into()))
        }
        _ => Err(decode("a time", v)),
    }
}

/// A failure from SQLite itself, as sqlx reports one: its extended result
/// code (as text) and message, so callers and SeaORM read both kinds alike.
#[derive(Debug)]
pub struct LiteError {
    code: i32,
    message: String,
}

impl std::fmt::Display for LiteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for LiteError {}

impl DatabaseError for LiteError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        use rusqlite::ffi;
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

/// A rusqlite error as the sqlx error it would have been.
/// Whether `e` is SQLite saying the file is held by another connection
/// (`SQLITE_BUSY`, `SQLITE_LOCKED`) or the statement was interrupted for
/// running too long (`SQLITE_INTERRUPT`).
pub(in crate::ssr::tenancy) fn is_busy(e: &dyn DatabaseError) -> bool {
    e.try_downcast_ref::<LiteError>()
        .is_some_and(|l| matches!(l.code & 0xff, 5 | 6 | 9))
}

fn error(e: rusqlite::Error) -> sqlx::Error {
    match e {
        rusqlite::Error::SqliteFailure(f, message) => sqlx::Error::Database(Box::new(LiteError {
            code: f.extended_code,
            message: message.unwrap_or_else(|| f.to_string()),
        })),
        rusqlite::Error::InvalidParameterCount(..)
        | rusqlite::Error::InvalidParameterName(_)
        | rusqlite::Error::ToSqlConversionFailure(_) => sqlx::Error::Encode(e.into()),
        e => sqlx::Error::Decode(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, Utc};
    use sea_orm::{ConnectionTrait, Database, DbBackend, Statement, Value};
    use uuid::Uuid;

    use super::*;

    const TABLE: &str = "CREATE TABLE t (n integer PRIMARY KEY AUTOINCREMENT, \
        id uuid_text NOT NULL UNIQUE, at timestamp_with_timezone_text NOT NULL, \
        gone timestamp_with_timezone_text NULL, ok boolean NOT NULL, \
        big bigint NOT NULL, name varchar(254) NOT NULL, body text NOT NULL)";
    const INSERT: &str =
        "INSERT INTO t (id, at, gone, ok, big, name, body) VALUES (?, ?, ?, ?, ?, ?, ?)";
    const SELECT: &str =
        "SELECT n, id, at, gone, ok, big, name, body, count(*) OVER () AS total FROM t WHERE id = ?";

    fn row_values(id: Uuid, at: DateTime<Utc>) -> Vec<Value> {
        vec![
            id.into(),
            at.into(),
            Value::ChronoDateTimeUtc(None),
            true.into(),
            (-5_000_000_000i64).into(),
            "Ann".into(),
            "é ✓".into(),
        ]
    }

    fn check(row: &QueryResult, id: Uuid, at: DateTime<Utc>) {
        assert_eq!(row.try_get::<Uuid>("", "id").unwrap(), id);
        assert_eq!(row.try_get::<DateTime<Utc>>("", "at").unwrap(), at);
        assert_eq!(
            row.try_get::<Option<DateTime<Utc>>>("", "gone").unwrap(),
            None
        );
        assert!(row.try_get::<bool>("", "ok").unwrap());
        assert_eq!(row.try_get::<i64>("", "big").unwrap(), -5_000_000_000);
        assert_eq!(row.try_get::<String>("", "name").unwrap(), "Ann");
        assert_eq!(row.try_get::<String>("", "body").unwrap(), "é ✓");
        assert!(row.try_get::<i64>("", "n").unwrap() >= 1);
        assert_eq!(row.try_get::<i64>("", "total").unwrap(), 1);
    }

    /// What sqlx writes, this module reads, and the other way round: the
    /// same bytes in the same files.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn rows_written_by_either_driver_read_the_same_in_both() {
        let dir = std::env::temp_dir().join(format!("enclave-lite-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("t.db").display());
        let sqlx_db = Database::connect(&url).await.unwrap();
        sqlx_db.execute_unprepared(TABLE).await.unwrap();
        let stmt = |sql: &str, values: Vec<Value>| {
            Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
        };
        // Microseconds, as `Utc::now()` has them on this machine or not.
        let at = DateTime::from_timestamp(1_790_000_000, 123_456_000).unwrap();

        let by_sqlx = Uuid::new_v4();
        sqlx_db
            .execute_raw(stmt(INSERT, row_values(by_sqlx, at)))
            .await
            .unwrap();
        let lite = Opener::from_url(&url).unwrap().connect().unwrap();
        let rows = query(&lite, stmt(SELECT, vec![by_sqlx.into()]), 10)
            .await
            .unwrap();
        assert_eq!(rows.len(), 1);
        check(&rows[0], by_sqlx, at);

        let by_lite = Uuid::new_v4();
        let done = execute(&lite, stmt(INSERT, row_values(by_lite, at)))
            .await
            .unwrap();
        assert_eq!(done.rows_affected(), 1);
        assert_eq!(done.last_insert_id(), 2);
        let row = sqlx_db
            .query_one_raw(stmt(SELECT, vec![by_lite.into()]))
            .await
            .unwrap()
            .expect("the row this module wrote");
        check(&row, by_lite, at);

        // A duplicate is a unique violation, as sqlx's error says it.
        let again = execute(&lite, stmt(INSERT, row_values(by_lite, at)))
            .await
            .unwrap_err();
        match &again {
            sqlx::Error::Database(e) => {
                assert!(e.is_unique_violation(), "{e}");
                assert_eq!(e.code().as_deref(), Some("2067"));
            }
            other => panic!("{other:?}"),
        }
        let again = sea_orm::DbErr::Exec(sea_orm::RuntimeErr::SqlxError(again.into()));
        assert!(crate::ssr::tenancy::connections::conn::is_unique_violation(
            &again
        ));
        // A wrong number of values is refused before it runs.
        let short = execute(&lite, stmt(INSERT, vec![by_lite.into()]))
            .await
            .unwrap_err();
        assert!(matches!(short, sqlx::Error::Encode(_)), "{short:?}");

        drop(lite);
        sqlx_db.close().await.unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_open_count_follows_connections() {
        let dir = std::env::temp_dir().join(format!("enclave-lite-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("c.db");
        let opener = Opener::from_url(&format!("sqlite://{}?mode=rwc", path.display())).unwrap();
        let a = opener.connect().unwrap();
        let b = opener.connect().unwrap();
        assert_eq!(opener.open_count(), 2);
        drop(a);
        assert_eq!(opener.open_count(), 1);
        drop(b);
        assert_eq!(opener.open_count(), 0);
        // `mode=rw`, as the registry keeps company URLs: never creates.
        let missing =
            Opener::from_url(&format!("sqlite://{}?mode=rw", dir.join("no.db").display()))
                .unwrap()
                .connect();
        assert!(missing.is_err());
        assert!(!dir.join("no.db").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A statement that runs past the company's limit is interrupted, and
    /// the connection serves the next one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_statement_past_its_time_is_interrupted_and_the_connection_goes_on() {
        let dir = std::env::temp_dir().join(format!("enclave-lite-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("slow.db").display());
        let opener = Opener::from_url(&url)
            .unwrap()
            .with_limit(Duration::from_millis(300));
        let lite = tokio::task::spawn_blocking(move || opener.connect())
            .await
            .unwrap()
            .unwrap();
        // Counts to ten billion: minutes, unless stopped.
        let endless = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) SELECT count(*) AS n FROM c";
        let started = std::time::Instant::now();
        let e = query(&lite, Statement::from_string(DbBackend::Sqlite, endless), 1)
            .await
            .unwrap_err();
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "{took:?}");
        match &e {
            sqlx::Error::Database(d) => assert!(is_busy(&**d), "{e:?}"),
            other => panic!("{other:?}"),
        }
        let rows = query(
            &lite,
            Statement::from_string(DbBackend::Sqlite, "SELECT 1 AS n"),
            1,
        )
        .await
        .unwrap();
        assert_eq!(rows.len(), 1);
        drop(lite);
        std::fs::remove_dir_all(&dir).ok();
    }
}
