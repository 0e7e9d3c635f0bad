//! The tenant connection cache: one small pool per company, inside an open budget per database server and a busy budget per process.
//!
//! **Open.** Each cached pool reserves `per_tenant` permits of its database
//! server's semaphore, which holds `budget` permits, and gives them back
//! only once the pool is closed, so the connections this process holds open
//! to one server never exceed the budget, however many of its tenants are
//! hit; each server has a budget of its own, so servers add up. The budget
//! is sized to what a server can hold open (idle connections are cheap),
//! not to the connections busy at once. A pool unused for `idle_timeout`
//! is closed.
//!
//! **Busy, after the company's own.** A statement (or a transaction, for
//! its whole life) first takes one of its company's gate permits (its own
//! connection, [`crate::ssr::tenancy::connections::conn`]) and only then one of the process's `busy`
//! permits, so a company whose connection is stuck (a lock, a slow report)
//! holds at most its gate's worth of busy permits, and its waiting requests
//! hold none. The gate is `per_tenant`, at most half the busy budget, so one
//! company never holds more than half of it.
//!
//! **Queue.** A company's requests holding a lease at once are bounded by
//! `per_tenant + queue`; the next one is refused at once
//! ([`PoolError::Queue`], 503 with `Retry-After`) instead of waiting for a
//! connection that a full line ahead of it is also waiting for.
//!
//! **Eviction.** When a server's open budget is spent, the idle pool of the
//! company on that server asked for least often lately is closed to make room (ties: the
//! least recently used). Frequencies are counted per company, cached or
//! not, and halved every `10 × budget` requests, so the cache holds the
//! companies that are busy now: under skewed traffic that is close to the
//! best any policy can do with that many connections, where LRU lets one
//! pass over the long tail flush the busy ones. A request that cannot get
//! room or a busy permit within `acquire_timeout` fails with
//! [`PoolError::Busy`] (503) instead of hanging.
use std::{
    collections::HashMap,
    sync::{
        atomic::{AtomicU32, AtomicU64, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use prometheus_client::metrics::counter::Counter;
use sea_orm::{Database, DbErr, RuntimeErr};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

use crate::ssr::tenancy::connections::conn::{Lender, Source, TenantConn};
use crate::ssr::tenancy::connections::lite;
use crate::ssr::tenancy::servers::databases::connect_options;

#[derive(Clone, Copy, Debug)]
pub struct PoolSettings {
    /// Connections one tenant's pool may open.
    pub per_tenant: u32,
    /// Connections the tenant pools of one database server may hold open
    /// together (the open budget; each server has one).
    pub budget: u32,
    /// Connections in use at once, across companies (the busy budget); a
    /// statement takes one after its company's own gate permit.
    pub busy: u32,
    /// A company's requests that may wait for its connection, past the
    /// `per_tenant` using it; more are refused at once.
    pub queue: u32,
    /// How long a request waits for room or a connection before failing.
    pub acquire_timeout: Duration,
    /// How long one statement may run on SQLite (waiting for the file's
    /// lock included) before it is interrupted; PostgreSQL's is the role's.
    pub statement_timeout: Duration,
    /// A pool unused this long is closed by [`TenantPools::reap_idle`].
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            per_tenant: 1,
            budget: 64,
            busy: 16,
            queue: 32,
            acquire_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// How requests found their company's pool: counted into `/metrics`.
#[derive(Clone, Default)]
pub struct PoolCounters {
    /// The pool was open (or being opened by another request).
    pub hits: Counter,
    /// This request opened the pool.
    pub misses: Counter,
    /// Pools closed to make room for another company's.
    pub evictions: Counter,
}

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The budget is spent and nothing could be freed in time (503).
    #[error("no tenant database connection became free in time")]
    Busy,
    /// The company already has as many requests waiting as it may (503 at
    /// once).
    #[error("too many requests are waiting for this company's database")]
    Queue,
    #[error("cannot open the tenant database")]
    Connect(#[source] sea_orm::DbErr),
}

/// Cheap to clone; all clones share one cache and one budget.
#[derive(Clone)]
pub struct TenantPools {
    inner: Arc<Inner>,
}

struct Inner {
    settings: PoolSettings,
    busy: Arc<Semaphore>,
    counters: PoolCounters,
    slots: Mutex<Slots>,
    epoch: Instant,
}

/// One database server's open budget.
struct Room {
    permits: Arc<Semaphore>,
    /// The budget: the permits the semaphore holds, reserved or not.
    size: AtomicU32,
    /// Permits to forget as pools give them back (the budget was made
    /// smaller while they were reserved).
    owed: AtomicU32,
    /// Requests waiting for room for a new pool on this server.
    waiting: AtomicU64,
    /// Pools being closed to make room; each will free one pool's room.
    closing: AtomicU64,
}

struct Slot {
    /// The budget of the company's database server.
    room: Arc<Room>,
    /// A digest of the URL the pool is for: a company moved to another
    /// server (or given new credentials) gets a new pool.
    url: u64,
    pool: OnceCell<Arc<Lender>>,
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// Requests using this pool now; changed only under the `slots` lock.
    leases: AtomicU64,
    last_used_ms: AtomicU64,
}

/// The cached pools and how often each company was asked for lately.
#[derive(Default)]
struct Slots {
    open: HashMap<Uuid, Arc<Slot>>,
    /// Each database server's budget, by its name (`tenants.db_server`).
    rooms: HashMap<String, Arc<Room>>,
    /// Requests per company (cached or not), halved every `window` requests.
    asked: HashMap<Uuid, u32>,
    counted: u64,
}

impl Slots {
    fn count(&mut self, id: Uuid, window: u64) {
        *self.asked.entry(id).or_default() += 1;
        self.counted += 1;
        if self.counted >= window {
            self.asked.retain(|_, n| {
                *n /= 2;
                *n > 0
            });
            self.counted /= 2;
        }
    }

    /// The idle open pool on `room`'s server to close first: asked for
    /// least often, then least recently used.
    fn victim(&self, room: &Arc<Room>) -> Option<Uuid> {
        self.open
            .iter()
            .filter(|(_, s)| {
                Arc::ptr_eq(&s.room, room)
                    && s.leases.load(Ordering::SeqCst) == 0
                    && s.pool.initialized()
            })
            .min_by_key(|(id, s)| {
                (
                    self.asked.get(*id).copied().unwrap_or(0),
                    s.last_used_ms.load(Ordering::Relaxed),
                )
            })
            .map(|(id, _)| *id)
    }
}

/// A request's hold on one tenant's pool. While it lives the pool is not
/// evicted; dropping it lets the pool be reused or closed.
pub struct TenantDb {
    slot: Arc<Slot>,
    id: Uuid,
    inner: Arc<Inner>,
    /// Set once the pool is open, before the lease is handed out.
    conn: Option<TenantConn>,
}

impl TenantDb {
    /// The company whose database this is.
    pub fn tenant_id(&self) -> Uuid {
        self.id
    }

    pub fn conn(&self) -> &TenantConn {
        self.conn
            .as_ref()
            .expect("a lease is handed out only once its pool is open")
    }
}

impl Drop for TenantDb {
    fn drop(&mut self) {
        let mut slots = self.inner.slots.lock().unwrap();
        let left = self.slot.leases.fetch_sub(1, Ordering::SeqCst) - 1;
        // A slot whose pool never opened (it timed out) is not kept around.
        if left == 0 && !self.slot.pool.initialized() {
            if let Some(s) = slots.open.get(&self.id) {
                if Arc::ptr_eq(s, &self.slot) {
                    slots.open.remove(&self.id);
                }
            }
        }
        // A pool just became idle: if someone waits for room, make it.
        if left == 0 {
            Inner::evict_for_waiters(&self.inner, &mut slots, &self.slot.room);
        }
    }
}

/// Figures for metrics and tests.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolStats {
    pub cached_pools: usize,
    /// Connections open now, across all cached pools.
    pub open_connections: u32,
    /// Of those, the ones serving a request now.
    pub connections_in_use: u32,
    /// Of the idle ones, those kept by their company's slot, out of sqlx's
    /// pool (see [`crate::ssr::tenancy::connections::conn`]).
    pub kept_out_of_pool: u32,
    /// Permits reserved by open (or closing) pools: an upper bound on the
    /// connections held.
    pub reserved_connections: u32,
    /// The open budget of one database server.
    pub budget: u32,
    /// Database servers this process has opened pools on.
    pub servers: usize,
    /// The open budget of each of those (any other has `budget`).
    pub server_budgets: Vec<(String, u32)>,
    pub busy_budget: u32,
}

impl TenantPools {
    pub fn new(settings: PoolSettings, counters: PoolCounters) -> Self {
        let busy = settings.busy.max(1);
        // A company's share of the busy budget is its gate: at most half.
        let per_tenant = settings.per_tenant.clamp(1, (busy / 2).max(1));
        let budget = settings.budget.max(per_tenant);
        Self {
            inner: Arc::new(Inner {
                settings: PoolSettings {
                    per_tenant,
                    budget,
                    busy,
                    ..settings
                },
                busy: Arc::new(Semaphore::new(busy as usize)),
                counters,
                slots: Mutex::new(Slots::default()),
                epoch: Instant::now(),
            }),
        }
    }

    pub fn settings(&self) -> PoolSettings {
        self.inner.settings
    }

    /// Whether company `id`'s line is full: a lease asked for now would be
    /// refused ([`PoolError::Queue`]). The site middleware asks first, so
    /// such a request is refused before its session is loaded or a page is
    /// rendered for it: a flooded company's refusals must cost next to
    /// nothing, or they take the other companies' CPU.
    pub fn line_full(&self, id: Uuid) -> bool {
        let slots = self.inner.slots.lock().unwrap();
        slots
            .open
            .get(&id)
            .is_some_and(|slot| self.inner.line_is_full(slot))
    }

    /// The pool of tenant `id` (on database server `server`, reachable at
    /// `url`, whose [`digest`] is `url_digest`), opened if needed. Private to tenancy: a request reaches it
    /// only through its `TenantContext`, so no other code can pick a
    /// company's database.
    pub(in crate::ssr::tenancy) async fn get(
        &self,
        id: Uuid,
        server: &str,
        url: &SecretString,
        url_digest: u64,
        waits: Arc<crate::ssr::tenancy::connections::conn::WaitBudget>,
    ) -> Result<TenantDb, PoolError> {
        let deadline = tokio::time::Instant::now() + self.inner.settings.acquire_timeout;
        let window = 10 * u64::from(self.inner.settings.budget).max(1_000);
        let slot = {
            let mut slots = self.inner.slots.lock().unwrap();
            slots.count(id, window);
            // The company's address changed (moved by this process or
            // another): the old pool closes once its requests are done.
            if let Some(stale) = slots.open.get(&id).filter(|s| s.url != url_digest) {
                let stale = stale.clone();
                slots.open.remove(&id);
                Slot::close(stale, false);
            }
            let room = match slots.rooms.get(server) {
                Some(room) => room.clone(),
                None => {
                    let room = Room::new(self.inner.settings.budget);
                    slots.rooms.insert(server.to_owned(), room.clone());
                    room
                }
            };
            let slot = slots
                .open
                .entry(id)
                .or_insert_with(|| {
                    Arc::new(Slot {
                        room,
                        url: url_digest,
                        pool: OnceCell::new(),
                        permit: Mutex::new(None),
                        leases: AtomicU64::new(0),
                        last_used_ms: AtomicU64::new(0),
                    })
                })
                .clone();
            // Changed only under this lock, so the bound holds exactly.
            if self.inner.line_is_full(&slot) {
                return Err(PoolError::Queue);
            }
            slot.leases.fetch_add(1, Ordering::SeqCst);
            slot.last_used_ms
                .store(self.inner.now_ms(), Ordering::Relaxed);
            slot
        };
        let mut lease = TenantDb {
            slot,
            id,
            inner: self.inner.clone(),
            conn: None,
        };
        let opened = &std::sync::atomic::AtomicBool::new(false);
        let slot = &lease.slot;
        let lender = slot
            .pool
            .get_or_try_init(|| async move {
                opened.store(true, Ordering::Relaxed);
                let permit = self.reserve(&slot.room, deadline).await?;
                let pool = self.open(url, deadline).await?;
                *slot.permit.lock().unwrap() = Some(permit);
                Ok::<_, PoolError>(Arc::new(Lender::new(
                    pool,
                    self.inner.settings.per_tenant,
                    self.inner.busy.clone(),
                )))
            })
            .await?
            .clone();
        lease.conn = Some(TenantConn::new(lender, waits));
        let counters = &self.inner.counters;
        if opened.load(Ordering::Relaxed) {
            counters.misses.inc();
        } else {
            counters.hits.inc();
        }
        Ok(lease)
    }

    /// Reserves room for one pool on `room`'s server. Waiters queue first
    /// come, first served on the semaphore; idle pools of that server are
    /// closed as long as there are more waiters than pools already closing.
    async fn reserve(
        &self,
        room: &Arc<Room>,
        deadline: tokio::time::Instant,
    ) -> Result<OwnedSemaphorePermit, PoolError> {
        let n = self.inner.settings.per_tenant;
        if let Ok(permit) = room.permits.clone().try_acquire_many_owned(n) {
            return Ok(permit);
        }
        let _waiting = WaitingGuard::enter(room);
        Inner::evict_for_waiters(&self.inner, &mut self.inner.slots.lock().unwrap(), room);
        tokio::select! {
            permit = room.permits.clone().acquire_many_owned(n) => permit.map_err(|_| PoolError::Busy),
            _ = tokio::time::sleep_until(deadline) => Err(PoolError::Busy),
        }
    }

    async fn open(
        &self,
        url: &SecretString,
        deadline: tokio::time::Instant,
    ) -> Result<Source, PoolError> {
        if url.expose_secret().starts_with("sqlite:") {
            // Opened by the statements that need them (conn.rs).
            return lite::Opener::from_url(url.expose_secret())
                .map(|o| Source::Lite(o.with_limit(self.inner.settings.statement_timeout)))
                .map_err(|e| PoolError::Connect(DbErr::Conn(RuntimeErr::SqlxError(e.into()))));
        }
        let s = self.inner.settings;
        let remaining = deadline.saturating_duration_since(tokio::time::Instant::now());
        let mut opts =
            connect_options(url, s.per_tenant, remaining.max(Duration::from_millis(100)));
        // Connections live as long as their pool: the pool's room in the
        // budget is held until it is closed, so closing its connections
        // earlier would save nothing. `reap_idle` closes idle pools.
        opts.connect_lazy(true)
            .acquire_timeout(s.acquire_timeout)
            .idle_timeout(None::<Duration>)
            .max_lifetime(None::<Duration>);
        Database::connect(opts)
            .await
            .map(Source::Pool)
            .map_err(PoolError::Connect)
    }

    /// Closes in the background; the room returns once every connection
    /// of the pool is closed.
    fn close_slot(&self, slot: Arc<Slot>) {
        Slot::close(slot, false);
    }

    /// Closes pools unused for longer than `idle_timeout`. `serve` calls it
    /// periodically.
    pub fn reap_idle(&self) -> usize {
        let ttl = self.inner.settings.idle_timeout.as_millis() as u64;
        let now = self.inner.now_ms();
        let victims: Vec<_> = {
            let mut slots = self.inner.slots.lock().unwrap();
            let ids: Vec<Uuid> = slots
                .open
                .iter()
                .filter(|(_, s)| {
                    s.leases.load(Ordering::SeqCst) == 0
                        && s.pool.initialized()
                        && now.saturating_sub(s.last_used_ms.load(Ordering::Relaxed)) >= ttl
                })
                .map(|(id, _)| *id)
                .collect();
            ids.iter().filter_map(|id| slots.open.remove(id)).collect()
        };
        let n = victims.len();
        victims.into_iter().for_each(|s| self.close_slot(s));
        n
    }

    /// Closes a tenant's pool now (pause, delete). Waits (a few seconds at
    /// most) for requests using it to finish their queries.
    pub async fn forget(&self, id: Uuid) {
        let slot = self.inner.slots.lock().unwrap().open.remove(&id);
        if let Some(slot) = slot {
            if let Some(lender) = slot.pool.get() {
                let closing = lender.close();
                if tokio::time::timeout(Duration::from_secs(5), closing)
                    .await
                    .is_err()
                {
                    // Stop waiting, but keep its room reserved until it is
                    // really closed, so the budget still holds.
                    tracing::warn!(tenant = %id, "tenant pool still busy after 5 s; closing in the background");
                    Slot::close(slot, false);
                    return;
                }
            }
            slot.give_back();
        }
    }

    /// Sizes `server`'s open budget to `budget` (derived from that server
    /// by the caller); until told, a server's budget is the settings' one.
    /// A smaller budget takes effect as its pools close.
    pub fn set_server_budget(&self, server: &str, budget: u32) {
        let budget = budget.max(self.inner.settings.per_tenant);
        let mut slots = self.inner.slots.lock().unwrap();
        let room = slots
            .rooms
            .entry(server.to_owned())
            .or_insert_with(|| Room::new(budget));
        let was = room.size.swap(budget, Ordering::SeqCst);
        if budget > was {
            room.permits.add_permits((budget - was) as usize);
        } else if budget < was {
            // What is free goes now; the rest as pools close and give back
            // permits, which are then forgotten too (see `Slot::close`).
            let forgotten = room.permits.forget_permits((was - budget) as usize) as u32;
            room.owed
                .fetch_add((was - budget) - forgotten, Ordering::SeqCst);
        }
    }

    /// The open budget of `server`, once a pool was opened on it or it was
    /// sized.
    pub fn server_budget(&self, server: &str) -> Option<u32> {
        let slots = self.inner.slots.lock().unwrap();
        slots
            .rooms
            .get(server)
            .map(|room| room.size.load(Ordering::SeqCst))
    }

    pub fn stats(&self) -> PoolStats {
        let s = self.inner.settings;
        let slots = self.inner.slots.lock().unwrap();
        let (open, idle, kept) = slots
            .open
            .values()
            .filter_map(|slot| slot.pool.get())
            .map(|lender| {
                let (open, idle) = lender.usage();
                let kept = lender.stashed() as u32;
                (open, idle + kept, kept)
            })
            .fold((0, 0, 0), |(o, i, k), (po, pi, pk)| {
                (o + po, i + pi, k + pk)
            });
        let reserved = slots
            .rooms
            .values()
            .map(|room| {
                room.size
                    .load(Ordering::SeqCst)
                    .saturating_sub(room.permits.available_permits() as u32)
            })
            .sum();
        PoolStats {
            cached_pools: slots.open.len(),
            open_connections: open,
            connections_in_use: open.saturating_sub(idle),
            kept_out_of_pool: kept,
            reserved_connections: reserved,
            budget: s.budget,
            servers: slots.rooms.len(),
            server_budgets: slots
                .rooms
                .iter()
                .map(|(name, room)| (name.clone(), room.size.load(Ordering::SeqCst)))
                .collect(),
            busy_budget: s.busy,
        }
    }
}

impl Inner {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether `slot` has as many leases as a company may: its pool size
    /// and its queue. Read under the `slots` lock, where leases change.
    fn line_is_full(&self, slot: &Slot) -> bool {
        let s = self.settings;
        slot.leases.load(Ordering::SeqCst) >= u64::from(s.per_tenant + s.queue)
    }

    /// While more requests wait for room on `room`'s server than its pools
    /// are closing, closes its idle pool asked for least often (see
    /// [`Slots::victim`]). Called with the `slots` lock held.
    fn evict_for_waiters(inner: &Arc<Inner>, slots: &mut Slots, room: &Arc<Room>) {
        while room.waiting.load(Ordering::SeqCst) > room.closing.load(Ordering::SeqCst) {
            match slots.victim(room).and_then(|id| slots.open.remove(&id)) {
                Some(slot) => {
                    inner.counters.evictions.inc();
                    Slot::close(slot, true)
                }
                None => return,
            }
        }
    }
}

impl Room {
    fn new(budget: u32) -> Arc<Self> {
        Arc::new(Room {
            permits: Arc::new(Semaphore::new(budget as usize)),
            size: AtomicU32::new(budget),
            owed: AtomicU32::new(0),
            waiting: AtomicU64::new(0),
            closing: AtomicU64::new(0),
        })
    }
}

impl Slot {
    /// Returns the pool's room to its server's budget (or forgets it, if the
    /// budget was made smaller meanwhile).
    fn give_back(&self) {
        let Some(permit) = self.permit.lock().unwrap().take() else {
            return;
        };
        let n = permit.num_permits() as u32;
        let owed = self
            .room
            .owed
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |owed| {
                (owed > 0).then(|| owed.saturating_sub(n))
            });
        if let Ok(owed) = owed {
            permit.forget();
            // Only what was owed is forgotten.
            if n > owed {
                self.room.permits.add_permits((n - owed) as usize);
            }
        }
    }

    /// Closes its pool in the background; its room returns once every
    /// connection of the pool is closed.
    fn close(slot: Arc<Slot>, for_waiter: bool) {
        if for_waiter {
            slot.room.closing.fetch_add(1, Ordering::SeqCst);
        }
        tokio::spawn(async move {
            if let Some(lender) = slot.pool.get() {
                lender.close().await;
            }
            slot.give_back();
            if for_waiter {
                slot.room.closing.fetch_sub(1, Ordering::SeqCst);
            }
        });
    }
}

/// Tells one URL from another without keeping a second copy of it.
pub(in crate::ssr::tenancy) fn digest(url: &SecretString) -> u64 {
    use secrecy::ExposeSecret;
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    url.expose_secret().hash(&mut h);
    h.finish()
}

/// Counts a request as waiting for room on a server while it lives.
struct WaitingGuard<'a>(&'a Room);

impl<'a> WaitingGuard<'a> {
    fn enter(room: &'a Room) -> Self {
        room.waiting.fetch_add(1, Ordering::SeqCst);
        Self(room)
    }
}

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::SeqCst);
    }
}
