//! Where the job store is: `sqlite` (the default: `DATA_DIR/ferry.db`) or
//! `mysql://USER[:PASSWORD]@HOST[:PORT]/DB[?tls=MODE&tls-ca=FILE]`, from `--store`,
//! `FERRY_STORE` or `store` in the config file. The password comes from `FERRY_STORE_PASSWORD`
//! when set, else from the URL (percent-encoded); it is never printed: [`MysqlUrl`]'s `Display`
//! and `Debug` leave it out. Parsing is bounded and every refusal names the setting and the fix.

use std::fmt;
use std::path::PathBuf;

use ferry_core::tls::{Pem, TlsConfig, TlsMode};
use ferry_core::{Endpoint, Secret};

use crate::error::ServiceError;

/// The environment variable that supplies the store password.
pub const ENV_STORE_PASSWORD: &str = "FERRY_STORE_PASSWORD";
/// The setting's name in messages.
const SETTING: &str = "store";
/// Longest store setting accepted.
const MAX_LEN: usize = 2048;

/// The job store to open.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreLocation {
    /// `DATA_DIR/ferry.db`, one `ferry serve` per data directory.
    #[default]
    Sqlite,
    /// A MySQL/MariaDB database, shareable by several nodes.
    Mysql(Box<MysqlUrl>),
}

impl StoreLocation {
    /// Parses a store setting; `password_env` is the value of `FERRY_STORE_PASSWORD`.
    pub fn parse(text: &str, password_env: Option<String>) -> Result<StoreLocation, ServiceError> {
        let text = text.trim();
        if text.is_empty() || text == "sqlite" {
            return Ok(StoreLocation::Sqlite);
        }
        Ok(StoreLocation::Mysql(Box::new(MysqlUrl::parse(
            text,
            password_env,
        )?)))
    }

    /// True for a store several nodes can share.
    pub fn is_shared(&self) -> bool {
        matches!(self, StoreLocation::Mysql(_))
    }
}

impl fmt::Display for StoreLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreLocation::Sqlite => f.write_str("sqlite"),
            StoreLocation::Mysql(u) => u.fmt(f),
        }
    }
}

/// A MySQL/MariaDB store.
#[derive(Clone, PartialEq, Eq)]
pub struct MysqlUrl {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub database: String,
    pub tls: TlsConfig,
}

impl fmt::Debug for MysqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MysqlUrl({self})")
    }
}

/// `mysql://user@host:port/db` (no password).
impl fmt::Display for MysqlUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "mysql://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

fn bad(message: impl Into<String>) -> ServiceError {
    ServiceError::Setting {
        setting: SETTING.into(),
        message: format!(
            "{}; expected sqlite or mysql://USER@HOST:PORT/DB (password in {ENV_STORE_PASSWORD}; \
             options ?tls=disabled|preferred|required|verify_ca|verify_identity&tls-ca=FILE)",
            message.into()
        ),
    }
}

/// Decodes `%XX` escapes.
fn percent_decode(s: &str, what: &str) -> Result<String, ServiceError> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| bad(format!("the {what} has a bad %-escape")))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(format!("the {what} is not UTF-8")))
}

