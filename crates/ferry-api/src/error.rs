//! Errors of setting up and running the server: configuration, data directory, credentials, TLS
//! and the listener. All are definite (retrying does not help until the cause is fixed), except
//! [`Error::Io`] while serving, which is transient. Calls answered to clients use
//! [`crate::ApiError`]; the client has its own [`crate::client::ClientError`].

use std::path::PathBuf;

/// An error starting or running `ferry serve`. Messages name the file, directory or setting and
/// say how to fix it; they never contain a secret.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the config file {path}: {message}")]
    ConfigFile { path: PathBuf, message: String },
    #[error("{setting}: {message}")]
    ConfigValue { setting: String, message: String },
    #[error("the data directory {path}: {message}")]
    DataDir { path: PathBuf, message: String },
    #[error("the credentials file {path}: {message}")]
    CredentialsFile { path: PathBuf, message: String },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("TLS: {message}")]
    Tls { message: String },
    #[error("cannot listen on {addr}: {source}; choose another address with --listen or `listen` in the config file")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("serving: {0}")]
    Io(#[from] std::io::Error),
}

impl Error {
    /// `true` when retrying later may succeed without changing anything.
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Io(_))
    }
}
