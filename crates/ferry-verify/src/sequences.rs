//! Sequences (MariaDB `CREATE SEQUENCE`) as compared objects: the row a sequence shows
//! (`SELECT * FROM seq`: its definition and its persistent state, `next_not_cached_value` and
//! `cycle_count`), so a target whose next value differs from the source's is reported like any
//! other object difference. Read for whole selected databases, as the structure phase copies
//! them.

use ferry_core::sql::qualified;
use ferry_core::CoreError;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::{Ctx, VerifyError};

/// The columns of a sequence's row, in the order they are reported.
const STATE: &str = "next_not_cached_value, minimum_value, maximum_value, start_value, increment, \
                     cache_size, cycle_option, cycle_count";

/// The sequences of `db` with their state: (name, `next_not_cached_value=… minimum_value=… …`).
pub(crate) async fn read(
    conn: &mut Conn,
    db: &str,
    side: &str,
) -> Result<Vec<(String, String)>, VerifyError> {
    let names = ferry_core::catalog::list_sequences(conn, db)
        .await
        .map_err(|e| match e {
            CoreError::Mysql { source, .. } => VerifyError::Mysql {
                context: format!("listing the sequences of {db} on the {side}"),
                source,
            },
            e => e.into(),
        })?;
    let mut out = Vec::with_capacity(names.len());
    for name in names {
        let row: Option<Row> = conn
            .query_first(format!("SELECT {STATE} FROM {}", qualified(db, &name)))
            .await
            .ctx(|| format!("reading sequence {db}.{name} on the {side}"))?;
        let values: Vec<String> = row
            .map(|r| r.unwrap_raw())
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.map(|v| v.as_sql(true)).unwrap_or_default())
            .collect();
        out.push((name, describe(&values)));
    }
    Ok(out)
}

/// `next_not_cached_value=1000 minimum_value=1 …` from the values in [`STATE`] order.
fn describe(values: &[String]) -> String {
    STATE
        .split(", ")
        .map(str::trim)
        .zip(values)
        .map(|(k, v)| format!("{k}={}", v.trim_matches('\'')))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_is_named_column_by_column() {
        let v: Vec<String> = ["1030", "1", "9223372036854775806", "1000", "3", "10", "0", "0"]
            .iter()
            .map(|s| format!("'{s}'"))
            .collect();
        assert_eq!(
            describe(&v),
            "next_not_cached_value=1030 minimum_value=1 maximum_value=9223372036854775806 start_value=1000 \
             increment=3 cache_size=10 cycle_option=0 cycle_count=0"
        );
    }
}