impl MysqlUrl {
    /// Parses `mysql://USER[:PASSWORD]@HOST[:PORT]/DB[?OPTIONS]`.
    pub fn parse(text: &str, password_env: Option<String>) -> Result<MysqlUrl, ServiceError> {
        if text.len() > MAX_LEN {
            return Err(bad(format!("longer than {MAX_LEN} characters")));
        }
        let rest = text
            .strip_prefix("mysql://")
            .ok_or_else(|| bad("it is neither sqlite nor a mysql:// URL"))?;
        let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (auth, hostpath) = main
            .rsplit_once('@')
            .ok_or_else(|| bad("the user is missing (mysql://USER@HOST…)"))?;
        let (user, url_password) = match auth.split_once(':') {
            Some((u, p)) => (u, Some(p)),
            None => (auth, None),
        };
        let user = percent_decode(user, "user")?;
        if user.is_empty() {
            return Err(bad("the user is empty"));
        }
        let (hostport, database) = hostpath
            .split_once('/')
            .ok_or_else(|| bad("the database is missing (…HOST:PORT/DB)"))?;
        let database = database.trim_end_matches('/');
        if database.is_empty()
            || database.len() > 64
            || !database
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$')
        {
            return Err(bad(format!(
                "database name {database:?} must be 1 to 64 letters, digits, _ or $"
            )));
        }
        let (host, port) = match hostport.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || hostport.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad(format!("port {p:?} is not a number from 1 to 65535")))?,
            ),
            _ => (hostport, 3306),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || port == 0 {
            return Err(bad("the host or port is missing"));
        }
        let password = match password_env.filter(|p| !p.is_empty()) {
            Some(p) => p,
            None => percent_decode(url_password.unwrap_or(""), "password")?,
        };
        let mut tls = TlsConfig {
            field: "store ?tls".into(),
            ..TlsConfig::default()
        };
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v, k)?;
            match k {
                "tls" => {
                    tls.mode = TlsMode::parse(&v.to_ascii_lowercase())
                        .ok_or_else(|| bad(format!("tls={v:?} is not a TLS mode")))?;
                }
                "tls-ca" => tls.ca = Some(Pem::File(PathBuf::from(v))),
                other => return Err(bad(format!("unknown option {other:?}"))),
            }
        }
        Ok(MysqlUrl {
            host: host.to_string(),
            port,
            user,
            password: Secret::new(password),
            database: database.to_string(),
            tls,
        })
    }

    /// The server as a Ferry endpoint (TLS as configured).
    pub fn endpoint(&self) -> Endpoint {
        Endpoint::new(
            self.host.clone(),
            self.port,
            self.user.clone(),
            self.password.clone(),
        )
        .with_tls(self.tls.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn urls_parse_and_never_show_the_password() {
        let l = StoreLocation::parse(
            "mysql://ferry:p%40ss@db.example:3307/ferry_jobs?tls=required",
            None,
        )
        .unwrap();
        let StoreLocation::Mysql(u) = &l else {
            panic!("{l:?}")
        };
        assert_eq!(
            (u.host.as_str(), u.port, u.user.as_str()),
            ("db.example", 3307, "ferry")
        );
        assert_eq!(u.password.expose(), "p@ss");
        assert_eq!(u.database, "ferry_jobs");
        assert_eq!(u.tls.mode, TlsMode::Required);
        assert_eq!(l.to_string(), "mysql://ferry@db.example:3307/ferry_jobs");
        assert!(!format!("{l:?}").contains("p@ss"));
        let env = StoreLocation::parse("mysql://ferry@h/db", Some("from-env".into())).unwrap();
        assert!(
            matches!(env, StoreLocation::Mysql(u) if u.password.expose() == "from-env" && u.port == 3306)
        );
        assert_eq!(StoreLocation::parse("", None).unwrap(), StoreLocation::Sqlite);
        assert_eq!(
            StoreLocation::parse("sqlite", None).unwrap(),
            StoreLocation::Sqlite
        );
    }

    #[test]
    fn bad_settings_name_the_setting_and_the_fix() {
        for (text, says) in [
            ("postgres://a@b/c", "neither sqlite nor"),
            ("mysql://h:3306/db", "user is missing"),
            ("mysql://u@h:3306", "database is missing"),
            ("mysql://u@h:99999/db", "port"),
            ("mysql://u@h/db-x", "database name"),
            ("mysql://u@h/db?tls=maybe", "TLS mode"),
            ("mysql://u@h/db?colour=red", "unknown option"),
            ("mysql://u:%zz@h/db", "%-escape"),
        ] {
            let e = StoreLocation::parse(text, None).unwrap_err().to_string();
            assert!(e.starts_with("store: ") && e.contains(says), "{text}: {e}");
            assert!(e.contains("mysql://USER@HOST:PORT/DB"), "{e}");
        }
    }

    proptest! {
        #[test]
        fn any_text_parses_or_is_refused_without_panic(s in "\\PC{0,300}") {
            let _ = StoreLocation::parse(&s, None);
            let _ = StoreLocation::parse(&format!("mysql://{s}"), None);
        }
    }
}
