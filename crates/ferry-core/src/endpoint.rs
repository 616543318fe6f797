//! Where a MySQL/MariaDB server is and how Ferry connects to it.
//!
//! Passwords are held in [`Secret`], whose `Debug`/`Display` print `***` and whose serialized form
//! is empty, so a password never reaches a log line or an API response.
//!
//! [`Endpoint::connect`] runs the handshake in a task of its own: mysql_common panics
//! (`expect("valid PEM is mandatory here")`) when a MySQL server answers `caching_sha2_password`
//! full authentication over plain TCP without a usable RSA public key, and the panic then ends
//! that task only, reported as a definite [`CoreError::Handshake`]. Pools ([`Endpoint::pool`])
//! connect inside mysql_async: take their connections with [`crate::connect::pooled`].
//!
//! TLS: every connection, pooled or not, is made from [`Endpoint::opts`], which applies the
//! endpoint's [`TlsConfig`] (see [`crate::tls`] for the modes and how `preferred` and `verify_ca`
//! are done). A TLS failure at connect time is a definite error naming the side, the cause and the
//! field to change.

use std::fmt;
use std::time::Duration;

use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::CoreError;
use crate::tls::{self, TlsConfig};

/// A secret string (a password). Never printed, serialized as an empty string.
#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    /// The secret itself, for the one place that needs it (the connection handshake).
    pub fn expose(&self) -> &str {
        &self.0
    }
    /// True when no secret was given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("")
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Secret(String::deserialize(d)?))
    }
}

/// A server Ferry reads from or writes to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Host name or IP address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// Account name.
    pub user: String,
    /// Account password.
    pub password: Secret,
    /// Seconds to wait for a TCP connection before giving up.
    pub connect_timeout: Duration,
    /// TLS (default: `preferred`, as the mysql client).
    pub tls: TlsConfig,
}

