//! Server flavor detection (MariaDB or MySQL, and the version) and the SQL that differs between them.

use mysql_async::prelude::Queryable;
use serde::{Deserialize, Serialize};

use crate::error::{CoreError, MysqlResultExt};

/// MariaDB or MySQL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServerKind {
    MariaDb,
    MySql,
}

/// A server's kind and version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flavor {
    pub kind: ServerKind,
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
    /// `@@version` as the server reports it.
    pub version: String,
}

impl Flavor {
    /// Parses `@@version` (e.g. `10.11.6-MariaDB-0+deb12u1`, `8.4.2`).
    pub fn from_version(version: &str) -> Flavor {
        let kind = if version.to_ascii_lowercase().contains("mariadb") {
            ServerKind::MariaDb
        } else {
            ServerKind::MySql
        };
        // MariaDB 10.x behind a MySQL 5.5 replication prefix: "5.5.5-10.11.6-MariaDB".
        let v = version.strip_prefix("5.5.5-").unwrap_or(version);
        let mut nums = v
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<u32>().unwrap_or(0));
        Flavor {
            kind,
            major: nums.next().unwrap_or(0),
            minor: nums.next().unwrap_or(0),
            patch: nums.next().unwrap_or(0),
            version: version.to_string(),
        }
    }

    /// Reads `@@version` from a connection.
    pub async fn detect(conn: &mut mysql_async::Conn) -> Result<Flavor, CoreError> {
        let v: Option<String> = conn
            .query_first("SELECT @@version")
            .await
            .ctx(|| "reading @@version".into())?;
        Ok(Flavor::from_version(&v.unwrap_or_default()))
    }

    /// True for MariaDB.
    pub fn is_mariadb(&self) -> bool {
        self.kind == ServerKind::MariaDb
    }

    /// `(major, minor, patch)` is at least the given version.
    pub fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        (self.major, self.minor, self.patch) >= (major, minor, patch)
    }

    /// The statement that shows the current binlog file and position:
    /// `SHOW BINARY LOG STATUS` on MySQL 8.2+, `SHOW MASTER STATUS` elsewhere.
    pub fn binlog_status_sql(&self) -> &'static str {
        if self.kind == ServerKind::MySql && self.at_least(8, 2, 0) {
            "SHOW BINARY LOG STATUS"
        } else {
            "SHOW MASTER STATUS"
        }
    }

    /// The variable holding the server's executed GTIDs.
    pub fn gtid_variable(&self) -> &'static str {
        match self.kind {
            ServerKind::MariaDb => "@@GLOBAL.gtid_binlog_pos",
            ServerKind::MySql => "@@GLOBAL.gtid_executed",
        }
    }
}

impl std::fmt::Display for Flavor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let k = match self.kind {
            ServerKind::MariaDb => "MariaDB",
            ServerKind::MySql => "MySQL",
        };
        write!(f, "{k} {}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        let m = Flavor::from_version("10.11.6-MariaDB-0+deb12u1-log");
        assert!(m.is_mariadb());
        assert_eq!((m.major, m.minor, m.patch), (10, 11, 6));
        assert_eq!(m.binlog_status_sql(), "SHOW MASTER STATUS");
        let p = Flavor::from_version("5.5.5-10.6.12-MariaDB");
        assert_eq!((p.major, p.minor), (10, 6));
        let my = Flavor::from_version("8.4.2");
        assert!(!my.is_mariadb());
        assert_eq!(my.binlog_status_sql(), "SHOW BINARY LOG STATUS");
        assert_eq!(
            Flavor::from_version("8.0.36").binlog_status_sql(),
            "SHOW MASTER STATUS"
        );
    }
}
