//! Throttling sign-in (and reset-link requests): each attempt reserves a slot before the password is checked, per (client, email) and per client.
//!
//! An attempt is a `login_failures` row, written before the password is
//! checked; it may go on if the attempts in the window written up to and
//! including it (by id) are within the limit. Writing and counting happen in
//! one transaction that holds the client's and the email's turn (advisory
//! locks on PostgreSQL, the write lock on SQLite), so however many guesses
//! arrive at once, exactly the first ones up to the limit get to the
//! password check. (Counting by id alone was not enough on PostgreSQL: a
//! higher id could count before a lower one committed, and slip through.) A refused attempt removes its row
//! (the table stays bounded); a wrong password leaves it as a failure; a
//! right one clears that client's failures for that email. Keys include the
//! client address, so guesses from one address cannot lock the account for
//! its owner elsewhere. The same table and code serve company users (in the
//! company's database) and platform admins (in the registry).
use chrono::{TimeDelta, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, Set, Statement, TransactionSession, TransactionTrait,
};

use crate::ssr::entities::login_failures::{self, Column};

/// How many attempts a window allows.
#[derive(Clone, Copy, Debug)]
pub struct Throttle {
    /// Per email from one client address.
    pub per_email_and_client: u64,
    /// Per client address, whatever the email.
    pub per_client: u64,
    /// Per email from every address together, for attempts not
    /// [`Throttle::reserve_known`] (a browser the account signed in from).
    pub per_email: Option<u64>,
    pub window: TimeDelta,
}

/// Sign-in, for company users and platform admins alike. `per_email`
/// counts an account's attempts from every address, but not those of a
/// browser that signed in to it before ([`super::devices`]): guessing from
/// many addresses slows down, and the owner is not locked out.
pub const SIGN_IN: Throttle = Throttle {
    per_email_and_client: 5,
    per_client: 20,
    per_email: Some(10),
    window: TimeDelta::minutes(15),
};

#[derive(Debug, thiserror::Error)]
pub enum ThrottleError {
    /// 429: too many attempts; the oldest leaves the window this much later.
    #[error("too many sign-in attempts; retry in {retry_after_secs} s")]
    Throttled { retry_after_secs: u64 },
    #[error("the sign-in log")]
    Db(#[from] DbErr),
}

/// A reserved attempt. Dropped without [`Attempt::succeeded`], it stays
/// as a failure.
#[must_use = "an attempt whose password was right must be marked `succeeded`"]
pub struct Attempt {
    email: String,
    client: String,
}

impl Throttle {
    /// Reserves an attempt for `email` from `client` (empty when unknown),
    /// or refuses it.
    pub async fn reserve(
        &self,
        db: &impl TransactionTrait,
        email: &str,
        client: &str,
    ) -> Result<Attempt, ThrottleError> {
        self.reserve_as(db, email, client, false).await
    }

    /// As [`Throttle::reserve`], from a browser the account signed in from
    /// before: not held to `per_email`.
    pub async fn reserve_known(
        &self,
        db: &impl TransactionTrait,
        email: &str,
        client: &str,
    ) -> Result<Attempt, ThrottleError> {
        self.reserve_as(db, email, client, true).await
    }

    async fn reserve_as(
        &self,
        db: &impl TransactionTrait,
        email: &str,
        client: &str,
        known: bool,
    ) -> Result<Attempt, ThrottleError> {
        // One transaction that holds this client's and this email's turn:
        // on PostgreSQL transaction-scoped advisory locks (taken in one
        // order, so two reservations never wait on each other in a
        // circle); on SQLite the write lock the first INSERT takes. Either
        // way the row written and the rows counted are exact, whatever
        // runs at the same time.
        let txn = db.begin().await?;
        if txn.get_database_backend() == DbBackend::Postgres {
            let mut keys = vec![lock_key("email", email)];
            if !client.is_empty() {
                keys.push(lock_key("client", client));
            }
            keys.sort_unstable();
            for key in keys {
                txn.execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock($1)",
                    [key.into()],
                ))
                .await?;
            }
        }
        let outcome = self.reserve_in(&txn, email, client, known).await;
        txn.commit().await?;
        outcome
    }

    async fn reserve_in(
        &self,
        db: &impl ConnectionTrait,
        email: &str,
        client: &str,
        known: bool,
    ) -> Result<Attempt, ThrottleError> {
        let now = Utc::now();
        let since = now - self.window;
        let row = login_failures::ActiveModel {
            email: Set(email.to_owned()),
            client: Set(client.to_owned()),
            at: Set(now),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let up_to_this = || {
            login_failures::Entity::find()
                .filter(Column::Client.eq(client))
                .filter(Column::At.gt(since))
                .filter(Column::Id.lte(row.id))
        };
        let pair = up_to_this().filter(Column::Email.eq(email));
        let by_client = up_to_this();
        let by_email = login_failures::Entity::find()
            .filter(Column::Email.eq(email))
            .filter(Column::At.gt(since))
            .filter(Column::Id.lte(row.id));
        let over = if pair.clone().count(db).await? > self.per_email_and_client {
            Some(pair)
        } else if !client.is_empty() && by_client.clone().count(db).await? > self.per_client {
            Some(by_client)
        } else if let Some(limit) = self.per_email.filter(|_| !known) {
            (by_email.clone().count(db).await? > limit).then_some(by_email)
        } else {
            None
        };
        let Some(over) = over else {
            return Ok(Attempt {
                email: email.to_owned(),
                client: client.to_owned(),
            });
        };
        login_failures::Entity::delete_by_id(row.id)
            .exec(db)
            .await?;
        // Old rows are of no use to anyone: cleared as they are met.
        login_failures::Entity::delete_many()
            .filter(Column::At.lte(since))
            .exec(db)
            .await?;
        let oldest = over
            .order_by_asc(Column::At)
            .one(db)
            .await?
            .map_or(now, |f| f.at);
        let retry = (oldest + self.window - now).num_seconds().max(1) as u64;
        Err(ThrottleError::Throttled {
            retry_after_secs: retry,
        })
    }
}

/// The advisory-lock key of one throttle key (64 bits of its BLAKE2b).
fn lock_key(kind: &str, value: &str) -> i64 {
    let digest = crate::ssr::secrets::token_digest(&format!("throttle {kind} {value}"));
    i64::from_str_radix(&digest[..15], 16).expect("hex")
}

impl Attempt {
    /// The password was right: this attempt and the earlier failures of
    /// this email from this client stop counting.
    pub async fn succeeded(self, db: &impl ConnectionTrait) -> Result<(), DbErr> {
        login_failures::Entity::delete_many()
            .filter(Column::Email.eq(self.email))
            .filter(Column::Client.eq(self.client))
            .exec(db)
            .await
            .map(|_| ())
    }
}
