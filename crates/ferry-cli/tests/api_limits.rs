//! `ferry serve` under stalled connections (127.0.0.1 only, bounded count and time): 300 clients
//! announce a 1 MiB body, send a few bytes and stall. The server's memory (VmRSS from /proc)
//! stays flat — buffers grow with what arrives, never with Content-Length — it keeps answering
//! signed calls meanwhile, and the stalled bodies are answered with a coded envelope once the
//! client timeout passes.

mod common;

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::time::Duration;

use ferry_api::Client;
use serde_json::json;

use common::serve::Serve;

const STALLED: usize = 300;
const ID: &str = "AKIDlimitsTest";
const KEY: &str = "limits-test-secret-key";

fn test_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferry-api-limits-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// VmRSS of `pid` in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

fn stalled_post(addr: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         Content-Length: 1048576\r\n\r\n{{\"Pad\":\""
    );
    s.write_all(head.as_bytes()).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_connections_keep_memory_flat() {
    let dir = test_dir("stalled");
    let config = dir.join("ferry.toml");
    std::fs::write(&config, "[limits]\nclient_timeout_seconds = 5\n").unwrap();
    let serve = Serve::start(
        &dir,
        &["--data-dir", "data", "--config", config.to_str().unwrap()],
        &[("FERRY_SECRET_ID", ID), ("FERRY_SECRET_KEY", KEY)],
    );
    let pid = serve.child.id();
    let client = Client::new(&serve.url, ID, KEY);
    let addr: SocketAddr = serve
        .url
        .trim_start_matches("http://")
        .parse()
        .expect("the server listens on an IP:PORT");
    // Warm up: a few calls so that lazily allocated state is there before the first reading.
    for _ in 0..3 {
        client
            .call("2018-03-30", "DescribeMigrateJobs", json!({}))
            .await
            .unwrap();
    }
    let before = rss_kib(pid);
    let stalled: Vec<TcpStream> =
        tokio::task::spawn_blocking(move || (0..STALLED).map(|_| stalled_post(addr)).collect())
            .await
            .unwrap();
    // Every stalled request has reached the server once it answers a call made after them
    // on a connection of its own (connections are accepted in order); a second more lets
    // their handlers start reading the bodies.
    client
        .call("2018-03-30", "DescribeMigrateJobs", json!({}))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    let during = rss_kib(pid);
    let growth = during.saturating_sub(before);
    eprintln!(
        "ferry serve VmRSS: {before} KiB before, {during} KiB with {STALLED} stalled 1 MiB bodies \
         (+{growth} KiB, {} KiB per connection)",
        growth / STALLED as u64
    );
    // Pre-sizing buffers from Content-Length held 300 MiB here; allow 64 KiB per connection.
    assert!(
        growth < (STALLED as u64) * 64,
        "memory grew by {growth} KiB with {STALLED} stalled connections"
    );
    // The stalled bodies are answered (InvalidRequest) and closed after the client timeout.
    let answers = tokio::task::spawn_blocking(move || {
        stalled
            .into_iter()
            .take(5)
            .map(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
                let mut text = String::new();
                let _ = s.read_to_string(&mut text);
                text
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    for answer in answers {
        assert!(answer.contains("\"Code\":\"InvalidRequest\""), "{answer}");
    }
    let after = rss_kib(pid);
    eprintln!("ferry serve VmRSS after the stalled connections were closed: {after} KiB");
    // A new client: the first one's pooled connection idled past the server's 5 s client
    // timeout while the stalled bodies were answered, and the server closed it.
    Client::new(&serve.url, ID, KEY)
        .call("2018-03-30", "DescribeMigrateJobs", json!({}))
        .await
        .unwrap();
    assert!(serve.stop().success());
    let _ = std::fs::remove_dir_all(&dir);
}
