//! A request's connection to its company's database: SeaORM's traits over
//! connections the company's slot keeps itself between statements.
//!
//! sqlx checks every connection that goes back to its pool with a round
//! trip (a `Sync` on PostgreSQL, a command to the worker thread on SQLite),
//! and no option turns that off; SeaORM runs each statement on a connection
//! taken from the pool and given back. So a one-query request cost the
//! database two round trips. Here a statement borrows a connection from the
//! slot's [`Stash`] and puts it back there, unchecked; the pool only makes
//! connections, counts them and closes them.
//!
//! **The gate.** A slot has one permit per connection its pool may open.
//! A statement (or a transaction, for its whole life) holds one while it
//! runs, so it always finds a connection: in the stash, idle in the pool,
//! or room to open one. A connection goes back to the stash before its
//! permit is released, and a transaction first hands a stashed connection
//! back to the pool, which SeaORM's transactions come from.
//!
//! **Busy, second.** Holding its gate permit, a statement then takes one of
//! the process's busy permits (shared by every company) for as long as it
//! runs. Taken in that order, a company whose connection is stuck holds at
//! most its gate's worth of them, and its requests waiting at the gate hold
//! none, so they cannot starve the other companies.
//!
//! **Health.** A connection idle in the stash for 5 s is pinged before it
//! is used, as the pool did (`test_before_acquire_if_idle_for`). One that
//! failed at the socket or the protocol is closed, not kept. One whose
//! statement was cancelled midway goes back to the pool, whose check on
//! return reads what the server still had to say.
//!
//! **SQLite** has no pool here: its connections are rusqlite's
//! ([`crate::ssr::tenancy::connections::lite`]), opened when the gate lets a statement in and the
//! stash has none, and counted by the [`lite::Opener`]. Its transactions are
//! this module's own, on the same connections.
use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use sea_orm::{
    sqlx::{self, pool::PoolConnection, Connection, Executor, Postgres},
    AccessMode, ConnAcquireErr, ConnectionTrait, DatabaseConnection, DatabaseTransaction,
    DbBackend, DbErr, ExecResult, IsolationLevel, QueryResult, RuntimeErr, Statement,
    TransactionError, TransactionOptions, TransactionSession, TransactionTrait,
};
use sea_query_sqlx::SqlxValues;
use tokio::sync::{AcquireError, OwnedSemaphorePermit, Semaphore, SemaphorePermit};

use crate::ssr::tenancy::connections::lite;

/// A stashed connection idle this long is pinged before it is used.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(5);

/// One connection out of its pool.
pub(in crate::ssr::tenancy) enum Held {
    Pg(PoolConnection<Postgres>),
    Lite(lite::Lite),
}

impl Held {
    async fn ping(&mut self) -> Result<(), sqlx::Error> {
        match self {
            Held::Pg(c) => c.ping().await,
            // A file: nothing between here and it to fail while idle.
            Held::Lite(_) => Ok(()),
        }
    }

    /// Closed when dropped instead of going back to its pool.
    fn discard(mut self) {
        if let Held::Pg(c) = &mut self {
            c.close_on_drop()
        }
    }

    async fn close(self) {
        if let Held::Pg(c) = self {
            let _ = c.close().await;
        }
    }
}

/// Where a slot's connections come from.
pub(in crate::ssr::tenancy) enum Source {
    /// PostgreSQL: sqlx's pool, which opens, counts and closes them.
    Pool(DatabaseConnection),
    /// SQLite: opened here, one file handle each.
    Lite(lite::Opener),
}

/// The connections a slot keeps out of its pool between statements.
#[derive(Default)]
pub(in crate::ssr::tenancy) struct Stash {
    /// Set once the slot is closing: connections then go back to the pool.
    closed: bool,
    idle: Vec<(Held, Instant)>,
}

impl Stash {
    pub(in crate::ssr::tenancy) fn len(&self) -> usize {
        self.idle.len()
    }
}

/// What a slot shares with the leases on it.
pub(in crate::ssr::tenancy) struct Lender {
    source: Source,
    gate: Arc<Semaphore>,
    /// The process's busy budget, shared with every other company's slot.
    busy: Arc<Semaphore>,
    stash: Mutex<Stash>,
}

impl Lender {
    pub(in crate::ssr::tenancy) fn new(
        source: Source,
        per_tenant: u32,
        busy: Arc<Semaphore>,
    ) -> Self {
        Self {
            source,
            gate: Arc::new(Semaphore::new(per_tenant.max(1) as usize)),
            busy,
            stash: Mutex::new(Stash::default()),
        }
    }

