//! Hostile input to the wire layer, in process: parameter names nested thousands of levels deep,
//! bodies of a hundred thousand parameters, requests signed for another service or host,
//! stalled bodies and more connections than allowed, and property tests of the parameter
//! decoding and of both signature schemes (arbitrary input: never a panic, never a 5xx, always a
//! coded envelope).

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use ferry_api::auth::{tc3, v1, Tc3Request, Verifier};
use ferry_api::config::LimitsConfig;
use ferry_api::credentials::{CredentialStore, KeyPair};
use ferry_api::params;
use ferry_api::server::{self, ServerOptions};
use ferry_api::{ActionHandler, ActionInfo, ApiCall, ApiError, BoxFuture, Client};
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

const ID: &str = "AKIDabuseTESTtest0123456789abcdefAB";
const KEY: &str = "abuse-secret-key-0123456789";
const VERSION: &str = "2018-03-30";

/// `Echo` answers its parameters.
struct Echo;

impl ActionHandler for Echo {
    fn lookup(&self, version: &str, action: &str) -> Result<ActionInfo, ApiError> {
        if version != VERSION {
            return Err(ApiError::no_such_version(version));
        }
        match action {
            "Echo" => Ok(ActionInfo {
                requests_per_second: 100_000,
            }),
            _ => Err(ApiError::invalid_action(action, version)),
        }
    }

    fn handle(&self, call: ApiCall) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>> {
        Box::pin(async move {
            let mut out = Map::new();
            out.insert("Params".into(), Value::Object(call.params));
            Ok(out)
        })
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async { String::new() })
    }
}

struct TestServer {
    url: String,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start(limits: LimitsConfig, allowed_hosts: Vec<String>) -> TestServer {
        let options = ServerOptions {
            limits,
            credentials: CredentialStore::new([KeyPair {
                secret_id: ID.into(),
                secret_key: KEY.into(),
            }]),
            tls: None,
            allowed_hosts,
        };
        let bound = server::bind("127.0.0.1:0".parse().unwrap(), Arc::new(Echo), options)
            .await
            .unwrap();
        let (url, addr) = (bound.url(), bound.local_addr());
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            bound
                .serve(async {
                    let _ = rx.await;
                })
                .await
                .unwrap();
        });
        TestServer {
            url,
            addr,
            stop: Some(tx),
            task: Some(task),
        }
    }

    async fn assert_serving(&self) {
        let r = Client::new(&self.url, ID, KEY)
            .call(VERSION, "Echo", json!({"Ok": 1}))
            .await
            .unwrap();
        assert_eq!(r["Params"], json!({"Ok": 1}));
    }

    async fn stop(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }
}

fn now() -> i64 {
    ferry_api::auth::unix_now()
}

fn http() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

async fn response_of(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "API errors are answered with HTTP 200");
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    v["Response"].clone()
}

fn error_code(r: &Value) -> &str {
    r["Error"]["Code"].as_str().unwrap_or("<none>")
}

/// v1 parameters for Echo plus `extra`, signed for `host` and `method`.
fn signed_v1(method: &str, host: &str, extra: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("Action".into(), "Echo".into()),
        ("Version".into(), VERSION.into()),
        ("Timestamp".into(), now().to_string()),
        (
            "Nonce".into(),
            uuid::Uuid::new_v4().as_u128().to_string()[..12].to_string(),
        ),
        ("SecretId".into(), ID.into()),
        ("SignatureMethod".into(), "HmacSHA256".into()),
    ];
    p.extend(extra);
    let s = v1::string_to_sign(method, host, "/", &p);
    p.push((
        "Signature".into(),
        v1::signature(KEY, &s, v1::SignatureMethod::HmacSha256),
    ));
    p
}

fn encode(params: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    ser.finish()
}