impl Endpoint {
    /// An endpoint with the default connect timeout (10 s).
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>, password: Secret) -> Self {
        Endpoint {
            host: host.into(),
            port,
            user: user.into(),
            password,
            connect_timeout: Duration::from_secs(10),
            tls: TlsConfig::default(),
        }
    }

    /// The same endpoint with these TLS settings.
    pub fn with_tls(mut self, tls: TlsConfig) -> Self {
        self.tls = tls;
        self
    }

    /// `source` or `target` when the TLS field says so (for messages), else `server`.
    pub fn side(&self) -> &'static str {
        if self.tls.field.contains("Source") {
            "source"
        } else if self.tls.field.contains("Target") {
            "target"
        } else {
            "server"
        }
    }

    /// The probe `opts` needs (see [`crate::tls`]): cached, else run now. Blocking when not cached
    /// (a TCP connect and the server's greeting); [`Endpoint::connect`] runs it on a blocking
    /// thread before it calls `opts`, and on a multi-threaded runtime this one moves the worker
    /// aside first.
    fn tls_probe(&self) -> Option<tls::Probe> {
        if let Some(p) = tls::cached_probe(&self.host, self.port, &self.tls) {
            return Some(p);
        }
        let run = || tls::probe_blocking(&self.host, self.port, self.connect_timeout, &self.tls);
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }

    /// Warms the TLS probe cache without blocking the runtime (call before `opts` in async code
    /// that builds its own connections).
    pub async fn prepare_tls(&self) {
        let _ = tls::probe_async(&self.host, self.port, self.connect_timeout, &self.tls).await;
    }

    /// The message of a connection failure: the TLS explanation when TLS caused it (naming the
    /// side, the cause and the field to change), else the client library's.
    pub fn connect_error(&self, e: mysql_async::Error) -> CoreError {
        if let Some(m) = tls::explain(&e, self.side(), &self.host, &self.tls) {
            tls::forget_probe(&self.host, self.port);
            return CoreError::Tls {
                server: self.display_name(),
                message: m,
            };
        }
        if let mysql_async::Error::Server(s) = &e {
            if s.code == 1045 && !self.tls_in_use() {
                return CoreError::mysql(
                    format!(
                        "cannot connect to {} ({}): if the account requires TLS (REQUIRE SSL/X509),                          set {}.Mode to required or stricter",
                        self.display_name(),
                        self.side(),
                        self.tls.field_name()
                    ),
                    e,
                );
            }
        }
        CoreError::mysql(format!("cannot connect to {}", self.display_name()), e)
    }

    /// True when connections of this endpoint use TLS (as far as the probe cache knows).
    pub fn tls_in_use(&self) -> bool {
        match self.tls.mode {
            tls::TlsMode::Disabled => false,
            tls::TlsMode::Preferred => {
                tls::cached_probe(&self.host, self.port, &self.tls).is_some_and(|p| p.offers_tls)
            }
            _ => true,
        }
    }

    /// Parses `mysql://user:password@host:port` (used by tests and the CLI's `--source` flags).
    pub fn from_url(url: &str) -> Result<Self, CoreError> {
        let bad = |m: &str| CoreError::InvalidConfig {
            field: "url".into(),
            message: format!("{m}; expected mysql://user:password@host:port"),
        };
        let rest = url
            .strip_prefix("mysql://")
            .ok_or_else(|| bad("missing mysql:// scheme"))?;
        let (cred, hostport) = rest.rsplit_once('@').ok_or_else(|| bad("missing user@"))?;
        let (user, pass) = cred.split_once(':').unwrap_or((cred, ""));
        let hostport = hostport.trim_end_matches('/');
        let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "3306"));
        let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
        Ok(Endpoint::new(host, port, user, Secret::new(pass)))
    }

    /// `user@host:port`, safe to log.
    pub fn display_name(&self) -> String {
        format!("{}@{}:{}", self.user, self.host, self.port)
    }

    /// Connection options: TCP, no default database, `setup` statements run on every new or reset
    /// connection of a pool.
    pub fn opts(&self, setup: Vec<String>) -> Opts {
        let ssl = self.tls.ssl_opts(self.tls_probe().as_ref());
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .ssl_opts(ssl)
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.expose().to_string()))
            .prefer_socket(false)
            .tcp_nodelay(true)
            .stmt_cache_size(Some(64))
            .setup(setup)
            .into()
    }

    /// A pool of at most `max` connections with `setup` run on each connection.
    pub fn pool(&self, max: usize, setup: Vec<String>) -> Pool {
        let constraints = PoolConstraints::new(0, max.max(1)).unwrap_or_default();
        let opts = OptsBuilder::from_opts(self.opts(setup))
            .pool_opts(PoolOpts::default().with_constraints(constraints));
        Pool::new(opts)
    }

    /// One connection, with a connect timeout, and a message that names the server on failure.
    /// A panic inside the client library during the handshake is a definite
    /// [`CoreError::Handshake`], not a crash of the caller.
    pub async fn connect(&self, setup: Vec<String>) -> Result<mysql_async::Conn, CoreError> {
        self.prepare_tls().await;
        let mut task = tokio::spawn(mysql_async::Conn::new(self.opts(setup)));
        match tokio::time::timeout(self.connect_timeout, &mut task).await {
            Ok(Ok(r)) => r.map_err(|e| self.connect_error(e)),
            Ok(Err(e)) => Err(CoreError::Handshake {
                server: self.display_name(),
                message: join_error_text(e),
            }),
            Err(_) => {
                task.abort();
                Err(CoreError::Unexpected(format!(
                    "cannot connect to {}: no answer within {} s (host unreachable or filtered?)",
                    self.display_name(),
                    self.connect_timeout.as_secs()
                )))
            }
        }
    }
}