    /// Connections idle in the stash now.
    pub(in crate::ssr::tenancy) fn stashed(&self) -> usize {
        self.stash.lock().unwrap().len()
    }

    /// (open, idle in the pool) connections now; the stash's are open and
    /// not idle in the pool.
    pub(in crate::ssr::tenancy) fn usage(&self) -> (u32, u32) {
        match &self.source {
            Source::Pool(db) => {
                let p = db.get_postgres_connection_pool();
                (p.size(), p.num_idle() as u32)
            }
            Source::Lite(opener) => (opener.open_count(), 0),
        }
    }

    fn backend(&self) -> DbBackend {
        match &self.source {
            Source::Pool(db) => db.get_database_backend(),
            Source::Lite(_) => DbBackend::Sqlite,
        }
    }

    /// Closes the pool: first the stashed connections, while the ones in
    /// use go back to the pool when their statements end; then the pool,
    /// once every connection is back.
    pub(in crate::ssr::tenancy) async fn close(&self) {
        let idle = {
            let mut stash = self.stash.lock().unwrap();
            stash.closed = true;
            std::mem::take(&mut stash.idle)
        };
        for (conn, _) in idle {
            conn.close().await;
        }
        if let Source::Pool(pool) = &self.source {
            let _ = pool.close_by_ref().await;
        }
    }

    fn take(&self) -> Option<(Held, Instant)> {
        self.stash.lock().unwrap().idle.pop()
    }

    /// Puts `conn` back in the stash, or in the pool once the slot closes.
    fn put(&self, conn: Held) {
        let mut stash = self.stash.lock().unwrap();
        if !stash.closed {
            stash.idle.push((conn, Instant::now()));
        }
    }

    async fn acquire(&self) -> Result<Held, sqlx::Error> {
        match &self.source {
            Source::Pool(pool) => Ok(Held::Pg(
                pool.get_postgres_connection_pool().acquire().await?,
            )),
            Source::Lite(opener) => {
                let opener = opener.clone();
                tokio::task::spawn_blocking(move || opener.connect())
                    .await
                    .map_err(|_| sqlx::Error::WorkerCrashed)?
                    .map(Held::Lite)
            }
        }
    }
}

/// A lease's connection: what tenant code runs its statements on.
pub struct TenantConn {
    lender: Arc<Lender>,
    waits: Arc<WaitBudget>,
}

/// How long a request may still wait for its company's connection, in all
/// its statements together (and every lease it takes: its session's and
/// its handler's share one). A statement waits at most what is left, and
/// what it waited is taken off: a request that waited its whole time for a
/// stuck company's connection once is refused at its next wait, not given
/// the time again.
#[derive(Debug)]
pub struct WaitBudget {
    left_us: std::sync::atomic::AtomicU64,
    /// The whole of it: how long opening a connection may take, once the
    /// permits are held (not counted against the budget).
    total: Duration,
}

impl WaitBudget {
    pub fn new(total: Duration) -> Arc<Self> {
        Arc::new(Self {
            left_us: std::sync::atomic::AtomicU64::new(total.as_micros() as u64),
            total,
        })
    }

    fn left(&self) -> Duration {
        Duration::from_micros(self.left_us.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Runs `wait`, given the deadline what is left allows, and takes the
    /// time it took off what is left.
    async fn wait<T, F>(&self, wait: impl FnOnce(tokio::time::Instant) -> F) -> Result<T, DbErr>
    where
        F: Future<Output = Result<T, DbErr>>,
    {
        let started = tokio::time::Instant::now();
        let outcome = wait(started + self.left()).await;
        let waited = started.elapsed().as_micros() as u64;
        let _ = self.left_us.fetch_update(
            std::sync::atomic::Ordering::Relaxed,
            std::sync::atomic::Ordering::Relaxed,
            |left| Some(left.saturating_sub(waited)),
        );
        outcome
    }
}

/// A statement's hold on one connection, one permit of the gate and one of
/// the busy budget.
struct Loan<'a> {
    lender: &'a Lender,
    conn: Option<Held>,
    _permits: (SemaphorePermit<'a>, SemaphorePermit<'a>),
}

/// A transaction's gate and busy permits, held until it ends.
pub(in crate::ssr::tenancy) struct Permits {
    _gate: OwnedSemaphorePermit,
    _busy: OwnedSemaphorePermit,
}

impl Loan<'_> {
    fn conn(&mut self) -> &mut Held {
        self.conn
            .as_mut()
            .expect("a loan holds its connection until it ends")
    }

