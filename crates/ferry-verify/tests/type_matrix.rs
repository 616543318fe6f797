//! The shared type matrix (every type family, and TIME/DATETIME/TIMESTAMP at every fractional
//! precision 0–6 with negative and edge values) verifies as consistent when both sides hold the
//! same rows; a planted difference in a fractional temporal column (a TIME whose sign flipped, one
//! microsecond off, one fractional digit off) is found, named by column, and repaired exactly.

mod common;

use anyhow::Result;
use common::*;
use ferry_testkit::type_matrix::{create_sql, insert_rows};
use ferry_testkit::{connect, exec, source, table_digest, target};
use ferry_verify::DiffKind;

const DB: &str = "fv_type_matrix";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_temporal_precisions_verify_and_repair_exactly() -> Result<()> {
    let create = create_sql(&connect(&source()).await?);
    let (mut s, mut d) = both(DB, &create).await?;
    insert_rows(&mut s, DB).await?;
    insert_rows(&mut d, DB).await?;

    let (r, _) = run(&sel_db(DB), &opts(4)).await?;
    assert!(r.consistent, "{}", r.render_text());

    exec(
        &mut d,
        &format!(
            "UPDATE {DB}.`select` SET t2 = '12:34:56.78' WHERE id = 7;
             UPDATE {DB}.`select` SET t1 = '-00:00:00.8' WHERE id = 11;
             UPDATE {DB}.`select` SET t6 = '-838:59:58.990001' WHERE id = 8;
             UPDATE {DB}.`select` SET dt6 = '9999-12-31 23:59:59.999998' WHERE id = 2;
             UPDATE {DB}.`select` SET ts3 = '2000-01-01 00:00:00.001' WHERE id = 12;
             UPDATE {DB}.`select` SET t0 = '-838:59:58' WHERE id = 1;"
        ),
    )
    .await?;
    let (r, repair) = run(&sel_db(DB), &opts(4)).await?;
    assert!(!r.consistent);
    let mut got = keys(table(&r, "select"));
    got.sort();
    let mut want: Vec<(DiffKind, Vec<String>, Vec<String>)> = [
        (1, "t0"),
        (2, "dt6"),
        (7, "t2"),
        (8, "t6"),
        (11, "t1"),
        (12, "ts3"),
    ]
    .into_iter()
    .map(|(id, col)| (DiffKind::Different, vec![id.to_string()], vec![col.to_string()]))
    .collect();
    want.sort();
    assert_eq!(got, want, "{}", r.render_text());

    apply(&repair).await?;
    let (r2, _) = run(&sel_db(DB), &opts(4)).await?;
    assert!(r2.consistent, "{}", r2.render_text());
    let mut s = connect(&source()).await?;
    let mut d = connect(&target()).await?;
    assert_eq!(
        table_digest(&mut s, DB, "select").await?,
        table_digest(&mut d, DB, "select").await?
    );
    Ok(())
}
