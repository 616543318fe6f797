//! A `ferry` subprocess with its output in files: spawned by a test, polled, signalled, killed
//! with SIGKILL if the test ends before it exits.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running `ferry` process.
pub struct FerryChild {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl FerryChild {
    /// Spawns `cmd` (a `ferry …` command line the caller built) with stdout and stderr going to
    /// `dir/name.stdout` and `dir/name.stderr` (truncated).
    pub fn spawn(mut cmd: Command, dir: &Path, name: &str) -> Result<FerryChild> {
        let out = dir.join(format!("{name}.stdout"));
        let err = dir.join(format!("{name}.stderr"));
        let child = cmd
            .stdin(Stdio::null())
            .stdout(File::create(&out).with_context(|| out.display().to_string())?)
            .stderr(File::create(&err).with_context(|| err.display().to_string())?)
            .spawn()
            .context("spawning ferry")?;
        Ok(FerryChild {
            child: Some(child),
            out,
            err,
        })
    }

    /// Its process id (0 once it has exited and been reaped).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Its stdout and stderr so far.
    pub fn output(&self) -> String {
        format!(
            "--- stdout\n{}\n--- stderr\n{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    /// `Some(status)` once it has exited (then it is reaped).
    pub fn try_wait(&mut self) -> Result<Option<ExitStatus>> {
        let Some(c) = self.child.as_mut() else {
            bail!("the ferry process was already reaped")
        };
        let st = c.try_wait()?;
        if st.is_some() {
            self.child = None;
        }
        Ok(st)
    }

    /// Fails (with its output) if it has already exited.
    pub fn assert_running(&mut self) -> Result<()> {
        if let Some(st) = self.try_wait()? {
            bail!("ferry exited early ({st}):\n{}", self.output());
        }
        Ok(())
    }

    /// Waits at most `secs` for the exit; returns the status and the output (also printed).
    pub async fn wait(&mut self, secs: u64) -> Result<(ExitStatus, String)> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(st) = self.try_wait()? {
                let o = self.output();
                eprintln!("ferry: {st}\n{o}");
                return Ok((st, o));
            }
            if Instant::now() > deadline {
                bail!("ferry did not exit within {secs} s:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// True while the process is stopped (SIGSTOP, or a `stop` fault point; Linux `/proc`).
    pub fn is_stopped(&self) -> bool {
        process_stopped(self.pid())
    }

    /// Waits at most `secs` until the process is stopped (fails with its output if it exits).
    pub async fn wait_stopped(&mut self, secs: u64) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            self.assert_running()?;
            if self.is_stopped() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("ferry did not stop within {secs} s:\n{}", self.output());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, then reap.
    pub fn kill9(&mut self) -> Result<()> {
        if let Some(mut c) = self.child.take() {
            c.kill()?;
            c.wait()?;
        }
        Ok(())
    }

    /// Sends a signal by name (`USR1`, `INT`, …) with `kill(1)`.
    pub fn signal(&self, sig: &str) -> Result<()> {
        let pid = self.pid();
        if pid == 0 {
            bail!("no ferry process to signal");
        }
        let st = Command::new("kill")
            .args([format!("-{sig}"), pid.to_string()])
            .status()?;
        if !st.success() {
            bail!("kill -{sig} {pid}: {st}");
        }
        Ok(())
    }
}

impl Drop for FerryChild {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
            eprintln!("ferry killed by the test guard\n{}", self.output());
        }
    }
}

/// True while process `pid` is stopped (SIGSTOP, or a `stop` fault point; Linux `/proc`).
pub fn process_stopped(pid: u32) -> bool {
    pid != 0
        && std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, rest)| rest.trim_start().starts_with('T'))
            })
            .unwrap_or(false)
}
