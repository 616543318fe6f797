//! The `ferry serve` configuration: the `ferry.toml` file (every key optional, unknown keys
//! refused with the key's name), environment variables and command-line flags, merged with
//! precedence flags > environment > file > defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::credentials::KeyPair;
use crate::error::Error;

/// Default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
/// Default data directory, relative to the working directory.
pub const DEFAULT_DATA_DIR: &str = "ferry-data";

/// Environment variables read by [`ConfigOverrides::from_env`] and [`env_credentials`].
pub const ENV_LISTEN: &str = "FERRY_LISTEN";
pub const ENV_DATA_DIR: &str = "FERRY_DATA_DIR";
pub const ENV_LOG_FORMAT: &str = "FERRY_LOG_FORMAT";
pub const ENV_LOG_LEVEL: &str = "FERRY_LOG";
pub const ENV_SECRET_ID: &str = "FERRY_SECRET_ID";
pub const ENV_SECRET_KEY: &str = "FERRY_SECRET_KEY";
pub const ENV_ALLOWED_HOSTS: &str = "FERRY_ALLOWED_HOSTS";
pub const ENV_INSECURE_HTTP: &str = "FERRY_INSECURE_HTTP";
pub const ENV_STORE: &str = "FERRY_STORE";
pub const ENV_NODE_ID: &str = "FERRY_NODE_ID";

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl LogFormat {
    /// `text` or `json`.
    pub fn parse(s: &str) -> Option<LogFormat> {
        match s {
            "text" => Some(LogFormat::Text),
            "json" => Some(LogFormat::Json),
            _ => None,
        }
    }
}

/// The whole configuration, defaults filled in.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// `IP:PORT` to listen on.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// The data directory (job store, generated credentials).
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    #[serde(default)]
    pub log: LogConfig,
    /// Serve HTTPS with this certificate and key. Unset: HTTPS with a certificate generated
    /// into the data directory when listening on anything but loopback, unless `insecure_http`.
    #[serde(default)]
    pub tls: Option<TlsConfig>,
    /// Serve plain HTTP on a non-loopback address (`--insecure-http`, `FERRY_INSECURE_HTTP=1`).
    #[serde(default)]
    pub insecure_http: bool,
    /// API key pairs; `FERRY_SECRET_ID`/`FERRY_SECRET_KEY` add one.
    #[serde(default)]
    pub credentials: Vec<KeyPair>,
    #[serde(default)]
    pub limits: LimitsConfig,
    #[serde(default)]
    pub jobs: JobsConfig,
    /// Host names requests may be signed for besides the server's own addresses (`NAME` or
    /// `NAME:PORT`; `*`: any). `FERRY_ALLOWED_HOSTS` (comma-separated) adds to them.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    #[serde(default)]
    pub store: StoreConfig,
    #[serde(default)]
    pub cluster: ClusterConfig,
}

/// `[cluster]`: this node's place among several sharing a MySQL job store.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterConfig {
    /// This node's id, unique in the cluster (`--node-id`, `FERRY_NODE_ID`); default
    /// `HOSTNAME:PORT`.
    #[serde(default)]
    pub node_id: Option<String>,
    /// How long a job's lease lasts without renewal: a dead node's jobs are resumed elsewhere
    /// after at most this plus one claim interval.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
    /// How often a node renews its leases, claims jobs and takes queued actions.
    #[serde(default = "default_claim_interval_seconds")]
    pub claim_interval_seconds: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            node_id: None,
            lease_seconds: default_lease_seconds(),
            claim_interval_seconds: default_claim_interval_seconds(),
        }
    }
}

fn default_lease_seconds() -> u64 {
    10
}
fn default_claim_interval_seconds() -> u64 {
    2
}

/// `[store]`: where the job store is.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// `sqlite` (default: `DATA_DIR/ferry.db`) or `mysql://USER@HOST:PORT/DB` (a store several
    /// nodes share; the password in `FERRY_STORE_PASSWORD`). Checked by the job service.
    #[serde(default)]
    pub url: Option<String>,
}