#[tokio::test]
async fn deep_names_and_huge_parameter_counts_are_refused_not_crashing() {
    let server = TestServer::start(LimitsConfig::default(), Vec::new()).await;
    let host = server.addr.to_string();
    let http = http();
    // A signed GET whose parameter name is nested 20,000 levels deep (this overflowed the stack
    // in the flattened-parameter decoding and aborted the process).
    let deep = vec!["A"; 20_000].join(".");
    let p = signed_v1("GET", &host, vec![(deep, "x".into())]);
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "InvalidParameter", "{r}");
    assert!(r["Error"]["Message"].as_str().unwrap().contains("32"), "{r}");
    // The same in a signed form body of nearly 1 MiB.
    let deep = vec!["A"; 500_000].join(".");
    let p = signed_v1("POST", &host, vec![(deep, "x".into())]);
    let r = response_of(
        http.post(&server.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode(&p))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "InvalidParameter", "{r}");
    // 32 levels are fine.
    let name = vec!["A"; 32].join(".");
    let p = signed_v1("GET", &host, vec![(name, "x".into())]);
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");

    // An unsigned form body of 1 MiB of distinct names (decoded before authentication, in
    // linear time): refused for its count.
    let mut body = String::new();
    let mut i = 0u64;
    while body.len() < 1_000_000 {
        body.push_str(&format!("p{i}=&"));
        i += 1;
    }
    let r = response_of(
        http.post(&server.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "InvalidParameter", "{r}");
    assert!(r["Error"]["Message"].as_str().unwrap().contains("10000"), "{r}");
    // A signed body of 9,990 parameters is served.
    let many: Vec<(String, String)> = (0..9_990).map(|i| (format!("L.{i}"), i.to_string())).collect();
    let p = signed_v1("POST", &host, many);
    let r = response_of(
        http.post(&server.url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(encode(&p))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.get("Error").is_none(), "{}", error_code(&r));
    assert_eq!(r["Params"]["L"].as_array().map(Vec::len), Some(9_990));
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn signatures_for_another_service_or_host_are_refused() {
    let server = TestServer::start(LimitsConfig::default(), vec!["ferry.example.com".into()]).await;
    let http = http();
    let tc3_call = |service: &'static str, host: String| {
        let ts = now();
        let ct = "application/json";
        let auth = tc3::sign(
            ID,
            KEY,
            &tc3::SignRequest {
                method: "POST",
                canonical_query: "",
                headers: &[("content-type", ct), ("host", &host)],
                payload: b"{}",
                timestamp: ts,
                service,
            },
        );
        http.post(&server.url)
            .header("Host", host.clone())
            .header("Content-Type", ct)
            .header("Authorization", auth)
            .header("X-TC-Action", "Echo")
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .body("{}")
            .send()
    };
    let here = server.addr.to_string();
    let r = response_of(tc3_call("cvm", here.clone()).await.unwrap()).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure", "{r}");
    assert!(r["Error"]["Message"].as_str().unwrap().contains("dts"), "{r}");
    let r = response_of(tc3_call("dts", "dts.tencentcloudapi.com".into()).await.unwrap()).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure", "{r}");
    assert!(
        r["Error"]["Message"].as_str().unwrap().contains("allowed_hosts"),
        "{r}"
    );
    for ok in [
        here.clone(),
        format!("localhost:{}", server.addr.port()),
        "ferry.example.com:443".into(),
    ] {
        let r = response_of(tc3_call("dts", ok.clone()).await.unwrap()).await;
        assert!(r.get("Error").is_none(), "{ok}: {r}");
    }
    // v1 signs the host too.
    let p = signed_v1("GET", "dts.tencentcloudapi.com", Vec::new());
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .header("Host", "dts.tencentcloudapi.com")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure", "{r}");
    server.assert_serving().await;
    server.stop().await;
}

/// Opens a connection and sends the head of a POST that announces `declared` body bytes and
/// sends `sent` of them, then stalls.
fn stalled_post(addr: SocketAddr, declared: usize, sent: usize) -> TcpStream {
    let mut s = TcpStream::connect(addr).unwrap();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {declared}\r\n\r\n"
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(&vec![b' '; sent]).unwrap();
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_time_out_and_connections_are_capped() {
    let limits = LimitsConfig {
        client_timeout_seconds: 1,
        max_connections: 4,
        ..LimitsConfig::default()
    };
    let server = TestServer::start(limits, Vec::new()).await;
    let addr = server.addr;
    // A stalled body is answered with a coded envelope and the connection is closed.
    let answer = tokio::task::spawn_blocking(move || {
        let mut s = stalled_post(addr, 1_000_000, 10);
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let mut text = String::new();
        let _ = s.read_to_string(&mut text);
        text
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        answer.to_ascii_lowercase().contains("connection: close"),
        "{answer}"
    );
    assert!(answer.contains("\"Code\":\"InvalidRequest\""), "{answer}");
    // Four stalled connections fill the cap; a fifth client waits until they time out, and is
    // then served.
    let stalled: Vec<TcpStream> = (0..4).map(|_| stalled_post(addr, 100, 1)).collect();
    server.assert_serving().await;
    drop(stalled);
    server.assert_serving().await;
    server.stop().await;
}

// ---- property tests ----

fn flat_name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9._]{0,40}",
        proptest::collection::vec(
            prop_oneof!["[A-Z][a-z]{0,3}", "[0-9]{1,3}", Just(String::new())],
            1..40
        )
        .prop_map(|parts| parts.join(".")),
        any::<String>(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Any bytes as a query or form body, and any flattened names: decoded or refused with
    /// InvalidParameter, never a panic.
    #[test]
    fn parameter_decoding_never_panics(
        raw in proptest::collection::vec(any::<u8>(), 0..400),
        pairs in proptest::collection::vec((flat_name(), any::<String>()), 0..30),
    ) {
        match params::decode_form(&raw) {
            Ok(decoded) => {
                let (_, rest) = params::split_common(&decoded);
                if let Err(e) = params::unflatten(&rest) {
                    prop_assert_eq!(e.code.as_str(), "InvalidParameter");
                }
            }
            Err(e) => prop_assert_eq!(e.code.as_str(), "InvalidParameter"),
        }
        if let Err(e) = params::unflatten(&pairs) {
            prop_assert_eq!(e.code.as_str(), "InvalidParameter");
        }
        let _ = params::parse_json_body(&raw);
    }

    /// Arbitrary Authorization headers, timestamps, bodies and v1 parameters: verified or
    /// refused with a coded error, never a panic.
    #[test]
    fn both_signature_schemes_never_panic(
        authorization in prop_oneof![
            any::<String>(),
            "TC3-HMAC-SHA256 Credential=[A-Za-z0-9/_-]{0,60}, SignedHeaders=[a-z;-]{0,40}, Signature=[0-9a-f]{0,70}",
        ],
        timestamp in prop_oneof![any::<String>(), (0i64..4_000_000_000).prop_map(|t| t.to_string())],
        body in proptest::collection::vec(any::<u8>(), 0..64),
        method in prop_oneof![Just("GET".to_string()), Just("POST".to_string()), any::<String>()],
        v1_pairs in proptest::collection::vec(
            (prop_oneof![
                Just("SecretId".to_string()), Just("Signature".to_string()),
                Just("Timestamp".to_string()), Just("Nonce".to_string()),
                Just("SignatureMethod".to_string()), any::<String>()
            ], any::<String>()),
            0..10,
        ),
    ) {
        let verifier = Verifier::new(
            CredentialStore::new([KeyPair { secret_id: ID.into(), secret_key: KEY.into() }]),
            300,
        );
        let mut headers = HeaderMap::new();
        for (name, value) in [("authorization", &authorization), ("x-tc-timestamp", &timestamp)] {
            if let Ok(v) = HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(name), v);
            }
        }
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        headers.insert("host", HeaderValue::from_static("127.0.0.1:1"));
        let codes = [
            "AuthFailure.InvalidAuthorization", "AuthFailure.SignatureFailure",
            "AuthFailure.SignatureExpire", "AuthFailure.SecretIdNotFound",
            "MissingParameter", "InvalidParameterValue",
        ];
        let r = verifier.verify_tc3(
            Tc3Request { method: &method, query: "", headers: &headers, body: &body },
            now(),
        );
        if let Err(e) = r {
            prop_assert!(codes.contains(&e.code.as_str()), "{}", e);
        }
        if let Err(e) = verifier.verify_v1(&method, "127.0.0.1:1", "/", &v1_pairs, now()) {
            prop_assert!(codes.contains(&e.code.as_str()), "{}", e);
        }
    }
}

