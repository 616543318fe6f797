//! `ferry serve` and `ferry api` end to end: the real binary on 127.0.0.1:0 with a temporary data
//! directory. Generated credentials are private and reused, bad input is answered with its
//! Tencent error code while the server keeps serving, SIGTERM exits 0, configuration errors name
//! the key, and the official Tencent Cloud Python SDK (`.ferry-test/venv`, made by
//! scripts/sdk-venv.sh) is accepted with every signing method.

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use ferry_api::Client;
use serde_json::{json, Value};

use common::serve::{ferry_clean as ferry, Serve};

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-serve-wire-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn read_pair(data_dir: &Path) -> (String, String) {
    let pair = ferry_api::credentials::read_credentials_file(&data_dir.join("credentials.toml")).unwrap();
    (pair.secret_id, pair.secret_key)
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn not_auth_failure(result: &Result<Value, ferry_api::ClientError>) {
    match result {
        Ok(_) => {}
        Err(e) => {
            let code = e.api_code().unwrap_or_else(|| panic!("not an API answer: {e}"));
            assert!(!code.starts_with("AuthFailure"), "{e}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn generated_credentials_are_private_and_reused() {
    let dir = test_dir("creds");
    let data = dir.join("nested/data");
    let serve = Serve::start(&dir, &["--data-dir", data.to_str().unwrap()], &[]);
    assert!(
        serve.stdout().contains("generated an API key pair"),
        "{}",
        serve.stdout()
    );
    assert!(serve.stdout().contains("credentials.toml"));
    assert_eq!(mode(&data.join("credentials.toml")), 0o600);
    assert_eq!(mode(&data), 0o700);
    let (id, key) = read_pair(&data);
    let client = Client::new(&serve.url, &id, &key);
    not_auth_failure(&client.call("2018-03-30", "DescribeMigrateJobs", json!({})).await);
    let status = serve.stop();
    assert!(status.success(), "{status}");
    assert!(
        !serve_output_contains(&dir, &key),
        "the secret key never reaches the output"
    );

    let serve = Serve::start(&dir, &["--data-dir", data.to_str().unwrap()], &[]);
    assert!(!serve.stdout().contains("generated"), "{}", serve.stdout());
    assert_eq!(read_pair(&data), (id.clone(), key.clone()), "the pair is reused");
    let client = Client::new(&serve.url, &id, &key);
    not_auth_failure(&client.call("2018-03-30", "DescribeMigrateJobs", json!({})).await);
    assert!(!serve.stdout().contains(&key) && !serve.stderr().contains(&key));
    assert!(serve.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// Whether any stderr log in `dir` contains `needle`.
fn serve_output_contains(dir: &Path, needle: &str) -> bool {
    std::fs::read_dir(dir).unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("stderr-")
            && std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .contains(needle)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_is_answered_and_the_server_keeps_serving() {
    let dir = test_dir("bad");
    let serve = Serve::start(
        &dir,
        &["--data-dir", "data", "--log-format", "json"],
        &[
            ("FERRY_SECRET_ID", "AKIDwireTest"),
            ("FERRY_SECRET_KEY", "wire-test-secret-key"),
        ],
    );
    assert!(
        !dir.join("data/credentials.toml").exists(),
        "configured pairs are not generated"
    );
    let good = Client::new(&serve.url, "AKIDwireTest", "wire-test-secret-key");
    let cases: Vec<(&str, Result<Value, ferry_api::ClientError>)> = vec![
        (
            "AuthFailure.SignatureFailure",
            Client::new(&serve.url, "AKIDwireTest", "wrong")
                .call("2018-03-30", "DescribeMigrateJobs", json!({}))
                .await,
        ),
        (
            "AuthFailure.SecretIdNotFound",
            Client::new(&serve.url, "AKIDnobody", "x")
                .call("2018-03-30", "DescribeMigrateJobs", json!({}))
                .await,
        ),
        (
            "AuthFailure.SignatureExpire",
            Client::new(&serve.url, "AKIDwireTest", "wire-test-secret-key")
                .with_timestamp_offset(-3600)
                .call("2018-03-30", "DescribeMigrateJobs", json!({}))
                .await,
        ),
        (
            "InvalidAction",
            good.call("2018-03-30", "NoSuchAction", json!({})).await,
        ),
        (
            "NoSuchVersion",
            good.call("2000-01-01", "DescribeMigrateJobs", json!({})).await,
        ),
    ];
    for (expected, result) in cases {
        let err = result.unwrap_err();
        assert_eq!(err.api_code(), Some(expected), "{err}");
    }
    let r = good
        .send("2018-03-30", "DescribeMigrateJobs", b"{not json".to_vec())
        .await
        .unwrap();
    assert_eq!(r["Error"]["Code"], "InvalidParameter");
    let r = good
        .send("2018-03-30", "DescribeMigrateJobs", vec![b' '; 10 * 1024 * 1024])
        .await
        .unwrap();
    assert_eq!(r["Error"]["Code"], "RequestSizeLimitExceeded");
    not_auth_failure(&good.call("2018-03-30", "DescribeMigrateJobs", json!({})).await);

    let _ = rustls::crypto::ring::default_provider().install_default();
    let http = reqwest::Client::new();
    let health = http.get(format!("{}/healthz", serve.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let metrics = http.get(format!("{}/metrics", serve.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("ferry_api_requests_total{action=\"unknown\",code=\"AuthFailure.SecretIdNotFound\"} 1"),
        "{text}"
    );

    let stderr = serve.stderr();
    assert!(!stderr.contains("wire-test-secret-key"));
    let calls: Vec<Value> = stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["fields"]["message"] == "api call")
        .collect();
    assert!(calls.len() >= 8, "one JSON log line per call:\n{stderr}");
    for call in &calls {
        for field in ["action", "version", "request_id", "code", "elapsed_ms"] {
            assert!(!call["fields"][field].is_null(), "{field} missing in {call}");
        }
    }
    assert!(serve.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn ferry_api_command() {
    let dir = test_dir("cli");
    let serve = Serve::start(&dir, &["--data-dir", "data"], &[]);
    let run = |args: &[&str], envs: &[(&str, &str)]| {
        let mut cmd = ferry();
        cmd.current_dir(&dir).arg("api").args(args);
        for (k, v) in envs {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    };
    // Credentials from the data directory (default ferry-data is not there: give it).
    let out = run(
        &[
            "DescribeMigrateJobs",
            "--endpoint",
            &serve.url,
            "--data-dir",
            "data",
            "--param",
            "Limit=5",
        ],
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let response: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout} {stderr}"));
    assert!(response["RequestId"].is_string());
    assert!(!stderr.contains("AuthFailure"), "{stderr}");
    assert_eq!(out.status.success(), response.get("Error").is_none());

    // A wrong key from the environment: exit 1, the code on stderr, the Response on stdout.
    let (id, _) = read_pair(&dir.join("data"));
    let out = run(
        &["DescribeMigrateJobs", "--endpoint", &serve.url],
        &[("FERRY_SECRET_ID", &id), ("FERRY_SECRET_KEY", "wrong")],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("AuthFailure.SignatureFailure"));
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(response["Error"]["Code"], "AuthFailure.SignatureFailure");

    let out = run(
        &["NoSuchAction", "--endpoint", &serve.url, "--data-dir", "data"],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("InvalidAction"));

    let out = run(
        &[
            "DescribeMigrateJobs",
            "--endpoint",
            &serve.url,
            "--data-dir",
            "data",
            "--param",
            "NoEquals",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("NAME=VALUE"));

    let out = run(
        &[
            "DescribeMigrateJobs",
            "--endpoint",
            &serve.url,
            "--data-dir",
            "elsewhere",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--secret-id"));

    assert!(serve.stop().success());
    // Transport error once the server is gone.
    let out = run(
        &[
            "DescribeMigrateJobs",
            "--endpoint",
            &serve_url_gone(),
            "--data-dir",
            "data",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(1));
    let _ = std::fs::remove_dir_all(&dir);
}

/// An address nothing listens on.
fn serve_url_gone() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}")
}

#[test]
fn configuration_errors_name_the_key_and_the_directory() {
    let dir = test_dir("config");
    std::fs::write(
        dir.join("bad.toml"),
        "listen = \"127.0.0.1:0\"\n[limits]\nrequests_per_secnd = 5\n",
    )
    .unwrap();
    let out = ferry()
        .current_dir(&dir)
        .args(["serve", "--config", "bad.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml") && stderr.contains("requests_per_secnd"),
        "{stderr}"
    );

    std::fs::write(dir.join("a-file"), "").unwrap();
    let out = ferry()
        .current_dir(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir", "a-file"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("a-file") && stderr.contains("--data-dir"),
        "{stderr}"
    );

    let out = ferry()
        .current_dir(&dir)
        .args(["serve", "--listen", "nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen"));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn python_sdk_signatures_are_accepted() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".ferry-test/venv/bin/python");
    if !python.exists() {
        eprintln!(
            "SKIPPED python_sdk_signatures_are_accepted: {} is absent; run scripts/sdk-venv.sh",
            python.display()
        );
        return;
    }
    let dir = test_dir("sdk");
    let serve = Serve::start(&dir, &["--data-dir", "data"], &[]);
    let (id, key) = read_pair(&dir.join("data"));
    let endpoint = serve.url.trim_start_matches("http://").to_string();
    let out = Command::new(&python)
        .arg(root.join("crates/ferry-cli/tests/sdk/wire_smoke.py"))
        .env("FERRY_ENDPOINT", &endpoint)
        .env("FERRY_SECRET_ID", &id)
        .env("FERRY_SECRET_KEY", &key)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls: Vec<Value> = stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(calls.len(), 10, "{stdout}");
    for call in &calls {
        let code = call["code"].as_str().unwrap();
        assert!(
            !code.starts_with("AuthFailure"),
            "the server refused the SDK's signature: {call}"
        );
        assert!(call["request_id"].is_string(), "{call}");
    }
    for sign in ["TC3-HMAC-SHA256", "HmacSHA256", "HmacSHA1"] {
        assert!(calls.iter().any(|c| c["sign"] == sign));
    }
    assert!(serve.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn config_file_settings_apply_under_the_flags() {
    let dir = test_dir("configfile");
    std::fs::write(
        dir.join("ferry.toml"),
        r#"
listen = "127.0.0.1:1"
data_dir = "from-file"
[log]
format = "json"
level = "info"
[[credentials]]
secret_id = "AKIDfromFile"
secret_key = "file-secret-key"
[limits]
describe_requests_per_second = 1
"#,
    )
    .unwrap();
    // --listen overrides the file's unusable port; the rest comes from the file.
    let serve = Serve::start(&dir, &["--config", "ferry.toml"], &[]);
    assert!(dir.join("from-file").is_dir());
    assert!(!dir.join("from-file/credentials.toml").exists());
    let client = Arc::new(Client::new(&serve.url, "AKIDfromFile", "file-secret-key"));
    let calls: Vec<_> = (0..20)
        .map(|_| {
            let client = client.clone();
            tokio::spawn(async move { client.call("2018-03-30", "DescribeMigrateJobs", json!({})).await })
        })
        .collect();
    let mut limited = 0;
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            assert_eq!(e.api_code(), Some("RequestLimitExceeded"), "{e}");
            limited += 1;
        }
    }
    assert!(limited >= 1, "20 concurrent calls at 1/s: some are refused");
    let stderr = serve.stderr();
    assert!(
        stderr.lines().any(|l| l.starts_with('{')),
        "JSON logs from the file: {stderr}"
    );
    assert!(!stderr.contains("file-secret-key"));
    assert!(serve.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread")]
async fn https_from_the_config_file() {
    let dir = test_dir("tls");
    let cert = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    std::fs::write(
        dir.join("ferry.toml"),
        "[tls]\ncert = \"cert.pem\"\nkey = \"key.pem\"\n",
    )
    .unwrap();
    let serve = Serve::start(&dir, &["--config", "ferry.toml", "--data-dir", "data"], &[]);
    assert!(serve.url.starts_with("https://127.0.0.1:"), "{}", serve.url);
    let (id, key) = read_pair(&dir.join("data"));
    let client = Client::new(&serve.url, &id, &key)
        .with_ca_pem(cert.cert.pem().as_bytes())
        .unwrap();
    not_auth_failure(&client.call("2018-03-30", "DescribeMigrateJobs", json!({})).await);
    let out = ferry()
        .current_dir(&dir)
        .args([
            "api",
            "DescribeMigrateJobs",
            "--endpoint",
            &serve.url,
            "--data-dir",
            "data",
        ])
        .args(["--ca-cert", "cert.pem"])
        .output()
        .unwrap();
    let response: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(response["RequestId"].is_string());
    // Without --ca-cert the self-signed certificate is refused.
    let out = ferry()
        .current_dir(&dir)
        .args([
            "api",
            "DescribeMigrateJobs",
            "--endpoint",
            &serve.url,
            "--data-dir",
            "data",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(serve.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}