    /// Ends the loan after a statement that returned `res`: the connection
    /// goes back to the stash unless its socket or protocol failed.
    fn end<T>(mut self, res: &Result<T, sqlx::Error>) {
        let conn = self.conn.take().expect("ended once");
        if res.as_ref().err().is_some_and(breaks_connection) {
            conn.discard();
        } else {
            self.lender.put(conn);
        }
    }
}

impl Drop for Loan<'_> {
    fn drop(&mut self) {
        match self.conn.take() {
            // Cancelled midway: the statement ends on its own, and the
            // connection's lock keeps the next one waiting until it has.
            Some(Held::Lite(c)) => self.lender.put(Held::Lite(c)),
            // The pool's check on return reads what the server still had
            // to send before anyone else uses it.
            other => drop(other),
        }
    }
}

/// Whether an error leaves the connection unfit for the next statement:
/// a failure of the socket or the protocol, or the server ending the
/// session (SQLSTATE class 08, or 57P01 to 57P05: shut down, terminated by
/// an administrator, idle too long).
fn breaks_connection(e: &sqlx::Error) -> bool {
    if let sqlx::Error::Database(db) = e {
        let code = db.code().unwrap_or_default();
        return code.starts_with("08") || code.starts_with("57P");
    }
    !matches!(
        e,
        sqlx::Error::RowNotFound
            | sqlx::Error::TypeNotFound { .. }
            | sqlx::Error::ColumnIndexOutOfBounds { .. }
            | sqlx::Error::ColumnNotFound(_)
            | sqlx::Error::ColumnDecode { .. }
            | sqlx::Error::Encode(_)
            | sqlx::Error::Decode(_)
    )
}

/// Whether `e` is a unique-constraint violation. SeaORM's `sql_err` knows
/// only sqlx's own error types, not the SQLite errors of company
/// connections ([`lite`]); both say so through sqlx's `DatabaseError::kind`.
pub fn is_unique_violation(e: &DbErr) -> bool {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(x)) | DbErr::Query(RuntimeErr::SqlxError(x)) => {
            matches!(&**x, sqlx::Error::Database(d) if d.is_unique_violation())
        }
        _ => false,
    }
}

/// The database's own code for `e`, when it gave one: PostgreSQL's
/// SQLSTATE (`55P03`), SQLite's extended result code (`2067`).
pub fn sqlstate(e: &DbErr) -> Option<String> {
    match e {
        DbErr::Exec(RuntimeErr::SqlxError(x)) | DbErr::Query(RuntimeErr::SqlxError(x)) => {
            match &**x {
                sqlx::Error::Database(d) => d.code().map(|c| c.into_owned()),
                _ => None,
            }
        }
        _ => None,
    }
}

/// Whether `e` is a company's database refusing for now rather than
/// failing: a statement over the company's time (PostgreSQL 57014,
/// SQLite's interrupt), a transaction left idle too long (25P03), the
/// company's connection limit reached (53300), or its SQLite file held by
/// another connection past the busy timeout. Answered 503, not 500.
pub fn is_refused_for_now(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(d) => {
            matches!(d.code().as_deref(), Some("57014" | "25P03" | "53300")) || lite::is_busy(&**d)
        }
        _ => false,
    }
}

// SeaORM's own conversions, which it does not export.
fn busy() -> DbErr {
    DbErr::ConnectionAcquire(ConnAcquireErr::Timeout)
}

pub(in crate::ssr::tenancy) fn acquire_err(e: sqlx::Error) -> DbErr {
    match e {
        sqlx::Error::PoolTimedOut => busy(),
        sqlx::Error::PoolClosed => DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
        e => DbErr::Conn(RuntimeErr::SqlxError(e.into())),
    }
}

fn exec_err(e: sqlx::Error) -> DbErr {
    DbErr::Exec(RuntimeErr::SqlxError(e.into()))
}

pub(in crate::ssr::tenancy) fn query_err(e: sqlx::Error) -> DbErr {
    DbErr::Query(RuntimeErr::SqlxError(e.into()))
}

