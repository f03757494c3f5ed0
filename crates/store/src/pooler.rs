//! The pool, and what changes when a transaction-pooling PgBouncer stands
//! between it and PostgreSQL (`DATABASE_POOLER=transaction`).
//!
//! Such a pooler lends a server connection to a client for one transaction
//! and then to whichever client asks next, so nothing may outlive a
//! transaction on a server connection:
//!
//! - Session settings leak. `statement_timeout`, set per connection with
//!   `set_config(…, false)` otherwise, would stay on a server connection
//!   that other clients (the api and the worker, with different budgets)
//!   then use, and this client's next transaction may run elsewhere without
//!   it. Here every transaction sets it transaction-locally first
//!   (`set_config(…, true)`: a tenant's transaction in the statement that
//!   sets its tenant, so at no cost; others in one round trip more). `app.tenant_id` is transaction-local always.
//! - Prepared statements live on a server connection. sqlx names its
//!   statements per client connection (`sqlx_s_1`, `sqlx_s_2`, …), so two
//!   clients meeting on one server connection clash ("prepared statement
//!   … already exists"), and one that cached a statement may not find it
//!   on the next. Here sqlx's statement cache is off (it then still names
//!   each statement, but never reuses or closes it), and every transaction
//!   begins `DEALLOCATE ALL`, dropping whatever statements the server
//!   connection still holds from its last transaction, whoever's: sent
//!   with the `BEGIN`, in its round trip.
//! - Even the unnamed statement spans two `Sync`s: sqlx sends Parse and
//!   Describe, waits for the answer (the pooler sees an idle server and
//!   lends it out), then Bind and Execute, which may reach another server
//!   connection, where the unnamed statement is missing or another
//!   client's. So a statement run on the pool outside a transaction of the
//!   caller's runs in one of its own here: `BEGIN`, the statement, `COMMIT`
//!   (two round trips more; inside a transaction the server connection is
//!   this client's until it ends).
//! - `LISTEN` needs a session: see [`crate::Store::listen_outbox`].
//!
//! Advisory locks are transaction-scoped (`pg_advisory_xact_lock`), and
//! nothing uses temporary tables or `WITH HOLD` cursors, so nothing else
//! holds state across transactions.

use futures::{StreamExt as _, TryStreamExt as _};
use sqlx::postgres::{PgQueryResult, PgRow, PgStatement, PgTypeInfo};
use sqlx::{Either, Execute, Executor, PgPool, Postgres, SqlStr, Transaction};
use std::fmt;
use std::str::FromStr;

/// What stands between the processes and PostgreSQL (`DATABASE_POOLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pooler {
    /// Nothing, or a pooler that gives each client a server connection for
    /// its whole session (`none`, the default): session state is kept.
    #[default]
    None,
    /// A pooler in transaction mode, such as PgBouncer's `pool_mode =
    /// transaction` (`transaction`): see the module's notes.
    Transaction,
}

impl FromStr for Pooler {
    type Err = UnknownPooler;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "none" | "session" => Ok(Self::None),
            "transaction" => Ok(Self::Transaction),
            _ => Err(UnknownPooler),
        }
    }
}

/// A `DATABASE_POOLER` value that is not one of the known ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownPooler;

impl fmt::Display for UnknownPooler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("must be none, session or transaction")
    }
}

impl std::error::Error for UnknownPooler {}

/// The pool, run as [`Pooler`] requires. `&Pooled` is an executor: under a
/// transaction pooler, each statement it runs is a transaction of its own.
#[derive(Clone, Debug)]
pub struct Pooled {
    pool: PgPool,
    pooler: Pooler,
    /// The statement timeout, in milliseconds, as `set_config` takes it.
    statement_timeout_ms: String,
}

/// Drops the prepared statements a server connection holds from its last
/// transaction, whoever's, and begins; in one round trip.
const DEALLOCATE_AND_BEGIN: &str = "deallocate all; begin";

impl Pooled {
    pub(crate) fn new(pool: PgPool, pooler: Pooler, statement_timeout_ms: i64) -> Self {
        Self {
            pool,
            pooler,
            statement_timeout_ms: statement_timeout_ms.to_string(),
        }
    }

    /// What stands between the pool and PostgreSQL.
    #[must_use]
    pub const fn pooler(&self) -> Pooler {
        self.pooler
    }

    /// The statement timeout, in milliseconds, as `set_config` takes it.
    pub(crate) fn statement_timeout_ms(&self) -> &str {
        &self.statement_timeout_ms
    }

    /// Begins a transaction without its statement timeout: the caller sets
    /// it (`set_config('statement_timeout', …, true)`) in its first
    /// statement when [`Pooled::pooler`] is [`Pooler::Transaction`].
    pub(crate) async fn begin_bare(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        match self.pooler {
            Pooler::None => self.pool.begin().await,
            Pooler::Transaction => self.pool.begin_with(DEALLOCATE_AND_BEGIN).await,
        }
    }

    /// Begins a transaction; under a transaction pooler it carries the
    /// statement timeout itself (see the module's notes), one round trip
    /// more.
    pub async fn begin(&self) -> Result<Transaction<'static, Postgres>, sqlx::Error> {
        let mut tx = self.begin_bare().await?;
        if self.pooler == Pooler::Transaction {
            sqlx::query("select set_config('statement_timeout', $1, true)")
                .bind(&self.statement_timeout_ms)
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }
}

impl std::ops::Deref for Pooled {
    type Target = PgPool;

    fn deref(&self) -> &PgPool {
        &self.pool
    }
}

impl<'p> Executor<'p> for &'_ Pooled {
    type Database = Postgres;

    fn fetch_many<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures::stream::BoxStream<'e, Result<Either<PgQueryResult, PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        if self.pooler == Pooler::None {
            return (&self.pool).fetch_many(query);
        }
        let pooled = self.clone();
        // Collected inside the transaction, then handed out: a statement's
        // results are read whole before the server connection is let go.
        futures::stream::once(async move {
            let mut tx = pooled.begin().await?;
            let items: Vec<_> = (&mut *tx).fetch_many(query).try_collect().await?;
            tx.commit().await?;
            Ok::<_, sqlx::Error>(futures::stream::iter(items.into_iter().map(Ok)))
        })
        .try_flatten()
        .boxed()
    }

    fn fetch_optional<'e, 'q: 'e, E>(
        self,
        query: E,
    ) -> futures::future::BoxFuture<'e, Result<Option<PgRow>, sqlx::Error>>
    where
        E: 'q + Execute<'q, Postgres>,
    {
        if self.pooler == Pooler::None {
            return (&self.pool).fetch_optional(query);
        }
        let pooled = self.clone();
        Box::pin(async move {
            let mut tx = pooled.begin().await?;
            let row = (&mut *tx).fetch_optional(query).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    fn prepare_with<'e>(
        self,
        sql: SqlStr,
        parameters: &'e [PgTypeInfo],
    ) -> futures::future::BoxFuture<'e, Result<PgStatement, sqlx::Error>>
    where
        'p: 'e,
    {
        let pool = self.pool.clone();
        Box::pin(async move { pool.acquire().await?.prepare_with(sql, parameters).await })
    }

    fn describe<'e>(
        self,
        sql: SqlStr,
    ) -> futures::future::BoxFuture<'e, Result<sqlx::Describe<Postgres>, sqlx::Error>> {
        let pool = self.pool.clone();
        Box::pin(async move { pool.acquire().await?.describe(sql).await })
    }
}
