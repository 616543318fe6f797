//! The torture suite: seeded random schedules of faults across every phase of a MigrateType 3
//! job with verification (structure, full load, incremental under a write load, cut-over,
//! verification), decided by the exactly-once tables and a full digest comparison.
//!
//! The job runs in `ferry run` processes, or in a `ferry serve` that holds it (created, started
//! and completed through the API, as a cloud console would; the service resumes it when it is
//! started again): `FERRY_TORTURE_VIA=run` or `serve`; by default the rounds alternate, the
//! first through `ferry run`.
//!
//! Faults: `kill -9` of the process that runs the job (`ferry run` or `ferry serve`); restarts of
//! the source and of the target, two instances of the test's own (`scripts/servers.sh start-one
//! torture-src`, `torture-dst`); network cuts and stalls of either side through
//! [`TcpProxy`]s; and the named fault points of `ferry_core::fault` (`FERRY_FAULTS`: the process
//! exits, or the operation fails with a transient error, at a chosen hit).
//!
//! Writers run on the source from before the job until the cut-over: the counter/journal
//! transactions (exactly-once tables) and the parent/child/grandchild family writer (`ON DELETE
//! CASCADE`, `ON UPDATE CASCADE`, `SET NULL`; deletes and key updates of parents). Each round
//! ends with a completed job, whose verification must say "consistent", then counter = journal
//! rows = distinct journal values = the writer's commits, and the digests of every table of the
//! source and the target are equal.
//!
//! - Default (CI): two rounds of about 8 faults (one through `ferry run`, one through `ferry
//!   serve`), about a minute.
//! - `FERRY_TORTURE=long`: 20 rounds of about 10 faults (`FERRY_TORTURE_ROUNDS=N` overrides
//!   the rounds). Each round has one cut-over and one verification fault: the recovery from
//!   either finishes that phase.
//! - The seed is printed; `FERRY_TORTURE_SEED=N` replays a schedule (the decisions, not the
//!   timings of the servers).
//!
//! The figures (faults per kind and phase, rows lost and duplicated, recovery times) are printed
//! as a table at the end; `docs/reliability.md` records a long run. Only the database `ft_torture`
//! and the jobs `ft-torture` (`ferry run`) and the `ferry serve` rounds' own JobIds are touched.

mod common;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use common::api::{call, job_info};
use common::*;
use ferry_api::Client;
use ferry_core::fault;
use ferry_core::Endpoint;
use ferry_testkit::child::FerryChild;
use ferry_testkit::exactly_once::{counter_writer, family_writer, tally, WriterStats, FAMILY_TABLES};
use ferry_testkit::instance::Instance;
use ferry_testkit::proxy::TcpProxy;
use ferry_testkit::{connect, db_digest, drop_dbs, exec, fresh_db, scalar};
use mysql_async::prelude::Queryable;
use serde_json::{json, Value};

const DB: &str = "ft_torture";
const JOB: &str = "ft-torture";
const INSTANCE: &str = "torture-src";
const TARGET_INSTANCE: &str = "torture-dst";
const SECRET_ID: &str = "AKIDtorture";
const SECRET_KEY: &str = "torture-secret-key";
/// `ferry run`'s flag for "complete once caught up"; through `ferry serve`, CompleteMigrateJob.
const COMPLETE: &str = "--complete-when-caught-up";

/// What runs the job in a round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Run,
    Serve,
}

/// Round `no`'s runner: `FERRY_TORTURE_VIA` (`run`, `serve`), else alternating from `run`.
fn via(no: u32) -> Via {
    match std::env::var("FERRY_TORTURE_VIA").as_deref() {
        Ok("run") => Via::Run,
        Ok("serve") => Via::Serve,
        _ if no % 2 == 0 => Via::Serve,
        _ => Via::Run,
    }
}