impl TenantConn {
    pub(in crate::ssr::tenancy) fn new(lender: Arc<Lender>, waits: Arc<WaitBudget>) -> Self {
        Self { lender, waits }
    }

    /// A permit, as `acquire` gives it, by `deadline`.
    async fn permit<P>(
        deadline: tokio::time::Instant,
        acquire: impl Future<Output = Result<P, AcquireError>>,
    ) -> Result<P, DbErr> {
        tokio::time::timeout_at(deadline, acquire)
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())
    }

    async fn loan(&self) -> Result<Loan<'_>, DbErr> {
        let lender = &*self.lender;
        // Borrowed for the statement: no count of the semaphores' `Arc`s
        // to raise and lower on every statement. The company's own first.
        let permit = self
            .waits
            .wait(|deadline| async move {
                let gate = Self::permit(deadline, lender.gate.acquire()).await?;
                let busy_permit = Self::permit(deadline, lender.busy.acquire()).await?;
                Ok((gate, busy_permit))
            })
            .await?;
        while let Some((mut conn, since)) = lender.take() {
            if since.elapsed() < PING_IF_IDLE_FOR || conn.ping().await.is_ok() {
                return Ok(Loan {
                    lender,
                    conn: Some(conn),
                    _permits: permit,
                });
            }
            conn.discard();
        }
        // Holding a permit with the stash empty, the pool has a connection
        // idle (or on its way back) or room to open one.
        let conn = tokio::time::timeout(self.waits.total, lender.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(acquire_err)?;
        Ok(Loan {
            lender,
            conn: Some(conn),
            _permits: permit,
        })
    }
}

/// `stmt` as sqlx runs it, as SeaORM builds it (its SQL and bind values
/// moved, not copied).
fn query<DB>(stmt: Statement) -> sqlx::query::Query<'static, DB, SqlxValues>
where
    DB: sqlx::Database,
    SqlxValues: for<'q> sqlx::IntoArguments<DB>,
{
    let values = stmt.values.unwrap_or(sea_orm::Values(Vec::new()));
    sqlx::query_with(sqlx::AssertSqlSafe(stmt.sql), SqlxValues(values))
}

#[async_trait::async_trait]
impl ConnectionTrait for TenantConn {
    fn get_database_backend(&self) -> DbBackend {
        self.lender.backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        let mut loan = self.loan().await?;
        let res = match loan.conn() {
            Held::Pg(c) => query(stmt).execute(&mut **c).await.map(Into::into),
            Held::Lite(c) => lite::execute(c, stmt).await,
        };
        loan.end(&res);
        res.map_err(exec_err)
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        let mut loan = self.loan().await?;
        let sql = sql.to_owned();
        let res = match loan.conn() {
            Held::Pg(c) => c.execute(sqlx::AssertSqlSafe(sql)).await.map(Into::into),
            Held::Lite(c) => lite::execute_batch(c, sql).await,
        };
        loan.end(&res);
        res.map_err(exec_err)
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        let mut loan = self.loan().await?;
        let res = match loan.conn() {
            Held::Pg(c) => query(stmt)
                .fetch_optional(&mut **c)
                .await
                .map(|r| r.map(Into::into)),
            Held::Lite(c) => lite::query(c, stmt, 1).await.map(|mut rows| rows.pop()),
        };
        loan.end(&res);
        res.map_err(query_err)
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        let mut loan = self.loan().await?;
        let res = match loan.conn() {
            Held::Pg(c) => query(stmt)
                .fetch_all(&mut **c)
                .await
                .map(|rows| rows.into_iter().map(Into::into).collect()),
            Held::Lite(c) => lite::query(c, stmt, usize::MAX).await,
        };
        loan.end(&res);
        res.map_err(query_err)
    }
}

/// A transaction on a company's database, holding a permit of the gate
/// until it ends: SeaORM's on PostgreSQL, this module's on SQLite.
pub struct TenantTxn {
    inner: Txn,
    _permits: Option<Permits>,
}

enum Txn {
    Sea(DatabaseTransaction),
    Lite(LiteTxn),
}

/// A SQLite transaction (depth 0) or a savepoint in one (depth 1 and on),
/// with sqlx's statements and savepoint names.
struct LiteTxn {
    conn: lite::Lite,
    depth: u32,
    /// The outermost one's: where its connection goes back when it ends,
    /// and the gate's and busy budget's permits, held until then.
    home: Option<(Arc<Lender>, Permits)>,
    /// Neither committed nor rolled back yet: dropping it rolls back.
    open: bool,
}