/// What a failed connect task says: the panic message, or that it was cancelled.
pub(crate) fn join_error_text(e: tokio::task::JoinError) -> String {
    if !e.is_panic() {
        return "the connect task was cancelled".into();
    }
    let p = e.into_panic();
    let text = p
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    if text.contains("PEM") || text.contains("base64") || text.contains("expecting") {
        format!(
            "the server's RSA public key is unusable ({text}): caching_sha2_password full \
             authentication over an unencrypted connection needs the server's RSA key pair \
             (caching_sha2_password_private_key_path / _public_key_path); fix the key files, or \
             log in once as this account over TLS or a socket so the server caches the password"
        )
    } else {
        format!("the client library panicked during the handshake: {text}")
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A server that asks for caching_sha2_password full authentication and then answers the
    /// public key request with something that is not a PEM key (mysql_common panics on it).
    pub(crate) fn fake_server_with_a_bad_rsa_key() -> u16 {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = l.local_addr().expect("addr").port();
        std::thread::spawn(move || {
            let Ok((mut c, _)) = l.accept() else { return };
            let send = |c: &mut std::net::TcpStream, seq: u8, body: &[u8]| {
                let n = body.len() as u32;
                let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, seq];
                p.extend_from_slice(body);
                c.write_all(&p)
            };
            let recv = |c: &mut std::net::TcpStream| -> std::io::Result<Vec<u8>> {
                let mut h = [0u8; 4];
                c.read_exact(&mut h)?;
                let n = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
                let mut b = vec![0u8; n];
                c.read_exact(&mut b)?;
                Ok(b)
            };
            // protocol 10 handshake, capabilities without SSL, plugin caching_sha2_password
            let caps: u32 = 0x01ff_f7ff;
            let mut h = vec![10u8];
            h.extend_from_slice(b"8.0.36\0");
            h.extend_from_slice(&1u32.to_le_bytes());
            h.extend_from_slice(b"abcdefgh\0");
            h.extend_from_slice(&(caps as u16).to_le_bytes());
            h.push(255);
            h.extend_from_slice(&2u16.to_le_bytes());
            h.extend_from_slice(&((caps >> 16) as u16).to_le_bytes());
            h.push(21);
            h.extend_from_slice(&[0u8; 10]);
            h.extend_from_slice(b"ijklmnopqrst\0");
            h.extend_from_slice(b"caching_sha2_password\0");
            let _ = send(&mut c, 0, &h);
            let _ = recv(&mut c); // handshake response
            let _ = send(&mut c, 2, &[0x01, 0x04]); // perform full authentication
            let _ = recv(&mut c); // public key request
            let _ = send(&mut c, 4, b"\x01not a PEM key");
            let _ = recv(&mut c);
        });
        port
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_panic_in_the_handshake_is_a_definite_error() {
        let port = fake_server_with_a_bad_rsa_key();
        // the fake server answers one connection: no TLS probe
        let e = Endpoint::new("127.0.0.1", port, "u", Secret::new("hunter2"))
            .with_tls(TlsConfig::mode(tls::TlsMode::Disabled));
        let err = e.connect(vec![]).await.expect_err("no usable RSA key");
        assert!(matches!(err, CoreError::Handshake { .. }), "{err:?}");
        assert_eq!(err.kind(), crate::ErrorKind::Definite);
        let m = err.to_string();
        assert!(
            m.contains("RSA public key is unusable") && m.contains(&e.display_name()),
            "{m}"
        );
        assert!(!m.contains("hunter2"));
    }

    #[test]
    fn secrets_never_print() {
        let e = Endpoint::new("h", 1, "u", Secret::new("hunter2"));
        assert!(!format!("{e:?}").contains("hunter2"));
        assert_eq!(serde_json::to_string(&e.password).unwrap(), "\"\"");
    }

    #[test]
    fn url_parses() {
        let e = Endpoint::from_url("mysql://root:p%w@127.0.0.1:3307").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port, e.user.as_str()),
            ("127.0.0.1", 3307, "root")
        );
        assert_eq!(e.password.expose(), "p%w");
        assert!(Endpoint::from_url("http://x").is_err());
    }
}