/// SplitMix64: small, seedable, good enough for schedules.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// In `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }

    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[(self.next() % items.len() as u64) as usize]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Structure,
    FullLoad,
    Incremental,
    CutOver,
    Verification,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Kill9,
    SourceRestart,
    TargetRestart,
    CutSource,
    CutTarget,
    Stall,
    /// A fault point that ends the process.
    PointExit(&'static str),
    /// A fault point that fails with a transient error.
    PointError(&'static str),
}

impl Kind {
    fn label(&self) -> String {
        match self {
            Kind::Kill9 => "kill -9".into(),
            Kind::SourceRestart => "source restart".into(),
            Kind::TargetRestart => "target restart".into(),
            Kind::CutSource => "network cut (source)".into(),
            Kind::CutTarget => "network cut (target)".into(),
            Kind::Stall => "network stall".into(),
            Kind::PointExit(p) => format!("{p}=exit"),
            Kind::PointError(p) => format!("{p}=error"),
        }
    }
}

/// One injected fault and how long the job took to make progress again.
#[derive(Debug)]
struct Record {
    phase: Phase,
    kind: Kind,
    recovery: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Plan {
    rounds: u32,
    structure: u32,
    load: u32,
    incremental: u32,
    cutover: u32,
    verification: u32,
    big_rows: u64,
}

fn plan() -> Plan {
    let long = std::env::var("FERRY_TORTURE").is_ok_and(|v| v == "long");
    let mut p = if long {
        Plan {
            rounds: 20,
            structure: 1,
            load: 3,
            incremental: 4,
            cutover: 1,
            verification: 1,
            big_rows: 40_000,
        }
    } else {
        Plan {
            rounds: 2,
            structure: 1,
            load: 2,
            incremental: 3,
            cutover: 1,
            verification: 1,
            big_rows: 30_000,
        }
    };
    if let Some(n) = std::env::var("FERRY_TORTURE_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        p.rounds = n;
    }
    p
}

/// What the target says about the job.
struct Observed {
    phases: Vec<String>,
    chunks_done: u64,
    checkpoint: Option<(String, u64)>,
}

impl Observed {
    fn has(&self, p: &str) -> bool {
        self.phases.iter().any(|x| x == p)
    }

    fn phase(&self, cutover_requested: bool) -> Phase {
        if self.has("incremental") {
            Phase::Verification
        } else if self.has("post_data") {
            if cutover_requested {
                Phase::CutOver
            } else {
                Phase::Incremental
            }
        } else if self.has("structure") {
            Phase::FullLoad
        } else {
            Phase::Structure
        }
    }
}

/// A query's result, or the empty one while `ferry_meta` or its table does not exist yet; any
/// other error (the target restarting) is returned.
fn unless_absent<T: Default>(r: std::result::Result<T, mysql_async::Error>) -> Result<T> {
    match r {
        Ok(v) => Ok(v),
        Err(mysql_async::Error::Server(e)) if e.code == 1146 || e.code == 1049 => Ok(T::default()),
        Err(e) => Err(e.into()),
    }
}

async fn observe(t: &mut mysql_async::Conn, key: &str) -> Result<Observed> {
    let phases: Vec<String> = unless_absent(
        t.exec("SELECT phase FROM ferry_meta.job_phase WHERE job = ?", (key,))
            .await,
    )?;
    let chunks_done: Option<u64> = unless_absent(
        t.exec_first(
            "SELECT COUNT(*) FROM ferry_meta.load_chunk WHERE job = ? AND done = 1",
            (key,),
        )
        .await,
    )?;
    let checkpoint: Option<(String, u64)> = unless_absent(
        t.exec_first(
            "SELECT file, pos FROM ferry_meta.replay_checkpoint WHERE job = ?",
            (key,),
        )
        .await,
    )?;
    Ok(Observed {
        phases,
        chunks_done: chunks_done.unwrap_or(0),
        checkpoint,
    })
}

/// Everything one round works with.
struct Rig {
    bin_dir: PathBuf,
    job_path: PathBuf,
    instance: Instance,
    src: Endpoint,
    /// The target instance (restarted by a fault) and its endpoint.
    target: Instance,
    dst: Endpoint,
    sp: TcpProxy,
    tp: TcpProxy,
    t: mysql_async::Conn,
    child: Option<FerryChild>,
    spawns: u32,
    records: Vec<Record>,
    /// SIGUSR1 was sent (a kill now lands in the cut-over).
    cutover_requested: bool,
    /// `FERRY_FAULTS` of the processes started to recover (not of those that carry a fault).
    respawn_faults: Option<String>,
    via: Via,
    /// The job's name in `ferry_meta`: `JOB` for `ferry run`, the JobId through `ferry serve`
    /// (empty until the first `ferry serve` created it).
    key: String,
    /// The CreateMigrateJob request (through `ferry serve`).
    request: Value,
    /// `ferry serve`'s data directory.
    serve_dir: PathBuf,
    /// The API of the running `ferry serve`.
    client: Option<Client>,
}

impl Rig {
    /// Starts the process that runs the job: `ferry run` with `extra`, or `ferry serve` (the job
    /// created and started through the API the first time; `COMPLETE` in `extra` becomes
    /// CompleteMigrateJob).
    async fn spawn(&mut self, faults: Option<String>, extra: &[&str]) -> Result<()> {
        self.spawns += 1;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_ferry"));
        match self.via {
            Via::Run => {
                cmd.arg("run")
                    .arg(&self.job_path)
                    .args(["--progress", "plain", "--skip-check"])
                    .args(extra);
                if self.spawns == 1 {
                    cmd.arg("--restart");
                }
            }
            Via::Serve => {
                cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
                    .arg(&self.serve_dir)
                    .env("FERRY_SECRET_ID", SECRET_ID)
                    .env("FERRY_SECRET_KEY", SECRET_KEY);
            }
        }
        cmd.env_remove(fault::ENV);
        if let Some(f) = &faults {
            cmd.env(fault::ENV, f);
        }
        eprintln!(
            "torture: spawn #{} {}{}",
            self.spawns,
            extra.join(" "),
            faults.map(|f| format!(" FERRY_FAULTS={f}")).unwrap_or_default()
        );
        self.child = Some(FerryChild::spawn(
            cmd,
            &self.bin_dir,
            &format!("ft-run-{}", self.spawns),
        )?);
        if self.via == Via::Serve {
            self.client = None;
            let Some(url) = self.listening().await? else {
                return Ok(()); // it exited first: the caller sees that and starts another
            };
            let c = Client::new(url, SECRET_ID, SECRET_KEY);
            if self.key.is_empty() {
                let id = call(&c, "CreateMigrateJob", self.request.clone()).await?["JobId"]
                    .as_str()
                    .context("CreateMigrateJob: no JobId")?
                    .to_string();
                eprintln!("torture: job {id} created through ferry serve");
                call(&c, "CreateMigrateCheckJob", json!({"JobId": id})).await?;
                common::api::wait_status(&c, &id, 4, 120).await?;
                call(&c, "StartMigrateJob", json!({"JobId": id})).await?;
                self.key = id;
            }
            self.client = Some(c);
            if extra.contains(&COMPLETE) {
                self.complete().await?;
            }
        }
        Ok(())
    }

    /// The URL `ferry serve` listens on, once it says so (`None` if it exits first).
    async fn listening(&mut self) -> Result<Option<String>> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let out = self.output();
            if let Some(rest) = out.split("ferry serve: listening on ").nth(1) {
                let url = rest.split_whitespace().next().unwrap_or_default();
                return Ok(Some(url.to_string()));
            }
            if self
                .child
                .as_mut()
                .map(|c| c.try_wait())
                .transpose()?
                .flatten()
                .is_some()
            {
                return Ok(None);
            }
            if Instant::now() > deadline {
                bail!("ferry serve did not start listening:\n{out}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The job's status through `ferry serve` (`None` when it does not answer).
    async fn status(&self) -> Option<(i64, String)> {
        let c = self.client.as_ref()?;
        let i = job_info(c, &self.key).await.ok()?;
        Some((i["Status"].as_i64().unwrap_or(0), i["ErrorInfo"].to_string()))
    }

    /// Through `ferry serve`: CompleteMigrateJob once the job is ready (8); nothing when it
    /// completes already (12) or has (9). A `ferry serve` that stops answering meanwhile (a
    /// fault) is left to the caller, which starts another.
    async fn complete(&mut self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(180);
        loop {
            let Some((st, err)) = self.status().await else {
                return Ok(());
            };
            match st {
                8 => {
                    if let Some(c) = &self.client {
                        match call(c, "CompleteMigrateJob", json!({"JobId": self.key})).await {
                            Ok(_) => return Ok(()),
                            Err(e) => eprintln!("torture: CompleteMigrateJob: {e}"),
                        }
                    }
                }
                9 | 12 => return Ok(()),
                5 | 10 => bail!("the job ended in {st}: {err}\n{}", self.output()),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!(
                    "the job never became ready to complete (status {st})\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Asks for the cut-over: SIGUSR1 to `ferry run`, CompleteMigrateJob through `ferry serve`.
    async fn request_cutover(&mut self) -> Result<()> {
        match self.via {
            Via::Run => match &self.child {
                Some(c) => c.signal("USR1"),
                None => Ok(()),
            },
            Via::Serve => self.complete().await,
        }
    }

    /// Waits (at most `secs`) until the process exits; through `ferry serve` also until the job
    /// has succeeded (the service is then stopped with SIGTERM), failing when the job failed.
    async fn wait_child(&mut self, secs: u64) -> Result<(std::process::ExitStatus, String)> {
        if self.via == Via::Run {
            let mut c = self.child.take().context("no ferry process")?;
            return c.wait(secs).await;
        }
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(done) = self.exited()? {
                return Ok(done);
            }
            match self.status().await {
                Some((9, _)) => {
                    let mut c = self.child.take().context("no ferry process")?;
                    c.signal("TERM")?;
                    return c.wait(60).await;
                }
                Some((st @ (5 | 10), err)) => bail!("the job ended in {st}: {err}\n{}", self.output()),
                _ => {}
            }
            if Instant::now() > deadline {
                bail!(
                    "ferry serve: the job did not finish within {secs} s\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// What the target says, reconnecting (for up to a minute) when the target was restarted.
    async fn obs(&mut self) -> Result<Observed> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match observe(&mut self.t, &self.key).await {
                Ok(o) => return Ok(o),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    if let Ok(c) = connect(&self.dst).await {
                        self.t = c;
                    }
                }
            }
        }
    }

    /// The child's exit status if it has exited (then it is gone).
    fn exited(&mut self) -> Result<Option<(std::process::ExitStatus, String)>> {
        let Some(c) = self.child.as_mut() else {
            return Ok(None);
        };
        match c.try_wait()? {
            Some(st) => {
                let o = c.output();
                self.child = None;
                Ok(Some((st, o)))
            }
            None => Ok(None),
        }
    }

    fn output(&self) -> String {
        self.child.as_ref().map(|c| c.output()).unwrap_or_default()
    }

    /// Waits (bounded) until `done` holds, respawning a process that exited with a fault or a
    /// transient failure. Fails on a definite failure or after `secs`.
    async fn progress_until<F>(&mut self, secs: u64, what: &str, extra: &[&str], mut done: F) -> Result<()>
    where
        F: FnMut(&Observed, bool) -> bool,
    {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let o = self.obs().await?;
            let running = self.child.is_some();
            if done(&o, running) {
                return Ok(());
            }
            if let Some((st, out)) = self.exited()? {
                self.check_exit(st, &out)?;
                if st.success() {
                    continue;
                }
                self.spawn(self.respawn_faults.clone(), extra).await?;
            } else if self.child.is_none() {
                self.spawn(self.respawn_faults.clone(), extra).await?;
            }
            if Instant::now() > deadline {
                bail!(
                    "torture: timed out after {secs} s waiting for {what}\n{}",
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// An exit is acceptable when it is a fault exit, a success, or a failure the runner calls
    /// transient (it says "run the same command again").
    fn check_exit(&self, st: std::process::ExitStatus, out: &str) -> Result<()> {
        if st.success() || st.code() == Some(fault::EXIT_CODE) || st.code().is_none() {
            return Ok(());
        }
        if out.contains("this looks transient") {
            eprintln!("torture: ferry exited after a transient failure; running it again");
            return Ok(());
        }
        bail!("ferry failed definitely ({st}):\n{out}")
    }

    fn record(&mut self, phase: Phase, kind: Kind, since: Instant) {
        let recovery = since.elapsed();
        eprintln!(
            "torture: {:?} {} recovered in {:.2} s",
            phase,
            kind.label(),
            recovery.as_secs_f64()
        );
        self.records.push(Record {
            phase,
            kind,
            recovery,
        });
    }

    /// Injects an external fault now.
    async fn inject(&mut self, kind: Kind, rng: &mut Rng) -> Result<()> {
        eprintln!("torture: inject {}", kind.label());
        match kind {
            Kind::Kill9 => {
                if let Some(mut c) = self.child.take() {
                    c.kill9()?;
                }
            }
            Kind::SourceRestart => self.instance.restart().await?,
            Kind::TargetRestart => self.target.restart().await?,
            Kind::CutSource => self.sp.cut(),
            Kind::CutTarget => self.tp.cut(),
            Kind::Stall => {
                self.sp.stall(true);
                if rng.range(0, 1) == 1 {
                    self.tp.stall(true);
                }
                tokio::time::sleep(Duration::from_millis(rng.range(500, 2500))).await;
                self.sp.stall(false);
                self.tp.stall(false);
            }
            Kind::PointExit(_) | Kind::PointError(_) => {}
        }
        Ok(())
    }
}

const EXTERNAL: [Kind; 6] = [
    Kind::Kill9,
    Kind::SourceRestart,
    Kind::TargetRestart,
    Kind::CutSource,
    Kind::CutTarget,
    Kind::Stall,
];

/// The source tables of a round (on the torture instance).
async fn prepare_source(src: &Endpoint, big_rows: u64) -> Result<()> {
    let mut s = connect(src).await?;
    fresh_db(&mut s, DB).await?;
    exec(
        &mut s,
        &format!(
            "USE {DB}; {EXACTLY_ONCE_TABLES}; {FAMILY_TABLES}; \
             CREATE TABLE big (id INT PRIMARY KEY, k INT, c CHAR(100), KEY kk (k)); \
             INSERT INTO big SELECT seq, seq % 1000, MD5(seq) FROM seq_1_to_{big_rows}; \
             CREATE TABLE ddl_t (id INT PRIMARY KEY, v INT); INSERT INTO ddl_t VALUES (1, 1)"
        ),
    )
    .await
}

async fn round(
    no: u32,
    via: Via,
    p: Plan,
    rng: &mut Rng,
    instance: Instance,
    target: Instance,
    records: &mut Vec<Record>,
) -> Result<(Instance, Instance)> {
    let src = instance.endpoint()?;
    let dst = target.endpoint()?;
    prepare_source(&src, p.big_rows).await?;
    let mut t = connect(&dst).await?;
    drop_dbs(&mut t, &[DB]).await?;
    let sp = TcpProxy::start((src.host.clone(), src.port)).await?;
    let tp = TcpProxy::start((dst.host.clone(), dst.port)).await?;

    let mut j = job(
        JOB,
        json!([{ "Database": DB }]),
        json!({"Threads": 2, "ChunkRows": 2000, "RowsPerSecond": 25000, "RetryWindowSeconds": 600}),
        3,
    );
    j["MigrateOption"]["ConsistencyType"] = json!(2);
    j["SrcInfo"] =
        json!({"Ip": "127.0.0.1", "Port": sp.port(), "User": src.user, "Password": src.password.expose()});
    j["DstInfo"]["Ip"] = json!("127.0.0.1");
    j["DstInfo"]["Port"] = json!(tp.port());
    let job_path = write_job(JOB, &j);
    let bin_dir = job_path.parent().context("job directory")?.to_path_buf();
    let serve_dir = bin_dir.join(format!("ft-serve-{no}"));
    let _ = std::fs::remove_dir_all(&serve_dir);
    std::fs::create_dir_all(&serve_dir)?;

    // Writers, straight to the source instance (not through the proxy).
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(WriterStats::default());
    let families = Arc::new(WriterStats::default());
    let w1 = counter_writer(
        src.clone(),
        DB.into(),
        u64::from(no) * 100_000_000,
        Duration::from_millis(2),
        u64::MAX,
        stop.clone(),
        counter.clone(),
    );
    let w2 = family_writer(
        src.clone(),
        DB.into(),
        u64::from(no) * 100_000_000,
        Duration::from_millis(5),
        stop.clone(),
        families.clone(),
    );
    struct StopOnDrop(Arc<AtomicBool>);
    impl Drop for StopOnDrop {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let _stop_guard = StopOnDrop(stop.clone());

    let mut rig = Rig {
        bin_dir,
        job_path,
        instance,
        src: src.clone(),
        target,
        dst: dst.clone(),
        sp,
        tp,
        t,
        child: None,
        spawns: 0,
        records: Vec::new(),
        cutover_requested: false,
        respawn_faults: None,
        via,
        key: if via == Via::Run {
            JOB.to_string()
        } else {
            String::new()
        },
        request: j.clone(),
        serve_dir,
        client: None,
    };
    // Forget earlier rounds' progress of this job (the first spawn has --restart too).
    for table in [
        "replay_checkpoint",
        "load_chunk",
        "load_job",
        "job_phase",
        "verify_table",
    ] {
        let col = if table == "verify_table" {
            "job_name"
        } else {
            "job"
        };
        let _ = exec(
            &mut rig.t,
            &format!("DELETE FROM ferry_meta.{table} WHERE {col} = '{JOB}'"),
        )
        .await;
    }

    // 1. Structure: kill -9 shortly after the start, or the process ends right after one of
    //    the first structure statements (`structure.ddl_applied`).
    for _ in 0..p.structure {
        let (phase, kind, since) = if rng.range(0, 1) == 0 {
            if rig.child.is_none() {
                rig.spawn(None, &[]).await?;
            }
            tokio::time::sleep(Duration::from_millis(rng.range(0, 150))).await;
            let phase = rig.obs().await?.phase(false);
            let since = Instant::now();
            rig.inject(Kind::Kill9, rng).await?;
            (phase, Kind::Kill9, since)
        } else {
            let kind = Kind::PointExit(fault::STRUCTURE_DDL_APPLIED);
            let hit = rng.range(1, 6);
            match arm(&mut rig, kind, hit, &[], None, |o| o.has("structure")).await? {
                Some(t) => (Phase::Structure, kind, t),
                None => continue,
            }
        };
        rig.progress_until(
            120,
            "progress after a fault in the structure phase",
            &[],
            |o, running| running && o.has("structure"),
        )
        .await?;
        rig.record(phase, kind, since);
    }

    // 2. Full load.
    let load_points = [
        Kind::PointExit(fault::LOAD_CHUNK_WRITTEN),
        Kind::PointError(fault::LOAD_CHUNK_WRITTEN),
        Kind::PointExit(fault::LOAD_AFTER_SNAPSHOT),
        Kind::PointError(fault::LOAD_AFTER_SNAPSHOT),
    ];
    for _ in 0..p.load {
        let o = rig.obs().await?;
        if o.has("full_data") {
            eprintln!("torture: the full load finished before every planned load fault");
            break;
        }
        let kind = if rng.range(0, 1) == 0 {
            rng.pick(&load_points)
        } else {
            rng.pick(&EXTERNAL)
        };
        fault_step(&mut rig, rng, kind, Phase::FullLoad).await?;
    }

    // 3. Incremental under the write load.
    let replay_points = [
        Kind::PointExit(fault::REPLAY_BEFORE_COMMIT),
        Kind::PointError(fault::REPLAY_BEFORE_COMMIT),
        Kind::PointExit(fault::REPLAY_AFTER_COMMIT),
        Kind::PointError(fault::REPLAY_AFTER_COMMIT),
        Kind::PointExit(fault::REPLAY_DDL_APPLIED),
        Kind::PointError(fault::REPLAY_DDL_APPLIED),
    ];
    rig.progress_until(300, "the incremental phase", &[], |o, running| {
        running && o.has("post_data") && o.checkpoint.is_some()
    })
    .await?;
    let mut ddl_no = 0u32;
    for _ in 0..p.incremental {
        let kind = if rng.range(0, 1) == 0 {
            rng.pick(&replay_points)
        } else {
            rng.pick(&EXTERNAL)
        };
        if matches!(kind, Kind::PointExit(n) | Kind::PointError(n) if n == fault::REPLAY_DDL_APPLIED) {
            ddl_no += 1;
        }
        fault_step_replay(&mut rig, rng, kind, ddl_no).await?;
    }

    // 4. Cut-over: the writers stop, completion is requested, and the process is killed while
    //    it drains (or right after, in the verification).
    stop.store(true, Ordering::SeqCst);
    w1.await??;
    w2.await??;
    let commits = counter.commits.load(Ordering::SeqCst);
    eprintln!(
        "torture: round {no}: writers stopped: {commits} counter commits ({} interrupted), {} family commits",
        counter.errors.load(Ordering::SeqCst),
        families.commits.load(Ordering::SeqCst)
    );
    // The cut-over's processes stop at the first verification chunk, so that the verification
    // is left for the verification faults (these stops are not counted).
    rig.respawn_faults = Some(format!("{}=exit@1", fault::VERIFY_CHUNK));
    if let Some(mut c) = rig.child.take() {
        c.kill9()?; // not counted: it makes room for a process that holds before the verification
    }
    for _ in 0..p.cutover {
        if rig.obs().await?.has("incremental") {
            break;
        }
        rig.progress_until(120, "a running replay before the cut-over", &[], |o, running| {
            running && o.checkpoint.is_some()
        })
        .await?;
        rig.request_cutover().await?;
        rig.cutover_requested = true;
        // `ferry run` is still catching up with what was written while no process ran;
        // CompleteMigrateJob is accepted only once the job is caught up (8), so its drain is
        // short.
        let window = if rig.via == Via::Run { 600 } else { 40 };
        tokio::time::sleep(Duration::from_millis(rng.range(0, window))).await;
        let phase = rig.obs().await?.phase(true);
        // A process that already stopped at the verification (its `verify.chunk` point) is not
        // killed: that would count a fault that hit nothing.
        let gone = rig.exited()?.is_some();
        let since = Instant::now();
        if gone {
            eprintln!("torture: the cut-over had finished before the kill: none injected");
        } else {
            rig.inject(Kind::Kill9, rng).await?;
        }
        rig.progress_until(180, "the cut-over after a kill", &[COMPLETE], |o, _| {
            o.has("incremental")
        })
        .await?;
        if !gone {
            rig.record(phase, Kind::Kill9, since);
        }
    }

    rig.respawn_faults = None;
    if rig.child.is_some() {
        let (st, out) = rig.wait_child(300).await?;
        rig.check_exit(st, &out)?;
    }
    if !rig.obs().await?.has("incremental") {
        bail!("the cut-over did not finish");
    }

    // 5. Verification.
    for _ in 0..p.verification {
        let o = rig.obs().await?;
        if o.has("verification") {
            break;
        }
        let kind = rng.pick(&[
            Kind::PointExit(fault::VERIFY_CHUNK),
            Kind::PointError(fault::VERIFY_CHUNK),
            Kind::Kill9,
            Kind::CutTarget,
            Kind::CutSource,
        ]);
        // A fresh process for each verification fault.
        if rig.child.is_some() {
            let (st, out) = rig.wait_child(300).await?;
            rig.check_exit(st, &out)?;
        }
        if rig.obs().await?.has("verification") {
            break;
        }
        let since = match kind {
            Kind::PointExit(_) | Kind::PointError(_) => {
                let hit = rng.range(1, 12);
                match arm(&mut rig, kind, hit, &[COMPLETE], None, |o| o.has("verification")).await? {
                    Some(t) => t,
                    None => continue,
                }
            }
            _ => {
                rig.spawn(None, &[COMPLETE]).await?;
                // Until the comparison is under way.
                tokio::time::sleep(Duration::from_millis(rng.range(300, 1500))).await;
                if rig.obs().await?.has("verification") {
                    continue;
                }
                let t = Instant::now();
                rig.inject(kind, rng).await?;
                t
            }
        };
        rig.progress_until(300, "the verification after a fault", &[COMPLETE], |o, _| {
            o.has("verification")
        })
        .await?;
        rig.record(Phase::Verification, kind, since);
    }

    // The end: a run to completion, which must find everything done and consistent.
    if rig.child.is_some() {
        let (st, out) = rig.wait_child(300).await?;
        rig.check_exit(st, &out)?;
    }
    let mut last = String::new();
    for attempt in 0..5 {
        rig.spawn(None, &[COMPLETE]).await?;
        let (st, out) = rig.wait_child(600).await?;
        last = out;
        if st.success() {
            break;
        }
        rig.check_exit(st, &last)?;
        eprintln!("torture: final run attempt {attempt} failed transiently; again");
    }
    let o = rig.obs().await?;
    if !o.has("verification") {
        bail!("the job did not finish its verification:\n{last}");
    }
    let stored: u64 = scalar(
        &mut rig.t,
        &format!(
            "SELECT COUNT(*) FROM ferry_meta.verify_table WHERE job_name = '{}' AND consistent = 0",
            rig.key
        ),
    )
    .await?;

    // The decision: exactly-once tables and full digests.
    rig.t = connect(&rig.dst).await?;
    let tl = tally(&mut rig.t, DB).await?;
    let mut s = connect(&rig.src).await?;
    let a = db_digest(&mut s, DB).await?;
    let b = db_digest(&mut rig.t, DB).await?;
    let differing: Vec<&String> = a.keys().filter(|k| a.get(*k) != b.get(*k)).collect();
    eprintln!(
        "torture: round {no} ({via:?}): commits {commits}, target counter {}, journal rows {}, distinct {}; lost {}, duplicated {}; \
         tables differing {:?}; verification inconsistent tables {stored}; {} ferry processes",
        tl.counter,
        tl.rows,
        tl.distinct,
        tl.lost(commits),
        tl.duplicated(commits),
        differing,
        rig.spawns
    );
    records.append(&mut rig.records);
    LOST.fetch_add(tl.lost(commits), Ordering::SeqCst);
    DUPLICATED.fetch_add(tl.duplicated(commits), Ordering::SeqCst);
    assert_exactly_once(&mut rig.t, DB, commits, &last).await?;
    if !differing.is_empty() {
        bail!("source and target differ in {differing:?}\n{last}");
    }
    // … and the tables' definitions (secondary indexes and foreign keys included).
    let (da, db) = (
        ferry_testkit::table_definitions(&mut s, DB).await?,
        ferry_testkit::table_definitions(&mut rig.t, DB).await?,
    );
    if da != db {
        bail!("the table definitions differ:\nsource {da:#?}\ntarget {db:#?}");
    }
    if stored != 0 {
        bail!("the job's verification found {stored} inconsistent tables\n{last}");
    }
    drop_dbs(&mut s, &[DB]).await?;
    drop_dbs(&mut rig.t, &[DB]).await?;
    Ok((rig.instance, rig.target))
}

static LOST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
static DUPLICATED: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Replaces the running process by one carrying the fault point `kind` at `hit` and waits
/// until it fires (`Some(when)`), or until `over` says the phase is past it (`None`).
async fn arm(
    rig: &mut Rig,
    kind: Kind,
    hit: u64,
    extra: &[&str],
    after_spawn: Option<String>,
    over: impl Fn(&Observed) -> bool,
) -> Result<Option<Instant>> {
    let (Kind::PointExit(n) | Kind::PointError(n)) = kind else {
        bail!("not a fault point: {kind:?}")
    };
    let act = if matches!(kind, Kind::PointExit(_)) {
        "exit"
    } else {
        "error"
    };
    if let Some(mut c) = rig.child.take() {
        c.kill9()?; // not counted: it makes room for a process that carries the fault
    }
    rig.spawn(Some(format!("{n}={act}@{hit}")), extra).await?;
    let log = rig.bin_dir.join(format!("ft-run-{}.stderr", rig.spawns));
    if let Some(sql) = after_spawn {
        let mut s = connect(&rig.src).await?;
        exec(&mut s, &sql).await?;
    }
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        if std::fs::read_to_string(&log)
            .unwrap_or_default()
            .contains("ferry: fault point")
        {
            return Ok(Some(Instant::now()));
        }
        if over(&rig.obs().await?) {
            eprintln!("torture: {} did not fire before its phase ended", kind.label());
            return Ok(None);
        }
        if let Some((st, out)) = rig.exited()? {
            if out.contains("ferry: fault point") {
                return Ok(Some(Instant::now()));
            }
            rig.check_exit(st, &out)?;
            eprintln!(
                "torture: the process carrying {} exited before it fired",
                kind.label()
            );
            return Ok(None);
        }
        if Instant::now() > deadline {
            bail!("fault {} never fired\n{}", kind.label(), rig.output());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One fault during the full load, then until a chunk more is done.
async fn fault_step(rig: &mut Rig, rng: &mut Rng, kind: Kind, phase: Phase) -> Result<()> {
    let since = match kind {
        Kind::PointExit(n) | Kind::PointError(n) => {
            let hit = if n == fault::LOAD_AFTER_SNAPSHOT {
                1
            } else {
                rng.range(1, 4)
            };
            match arm(rig, kind, hit, &[], None, |o| o.has("full_data")).await? {
                Some(t) => t,
                None => return Ok(()),
            }
        }
        _ => {
            let base = rig.obs().await?.chunks_done;
            let more = rng.range(1, 3);
            rig.progress_until(180, "load chunks before the fault", &[], |o, running| {
                running && (o.chunks_done >= base + more || o.has("full_data"))
            })
            .await?;
            if rig.obs().await?.has("full_data") {
                return Ok(());
            }
            let t = Instant::now();
            rig.inject(kind, rng).await?;
            t
        }
    };
    let base = rig.obs().await?.chunks_done;
    rig.progress_until(300, "load progress after the fault", &[], |o, running| {
        running && (o.chunks_done > base || o.has("full_data"))
    })
    .await?;
    rig.record(phase, kind, since);
    Ok(())
}

/// One fault during the incremental phase, then until the checkpoint moves on.
async fn fault_step_replay(rig: &mut Rig, rng: &mut Rng, kind: Kind, ddl_no: u32) -> Result<()> {
    let since = match kind {
        Kind::PointExit(n) | Kind::PointError(n) => {
            let (hit, sql) = if n == fault::REPLAY_DDL_APPLIED {
                (
                    1,
                    Some(format!(
                        "ALTER TABLE {DB}.ddl_t ADD COLUMN c{d} INT NOT NULL DEFAULT {d}; \
                         CREATE TABLE {DB}.ddl_new{d} (id INT PRIMARY KEY); \
                         INSERT INTO {DB}.ddl_new{d} VALUES ({d}); UPDATE {DB}.ddl_t SET v = v + 1",
                        d = ddl_no
                    )),
                )
            } else {
                (rng.range(1, 40), None)
            };
            match arm(rig, kind, hit, &[], sql, |_| false).await? {
                Some(t) => t,
                None => return Ok(()),
            }
        }
        _ => {
            let cp = rig.obs().await?.checkpoint;
            rig.progress_until(120, "replay progress before the fault", &[], |o, running| {
                running && o.checkpoint > cp
            })
            .await?;
            let t = Instant::now();
            rig.inject(kind, rng).await?;
            t
        }
    };
    let cp = rig.obs().await?.checkpoint;
    rig.progress_until(300, "replay progress after the fault", &[], |o, running| {
        running && o.checkpoint > cp
    })
    .await?;
    rig.record(Phase::Incremental, kind, since);
    Ok(())
}

fn report(records: &[Record], seed: u64) {
    let mut by: BTreeMap<(Phase, String), Vec<Duration>> = BTreeMap::new();
    for r in records {
        by.entry((r.phase, r.kind.label())).or_default().push(r.recovery);
    }
    println!("torture seed {seed}: {} faults", records.len());
    println!("| phase | fault | count | recovery min / median / max (s) |");
    println!("|---|---|---|---|");
    for ((phase, kind), mut d) in by {
        d.sort();
        println!(
            "| {phase:?} | {kind} | {} | {:.2} / {:.2} / {:.2} |",
            d.len(),
            d[0].as_secs_f64(),
            d[d.len() / 2].as_secs_f64(),
            d[d.len() - 1].as_secs_f64()
        );
    }
    let mut per_phase: BTreeMap<Phase, usize> = BTreeMap::new();
    for r in records {
        *per_phase.entry(r.phase).or_default() += 1;
    }
    println!("per phase: {per_phase:?}");
    println!(
        "rows lost: {}; rows duplicated: {}",
        LOST.load(Ordering::SeqCst),
        DUPLICATED.load(Ordering::SeqCst)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torture() -> Result<()> {
    let seed = std::env::var("FERRY_TORTURE_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let p = plan();
    eprintln!("torture: seed {seed} (rerun with FERRY_TORTURE_SEED={seed}); plan {p:?}");
    println!("torture seed {seed}");
    let mut rng = Rng(seed);
    let mut instance = Instance::start(INSTANCE).await?;
    let mut target = Instance::start(TARGET_INSTANCE).await?;
    let mut records = Vec::new();
    for no in 1..=p.rounds {
        let v = via(no);
        eprintln!("torture: round {no} of {} through ferry {v:?}", p.rounds);
        (instance, target) = round(no, v, p, &mut rng, instance, target, &mut records)
            .await
            .with_context(|| {
                format!("torture seed {seed} (rerun with FERRY_TORTURE_SEED={seed}), round {no}")
            })?;
    }
    report(&records, seed);
    drop(instance);
    drop(target);
    Ok(())
}