impl LiteTxn {
    fn end_sql(&self, commit: bool) -> String {
        match (self.depth, commit) {
            (0, true) => "COMMIT".into(),
            (0, false) => "ROLLBACK".into(),
            (d, true) => format!("RELEASE SAVEPOINT _sqlx_savepoint_{d}"),
            (d, false) => format!(
                "ROLLBACK TO SAVEPOINT _sqlx_savepoint_{d}; RELEASE SAVEPOINT _sqlx_savepoint_{d}"
            ),
        }
    }

    /// A savepoint one level down, on the same connection.
    async fn nest(&self) -> Result<LiteTxn, DbErr> {
        let depth = self.depth + 1;
        let sql = format!("SAVEPOINT _sqlx_savepoint_{depth}");
        lite::execute_batch(&self.conn, sql)
            .await
            .map_err(exec_err)?;
        Ok(LiteTxn {
            conn: self.conn.clone(),
            depth,
            home: None,
            open: true,
        })
    }

    /// Commits or rolls back. If that fails, dropping it rolls back.
    async fn end(mut self, commit: bool) -> Result<(), DbErr> {
        let sql = self.end_sql(commit);
        lite::execute_batch(&self.conn, sql)
            .await
            .map_err(exec_err)?;
        self.open = false;
        Ok(())
    }
}

