//! The live-replay fixture of the `ferry verify` tests: a MigrateType 3 job whose `ferry run`
//! replays `DB.t (id, v, s)` while the test writes on the source, and `ferry verify --json`.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use ferry_testkit::child::FerryChild;
use ferry_testkit::{connect, drop_dbs, exec, forget_job, fresh_db, source, target, wait_until};
use serde_json::{json, Value};

use super::{ferry, job, replay_checkpoint_ts, text, write_job};

/// A running `ferry run` of a MigrateType 3 job over one table.
pub struct LiveReplay {
    /// The job file.
    pub path: PathBuf,
    /// The `ferry run` process (killed if the test ends early).
    pub run: FerryChild,
    job: String,
}

impl LiveReplay {
    /// A fresh `db` on the source with `t (id INT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(64))`
    /// of `rows` rows, none on the target, the job's earlier replay checkpoint and phases
    /// forgotten, and `ferry run --restart` of the job (`Threads` 2, `ChunkRows` `chunk_rows`)
    /// started.
    pub async fn start(db: &str, job_name: &str, rows: u64, chunk_rows: u64) -> Result<LiveReplay> {
        let mut s = connect(&source()).await?;
        let mut t = connect(&target()).await?;
        fresh_db(&mut s, db).await?;
        drop_dbs(&mut t, &[db]).await?;
        // Waiting for the checkpoint must see this run's replay.
        forget_job(&mut t, job_name, &["replay_checkpoint", "job_phase"]).await?;
        exec(
            &mut s,
            &format!(
                "USE {db}; CREATE TABLE t (id INT PRIMARY KEY, v BIGINT NOT NULL, s VARCHAR(64)); \
                 INSERT INTO t SELECT seq, seq, MD5(seq) FROM seq_1_to_{rows}"
            ),
        )
        .await?;
        let path = write_job(
            job_name,
            &job(
                job_name,
                json!([{"Database": db}]),
                json!({"Threads": 2, "ChunkRows": chunk_rows}),
                3,
            ),
        );
        let dir = path.parent().context("the job file's directory")?.to_path_buf();
        let mut cmd = ferry();
        cmd.arg("run")
            .arg(&path)
            .args(["--progress", "plain", "--restart", "--skip-check"]);
        let run = FerryChild::spawn(cmd, &dir, &format!("{job_name}-run"))?;
        Ok(LiveReplay {
            path,
            run,
            job: job_name.to_string(),
        })
    }

    /// Waits until the replay applies changes (its checkpoint carries a source timestamp).
    pub async fn wait_applying(&mut self) -> Result<()> {
        let job = self.job.clone();
        wait_until(180, "the replay to apply the writer's changes", || {
            let job = job.clone();
            async move { Ok(replay_checkpoint_ts(&mut connect(&target()).await?, &job).await? > 0) }
        })
        .await?;
        self.run.assert_running()
    }

    /// Cut-over: SIGUSR1, and `ferry run` completes successfully.
    pub async fn cut_over(&mut self) -> Result<()> {
        self.run.signal("USR1")?;
        let (status, output) = self.run.wait(180).await?;
        if !status.success() {
            bail!("ferry run after SIGUSR1: {status}\n{output}");
        }
        Ok(())
    }
}

/// `ferry verify PATH --json`: exit code, report, stderr.
pub fn verify_json(path: &std::path::Path) -> Result<(Option<i32>, Value, String)> {
    let out = ferry()
        .arg("verify")
        .arg(path)
        .arg("--json")
        .output()
        .context("running ferry verify")?;
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    eprintln!("ferry verify: {}\n{}", out.status, text(&out));
    let report: Value = serde_json::from_slice(&out.stdout)
        .with_context(|| format!("ferry verify printed no JSON report: {}", text(&out)))?;
    Ok((out.status.code(), report, stderr))
}
