//! `ferry verify` killed in the middle (the `verify.chunk` fault point exits like a kill -9) is
//! resumed by the next run from the chunks it stored while the source is unchanged: it digests
//! only the rest and reports the same findings; a source change, a finished run or `--restart`
//! makes it digest every chunk. Alone in its test binary: the resume depends on the source's
//! binlog position, which another test's writes would move. Only `fcv_resume` is touched.

mod common;

use anyhow::Result;
use common::*;
use ferry_core::fault;
use ferry_testkit::{connect, drop_dbs, exec, fresh_db, source, target};
use serde_json::json;

/// The differences a JSON report lists: (only in source, only in target, different) and the keys.
fn findings(report: &serde_json::Value) -> (serde_json::Value, Vec<String>) {
    let t = &report["tables"][0];
    let keys = t["keys"]
        .as_array()
        .map(|a| a.iter().map(|k| format!("{}:{}", k["kind"], k["key"])).collect())
        .unwrap_or_default();
    (
        json!([t["only_in_source"], t["only_in_target"], t["different"]]),
        keys,
    )
}

fn resumed(report: &serde_json::Value) -> u64 {
    report["tables"][0]["chunks_resumed"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_verify_resumes_from_its_stored_chunks() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    fresh_db(&mut s, "fcv_resume").await?;
    drop_dbs(&mut t, &["fcv_resume"]).await?;
    exec(
        &mut s,
        "USE fcv_resume; CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20));
         INSERT INTO a SELECT seq, CONCAT('v', seq) FROM seq_1_to_20000;",
    )
    .await?;
    // One thread: the chunks are digested one at a time, so the kill at the 8th leaves 8 stored.
    let ferry = json!({"ChunkRows": 1000, "Threads": 1});
    let path = write_job(
        "fcv-resume",
        &job("fcv-resume", json!([{"Database": "fcv_resume"}]), ferry, 2),
    );
    let out = run(&path, &["--restart"]);
    assert!(out.status.success(), "{}", text(&out));
    // Planted differences: one in a chunk digested before the kill, one after.
    exec(
        &mut t,
        "UPDATE fcv_resume.a SET v = 'early' WHERE id = 5; DELETE FROM fcv_resume.a WHERE id = 19500;",
    )
    .await?;
    let full = verify(&path, &["--json", "--restart"], None);
    assert_eq!(full.status.code(), Some(2), "{}", text(&full));
    let full: serde_json::Value = serde_json::from_slice(&full.stdout)?;
    assert_eq!(resumed(&full), 0);
    assert_eq!(
        full["tables"][0]["chunks"],
        json!(21),
        "20 bounded chunks and the open last one"
    );

    // kill -9 in the middle (the fault point exits at once, like a kill), then the rerun.
    let killed = verify(&path, &["--json"], Some("verify.chunk=exit@8"));
    assert_eq!(killed.status.code(), Some(fault::EXIT_CODE), "{}", text(&killed));
    let again = verify(&path, &[], None);
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let out = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(
        out.contains("resumed: 8 of 21 chunk(s) taken from the interrupted run")
            && out.contains("13 digested now"),
        "{out}"
    );
    assert!(
        out.contains("id=5") && out.contains("id=19500"),
        "both planted rows found: {out}"
    );

    // The same findings as the full pass, once more after a kill, in JSON.
    let killed = verify(&path, &["--json"], Some("verify.chunk=exit@3"));
    assert_eq!(killed.status.code(), Some(fault::EXIT_CODE), "{}", text(&killed));
    let resumed_run = verify(&path, &["--json"], None);
    assert_eq!(resumed_run.status.code(), Some(2));
    let resumed_run: serde_json::Value = serde_json::from_slice(&resumed_run.stdout)?;
    assert_eq!(resumed(&resumed_run), 3);
    assert_eq!(findings(&resumed_run), findings(&full));
    assert_eq!(
        resumed_run["tables"][0]["rows_compared"],
        full["tables"][0]["rows_compared"]
    );
    // A run that completed is never reused.
    let fresh = verify(&path, &["--json"], None);
    let fresh: serde_json::Value = serde_json::from_slice(&fresh.stdout)?;
    assert_eq!(resumed(&fresh), 0, "a finished run is not resumed");

    // A change on the source since the interrupted run: nothing is trusted.
    let killed = verify(&path, &["--json"], Some("verify.chunk=exit@10"));
    assert_eq!(killed.status.code(), Some(fault::EXIT_CODE), "{}", text(&killed));
    exec(&mut s, "UPDATE fcv_resume.a SET v = 'src' WHERE id = 7").await?;
    let after = verify(&path, &["--json"], None);
    assert_eq!(after.status.code(), Some(2));
    let after: serde_json::Value = serde_json::from_slice(&after.stdout)?;
    assert_eq!(resumed(&after), 0, "the source moved: every chunk digested again");
    assert_eq!(
        after["tables"][0]["different"],
        json!(2),
        "id 5 and now id 7 differ"
    );

    // --restart forgets an interrupted run.
    let killed = verify(&path, &["--json"], Some("verify.chunk=exit@4"));
    assert_eq!(killed.status.code(), Some(fault::EXIT_CODE), "{}", text(&killed));
    let restarted = verify(&path, &["--json", "--restart"], None);
    let restarted: serde_json::Value = serde_json::from_slice(&restarted.stdout)?;
    assert_eq!(resumed(&restarted), 0);
    drop_dbs(&mut s, &["fcv_resume"]).await?;
    drop_dbs(&mut t, &["fcv_resume"]).await?;
    Ok(())
}
