//! Connections opened in a task of their own, so that a panic of the client library during the
//! handshake is an error and not a crash of the caller.
//!
//! mysql_common panics (`expect("valid PEM is mandatory here")`, `crypto/der.rs`) when a MySQL
//! server answers `caching_sha2_password` full authentication over plain TCP without a usable
//! RSA public key, and mysql_async calls it through an infallible function
//! (`mysql_common::crypto::encrypt`), so the panic cannot be turned into an error inside the
//! library without patching mysql_async too. Every connection Ferry opens therefore runs its
//! handshake in a spawned task, where a panic ends that task only:
//! - [`Endpoint::connect`] (most connections);
//! - [`connect_with`]: one connection with adjusted options (the replay's target sessions);
//! - [`spawn_connect`]: the same with the client library's own error kept (the pre-check
//!   classifies it);
//! - [`pooled`] and [`ProtectedPool`]: a connection from a `mysql_async::Pool`, whose handshake
//!   runs inside `get_conn` (the verifier's pools). The pool's bookkeeping survives: its `GetConn` future
//!   gives back the connection slot when it is dropped, also while unwinding.

use std::time::Duration;

use mysql_async::{Conn, Opts, OptsBuilder, Pool};

use crate::endpoint::Endpoint;
use crate::error::CoreError;

/// Why [`spawn_connect`] has no connection.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The client library's error (network, server answer, TLS).
    Client(mysql_async::Error),
    /// The client library panicked during the handshake: the explanation.
    Panicked(String),
    /// No answer within the timeout.
    Timeout(Duration),
}

impl ConnectFailure {
    /// The error for a caller of `ep`: TLS and access explanations for a client error
    /// ([`Endpoint::connect_error`]), a definite [`CoreError::Handshake`] for a panic.
    pub fn into_core(self, ep: &Endpoint) -> CoreError {
        match self {
            ConnectFailure::Client(e) => ep.connect_error(e),
            ConnectFailure::Panicked(message) => CoreError::Handshake {
                server: ep.display_name(),
                message,
            },
            ConnectFailure::Timeout(t) => CoreError::Unexpected(format!(
                "cannot connect to {}: no answer within {} s (host unreachable or filtered?)",
                ep.display_name(),
                t.as_secs()
            )),
        }
    }
}

/// Opens one connection in a task of its own, with a timeout (`Duration::ZERO`: 10 s).
pub async fn spawn_connect(opts: impl Into<Opts>, timeout: Duration) -> Result<Conn, ConnectFailure> {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(10)
    } else {
        timeout
    };
    let mut task = tokio::spawn(Conn::new(opts.into()));
    match tokio::time::timeout(timeout, &mut task).await {
        Ok(Ok(r)) => r.map_err(ConnectFailure::Client),
        Ok(Err(e)) => Err(ConnectFailure::Panicked(crate::endpoint::join_error_text(e))),
        Err(_) => {
            task.abort();
            Err(ConnectFailure::Timeout(timeout))
        }
    }
}

/// One connection to `ep` with `setup` and options adjusted by `adjust`, with the endpoint's
/// connect timeout and error messages ([`Endpoint::connect`] with other options).
pub async fn connect_with(
    ep: &Endpoint,
    setup: Vec<String>,
    adjust: impl FnOnce(OptsBuilder) -> OptsBuilder,
) -> Result<Conn, CoreError> {
    ep.prepare_tls().await;
    let opts = adjust(OptsBuilder::from_opts(ep.opts(setup)));
    spawn_connect(opts, ep.connect_timeout)
        .await
        .map_err(|f| f.into_core(ep))
}

/// A connection from `pool` (a pool of `ep`'s, [`Endpoint::pool`]), its handshake in a task of
/// its own. No timeout: waiting for a free connection of a busy pool is normal.
pub async fn pooled(pool: &Pool, ep: &Endpoint) -> Result<Conn, CoreError> {
    let p = pool.clone();
    match tokio::spawn(async move { p.get_conn().await }).await {
        Ok(r) => r.map_err(|e| ep.connect_error(e)),
        Err(e) => Err(ConnectFailure::Panicked(crate::endpoint::join_error_text(e)).into_core(ep)),
    }
}

/// A `mysql_async::Pool` whose connections are taken with [`pooled`]: the only way Ferry uses
/// a pool, so that no pooled handshake runs in the caller's task.
#[derive(Clone)]
pub struct ProtectedPool {
    pool: Pool,
    ep: Endpoint,
}

impl ProtectedPool {
    /// A pool of at most `max` connections to `ep` with `setup` run on each ([`Endpoint::pool`]).
    pub fn new(ep: &Endpoint, max: usize, setup: Vec<String>) -> Self {
        ProtectedPool {
            pool: ep.pool(max, setup),
            ep: ep.clone(),
        }
    }

    /// A connection ([`pooled`]).
    pub async fn get_conn(&self) -> Result<Conn, CoreError> {
        pooled(&self.pool, &self.ep).await
    }

    /// Closes the pool's connections.
    pub async fn disconnect(self) -> Result<(), mysql_async::Error> {
        self.pool.disconnect().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::tests::fake_server_with_a_bad_rsa_key;
    use crate::tls::{TlsConfig, TlsMode};
    use crate::Secret;

    /// An endpoint of a fake server (which answers one connection: no TLS probe).
    fn endpoint(port: u16) -> Endpoint {
        Endpoint::new("127.0.0.1", port, "u", Secret::new("hunter2"))
            .with_tls(TlsConfig::mode(TlsMode::Disabled))
    }

    fn check(err: CoreError, e: &Endpoint) {
        assert!(matches!(err, CoreError::Handshake { .. }), "{err:?}");
        assert_eq!(err.kind(), crate::ErrorKind::Definite);
        let m = err.to_string();
        assert!(
            m.contains("RSA public key is unusable") && m.contains(&e.display_name()),
            "{m}"
        );
        assert!(!m.contains("hunter2"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_a_pooled_handshake_is_a_definite_error() {
        let port = fake_server_with_a_bad_rsa_key();
        let e = endpoint(port);
        let pool = ProtectedPool::new(&e, 2, vec![]);
        let err = pool.get_conn().await.expect_err("no usable RSA key");
        check(err, &e);
        // the pool gave the slot back: a second attempt fails the same way instead of waiting
        let port2 = fake_server_with_a_bad_rsa_key();
        let e2 = endpoint(port2);
        let pool2 = e2.pool(1, vec![]);
        check(pooled(&pool2, &e2).await.expect_err("first"), &e2);
        let again = tokio::time::timeout(Duration::from_secs(30), pooled(&pool2, &e2)).await;
        assert!(
            matches!(again, Ok(Err(_))),
            "the slot was not given back: {again:?}"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_with_adjusted_options_is_a_definite_error() {
        let port = fake_server_with_a_bad_rsa_key();
        let e = endpoint(port);
        let err = connect_with(&e, vec![], |o| o.client_found_rows(true))
            .await
            .expect_err("no usable RSA key");
        check(err, &e);
        let port = fake_server_with_a_bad_rsa_key();
        let opts = e.opts(vec![]);
        let opts = OptsBuilder::from_opts(opts).tcp_port(port);
        match spawn_connect(opts, Duration::ZERO).await {
            Err(ConnectFailure::Panicked(m)) => assert!(m.contains("RSA public key"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