impl Drop for LiteTxn {
    fn drop(&mut self) {
        let home = self.home.take();
        if !self.open {
            if let Some((lender, permit)) = home {
                lender.put(Held::Lite(self.conn.clone()));
                drop(permit);
            }
            return;
        }
        let sql = self.end_sql(false);
        if home.is_none() {
            // A savepoint: undone before the outer transaction's next
            // statement, which may follow at once. Takes no waiting.
            let _ = lite::run_here(&self.conn, |c| lite::execute_batch_here(c, &sql));
            return;
        }
        let conn = self.conn.clone();
        let rollback = move || {
            // Back to the stash only once rolled back; closed if not.
            if lite::run_here(&conn, |c| lite::execute_batch_here(c, &sql)).is_ok() {
                if let Some((lender, permit)) = home {
                    lender.put(Held::Lite(conn));
                    drop(permit);
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => drop(rt.spawn_blocking(rollback)),
            Err(_) => rollback(),
        }
    }
}

impl TenantConn {
    async fn begin_txn(&self, options: TransactionOptions) -> Result<TenantTxn, DbErr> {
        let lender = &self.lender;
        let permit = self
            .waits
            .wait(|deadline| async move {
                let gate = Self::permit(deadline, lender.gate.clone().acquire_owned()).await?;
                Ok(Permits {
                    _gate: gate,
                    _busy: Self::permit(deadline, lender.busy.clone().acquire_owned()).await?,
                })
            })
            .await?;
        let pool = match &self.lender.source {
            Source::Pool(pool) => pool,
            Source::Lite(_) => return self.begin_lite(options, permit).await,
        };
        // A stashed connection may be the one the pool can give.
        if let Some((conn, _)) = self.lender.take() {
            drop(conn);
        }
        let inner = tokio::time::timeout(self.waits.total, pool.begin_with_options(options))
            .await
            .map_err(|_| busy())??;
        Ok(TenantTxn {
            inner: Txn::Sea(inner),
            _permits: Some(permit),
        })
    }

    /// `BEGIN` (in the SQLite mode `options` ask for) on a stashed or new
    /// connection.
    async fn begin_lite(
        &self,
        options: TransactionOptions,
        permit: Permits,
    ) -> Result<TenantTxn, DbErr> {
        let conn = match self.lender.take() {
            Some((Held::Lite(conn), _)) => conn,
            _ => match tokio::time::timeout(self.waits.total, self.lender.acquire())
                .await
                .map_err(|_| busy())?
                .map_err(acquire_err)?
            {
                Held::Lite(conn) => conn,
                Held::Pg(_) => unreachable!("a SQLite slot opens SQLite connections"),
            },
        };
        let sql = match options.sqlite_transaction_mode {
            Some(mode) => format!("BEGIN {}", mode.sqlite_keyword()),
            None => "BEGIN".to_owned(),
        };
        if let Err(e) = lite::execute_batch(&conn, sql).await {
            self.lender.put(Held::Lite(conn));
            return Err(exec_err(e));
        }
        Ok(TenantTxn {
            inner: Txn::Lite(LiteTxn {
                conn,
                depth: 0,
                home: Some((self.lender.clone(), permit)),
                open: true,
            }),
            _permits: None,
        })
    }
}

/// Runs `callback` in `txn` (once it began): commits if it returns `Ok`,
/// rolls back if not.
async fn run_in<F, T, E>(
    txn: Result<TenantTxn, DbErr>,
    callback: F,
) -> Result<T, TransactionError<E>>
where
    F: for<'c> FnOnce(&'c TenantTxn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
        + Send,
    T: Send,
    E: std::fmt::Display + std::fmt::Debug + Send,
{
    let txn = txn.map_err(TransactionError::Connection)?;
    match callback(&txn).await {
        Ok(value) => {
            txn.commit().await.map_err(TransactionError::Connection)?;
            Ok(value)
        }
        Err(e) => {
            txn.rollback().await.map_err(TransactionError::Connection)?;
            Err(TransactionError::Transaction(e))
        }
    }
}

fn options(
    isolation_level: Option<IsolationLevel>,
    access_mode: Option<AccessMode>,
) -> TransactionOptions {
    TransactionOptions {
        isolation_level,
        access_mode,
        ..Default::default()
    }
}

#[async_trait::async_trait]
impl TransactionTrait for TenantConn {
    type Transaction = TenantTxn;

    async fn begin(&self) -> Result<TenantTxn, DbErr> {
        self.begin_txn(TransactionOptions::default()).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<TenantTxn, DbErr> {
        self.begin_txn(options(isolation_level, access_mode)).await
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<TenantTxn, DbErr> {
        self.begin_txn(options).await
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c TenantTxn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction_with_config(callback, None, None).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c TenantTxn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        run_in(
            self.begin_with_config(isolation_level, access_mode).await,
            callback,
        )
        .await
    }
}

#[async_trait::async_trait]
impl ConnectionTrait for TenantTxn {
    fn get_database_backend(&self) -> DbBackend {
        match &self.inner {
            Txn::Sea(t) => t.get_database_backend(),
            Txn::Lite(_) => DbBackend::Sqlite,
        }
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        match &self.inner {
            Txn::Sea(t) => t.execute_raw(stmt).await,
            Txn::Lite(t) => lite::execute(&t.conn, stmt).await.map_err(exec_err),
        }
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        match &self.inner {
            Txn::Sea(t) => t.execute_unprepared(sql).await,
            Txn::Lite(t) => {
                let sql = sql.to_owned();
                lite::execute_batch(&t.conn, sql).await.map_err(exec_err)
            }
        }
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        match &self.inner {
            Txn::Sea(t) => t.query_one_raw(stmt).await,
            Txn::Lite(t) => lite::query(&t.conn, stmt, 1)
                .await
                .map(|mut rows| rows.pop())
                .map_err(query_err),
        }
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        match &self.inner {
            Txn::Sea(t) => t.query_all_raw(stmt).await,
            Txn::Lite(t) => lite::query(&t.conn, stmt, usize::MAX)
                .await
                .map_err(query_err),
        }
    }
}

/// Nested transactions are savepoints of the same connection, under the
/// outer transaction's permit.
#[async_trait::async_trait]
impl TransactionTrait for TenantTxn {
    type Transaction = TenantTxn;

    async fn begin(&self) -> Result<TenantTxn, DbErr> {
        self.begin_with_options(TransactionOptions::default()).await
    }

    async fn begin_with_config(
        &self,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<TenantTxn, DbErr> {
        self.begin_with_options(options(isolation_level, access_mode))
            .await
    }

    async fn begin_with_options(&self, options: TransactionOptions) -> Result<TenantTxn, DbErr> {
        let inner = match &self.inner {
            Txn::Sea(t) => Txn::Sea(t.begin_with_options(options).await?),
            Txn::Lite(t) => Txn::Lite(t.nest().await?),
        };
        Ok(TenantTxn {
            inner,
            _permits: None,
        })
    }

    async fn transaction<F, T, E>(&self, callback: F) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c TenantTxn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        self.transaction_with_config(callback, None, None).await
    }

    async fn transaction_with_config<F, T, E>(
        &self,
        callback: F,
        isolation_level: Option<IsolationLevel>,
        access_mode: Option<AccessMode>,
    ) -> Result<T, TransactionError<E>>
    where
        F: for<'c> FnOnce(&'c TenantTxn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send,
        T: Send,
        E: std::fmt::Display + std::fmt::Debug + Send,
    {
        run_in(
            self.begin_with_config(isolation_level, access_mode).await,
            callback,
        )
        .await
    }
}

#[async_trait::async_trait]
impl TransactionSession for TenantTxn {
    async fn commit(self) -> Result<(), DbErr> {
        match self.inner {
            Txn::Sea(t) => t.commit().await,
            Txn::Lite(t) => t.end(true).await,
        }
    }

    async fn rollback(self) -> Result<(), DbErr> {
        match self.inner {
            Txn::Sea(t) => t.rollback().await,
            Txn::Lite(t) => t.end(false).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On SQLite, where transactions are this module's own: savepoints
    /// commit, roll back, and roll back when dropped, inside the one
    /// transaction, on the company's one connection, which then goes back
    /// to the stash.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_savepoints_commit_and_roll_back_inside_their_transaction() {
        let dir = std::env::temp_dir().join(format!("enclave-conn-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.join("s.db").display());
        let opener = lite::Opener::from_url(&url).unwrap();
        let lender = Arc::new(Lender::new(
            Source::Lite(opener),
            1,
            Arc::new(Semaphore::new(1)),
        ));
        let conn = TenantConn::new(lender.clone(), WaitBudget::new(Duration::from_secs(2)));
        conn.execute_unprepared("CREATE TABLE t (n integer)")
            .await
            .unwrap();
        async fn insert(on: &impl ConnectionTrait, n: i64) {
            on.execute_unprepared(&format!("INSERT INTO t VALUES ({n})"))
                .await
                .unwrap();
        }

        let txn = conn.begin().await.unwrap();
        insert(&txn, 1).await;
        let inner = txn.begin().await.unwrap();
        insert(&inner, 2).await;
        inner.rollback().await.unwrap();
        let inner = txn.begin().await.unwrap();
        insert(&inner, 3).await;
        drop(inner);
        let inner = txn.begin().await.unwrap();
        insert(&inner, 4).await;
        inner.commit().await.unwrap();
        txn.commit().await.unwrap();

        let rows = conn
            .query_all_raw(Statement::from_string(
                DbBackend::Sqlite,
                "SELECT n FROM t ORDER BY n",
            ))
            .await
            .unwrap();
        let ns: Vec<i64> = rows.iter().map(|r| r.try_get("", "n").unwrap()).collect();
        assert_eq!(ns, [1, 4]);
        assert_eq!(lender.usage(), (1, 0));
        assert_eq!(lender.stashed(), 1);
        lender.close().await;
        assert_eq!(lender.usage(), (0, 0));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// The order that keeps one company from stopping the others: its own
    /// gate first, the shared busy budget second.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn statements_waiting_for_their_companys_connection_hold_no_busy_permit() {
        let dir = std::env::temp_dir().join(format!("enclave-conn-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let busy = Arc::new(Semaphore::new(2));
        let company = |name: &str| {
            let url = format!("sqlite://{}?mode=rwc", dir.join(name).display());
            let opener = lite::Opener::from_url(&url).unwrap();
            let lender = Arc::new(Lender::new(Source::Lite(opener), 1, busy.clone()));
            Arc::new(TenantConn::new(
                lender,
                WaitBudget::new(Duration::from_millis(300)),
            ))
        };
        let (stuck, quiet) = (company("stuck.db"), company("quiet.db"));

        // The stuck company's one connection is held by a transaction.
        let txn = stuck.begin().await.unwrap();
        assert_eq!(busy.available_permits(), 1);
        let waiting: Vec<_> = (0..8)
            .map(|_| {
                let stuck = stuck.clone();
                tokio::spawn(async move { stuck.execute_unprepared("SELECT 1").await })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            busy.available_permits(),
            1,
            "eight statements wait at their own gate, holding no busy permit"
        );
        // The other company is served meanwhile.
        quiet.execute_unprepared("SELECT 1").await.unwrap();
        for w in waiting {
            let e = w.await.unwrap().unwrap_err();
            assert!(matches!(e, DbErr::ConnectionAcquire(_)), "{e:?}");
        }
        drop(txn);
        tokio::time::sleep(Duration::from_millis(100)).await;
        stuck.execute_unprepared("SELECT 1").await.unwrap();
        assert_eq!(busy.available_permits(), 2);
        std::fs::remove_dir_all(&dir).ok();
    }
}
