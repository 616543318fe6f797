//! HTTPS by default off loopback: `ferry serve --listen 0.0.0.0:0` generates a self-signed
//! certificate into DATA_DIR/tls (key 0600), prints its SHA-256 fingerprint, keeps it across
//! restarts and speaks only HTTPS; `ferry api` pins the certificate from `--data-dir` or
//! `--fingerprint`, and refuses another one. `--insecure-http` serves plain HTTP. (The client
//! side connects to 127.0.0.1 only.)

mod common;

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use common::serve::ferry_clean;

const ID: &str = "AKIDtlsTest";
const KEY: &str = "tls-test-secret-key";

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-api-tls-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

struct Server {
    child: Child,
    lines: Vec<String>,
    /// The bound port.
    port: u16,
    /// `http` or `https`.
    scheme: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &Path, extra: &[&str]) -> Server {
    let mut child = ferry_clean()
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir", "data"])
        .args(extra)
        .env("FERRY_SECRET_ID", ID)
        .env("FERRY_SECRET_KEY", KEY)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    for line in out.lines().map_while(Result::ok) {
        lines.push(line.clone());
        if let Some(rest) = line.strip_prefix("ferry serve: listening on ") {
            let url = rest.split_whitespace().next().unwrap();
            let (scheme, addr) = url.split_once("://").unwrap();
            let port = addr.rsplit(':').next().unwrap().parse().unwrap();
            return Server {
                child,
                lines,
                port,
                scheme: scheme.to_string(),
            };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("ferry serve did not start: {lines:?}");
}

fn fingerprint_of(server: &Server) -> String {
    server
        .lines
        .iter()
        .find_map(|l| l.split("SHA-256 fingerprint ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no fingerprint printed: {:?}", server.lines))
        .to_string()
}

fn api(dir: &Path, args: &[&str]) -> (bool, String) {
    let out = ferry_clean()
        .arg("api")
        .arg("DescribeMigrateJobs")
        .args(args)
        .env("FERRY_SECRET_ID", ID)
        .env("FERRY_SECRET_KEY", KEY)
        .current_dir(dir)
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn https_by_default_off_loopback_with_a_pinned_generated_certificate() {
    let dir = test_dir("default");
    let server = start(&dir, &[]);
    assert_eq!(server.scheme, "https", "{:?}", server.lines);
    let fp = fingerprint_of(&server);
    assert!(
        server.lines.iter().any(|l| l.contains("generated now")),
        "{:?}",
        server.lines
    );
    let key = dir.join("data/tls/key.pem");
    let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let https = format!("https://127.0.0.1:{}", server.port);
    // Pinned from the data directory.
    let (ok, out) = api(&dir, &["--endpoint", &https, "--data-dir", "data"]);
    assert!(ok, "{out}");
    assert!(out.contains("TotalCount"), "{out}");
    // Pinned by the printed fingerprint (in any case, without colons too).
    let (ok, out) = api(
        &dir,
        &[
            "--endpoint",
            &https,
            "--data-dir",
            "elsewhere",
            "--fingerprint",
            &fp,
        ],
    );
    assert!(ok, "{out}");
    let plain = fp.replace(':', "").to_lowercase();
    let (ok, out) = api(
        &dir,
        &[
            "--endpoint",
            &https,
            "--data-dir",
            "elsewhere",
            "--fingerprint",
            &plain,
        ],
    );
    assert!(ok, "{out}");
    // Another fingerprint, or no trust at all: refused.
    let wrong = "00".repeat(32);
    let (ok, out) = api(
        &dir,
        &[
            "--endpoint",
            &https,
            "--data-dir",
            "elsewhere",
            "--fingerprint",
            &wrong,
        ],
    );
    assert!(!ok && out.contains("fingerprint"), "{out}");
    let (ok, _) = api(&dir, &["--endpoint", &https, "--data-dir", "elsewhere"]);
    assert!(!ok, "an unknown self-signed certificate is not trusted");
    // Plain HTTP is not served on that port.
    let (ok, _) = api(
        &dir,
        &[
            "--endpoint",
            &format!("http://127.0.0.1:{}", server.port),
            "--data-dir",
            "data",
        ],
    );
    assert!(!ok);
    drop(server);

    // The certificate is kept across restarts.
    let server = start(&dir, &[]);
    assert_eq!(fingerprint_of(&server), fp);
    assert!(
        !server.lines.iter().any(|l| l.contains("generated now")),
        "{:?}",
        server.lines
    );
    drop(server);

    // --insecure-http (or FERRY_INSECURE_HTTP=1) serves plain HTTP.
    let server = start(&dir, &["--insecure-http"]);
    assert_eq!(server.scheme, "http", "{:?}", server.lines);
    let (ok, out) = api(
        &dir,
        &[
            "--endpoint",
            &format!("http://127.0.0.1:{}", server.port),
            "--data-dir",
            "data",
        ],
    );
    assert!(ok, "{out}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