impl StoreConfig {
    /// The URL with any password in it replaced by `***`, for messages.
    pub fn redacted(&self) -> Option<String> {
        self.url.as_ref().map(|u| redact_url(u))
    }
}

/// `scheme://user:password@rest` → `scheme://user:***@rest`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    match rest.rsplit_once('@') {
        Some((auth, host)) if auth.contains(':') => {
            let user = auth.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_string(),
    }
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &self.redacted())
            .finish()
    }
}

/// `[log]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    #[serde(default)]
    pub format: LogFormat,
    /// A tracing `EnvFilter` directive, e.g. `info,ferry_replay=debug`.
    #[serde(default)]
    pub level: Option<String>,
}

/// `[tls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// PEM certificate chain.
    pub cert: PathBuf,
    /// PEM private key.
    pub key: PathBuf,
}

/// `[limits]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Calls per second per action; unset: the action's own limit (Tencent's: 20).
    #[serde(default)]
    pub requests_per_second: Option<u32>,
    /// Calls per second of each `Describe*` action; unset: the action's own limit (50 for
    /// DescribeMigrateJobs).
    #[serde(default)]
    pub describe_requests_per_second: Option<u32>,
    /// Larger bodies are answered `RequestSizeLimitExceeded`.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Requests whose timestamp is further from the server's clock are answered
    /// `AuthFailure.SignatureExpire`.
    #[serde(default = "default_skew")]
    pub signature_max_skew_seconds: u64,
    /// Client connections served at once; more wait until one ends.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// A client has this long to send its request headers (and finish the TLS handshake), and
    /// to send each part of its body; a body may take four times as long in all.
    #[serde(default = "default_client_timeout")]
    pub client_timeout_seconds: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            requests_per_second: None,
            describe_requests_per_second: None,
            max_body_bytes: default_max_body_bytes(),
            signature_max_skew_seconds: default_skew(),
            max_connections: default_max_connections(),
            client_timeout_seconds: default_client_timeout(),
        }
    }
}

impl LimitsConfig {
    /// The rate limit of `action`: the configured value for its kind when set, else the
    /// handler's (`handler_limit`).
    pub fn requests_per_second_for(&self, action: &str, handler_limit: u32) -> u32 {
        let configured = if action.starts_with("Describe") {
            self.describe_requests_per_second
        } else {
            self.requests_per_second
        };
        configured.unwrap_or(handler_limit).max(1)
    }
}

/// `[jobs]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Jobs running at once.
    #[serde(default = "default_max_running")]
    pub max_running: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig {
            max_running: default_max_running(),
        }
    }
}

fn default_listen() -> String {
    DEFAULT_LISTEN.to_string()
}
fn default_data_dir() -> PathBuf {
    PathBuf::from(DEFAULT_DATA_DIR)
}
fn default_max_body_bytes() -> usize {
    1_048_576
}
fn default_skew() -> u64 {
    300
}
fn default_max_connections() -> usize {
    1024
}
fn default_client_timeout() -> u64 {
    30
}
fn default_max_running() -> usize {
    4
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: default_listen(),
            data_dir: default_data_dir(),
            log: LogConfig::default(),
            tls: None,
            insecure_http: false,
            credentials: Vec::new(),
            limits: LimitsConfig::default(),
            jobs: JobsConfig::default(),
            allowed_hosts: Vec::new(),
            store: StoreConfig::default(),
            cluster: ClusterConfig::default(),
        }
    }
}

/// Settings given on the command line or in the environment; `None` leaves the file's value.
#[derive(Debug, Clone, Default)]
pub struct ConfigOverrides {
    pub listen: Option<String>,
    pub data_dir: Option<PathBuf>,
    pub log_format: Option<LogFormat>,
    pub log_level: Option<String>,
    /// Added to `allowed_hosts`.
    pub allowed_hosts: Vec<String>,
    pub insecure_http: Option<bool>,
    /// `store.url` (`--store`, `FERRY_STORE`).
    pub store: Option<String>,
    /// `cluster.node_id` (`--node-id`, `FERRY_NODE_ID`).
    pub node_id: Option<String>,
}

