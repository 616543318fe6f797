//! Ferry's HTTP API front end, wire-compatible with Tencent Cloud API 3.0 clients.
//!
//! This crate owns everything between the socket and an action: authentication ([`auth`]),
//! parameter decoding ([`params`]), the `Response` envelope ([`envelope`]), rate limits
//! ([`ratelimit`]), credentials ([`credentials`]), configuration ([`config`]), metrics
//! ([`metrics`]), the server ([`server`]), the web console ([`console`]) and a signing client
//! ([`client`]). It knows nothing
//! about jobs: actions are served by an [`ActionHandler`] (the job service implements it).

pub mod auth;
pub mod client;
pub mod config;
pub mod console;
pub mod credentials;
pub mod envelope;
pub mod error;
pub mod handler;
pub mod hosts;
pub mod idempotency;
pub mod metrics;
pub mod params;
pub mod ratelimit;
pub mod server;
pub mod tls;

pub use client::{Client, ClientError};
pub use config::ServerConfig;
pub use error::Error;
pub use handler::{ActionHandler, ActionInfo, ApiCall, ApiError, BoxFuture, ParamEncoding, SeriesSample};
