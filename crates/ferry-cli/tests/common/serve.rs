//! A `ferry serve` child process for the end-to-end tests: started on 127.0.0.1:0 with a clean
//! environment (no FERRY_* variables of the caller's shell), its listening line awaited, its
//! stdout kept and its stderr in a file; stopped with SIGTERM or SIGKILL, killed when dropped.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub const ENV_VARS: &[&str] = &[
    "FERRY_SECRET_ID",
    "FERRY_SECRET_KEY",
    "FERRY_LISTEN",
    "FERRY_DATA_DIR",
    "FERRY_CONFIG",
    "FERRY_LOG_FORMAT",
    "FERRY_LOG",
    "FERRY_ENDPOINT",
    "FERRY_INSECURE_HTTP",
    "FERRY_ALLOWED_HOSTS",
    "FERRY_STORE_KEY",
    "FERRY_STORE",
    "FERRY_STORE_PASSWORD",
    "FERRY_TLS_FINGERPRINT",
];

/// The `ferry` binary without the caller's FERRY_* variables.
pub fn ferry_clean() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ferry"));
    for var in ENV_VARS {
        cmd.env_remove(var);
    }
    cmd
}

/// A running `ferry serve`.
pub struct Serve {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr_path: PathBuf,
}

impl Serve {
    pub fn start(dir: &Path, args: &[&str], envs: &[(&str, &str)]) -> Serve {
        let stderr_path = dir.join(format!("stderr-{}.log", uuid::Uuid::new_v4()));
        let mut cmd = ferry_clean();
        cmd.arg("serve")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(args)
            .current_dir(dir)
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr_path).unwrap());
        for (k, v) in envs {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().unwrap();
        let out = child.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel::<String>();
        let seen = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                seen.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        // Wait for the listening line (or the process to end without it).
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(120)) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ferry serve: listening on ") {
                        break rest.split_whitespace().next().unwrap().to_string();
                    }
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "ferry serve did not start ({e}): {}",
                        std::fs::read_to_string(&stderr_path).unwrap_or_default()
                    );
                }
            }
        };
        Serve {
            child,
            url,
            stdout: lines,
            stderr_path,
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().join("\n")
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr_path).unwrap_or_default()
    }

    /// SIGTERM, then the exit status.
    pub fn stop(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Serve {
    /// True while the process is stopped (SIGSTOP, or a `stop` fault point).
    pub fn is_stopped(&self) -> bool {
        ferry_testkit::child::process_stopped(self.child.id())
    }

    /// Sends a signal by name (`CONT`, `STOP`, …) with `kill(1)`.
    pub fn signal(&self, sig: &str) -> anyhow::Result<()> {
        let st = Command::new("kill")
            .args([format!("-{sig}"), self.child.id().to_string()])
            .status()?;
        anyhow::ensure!(st.success(), "kill -{sig} {}: {st}", self.child.id());
        Ok(())
    }

    /// SIGKILL: no chance to stop anything cleanly.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `ferry serve` on `data_dir` (its parent takes the log) with a key pair.
pub fn start_keyed(data_dir: &Path, secret_id: &str, secret_key: &str) -> anyhow::Result<Serve> {
    start_keyed_with(data_dir, secret_id, secret_key, &[], &[])
}

/// [`start_keyed`] with more arguments and environment variables.
pub fn start_keyed_with(
    data_dir: &Path,
    secret_id: &str,
    secret_key: &str,
    args: &[&str],
    envs: &[(&str, &str)],
) -> anyhow::Result<Serve> {
    let parent = data_dir
        .parent()
        .ok_or_else(|| anyhow::anyhow!("no parent of {}", data_dir.display()))?;
    std::fs::create_dir_all(parent)?;
    let data = data_dir
        .to_str()
        .ok_or_else(|| anyhow::anyhow!("not UTF-8: {}", data_dir.display()))?;
    let mut all_args = vec!["--data-dir", data];
    all_args.extend_from_slice(args);
    let mut all_envs = vec![("FERRY_SECRET_ID", secret_id), ("FERRY_SECRET_KEY", secret_key)];
    all_envs.extend_from_slice(envs);
    Ok(Serve::start(parent, &all_args, &all_envs))
}
