//! How a job of this worker fails, and the one place that decides whether
//! the failure is worth retrying: handlers answer [`Error`] and use `?` on
//! whatever they call; [`From<Error> for JobError`](JobError) sorts it into
//! transient (retried after backoff) or permanent (dead). What a failed
//! *delivery* records for its subscriber is not decided here but in
//! `deliver`: a delivery's own failure is state in PostgreSQL, not a job error.

use heliograph_jobs::{JobError, QueueError};
use heliograph_notify::SendError;
use heliograph_store::StoreError;

/// A job's failure, by where it happened.
#[derive(Debug)]
pub enum Error {
    /// PostgreSQL: a row that is not there (or not valid) never will be; a
    /// database that failed may answer later.
    Store(StoreError),
    /// Redis refused a push: it may accept later.
    Queue(QueueError),
    /// An outbox payload that does not parse: it never will.
    Malformed(serde_json::Error),
    /// A send (an account email): as the sender classified it.
    Send(SendError),
    /// Will never succeed, for the reason given.
    Permanent(anyhow::Error),
    /// May succeed later, for the reason given (an object store that did
    /// not answer).
    Transient(anyhow::Error),
}

impl Error {
    /// Whether a later attempt may succeed: the decision, for every source.
    #[must_use]
    pub const fn is_transient(&self) -> bool {
        match self {
            Self::Store(err) => !matches!(
                err,
                StoreError::NotFound | StoreError::Corrupt(_) | StoreError::Invalid(_)
            ),
            Self::Queue(_) | Self::Transient(_) => true,
            Self::Send(err) => err.is_transient(),
            Self::Malformed(_) | Self::Permanent(_) => false,
        }
    }

    /// The error with its causes, as logs and delivery records show it (an
    /// address a mail server quoted is masked).
    fn into_anyhow(self) -> anyhow::Error {
        match self {
            Self::Store(err) => err.into(),
            Self::Queue(err) => err.into(),
            Self::Malformed(err) => anyhow::Error::new(err).context("Malformed event payload"),
            Self::Send(err) => anyhow::anyhow!(err.redacted()),
            Self::Permanent(err) | Self::Transient(err) => err,
        }
    }
}

/// One line with the causes, as `anyhow` writes `{:#}`; an address a mail
/// server quoted is masked.
impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn chain(f: &mut std::fmt::Formatter<'_>, err: &dyn std::error::Error) -> std::fmt::Result {
            write!(f, "{err}")?;
            let mut source = err.source();
            while let Some(cause) = source {
                write!(f, ": {cause}")?;
                source = cause.source();
            }
            Ok(())
        }
        match self {
            Self::Store(err) => chain(f, err),
            Self::Queue(err) => chain(f, err),
            Self::Malformed(err) => {
                f.write_str("Malformed event payload: ")?;
                chain(f, err)
            }
            Self::Send(err) => f.write_str(&err.redacted()),
            Self::Permanent(err) | Self::Transient(err) => write!(f, "{err:#}"),
        }
    }
}

impl From<Error> for JobError {
    fn from(err: Error) -> Self {
        if err.is_transient() {
            Self::Transient(err.into_anyhow())
        } else {
            Self::Permanent(err.into_anyhow())
        }
    }
}

impl From<StoreError> for Error {
    fn from(err: StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<QueueError> for Error {
    fn from(err: QueueError) -> Self {
        Self::Queue(err)
    }
}

impl From<serde_json::Error> for Error {
    fn from(err: serde_json::Error) -> Self {
        Self::Malformed(err)
    }
}

impl From<SendError> for Error {
    fn from(err: SendError) -> Self {
        Self::Send(err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transient(err: impl Into<Error>) -> bool {
        matches!(JobError::from(err.into()), JobError::Transient(_))
    }

    #[test]
    fn a_missing_or_invalid_row_is_permanent_and_a_failing_database_is_not() {
        assert!(!transient(StoreError::NotFound));
        assert!(!transient(StoreError::Corrupt("kind".into())));
        assert!(transient(StoreError::from(sqlx::Error::Protocol(
            "odd".into()
        ))));
        assert!(transient(StoreError::from(sqlx_timeout())));
        assert!(transient(StoreError::Conflict {
            constraint: "deliveries_pkey".into()
        }));
    }

    #[test]
    fn a_malformed_payload_is_permanent_and_a_refused_push_is_not() {
        let malformed = serde_json::from_str::<u32>("x").expect_err("not a number");
        assert!(!transient(malformed));
        assert!(transient(QueueError::Timeout));
    }

    #[test]
    fn a_send_keeps_its_own_classification_and_masks_addresses() {
        assert!(transient(SendError::Transient("421 busy".into())));
        assert!(!transient(SendError::Permanent("550 no".into())));
        let line = Error::from(SendError::Permanent(
            "550 <jane@example.com> unknown".into(),
        ))
        .to_string();
        assert!(!line.contains("jane@"), "{line}");
    }

    fn sqlx_timeout() -> sqlx::Error {
        sqlx::Error::PoolTimedOut
    }
}
