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
    /// Applying migrations failed.
    #[error("migration failed")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// Any other database error.
    #[error("database error")]
    Database(#[source] sqlx::Error),
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