impl ConfigOverrides {
    /// `FERRY_LISTEN`, `FERRY_DATA_DIR`, `FERRY_LOG_FORMAT` (text|json), `FERRY_LOG` (level),
    /// `FERRY_ALLOWED_HOSTS` (comma-separated), `FERRY_INSECURE_HTTP` (1/true/yes or 0/false/no),
    /// `FERRY_STORE` (the job store), `FERRY_NODE_ID`.
    pub fn from_env() -> Result<ConfigOverrides, Error> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// As [`ConfigOverrides::from_env`], reading variables through `lookup`.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ConfigOverrides, Error> {
        let nonempty = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        let log_format = match nonempty(ENV_LOG_FORMAT) {
            None => None,
            Some(v) => Some(LogFormat::parse(v.trim()).ok_or_else(|| Error::ConfigValue {
                setting: ENV_LOG_FORMAT.to_string(),
                message: format!("{v:?} is not a log format; use text or json"),
            })?),
        };
        let insecure_http = match nonempty(ENV_INSECURE_HTTP) {
            None => None,
            Some(v) => Some(match v.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "yes" | "on" => true,
                "0" | "false" | "no" | "off" => false,
                _ => {
                    return Err(Error::ConfigValue {
                        setting: ENV_INSECURE_HTTP.to_string(),
                        message: format!("{v:?} is not a boolean; use 1 or 0"),
                    })
                }
            }),
        };
        Ok(ConfigOverrides {
            insecure_http,
            store: nonempty(ENV_STORE),
            node_id: nonempty(ENV_NODE_ID),
            listen: nonempty(ENV_LISTEN),
            data_dir: nonempty(ENV_DATA_DIR).map(PathBuf::from),
            log_format,
            log_level: nonempty(ENV_LOG_LEVEL),
            allowed_hosts: nonempty(ENV_ALLOWED_HOSTS)
                .map(|v| {
                    v.split(',')
                        .map(|h| h.trim().to_string())
                        .filter(|h| !h.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// The key pair of `FERRY_SECRET_ID` / `FERRY_SECRET_KEY`, when both are set; an error when only
/// one is.
pub fn env_credentials(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<KeyPair>, Error> {
    let id = lookup(ENV_SECRET_ID).filter(|v| !v.is_empty());
    let key = lookup(ENV_SECRET_KEY).filter(|v| !v.is_empty());
    match (id, key) {
        (Some(secret_id), Some(secret_key)) => Ok(Some(KeyPair {
            secret_id,
            secret_key,
        })),
        (None, None) => Ok(None),
        (Some(_), None) => Err(Error::ConfigValue {
            setting: ENV_SECRET_KEY.to_string(),
            message: format!("{ENV_SECRET_ID} is set but {ENV_SECRET_KEY} is not; set both or neither"),
        }),
        (None, Some(_)) => Err(Error::ConfigValue {
            setting: ENV_SECRET_ID.to_string(),
            message: format!("{ENV_SECRET_KEY} is set but {ENV_SECRET_ID} is not; set both or neither"),
        }),
    }
}

impl ServerConfig {
    /// Parses and checks the text of a config file (`path` names it in errors).
    pub fn parse(text: &str, path: &Path) -> Result<ServerConfig, Error> {
        let config: ServerConfig = toml::from_str(text).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            message: format!(
                "{}; fix or remove that key (the keys are listed in docs/operations.md)",
                e.to_string().trim_end()
            ),
        })?;
        config.validate().map_err(|e| match e {
            Error::ConfigValue { setting, message } => Error::ConfigFile {
                path: path.to_path_buf(),
                message: format!("{setting}: {message}"),
            },
            other => other,
        })?;
        Ok(config)
    }

    /// Reads the config file, or the defaults when `path` is `None`.
    pub fn load(path: Option<&Path>) -> Result<ServerConfig, Error> {
        let Some(path) = path else {
            return Ok(ServerConfig::default());
        };
        let text = std::fs::read_to_string(path).map_err(|e| Error::ConfigFile {
            path: path.to_path_buf(),
            message: format!("cannot be read: {e}; check the path given with --config"),
        })?;
        ServerConfig::parse(&text, path)
    }

    /// Applies flags or environment settings over this configuration, then checks it.
    pub fn apply(&mut self, overrides: &ConfigOverrides) -> Result<(), Error> {
        if let Some(listen) = &overrides.listen {
            self.listen = listen.clone();
        }
        if let Some(dir) = &overrides.data_dir {
            self.data_dir = dir.clone();
        }
        if let Some(format) = overrides.log_format {
            self.log.format = format;
        }
        if let Some(level) = &overrides.log_level {
            self.log.level = Some(level.clone());
        }
        if let Some(store) = &overrides.store {
            self.store.url = Some(store.clone());
        }
        if let Some(id) = &overrides.node_id {
            self.cluster.node_id = Some(id.clone());
        }
        if let Some(insecure) = overrides.insecure_http {
            self.insecure_http = insecure;
        }
        for host in &overrides.allowed_hosts {
            if !self.allowed_hosts.contains(host) {
                self.allowed_hosts.push(host.clone());
            }
        }
        self.validate()
    }

    /// HTTPS with a generated certificate is due: no `[tls]`, not `insecure_http`, and the
    /// listen address is not a loopback one.
    pub fn wants_generated_tls(&self) -> Result<bool, Error> {
        Ok(self.tls.is_none() && !self.insecure_http && !self.listen_addr()?.ip().is_loopback())
    }

    /// The listen address.
    pub fn listen_addr(&self) -> Result<SocketAddr, Error> {
        self.listen.trim().parse().map_err(|_| Error::ConfigValue {
            setting: "listen".to_string(),
            message: format!(
                "{:?} is not an address like 127.0.0.1:8080 (IP:PORT; port 0 picks a free port)",
                self.listen
            ),
        })
    }

    /// Checks values that the file's types alone do not.
    pub fn validate(&self) -> Result<(), Error> {
        let bad = |setting: &str, message: String| Error::ConfigValue {
            setting: setting.to_string(),
            message,
        };
        self.listen_addr()?;
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "is empty; give a directory path".to_string()));
        }
        for (name, value) in [
            ("limits.requests_per_second", self.limits.requests_per_second),
            (
                "limits.describe_requests_per_second",
                self.limits.describe_requests_per_second,
            ),
        ] {
            if value == Some(0) {
                return Err(bad(name, "must be at least 1".to_string()));
            }
        }
        if self.limits.max_body_bytes < 1024 {
            return Err(bad(
                "limits.max_body_bytes",
                format!("{} is too small; use at least 1024", self.limits.max_body_bytes),
            ));
        }
        if self.limits.signature_max_skew_seconds == 0 {
            return Err(bad(
                "limits.signature_max_skew_seconds",
                "must be at least 1".to_string(),
            ));
        }
        if !(1..=3600).contains(&self.limits.client_timeout_seconds) {
            return Err(bad(
                "limits.client_timeout_seconds",
                format!(
                    "{} is out of range; use 1 to 3600",
                    self.limits.client_timeout_seconds
                ),
            ));
        }
        if self.limits.max_connections == 0 {
            return Err(bad("limits.max_connections", "must be at least 1".to_string()));
        }
        if let Some(id) = &self.cluster.node_id {
            if id.trim().is_empty() || id.len() > 255 || id.chars().any(char::is_control) {
                return Err(bad(
                    "cluster.node_id",
                    "must be 1 to 255 printable characters".to_string(),
                ));
            }
        }
        if !(2..=3600).contains(&self.cluster.lease_seconds) {
            return Err(bad(
                "cluster.lease_seconds",
                format!("{} is out of range; use 2 to 3600", self.cluster.lease_seconds),
            ));
        }
        if self.cluster.claim_interval_seconds == 0
            || self.cluster.claim_interval_seconds * 2 > self.cluster.lease_seconds
        {
            return Err(bad(
                "cluster.claim_interval_seconds",
                format!(
                    "{} is out of range; use 1 to half of cluster.lease_seconds ({})",
                    self.cluster.claim_interval_seconds, self.cluster.lease_seconds
                ),
            ));
        }
        if self.jobs.max_running == 0 {
            return Err(bad("jobs.max_running", "must be at least 1".to_string()));
        }
        for (i, pair) in self.credentials.iter().enumerate() {
            if pair.secret_id.trim().is_empty() || pair.secret_key.is_empty() {
                return Err(bad(
                    &format!("credentials[{i}]"),
                    "secret_id and secret_key must not be empty".to_string(),
                ));
            }
            if pair.secret_id.trim() != pair.secret_id {
                return Err(bad(
                    &format!("credentials[{i}].secret_id"),
                    "has spaces around it; remove them".to_string(),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_file_parses() {
        let text = r#"
listen = "0.0.0.0:9000"
data_dir = "/var/lib/ferry"
[log]
format = "json"
level = "info,ferry_replay=debug"
[tls]
cert = "tls/cert.pem"
key = "tls/key.pem"
[[credentials]]
secret_id = "AKIDexample"
secret_key = "example-secret-key"
[limits]
requests_per_second = 20
describe_requests_per_second = 50
max_body_bytes = 1048576
signature_max_skew_seconds = 300
[jobs]
max_running = 4
[store]
url = "mysql://ferry:store-pw@db.example:3306/ferry"
"#;
        let c = ServerConfig::parse(text, Path::new("ferry.toml")).unwrap();
        assert_eq!(c.listen, "0.0.0.0:9000");
        assert_eq!(c.log.format, LogFormat::Json);
        assert_eq!(c.credentials.len(), 1);
        assert_eq!(c.limits.requests_per_second_for("DescribeMigrateJobs", 7), 50);
        assert_eq!(c.limits.requests_per_second_for("CreateMigrateJob", 7), 20);
        assert!(
            !format!("{c:?}").contains("example-secret-key"),
            "Debug hides keys"
        );
        assert!(
            !format!("{c:?}").contains("store-pw"),
            "Debug hides the store password"
        );
        assert_eq!(
            c.store.redacted().as_deref(),
            Some("mysql://ferry:***@db.example:3306/ferry")
        );
    }

    #[test]
    fn defaults_and_precedence() {
        let mut c = ServerConfig::parse("", Path::new("f.toml")).unwrap();
        assert_eq!(c.listen, DEFAULT_LISTEN);
        assert_eq!(c.data_dir, PathBuf::from(DEFAULT_DATA_DIR));
        assert_eq!(c.limits.max_body_bytes, 1_048_576);
        assert_eq!(c.limits.requests_per_second_for("CreateMigrateJob", 20), 20);
        let env = ConfigOverrides::from_lookup(|n| match n {
            ENV_LISTEN => Some("127.0.0.1:1".into()),
            ENV_LOG_FORMAT => Some("json".into()),
            _ => None,
        })
        .unwrap();
        c.apply(&env).unwrap();
        c.apply(&ConfigOverrides {
            listen: Some("127.0.0.1:2".into()),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(c.listen, "127.0.0.1:2");
        assert_eq!(c.log.format, LogFormat::Json);
    }

    #[test]
    fn errors_name_the_key_and_the_fix() {
        let err = ServerConfig::parse("lisen = \"x\"", Path::new("ferry.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("ferry.toml") && err.contains("lisen") && err.contains("fix"),
            "{err}"
        );
        let err = ServerConfig::parse("[limits]\nmax_requests = 1", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_requests"), "{err}");
        let err = ServerConfig::parse("listen = \"localhost\"", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen") && err.contains("127.0.0.1:8080"), "{err}");
        let err = ServerConfig::parse("[tls]\ncert = \"c.pem\"", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("key"), "{err}");
        let err = ServerConfig::parse("[jobs]\nmax_running = 0", Path::new("f.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("jobs.max_running"), "{err}");
        assert!(ConfigOverrides::from_lookup(|n| (n == ENV_LOG_FORMAT).then(|| "xml".into())).is_err());
        assert!(env_credentials(|n| (n == ENV_SECRET_ID).then(|| "AKID".into())).is_err());
    }
}