/// Arbitrary requests to a live server (raw HTTP/1.1 over TCP): every answer is below 500, and
/// every answer on `/` is a JSON envelope with a code or a success.
#[test]
fn arbitrary_requests_to_a_live_server_are_answered_with_envelopes() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let server = runtime.block_on(TestServer::start(LimitsConfig::default(), Vec::new()));
    let addr = server.addr;
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 96,
        ..ProptestConfig::default()
    });
    let strategy = (
        prop_oneof![Just("GET"), Just("POST")],
        "[A-Za-z0-9%=&._+-]{0,200}",
        prop_oneof![
            Just("application/json".to_string()),
            Just("application/x-www-form-urlencoded".to_string()),
            "[ -~]{0,30}",
        ],
        prop_oneof![
            Just(String::new()),
            "[ -~]{0,120}",
            "TC3-HMAC-SHA256 Credential=AKIDabuseTESTtest0123456789abcdefAB/20[0-9]{2}-[0-9]{2}-[0-9]{2}/dts/tc3_request, SignedHeaders=content-type;host, Signature=[0-9a-f]{64}",
        ],
        proptest::collection::vec(any::<u8>(), 0..300),
        prop_oneof![Just(None), "[ -~]{0,40}".prop_map(Some)],
    );
    runner
        .run(&strategy, |(method, query, ct, auth, body, action)| {
            let mut req = format!("{method} /?{query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {ct}\r\n");
            if !auth.is_empty() {
                req.push_str(&format!("Authorization: {auth}\r\nX-TC-Timestamp: {}\r\n", now()));
            }
            if let Some(a) = &action {
                req.push_str(&format!("X-TC-Action: {a}\r\nX-TC-Version: {VERSION}\r\n"));
            }
            req.push_str(&format!(
                "Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            ));
            let mut s = TcpStream::connect(addr).unwrap();
            s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
            s.write_all(req.as_bytes()).unwrap();
            s.write_all(&body).unwrap();
            let mut answer = Vec::new();
            let _ = s.read_to_end(&mut answer);
            let text = String::from_utf8_lossy(&answer);
            let status: u16 = text.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
            prop_assert!((200..500).contains(&status), "{text}");
            if status == 200 {
                let json = text.split("\r\n\r\n").nth(1).unwrap_or("");
                let v: Value = serde_json::from_str(json)
                    .map_err(|e| TestCaseError::fail(format!("not JSON ({e}): {text}")))?;
                let r = &v["Response"];
                prop_assert!(r["RequestId"].is_string(), "{text}");
                prop_assert!(
                    r.get("Error").is_none() || r["Error"]["Code"].as_str().is_some_and(|c| !c.is_empty()),
                    "{text}"
                );
            }
            Ok(())
        })
        .unwrap();
    runtime.block_on(async {
        server.assert_serving().await;
        server.stop().await;
    });
}
