//! Foreign-key cascades during replay, against the real servers: the source's InnoDB runs
//! `ON DELETE CASCADE`, `SET NULL` and `ON UPDATE CASCADE` inside the engine and logs only the
//! parent rows, so the target must repeat them. Multi-level and self-referencing cascades,
//! cascades through a unique (non-primary) key, a source session with `foreign_key_checks=0`
//! (no cascade there, none on the target), foreign keys added and dropped by replayed DDL, under
//! four workers with small batches; compared by exact digests. A target whose rows differ stops
//! the replay with a definite error naming the foreign key. Only databases named `fa_fk_*` are
//! touched.

mod support;

use anyhow::Result;
use ferry_core::ErrorKind;
use ferry_replay::ReplayOptions;
use ferry_testkit as tk;
use support::*;

fn parallel(o: &mut ReplayOptions) {
    o.workers = 4;
    o.batch_transactions = 3;
    o.batch_rows = 40;
}

const SCHEMA: &str = "
    CREATE TABLE parent (id INT PRIMARY KEY, code VARCHAR(12) NOT NULL, n INT NOT NULL DEFAULT 0, UNIQUE KEY (code)) ENGINE=InnoDB;
    CREATE TABLE child (id INT PRIMARY KEY, pid INT NOT NULL, pcode VARCHAR(12) NULL, v INT NOT NULL DEFAULT 0,
        CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE ON UPDATE CASCADE,
        CONSTRAINT fk_child_code FOREIGN KEY (pcode) REFERENCES parent (code) ON DELETE SET NULL ON UPDATE CASCADE) ENGINE=InnoDB;
    CREATE TABLE grandchild (id INT PRIMARY KEY, cid INT NOT NULL, w INT NOT NULL DEFAULT 0,
        CONSTRAINT fk_gc_child FOREIGN KEY (cid) REFERENCES child (id) ON DELETE CASCADE ON UPDATE CASCADE) ENGINE=InnoDB;
    CREATE TABLE orphanable (id INT PRIMARY KEY, pid INT NULL,
        CONSTRAINT fk_orph_parent FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE SET NULL ON UPDATE SET NULL) ENGINE=InnoDB;
    CREATE TABLE tree (id INT PRIMARY KEY, up INT NULL, label VARCHAR(20),
        CONSTRAINT fk_tree_up FOREIGN KEY (up) REFERENCES tree (id) ON DELETE CASCADE) ENGINE=InnoDB;
    CREATE TABLE audit (id INT PRIMARY KEY, pid INT NULL) ENGINE=InnoDB;
    CREATE TABLE other (id INT PRIMARY KEY, n INT NOT NULL DEFAULT 0) ENGINE=InnoDB;
    INSERT INTO parent SELECT seq, CONCAT('p', seq), 0 FROM seq_1_to_120;
    INSERT INTO child SELECT seq, 1 + seq % 120, CONCAT('p', 1 + (seq * 7) % 120), 0 FROM seq_1_to_600;
    INSERT INTO grandchild SELECT seq, 1 + seq % 600, 0 FROM seq_1_to_1200;
    INSERT INTO orphanable SELECT seq, 1 + seq % 120 FROM seq_1_to_240;
    INSERT INTO tree VALUES (1, NULL, 'root1'), (2, NULL, 'root2');
    INSERT INTO tree SELECT seq, 1 + seq % 2, 'l1' FROM seq_3_to_20;
    INSERT INTO tree SELECT seq, 3 + seq % 18, 'l2' FROM seq_21_to_80;
    INSERT INTO tree SELECT seq, 21 + seq % 60, 'l3' FROM seq_81_to_200;
    INSERT INTO audit SELECT seq, 85 + seq % 10 FROM seq_1_to_120;
    INSERT INTO other SELECT seq, 0 FROM seq_1_to_100;";

