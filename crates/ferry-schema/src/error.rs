//! The structure copier's error enum: each variant names the object and, for server errors, the
//! statement and the server's message; [`SchemaError::kind`] says whether a retry can help.

use ferry_core::error::classify_mysql;
use ferry_core::{CoreError, ErrorKind};
use thiserror::Error;

use crate::ObjectKind;

/// Longest SQL text quoted in an error message.
const MAX_SQL_IN_MESSAGE: usize = 300;

/// Shortens SQL for messages (on a character boundary), marking the cut.
pub fn short_sql(sql: &str) -> String {
    if sql.len() <= MAX_SQL_IN_MESSAGE {
        return sql.to_string();
    }
    let mut end = MAX_SQL_IN_MESSAGE;
    while !sql.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… ({} bytes)", &sql[..end], sql.len())
}

/// Why the structure phase failed.
#[derive(Debug, Error)]
pub enum SchemaError {
    /// Reading the source catalog failed.
    #[error("reading {what} on the source: {source}")]
    Read {
        what: String,
        #[source]
        source: mysql_async::Error,
    },
    /// The source returned no usable definition (usually a missing privilege).
    #[error("cannot read the definition of {kind} {name} on the source: {reason}")]
    Definition {
        kind: ObjectKind,
        name: String,
        reason: String,
    },
    /// A definition could not be rewritten for the target (names, index split).
    #[error("cannot rewrite the definition of {kind} {name}: {reason}")]
    Rewrite {
        kind: ObjectKind,
        name: String,
        reason: String,
    },
    /// The target refused a statement.
    #[error("creating {kind} {name} on the target failed: {source}; statement: {sql}")]
    Apply {
        kind: ObjectKind,
        name: String,
        sql: String,
        #[source]
        source: mysql_async::Error,
    },
    /// A table the job writes already holds rows and the policy is to fail.
    #[error(
        "table {table} already exists on the target and is not empty; empty it, or set \
         ExistingTables to \"truncate\", \"drop\" or \"append\""
    )]
    TargetTableNotEmpty { table: String },
    /// Any other statement on the target failed.
    #[error("{context} on the target: {source}")]
    Target {
        context: String,
        #[source]
        source: mysql_async::Error,
    },
    /// `Ferry.Accounts` / `IsOverrideRoot`: accounts the job cannot copy as asked (each reason
    /// names the account and the fix).
    #[error("the accounts cannot be copied: {}", reasons.join("; "))]
    Accounts { reasons: Vec<String> },
    /// A catalog read through ferry-core failed.
    #[error(transparent)]
    Core(#[from] CoreError),
}

impl SchemaError {
    /// Transient (retry from the checkpoint) or definite.
    pub fn kind(&self) -> ErrorKind {
        match self {
            SchemaError::Read { source, .. }
            | SchemaError::Apply { source, .. }
            | SchemaError::Target { source, .. } => classify_mysql(source),
            SchemaError::Core(e) => e.kind(),
            SchemaError::Definition { .. }
            | SchemaError::Rewrite { .. }
            | SchemaError::TargetTableNotEmpty { .. }
            | SchemaError::Accounts { .. } => ErrorKind::Definite,
        }
    }

    pub(crate) fn read(what: impl Into<String>, source: mysql_async::Error) -> Self {
        SchemaError::Read {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn target(context: impl Into<String>, source: mysql_async::Error) -> Self {
        SchemaError::Target {
            context: context.into(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shortens_on_char_boundary() {
        let s = "é".repeat(400);
        let out = short_sql(&s);
        assert!(out.len() < 400);
        assert!(out.ends_with("(800 bytes)"));
        assert_eq!(short_sql("abc"), "abc");
    }
}
