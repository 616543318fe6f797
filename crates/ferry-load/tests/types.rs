//! Type matrix: every type family with its edge values copies bit-exactly, with LOAD DATA and
//! with INSERT.

mod common;

use anyhow::Result;
use common::*;
use ferry_core::progress::null_sink;
use ferry_load::{run_full_load, WriteMethod};
use ferry_testkit::{exec, scalar, source, target};

const DB: &str = "fl_types";

use ferry_testkit::type_matrix::create_sql;

async fn setup() -> Result<()> {
    let (mut src, _) = conns().await?;
    ferry_testkit::fresh_db(&mut src, DB).await?;
    let create = create_sql(&src);
    exec(&mut src, &format!("USE {DB}; {create}")).await?;
    ferry_testkit::type_matrix::insert_rows(&mut src, DB).await?;
    // 10 000 floats and doubles with random bits over a wide range of exponents: a text dump with
    // default precision would round many of them.
    exec(
        &mut src,
        &format!(
            "INSERT INTO {DB}.`select` (id, f, d, dec65, e) SELECT 1000 + seq, \
             (RAND() - 0.5) * POW(10, FLOOR(RAND() * 70) - 35), \
             (RAND() - 0.5) * POW(10, FLOOR(RAND() * 600) - 300), \
             RAND() * 1e20, ELT(1 + seq % 3, 'a', 'b', 'c') FROM seq_1_to_10000"
        ),
    )
    .await?;
    Ok(())
}

async fn load_with(method: WriteMethod, dst_db: &str, job: &str) -> Result<()> {
    let (mut src, mut dst) = conns().await?;
    ferry_testkit::fresh_db(&mut dst, dst_db).await?;
    copy_tables(&mut src, &mut dst, DB, dst_db, &["select"]).await?;
    let tasks = tasks(&mut src, DB, dst_db, &["select"]).await?;
    let opts = opts(job, 2, 2000, method).await?;
    let summary = run_full_load(&source(), &target(), tasks, opts, null_sink()).await?;
    assert_eq!(
        summary.rows,
        10_000 + ferry_testkit::type_matrix::rows().len() as u64
    );
    assert_eq!(summary.write_method, method);
    assert!(summary.chunks >= 5, "{summary:?}");
    assert_same(&mut src, &mut dst, DB, dst_db, "select").await?;
    // spot checks beyond the digest
    let y: String = scalar(
        &mut dst,
        &format!("SELECT CAST(yr AS CHAR) FROM {dst_db}.`select` WHERE id = 4"),
    )
    .await?;
    assert_eq!(y, "0000");
    let e: i64 = scalar(
        &mut dst,
        &format!("SELECT e + 0 FROM {dst_db}.`select` WHERE id = 4"),
    )
    .await?;
    assert_eq!(e, 0);
    let b: u64 = scalar(
        &mut dst,
        &format!("SELECT b64 + 0 FROM {dst_db}.`select` WHERE id = 2"),
    )
    .await?;
    assert_eq!(b, u64::MAX);
    let g: i64 = scalar(
        &mut dst,
        &format!("SELECT gen FROM {dst_db}.`select` WHERE id = 6"),
    )
    .await?;
    assert_eq!(g, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn type_matrix_load_data_and_insert() -> Result<()> {
    setup().await?;
    load_with(WriteMethod::LoadData, "fl_types_ld", "fl-types-ld").await?;
    load_with(WriteMethod::Insert, "fl_types_ins", "fl-types-ins").await?;
    Ok(())
}
