//! During replay, negative and positive fractional TIME(0..6) values (including -00:00:00.01,
//! -12:34:56.78, -838:59:58.99), DATETIME(0..6) and TIMESTAMP(0..6) edge values arrive on the
//! target exactly: inserted, updated and deleted on the source while the replay runs, in a keyed
//! table and in a keyless one (whose UPDATE/DELETE address rows by these values), compared row by
//! row as text and by the testkit digest.

mod support;

use anyhow::Result;
use ferry_testkit as tk;
use ferry_testkit::type_matrix::{temporal_ddl, temporal_tuple, TEMPORAL_COLUMNS, TEMPORAL_SETS};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::*;

const DB: &str = "fr_temporal";

/// Every row of `table` with each temporal column as text (`CAST(… AS CHAR)`), ordered.
async fn texts(c: &mut Conn, table: &str) -> Result<Vec<Vec<Option<String>>>> {
    let cols: Vec<String> = TEMPORAL_COLUMNS
        .split(", ")
        .map(|c| format!("CAST({c} AS CHAR)"))
        .collect();
    let sql = format!(
        "SELECT n, {} FROM {DB}.{table} ORDER BY n, {}",
        cols.join(", "),
        TEMPORAL_COLUMNS
    );
    let rows: Vec<mysql_async::Row> = c.query(sql).await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (0..r.len())
                .map(|i| r.get::<Option<String>, usize>(i).flatten())
                .collect()
        })
        .collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fractional_temporal_values_replay_exactly() -> Result<()> {
    let ddl = temporal_ddl();
    let (mut s, _t) = prepare(
        DB,
        DB,
        &format!("CREATE TABLE k (id INT PRIMARY KEY, n INT, {ddl}); CREATE TABLE nk (n INT, {ddl});"),
    )
    .await?;
    let pos = master_pos(&mut s).await?;
    let run = start("fr-temporal", selection(&[(DB, DB)]), pos).await?;

    tk::exec(&mut s, "SET time_zone = '+00:00'").await?;
    let n = TEMPORAL_SETS.len();
    for (i, set) in TEMPORAL_SETS.iter().enumerate() {
        let v = temporal_tuple(set);
        tk::exec(
            &mut s,
            &format!(
                "INSERT INTO {DB}.k (id, n, {TEMPORAL_COLUMNS}) VALUES ({i}, {i}, {v}); \
                 INSERT INTO {DB}.nk (n, {TEMPORAL_COLUMNS}) VALUES ({i}, {v}), ({i}, {v})"
            ),
        )
        .await?;
    }
    // every row takes the next set's values (an update whose before and after images are both
    // edge values), in one transaction
    let cols: Vec<&str> = TEMPORAL_COLUMNS.split(", ").collect();
    let mut tx = String::from("START TRANSACTION;");
    for (i, _) in TEMPORAL_SETS.iter().enumerate() {
        let next = temporal_tuple(&TEMPORAL_SETS[(i + 1) % n]);
        let vals: Vec<&str> = next.split(", ").collect();
        let set = cols
            .iter()
            .zip(&vals)
            .map(|(c, v)| format!("{c} = {v}"))
            .collect::<Vec<_>>()
            .join(", ");
        tx.push_str(&format!(
            "UPDATE {DB}.k SET {set} WHERE id = {i}; UPDATE {DB}.nk SET {set} WHERE n = {i} LIMIT 1;"
        ));
    }
    tx.push_str("COMMIT;");
    tk::exec(&mut s, &tx).await?;
    // deletes addressed by negative fractional values (keyless: the row image is the key)
    tk::exec(
        &mut s,
        &format!(
            "DELETE FROM {DB}.nk WHERE t2 = '-00:00:00.01' LIMIT 1; \
             DELETE FROM {DB}.nk WHERE t6 = '-838:59:58.999999'; \
             DELETE FROM {DB}.k WHERE t1 = '-00:00:01.5'; \
             UPDATE {DB}.nk SET t2 = '-00:00:00.01', t6 = '-00:00:00.000001' WHERE t2 = '-12:34:56.78'; \
             INSERT INTO {DB}.k (id, n, t2, t6) VALUES (100, 100, '-00:00:00.01', '-838:59:58.990000'), \
               (101, 101, '-12:34:56.78', '-00:00:00.000001')"
        ),
    )
    .await?;
    run.complete().await?;

    let mut s = tk::connect(&tk::source()).await?;
    let mut t = tk::connect(&tk::target()).await?;
    for table in ["k", "nk"] {
        let a = texts(&mut s, table).await?;
        let b = texts(&mut t, table).await?;
        assert!(a.len() > 10, "{table}: {} rows", a.len());
        assert_eq!(a.len(), b.len(), "{table}: row counts");
        for (ra, rb) in a.iter().zip(&b) {
            assert_eq!(ra, rb, "{table}: source row vs target row");
        }
    }
    assert_same(DB, DB).await?;
    // the values, on the target, as text
    for (id, col, want) in [
        (100, "t2", "-00:00:00.01"),
        (100, "t6", "-838:59:58.990000"),
        (101, "t2", "-12:34:56.78"),
        (101, "t6", "-00:00:00.000001"),
    ] {
        let got: String = tk::scalar(
            &mut t,
            &format!("SELECT CAST({col} AS CHAR) FROM {DB}.k WHERE id = {id}"),
        )
        .await?;
        assert_eq!(got, want, "k.{col} of {id}");
    }
    let got: String = tk::scalar(
        &mut t,
        &format!("SELECT CAST(t2 AS CHAR) FROM {DB}.k WHERE id = 7"),
    )
    .await?;
    assert_eq!(got, "-838:59:58.99", "row 7 took set 8's values");
    Ok(())
}
