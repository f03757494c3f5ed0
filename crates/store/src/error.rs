//! The store's one error type: what went wrong, and where in the store.
//!
//! A database error carries the source line of the store method whose
//! statement failed (through `#[track_caller]` on the conversion that `?`
//! calls), so a logged 500 or a failed job names the query, not only
//! "database error". This module classifies failures (missing, conflict,
//! unavailable, other); what a caller answers for each is the caller's.

use std::panic::Location;

use heliograph_domain::FieldError;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist for this tenant (which includes: it belongs to another).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; the name says which.
    #[error("conflict on {constraint}")]
    Conflict {
        /// The constraint's name, as in the migrations.
        constraint: String,
    },
    /// The input referred to something that is not there, or broke a rule only the data can check.
    #[error("invalid input: {0}")]
    Invalid(FieldError),
    /// A stored value that the domain does not accept.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The role the store connected as must not serve (see [`crate::Store::connect`]).
    #[error(
        "the role {role:?} {problem}; the api and the worker connect as a login role that owns nothing (README § Database roles)"
    )]
    UnfitRole {
        /// The role's name.
        role: String,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// Applying migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// PostgreSQL did not answer in time or could not be reached: no
    /// connection within the pool's acquire timeout, a statement cancelled
    /// by `statement_timeout`, a connection lost, the server shutting down
    /// or starting. Transient: worth retrying later.
    #[error("database unavailable at {at}")]
    Unavailable {
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
        /// The store's line that ran the statement.
        at: &'static Location<'static>,
    },
    /// Any other database error.
    #[error("database error at {at}")]
    Database {
        /// What sqlx reported.
        #[source]
        source: sqlx::Error,
        /// The store's line that ran the statement.
        at: &'static Location<'static>,
    },
}

impl StoreError {
    /// What [`crate::Store::connect`]'s failure means to whoever starts a
    /// process, naming the setting at fault: a role unfit to serve is
    /// refused; anything else is a connection that failed.
    #[must_use]
    pub const fn connect_step(&self) -> &'static str {
        if matches!(self, Self::UnfitRole { .. }) {
            "DATABASE_URL: refused"
        } else {
            "DATABASE_URL: cannot connect to PostgreSQL"
        }
    }
}

impl From<sqlx::Error> for StoreError {
    // `?` in a store method calls this: the caller's location is that line.
    #[track_caller]
    fn from(err: sqlx::Error) -> Self {
        let at = Location::caller();
        match err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => Self::Conflict {
                constraint: db.constraint().unwrap_or_default().to_owned(),
            },
            sqlx::Error::ColumnDecode { ref source, .. } => Self::Corrupt(source.to_string()),
            ref e if sqlx_unavailable(e) => Self::Unavailable { source: err, at },
            other => Self::Database { source: other, at },
        }
    }
}

/// A conversion that cannot fail (a row type's `From`), for code generic
/// over conversions that can.
impl From<std::convert::Infallible> for StoreError {
    fn from(never: std::convert::Infallible) -> Self {
        match never {}
    }
}

/// Whether `err` (a [`StoreError`] or an `sqlx::Error`, as the source of
/// another error or not) says PostgreSQL is unreachable, slow or going away,
/// rather than that the request was wrong. Callers that carry errors as
/// `anyhow` walk its chain with this.
#[must_use]
pub fn is_unavailable(err: &(dyn std::error::Error + 'static)) -> bool {
    if let Some(store) = err.downcast_ref::<StoreError>() {
        return matches!(store, StoreError::Unavailable { .. });
    }
    err.downcast_ref::<sqlx::Error>()
        .is_some_and(sqlx_unavailable)
}

/// The pool's acquire timed out, the connection broke, a statement was
/// cancelled by `statement_timeout` (SQLSTATE 57014), or the server is
/// shutting down or starting (57P01–57P03, class 08 connection exceptions).
fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code == "57014" || code.starts_with("57P") || code.starts_with("08")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_timeout_and_a_lost_connection_are_unavailable_and_a_missing_row_is_not() {
        assert!(matches!(
            StoreError::from(sqlx::Error::PoolTimedOut),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionReset
            ))),
            StoreError::Unavailable { .. }
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::RowNotFound),
            StoreError::NotFound
        ));
        assert!(matches!(
            StoreError::from(sqlx::Error::Protocol("odd".into())),
            StoreError::Database { .. }
        ));
        assert!(is_unavailable(&StoreError::from(sqlx::Error::PoolTimedOut)));
        assert!(is_unavailable(&sqlx::Error::PoolTimedOut));
        assert!(!is_unavailable(&StoreError::NotFound));
    }

    fn failing_query() -> Result<(), StoreError> {
        Err(sqlx::Error::Protocol("odd".into()))?;
        Ok(())
    }

    #[test]
    fn a_database_error_names_the_store_line_whose_statement_failed() {
        let err = failing_query().unwrap_err();
        let StoreError::Database { at, .. } = err else {
            panic!("expected a database error, got {err:?}");
        };
        assert!(at.file().ends_with("error.rs"), "{at}");
        let line = line!();
        // `failing_query`'s `?` is a few lines above this test.
        assert!(at.line() < line && at.line() + 12 > line, "{at}");
        assert!(err_text().contains("error.rs:"), "{}", err_text());
    }

    fn err_text() -> String {
        failing_query().unwrap_err().to_string()
    }
}
