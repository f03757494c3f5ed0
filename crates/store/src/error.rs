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
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
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
    fn from(err: sqlx::Error) -> Self {
        match err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(ref db) if db.is_unique_violation() => Self::Conflict {
                constraint: db.constraint().unwrap_or_default().to_owned(),
            },
            sqlx::Error::ColumnDecode { ref source, .. } => Self::Corrupt(source.to_string()),
            other => Self::Database(other),
        }
    }
}
