//! Ferry's HTTP API front end, wire-compatible with Tencent Cloud API 3.0 clients.
//!
//! This crate owns everything between the socket and an action: authentication, parameter
//! decoding, the `Response` envelope, rate limits, credentials and the server. It knows nothing
//! about jobs: actions are served by an [`ActionHandler`] (the job service implements it).

pub mod handler;

pub use handler::{ActionHandler, ActionInfo, ApiCall, ApiError, BoxFuture, ParamEncoding};
