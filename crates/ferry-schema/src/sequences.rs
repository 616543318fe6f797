//! MariaDB sequences (10.3+): the definition from `SHOW CREATE SEQUENCE` (created before the
//! tables, whose defaults may use it), and the state, which the definition does not carry.
//!
//! A sequence's state is its one row (`next_not_cached_value`, …, `cycle_count`): what the server
//! restarts from, and what `NEXT VALUE FOR` / `SETVAL` log as a row write (the replay applies
//! those like any row). [`copy_state`] writes the source's row on the target with an `INSERT`
//! (which, on a sequence, replaces its row exactly, also backwards, unlike `SETVAL`): after the
//! full load, and at cut-over when the source is quiet. Values a source session had cached but
//! not used are skipped, as after a restart of the source itself.

use ferry_core::sql::{qualified, quote_ident};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::catalog::ObjectDef;
use crate::error::SchemaError;

/// `SHOW CREATE SEQUENCE` text with the sequence named `target` (the text starts
/// `CREATE SEQUENCE `name``, quoted as `sql_quote_show_create = 1` makes it).
pub fn rename(create_sql: &str, source: &str, target: &str) -> Result<String, String> {
    let head = format!("CREATE SEQUENCE {}", quote_ident(source));
    match create_sql.strip_prefix(&head) {
        Some(rest) => Ok(format!("CREATE SEQUENCE {}{rest}", quote_ident(target))),
        None => Err(format!(
            "the definition does not start with {head}: {create_sql:.80}"
        )),
    }
}

/// The columns of a sequence's row, in order.
const COLUMNS: &str = "next_not_cached_value, minimum_value, maximum_value, start_value, increment, \
                       cache_size, cycle_option, cycle_count";

/// Copies the state of each sequence (its row) from the source to its target name. Returns the
/// sequences copied.
pub async fn copy_state(
    src: &mut Conn,
    dst: &mut Conn,
    sel: &ferry_core::Selection,
    sequences: &[ObjectDef],
) -> Result<u64, SchemaError> {
    let mut n = 0;
    for q in sequences {
        let Some((tdb, tname)) = sel.target_table(&q.db, &q.name) else {
            continue;
        };
        let from = qualified(&q.db, &q.name);
        let row: Option<Row> = src
            .query_first(format!("SELECT {COLUMNS} FROM {from}"))
            .await
            .map_err(|e| SchemaError::read(format!("the state of sequence {}.{}", q.db, q.name), e))?;
        let Some(row) = row else { continue };
        let vals: Vec<String> = row
            .unwrap()
            .into_iter()
            .map(|v| match v {
                mysql_async::Value::Int(i) => i.to_string(),
                mysql_async::Value::UInt(u) => u.to_string(),
                mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                _ => "NULL".into(),
            })
            .collect();
        if vals.len() != 8
            || vals
                .iter()
                .any(|v| v.is_empty() || !v.bytes().all(|c| c.is_ascii_digit() || c == b'-'))
        {
            return Err(SchemaError::Definition {
                kind: crate::ObjectKind::Sequence,
                name: format!("{}.{}", q.db, q.name),
                reason: format!("its row is not 8 integers: {vals:?}"),
            });
        }
        let sql = format!(
            "INSERT INTO {} ({COLUMNS}) VALUES ({})",
            qualified(&tdb, &tname),
            vals.join(", ")
        );
        dst.query_drop(&sql).await.map_err(|e| SchemaError::Apply {
            kind: crate::ObjectKind::Sequence,
            name: format!("{tdb}.{tname}"),
            sql,
            source: e,
        })?;
        n += 1;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_the_sequence_only() {
        let s = "CREATE SEQUENCE `sq` start with 100 minvalue 1 maxvalue 9223372036854775806 increment by 5 cache 10 nocycle ENGINE=InnoDB";
        assert_eq!(
            rename(s, "sq", "new`name").unwrap(),
            "CREATE SEQUENCE `new``name` start with 100 minvalue 1 maxvalue 9223372036854775806 increment by 5 cache 10 nocycle ENGINE=InnoDB"
        );
        assert!(rename(s, "other", "x").is_err());
    }
}
