//! Where a MySQL/MariaDB server is and how Ferry connects to it.
//!
//! Passwords are held in [`Secret`], whose `Debug`/`Display` print `***` and whose serialized form
//! is empty, so a password never reaches a log line or an API response.

use std::fmt;
use std::time::Duration;

use mysql_async::{Opts, OptsBuilder, Pool, PoolConstraints, PoolOpts};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{CoreError, MysqlResultExt};

/// A secret string (a password). Never printed, serialized as an empty string.
#[derive(Clone, Default, PartialEq, Eq)]
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
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
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
    pub async fn connect(&self, setup: Vec<String>) -> Result<mysql_async::Conn, CoreError> {
        let fut = mysql_async::Conn::new(self.opts(setup));
        match tokio::time::timeout(self.connect_timeout, fut).await {
            Ok(r) => r.ctx(|| format!("cannot connect to {}", self.display_name())),
            Err(_) => Err(CoreError::Unexpected(format!(
                "cannot connect to {}: no answer within {} s (host unreachable or filtered?)",
                self.display_name(),
                self.connect_timeout.as_secs()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