async fn count(c: &mut mysql_async::Conn, sql: &str) -> Result<u64> {
    tk::scalar(c, sql).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cascades_repeat_on_the_target() -> Result<()> {
    const DB: &str = "fa_fk_cascade";
    let (mut s, mut t) = prepare(DB, DB, SCHEMA).await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with("fa-fk-cascade", selection(&[(DB, DB)]), pos, parallel).await?;
    let mut sql = String::new();
    for i in 0..30 {
        let p = 1 + i;
        // Unrelated traffic between the cascades (runs on the parallel workers).
        sql.push_str(&format!("UPDATE other SET n = n + 1 WHERE id = {};", 1 + i % 100));
        sql.push_str(&format!(
            "UPDATE grandchild SET w = w + 1 WHERE id = {};",
            1 + (i * 37) % 1200
        ));
        match i % 5 {
            // ON DELETE CASCADE two levels down, SET NULL through the unique key and on orphanable.
            0 => sql.push_str(&format!("DELETE FROM parent WHERE id = {p};")),
            // ON UPDATE CASCADE of the primary key (child.pid), ON UPDATE SET NULL on orphanable.
            1 => sql.push_str(&format!("UPDATE parent SET id = {} WHERE id = {p};", 1000 + p)),
            // ON UPDATE CASCADE through the unique key.
            2 => sql.push_str(&format!("UPDATE parent SET code = 'q{p}' WHERE id = {p};")),
            // An update that does not touch a referenced column: no cascade.
            3 => sql.push_str(&format!("UPDATE parent SET n = n + 1 WHERE id = {p};")),
            // A child key update cascading to the grandchildren, and a new child of a parent.
            _ => sql.push_str(&format!(
                "START TRANSACTION; UPDATE child SET id = {} WHERE id = {}; INSERT INTO child VALUES ({}, {}, NULL, 1); COMMIT;",
                5000 + i,
                1 + (i * 11) % 600,
                7000 + i,
                60 + i
            )),
        }
        // The same key re-used right after its cascade: a new parent and child under the old id.
        if i % 5 == 0 {
            sql.push_str(&format!(
                "START TRANSACTION; INSERT INTO parent VALUES ({p}, 'r{p}', 0); INSERT INTO child VALUES ({}, {p}, 'r{p}', 2); COMMIT;",
                8000 + i
            ));
        }
    }
    // Self-referencing: deleting a root removes three levels below it.
    sql.push_str("DELETE FROM tree WHERE id = 1;");
    // A source session without foreign-key checks: nothing cascades there, nothing on the target.
    sql.push_str("SET SESSION foreign_key_checks = 0; DELETE FROM parent WHERE id = 100; SET SESSION foreign_key_checks = 1;");
    // A cascading key added by DDL during the replay, then used; then one dropped, then a delete.
    sql.push_str(
        "ALTER TABLE audit ADD CONSTRAINT fk_audit_parent FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE;",
    );
    sql.push_str("DELETE FROM parent WHERE id = 90;");
    sql.push_str("ALTER TABLE child DROP FOREIGN KEY fk_child_parent;");
    sql.push_str("DELETE FROM parent WHERE id = 91;");
    // A multi-row delete in one statement.
    sql.push_str("DELETE FROM parent WHERE id BETWEEN 110 AND 115;");
    tk::exec(&mut s, &format!("USE {DB}; {sql}")).await?;
    let (summary, _) = run.complete().await?;
    assert_eq!(summary.reconnects, 0, "{summary:?}");

    // The cascades did happen on the source (else the comparison below would prove little) …
    let children_of_1: u64 = count(
        &mut s,
        &format!("SELECT COUNT(*) FROM {DB}.child WHERE pid = 1 AND id < 8000"),
    )
    .await?;
    assert_eq!(children_of_1, 0);
    let orphans: u64 = count(
        &mut s,
        &format!("SELECT COUNT(*) FROM {DB}.orphanable WHERE pid IS NULL"),
    )
    .await?;
    assert!(orphans > 0);
    let tree: u64 = count(&mut s, &format!("SELECT COUNT(*) FROM {DB}.tree")).await?;
    assert!(tree < 200);
    let kept: u64 = count(
        &mut s,
        &format!("SELECT COUNT(*) FROM {DB}.child WHERE pid IN (91, 100)"),
    )
    .await?;
    assert!(kept > 0, "no cascade without checks or without the key");
    // … and the target holds exactly the same rows.
    for table in ["child", "grandchild", "orphanable", "tree", "audit"] {
        let q = format!("SELECT COUNT(*) FROM {DB}.{table}");
        assert_eq!(count(&mut s, &q).await?, count(&mut t, &q).await?, "{table}");
    }
    assert_same(DB, DB).await
}

/// A target whose child rows differ from the source's (a RESTRICT child that the source does not
/// have) refuses the cascading delete: the replay stops with a definite error naming the key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_check_on_the_target_stops_by_name() -> Result<()> {
    const DB: &str = "fa_fk_refused";
    let (mut s, mut t) = prepare(
        DB,
        DB,
        "CREATE TABLE parent (id INT PRIMARY KEY) ENGINE=InnoDB;
         CREATE TABLE child (id INT PRIMARY KEY, pid INT NOT NULL,
            CONSTRAINT fk_c FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE) ENGINE=InnoDB;
         CREATE TABLE keep (id INT PRIMARY KEY, pid INT NOT NULL,
            CONSTRAINT fk_keep FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE RESTRICT) ENGINE=InnoDB;
         INSERT INTO parent SELECT seq FROM seq_1_to_10;
         INSERT INTO child SELECT seq, 1 + seq % 10 FROM seq_1_to_30;",
    )
    .await?;
    tk::exec(&mut t, &format!("INSERT INTO {DB}.keep VALUES (1, 5)")).await?;
    let pos = master_pos(&mut s).await?;
    let run = start_with("fa-fk-refused", selection(&[(DB, DB)]), pos, parallel).await?;
    tk::exec(&mut s, &format!("DELETE FROM {DB}.parent WHERE id = 5")).await?;
    let r = tokio::time::timeout(std::time::Duration::from_secs(120), run.task).await??;
    let e = match r {
        Ok(summary) => anyhow::bail!("the replay went on: {summary:?}"),
        Err(e) => e,
    };
    assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
    let msg = e.to_string();
    assert!(
        msg.contains("fk_c") && msg.contains("foreign_key_checks=1"),
        "{msg}"
    );
    // Nothing of the refused transaction landed.
    let left: u64 = count(&mut t, &format!("SELECT COUNT(*) FROM {DB}.child WHERE pid = 5")).await?;
    assert_eq!(left, 3);
    Ok(())
}
