//! The crate's [`Error`].

/// What can go wrong reading or writing the event tables.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database failed or refused a statement.
    #[error("event store: {0}")]
    Database(#[from] sqlx::Error),
    /// A payload could not be written or read as JSON.
    #[error("event payload: {0}")]
    Json(#[from] serde_json::Error),
    /// A stored row holds a value this build cannot read (an unknown event
    /// type, actor or aggregate kind): written by a newer build, or edited
    /// by hand.
    #[error("unreadable event row: {0}")]
    Corrupt(String),
    /// A caller mistake in setting the stream up (two consumers with one
    /// name, a zero limit).
    #[error("event stream set-up: {0}")]
    Config(String),
}

/// The crate's result.
pub type Result<T, E = Error> = std::result::Result<T, E>;
