//! The wire layer end to end, in process: a real server on 127.0.0.1:0 with a small test
//! handler (no database involved), called with the crate's client, hand-made TC3 and v1 requests,
//! and bad input of every kind. Every bad request is answered with its Tencent error code, and
//! the server goes on serving.

use std::sync::Arc;

use ferry_api::auth::{tc3, v1};
use ferry_api::config::{LimitsConfig, TlsConfig};
use ferry_api::credentials::{CredentialStore, KeyPair};
use ferry_api::server::{self, ServerOptions};
use ferry_api::{ActionHandler, ActionInfo, ApiCall, ApiError, BoxFuture, Client, ParamEncoding};
use futures_util::StreamExt as _;
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;

const ID: &str = "AKIDtestTESTtest0123456789abcdefABCD";
const KEY: &str = "test-secret-key-0123456789";
const VERSION: &str = "2018-03-30";

/// Knows version 2018-03-30: `Echo` and `DescribeEcho` answer what they were called with;
/// `Limited` allows 2 calls per second; `Fail` answers an action error.
#[derive(Default)]
struct TestHandler {
    created: std::sync::atomic::AtomicU64,
}

impl ActionHandler for TestHandler {
    fn lookup(&self, version: &str, action: &str) -> Result<ActionInfo, ApiError> {
        if version != VERSION && version != "2021-12-06" {
            return Err(ApiError::no_such_version(version));
        }
        match action {
            "Echo" | "DescribeEcho" | "Fail" | "CreateThing" => Ok(ActionInfo {
                requests_per_second: 1000,
            }),
            "Limited" => Ok(ActionInfo {
                requests_per_second: 2,
            }),
            _ => Err(ApiError::invalid_action(action, version)),
        }
    }

    fn handle(&self, call: ApiCall) -> BoxFuture<'_, Result<Map<String, Value>, ApiError>> {
        Box::pin(async move {
            if call.action == "Fail" {
                return Err(ApiError::job_not_exist("dts-none"));
            }
            if call.action == "CreateThing" {
                // Slow enough that concurrent identical calls overlap.
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                let id = self.created.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut out = Map::new();
                out.insert("ThingId".into(), json!(id));
                return Ok(out);
            }
            let mut out = Map::new();
            out.insert("Action".into(), json!(call.action));
            out.insert("Version".into(), json!(call.version));
            out.insert("Region".into(), json!(call.region));
            out.insert("Params".into(), Value::Object(call.params));
            out.insert(
                "Encoding".into(),
                json!(match call.encoding {
                    ParamEncoding::Json => "Json",
                    ParamEncoding::Flat => "Flat",
                }),
            );
            out.insert("SecretId".into(), json!(call.secret_id));
            out.insert("SeenRequestId".into(), json!(call.request_id));
            Ok(out)
        })
    }

    fn metrics(&self) -> BoxFuture<'_, String> {
        Box::pin(async { "ferry_test_handler_metric 7\n".to_string() })
    }
}

struct TestServer {
    url: String,
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl TestServer {
    async fn start_with(limits: LimitsConfig, tls: Option<TlsConfig>) -> TestServer {
        let options = ServerOptions {
            limits,
            credentials: CredentialStore::new([KeyPair {
                secret_id: ID.into(),
                secret_key: KEY.into(),
            }]),
            tls,
            allowed_hosts: Vec::new(),
        };
        let bound = server::bind(
            "127.0.0.1:0".parse().unwrap(),
            Arc::new(TestHandler::default()),
            options,
        )
        .await
        .unwrap();
        let url = bound.url();
        let addr = bound.local_addr();
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

    async fn start() -> TestServer {
        Self::start_with(LimitsConfig::default(), None).await
    }

    fn client(&self) -> Client {
        Client::new(&self.url, ID, KEY)
    }

    /// A successful call: the server still serves.
    async fn assert_serving(&self) {
        let r = self
            .client()
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

fn code(result: Result<Value, ferry_api::ClientError>) -> String {
    match result {
        Ok(v) => panic!("expected an error, got {v}"),
        Err(e) => e
            .api_code()
            .unwrap_or_else(|| panic!("not an API error: {e}"))
            .to_string(),
    }
}

/// A plain reqwest client (rustls with ring as the process default provider).
fn http_client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::new()
}

fn now() -> i64 {
    ferry_api::auth::unix_now()
}

/// Sends a hand-made TC3 request: POST JSON `body` with `action` (None: no X-TC-Action).
async fn raw_tc3(
    server: &TestServer,
    action: Option<&str>,
    body: &[u8],
    timestamp: i64,
) -> reqwest::Response {
    raw_tc3_from(server, action, body, timestamp, None).await
}

/// As [`raw_tc3`], from the local address `from` (e.g. 127.0.0.2: another client).
async fn raw_tc3_from(
    server: &TestServer,
    action: Option<&str>,
    body: &[u8],
    timestamp: i64,
    from: Option<&str>,
) -> reqwest::Response {
    let host = server.addr.to_string();
    let ct = "application/json";
    let auth = tc3::sign(
        ID,
        KEY,
        &tc3::SignRequest {
            method: "POST",
            canonical_query: "",
            headers: &[("content-type", ct), ("host", &host)],
            payload: body,
            timestamp,
            service: "dts",
        },
    );
    let http = match from {
        None => http_client(),
        Some(ip) => {
            let _ = rustls::crypto::ring::default_provider().install_default();
            reqwest::Client::builder()
                .local_address(Some(ip.parse().unwrap()))
                .build()
                .unwrap()
        }
    };
    let mut req = http
        .post(&server.url)
        .header("Content-Type", ct)
        .header("Authorization", auth)
        .header("X-TC-Version", VERSION)
        .header("X-TC-Timestamp", timestamp.to_string())
        .body(body.to_vec());
    if let Some(action) = action {
        req = req.header("X-TC-Action", action);
    }
    req.send().await.unwrap()
}

async fn response_of(resp: reqwest::Response) -> Value {
    assert_eq!(resp.status(), 200, "API errors are answered with HTTP 200");
    let v: Value = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    let r = v["Response"].clone();
    let id = r["RequestId"].as_str().expect("every answer has a RequestId");
    assert_eq!(uuid::Uuid::parse_str(id).unwrap().get_version_num(), 4);
    r
}

fn error_code(r: &Value) -> &str {
    r["Error"]["Code"].as_str().unwrap_or("<none>")
}

#[tokio::test]
async fn tc3_call_round_trips_nested_json() {
    let server = TestServer::start().await;
    let params = json!({"JobName": "j", "MigrateOption": {"RunMode": 1, "Tags": ["a", "b"]}, "Limit": 5});
    let r = server
        .client()
        .with_region("ap-guangzhou")
        .call(VERSION, "Echo", params.clone())
        .await
        .unwrap();
    assert_eq!(r["Params"], params, "JSON values keep their types");
    assert_eq!(r["Encoding"], "Json");
    assert_eq!(r["SecretId"], ID);
    assert_eq!(r["Region"], "ap-guangzhou");
    assert_eq!(
        r["RequestId"], r["SeenRequestId"],
        "the handler sees the RequestId answered"
    );
    let err = server
        .client()
        .call(VERSION, "Fail", json!({}))
        .await
        .unwrap_err();
    assert_eq!(err.api_code(), Some("ResourceNotFound.JobNotExist"));
    server.stop().await;
}

#[tokio::test]
async fn malformed_bodies_are_invalid_parameter() {
    let server = TestServer::start().await;
    let client = server.client();
    for body in [&b"{"[..], b"[1,2]", b"\"text\"", b"{\"a\":1}{", &[0xff, 0xfe][..]] {
        let r = client.send(VERSION, "Echo", body.to_vec()).await.unwrap();
        assert_eq!(error_code(&r), "InvalidParameter", "{body:?}");
    }
    let r = client.send(VERSION, "Echo", Vec::new()).await.unwrap();
    assert_eq!(r["Params"], json!({}), "an empty body is no parameters");
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn unknown_action_version_and_missing_action() {
    let server = TestServer::start().await;
    let client = server.client();
    assert_eq!(
        code(client.call(VERSION, "NoSuchThing", json!({})).await),
        "InvalidAction"
    );
    assert_eq!(
        code(client.call("1999-01-01", "Echo", json!({})).await),
        "NoSuchVersion"
    );
    let r = response_of(raw_tc3(&server, None, b"{}", now()).await).await;
    assert_eq!(error_code(&r), "MissingParameter");
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn ten_megabyte_body_is_request_size_limit_exceeded() {
    let server = TestServer::start().await;
    let mut body = b"{\"Pad\":\"".to_vec();
    body.resize(10 * 1024 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    let r = server.client().send(VERSION, "Echo", body).await.unwrap();
    assert_eq!(error_code(&r), "RequestSizeLimitExceeded");
    // Just under the limit passes.
    let mut ok = b"{\"Pad\":\"".to_vec();
    ok.resize(1_000_000, b'x');
    ok.extend_from_slice(b"\"}");
    let r = server.client().send(VERSION, "Echo", ok).await.unwrap();
    assert!(r.get("Error").is_none(), "{r}");
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn authentication_failures() {
    let server = TestServer::start().await;
    let bad_key = Client::new(&server.url, ID, "not-the-key");
    assert_eq!(
        code(bad_key.call(VERSION, "Echo", json!({})).await),
        "AuthFailure.SignatureFailure"
    );
    let unknown = Client::new(&server.url, "AKIDunknown", KEY);
    assert_eq!(
        code(unknown.call(VERSION, "Echo", json!({})).await),
        "AuthFailure.SecretIdNotFound"
    );
    let old = server.client().with_timestamp_offset(-301);
    assert_eq!(
        code(old.call(VERSION, "Echo", json!({})).await),
        "AuthFailure.SignatureExpire"
    );
    let future = server.client().with_timestamp_offset(400);
    assert_eq!(
        code(future.call(VERSION, "Echo", json!({})).await),
        "AuthFailure.SignatureExpire"
    );

    let http = http_client();
    // No Authorization at all.
    let r = response_of(
        http.post(&server.url)
            .header("Content-Type", "application/json")
            .header("X-TC-Action", "Echo")
            .header("X-TC-Version", VERSION)
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.InvalidAuthorization");
    // Garbled Authorization.
    for garbled in ["Bearer abc", "TC3-HMAC-SHA256 Credential=x", "TC3-HMAC-SHA256"] {
        let r = response_of(
            http.post(&server.url)
                .header("Content-Type", "application/json")
                .header("Authorization", garbled)
                .header("X-TC-Action", "Echo")
                .header("X-TC-Version", VERSION)
                .header("X-TC-Timestamp", now().to_string())
                .body("{}")
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(error_code(&r), "AuthFailure.InvalidAuthorization", "{garbled}");
    }
    // A body changed after signing.
    let host = server.addr.to_string();
    let ts = now();
    let auth = tc3::sign(
        ID,
        KEY,
        &tc3::SignRequest {
            method: "POST",
            canonical_query: "",
            headers: &[("content-type", "application/json"), ("host", &host)],
            payload: b"{\"Limit\":1}",
            timestamp: ts,
            service: "dts",
        },
    );
    let r = response_of(
        http.post(&server.url)
            .header("Content-Type", "application/json")
            .header("Authorization", auth)
            .header("X-TC-Action", "Echo")
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .body("{\"Limit\":1000}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");
    // The scope date must be the timestamp's UTC date.
    let auth = tc3::Authorization {
        secret_id: ID.into(),
        date: "2001-01-01".into(),
        service: "dts".into(),
        signed_headers: vec!["content-type".into(), "host".into()],
        signature: "0".repeat(64),
    }
    .to_header();
    let r = response_of(
        http.post(&server.url)
            .header("Content-Type", "application/json")
            .header("Authorization", auth)
            .header("X-TC-Action", "Echo")
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .body("{}")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");
    assert!(r["Error"]["Message"].as_str().unwrap().contains("date"));
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn identical_retries_are_answered_by_the_action() {
    let server = TestServer::start().await;
    let ts = now();
    // An identical retry (an SDK retrying within the same second) is served as the action
    // would serve it: here the action's own error, twice.
    for _ in 0..2 {
        let r = response_of(raw_tc3(&server, Some("Fail"), b"{\"X\":1}", ts).await).await;
        assert_eq!(error_code(&r), "ResourceNotFound.JobNotExist", "{r}");
    }
    for _ in 0..3 {
        let r = response_of(raw_tc3(&server, Some("Echo"), b"{\"X\":2}", ts).await).await;
        assert!(r.get("Error").is_none(), "{r}");
    }
    // Identical Describe calls within one second (SDK polling) are served.
    for _ in 0..3 {
        let r = response_of(raw_tc3(&server, Some("DescribeEcho"), b"{}", ts).await).await;
        assert!(r.get("Error").is_none(), "{r}");
    }
    // The SDKs do not sign X-TC-Action: a signature first used for one action is refused for
    // another, mutating one when it comes from another client address (a captured request
    // resent as DeleteMigrateJob) ...
    let other = Some("127.0.0.2");
    let r = response_of(raw_tc3_from(&server, Some("Fail"), b"{}", ts, other).await).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure", "{r}");
    assert!(
        r["Error"]["Message"].as_str().unwrap().contains("DescribeEcho"),
        "{r}"
    );
    // ... but served for a read-only one, from anywhere ...
    let first = response_of(raw_tc3(&server, Some("Echo"), b"{\"Y\":1}", ts).await).await;
    assert!(first.get("Error").is_none(), "{first}");
    let read = response_of(raw_tc3_from(&server, Some("DescribeEcho"), b"{\"Y\":1}", ts, other).await).await;
    assert!(read.get("Error").is_none(), "{read}");
    // ... and for a mutating one from the client that used it first (an SDK checking a job
    // with DescribeMigrateCheckJob {"JobId":X}, then starting it with StartMigrateJob
    // {"JobId":X} within the same second sends one signature twice).
    let r = response_of(raw_tc3(&server, Some("Fail"), b"{}", ts).await).await;
    assert_eq!(error_code(&r), "ResourceNotFound.JobNotExist", "{r}");
    // Creating actions answer an identical retry with the first answer (no second job).
    let created: Vec<Value> = futures_util::future::join_all(
        (0..4).map(|_| raw_tc3(&server, Some("CreateThing"), b"{\"Name\":\"n\"}", ts)),
    )
    .await
    .into_iter()
    .map(|resp| async move { response_of(resp).await })
    .collect::<futures_util::stream::FuturesOrdered<_>>()
    .collect()
    .await;
    let ids: Vec<&Value> = created.iter().map(|r| &r["ThingId"]).collect();
    assert!(ids[0].is_u64(), "{:?}", created[0]);
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    let other = response_of(raw_tc3(&server, Some("CreateThing"), b"{\"Name\":\"m\"}", ts).await).await;
    assert_ne!(other["ThingId"], *ids[0], "another request creates another thing");
    // The crate's client signs a nonce: identical calls are never repeats.
    for _ in 0..3 {
        server.assert_serving().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn repeats_of_one_signature_do_not_use_the_callers_quota() {
    let server = TestServer::start().await;
    let ts = now();
    // One captured request of `Limited` (2 per second) resent 10 times: its own repeats are
    // limited, ...
    let mut limited = 0;
    for _ in 0..10 {
        let r = response_of(raw_tc3(&server, Some("Limited"), b"{}", ts).await).await;
        match error_code(&r) {
            "<none>" => {}
            "RequestLimitExceeded" => limited += 1,
            other => panic!("unexpected {other}: {r}"),
        }
    }
    assert!(limited >= 1);
    // Failed authentications draw from no bucket at all.
    let bad_key = Client::new(&server.url, ID, "not-the-key");
    for _ in 0..10 {
        assert_eq!(
            code(bad_key.call(VERSION, "Limited", json!({})).await),
            "AuthFailure.SignatureFailure"
        );
    }
    // A fresh signed call of the same key pair still has its quota: the repeats drew from the
    // signature's own bucket, its first use one token of two.
    let r = server.client().call(VERSION, "Limited", json!({})).await;
    assert!(r.is_ok(), "{r:?}");
    server.stop().await;
}

#[tokio::test]
async fn rate_limit_exceeded_under_concurrent_calls() {
    let server = TestServer::start().await;
    let client = Arc::new(server.client());
    let mut tasks = Vec::new();
    for i in 0..20 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            client.call(VERSION, "Limited", json!({"I": i})).await
        }));
    }
    let (mut ok, mut limited) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) if e.api_code() == Some("RequestLimitExceeded") => limited += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(ok >= 1 && limited >= 1, "ok {ok}, limited {limited}");
    assert_eq!(ok + limited, 20);
    // Other actions have their own bucket.
    server.assert_serving().await;
    server.stop().await;

    // A configured limit overrides the handler's.
    let limits = LimitsConfig {
        requests_per_second: Some(1),
        ..LimitsConfig::default()
    };
    let server = TestServer::start_with(limits, None).await;
    let client = Arc::new(server.client());
    let calls = (0..20).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.call(VERSION, "Echo", json!({})).await })
    });
    let mut limited = 0;
    for task in calls.collect::<Vec<_>>() {
        if let Err(e) = task.await.unwrap() {
            assert_eq!(e.api_code(), Some("RequestLimitExceeded"));
            limited += 1;
        }
    }
    assert!(limited >= 1);
    server.stop().await;
}

fn v1_params(action: &str, method: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("Action".into(), action.into()),
        ("Version".into(), VERSION.into()),
        ("Region".into(), "ap-shanghai".into()),
        ("Timestamp".into(), now().to_string()),
        (
            "Nonce".into(),
            uuid::Uuid::new_v4().as_u128().to_string()[..12].to_string(),
        ),
        ("SecretId".into(), ID.into()),
        ("SignatureMethod".into(), method.into()),
    ];
    p.extend(extra.iter().map(|(a, b)| (a.to_string(), b.to_string())));
    p
}

fn sign_v1(method: &str, host: &str, params: &mut Vec<(String, String)>, sig: v1::SignatureMethod) {
    let s = v1::string_to_sign(method, host, "/", params);
    params.push(("Signature".into(), v1::signature(KEY, &s, sig)));
}

fn encode(params: &[(String, String)]) -> String {
    let mut ser = form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        ser.append_pair(k, v);
    }
    ser.finish()
}

#[tokio::test]
async fn v1_get_and_form_post_with_flattened_parameters() {
    let server = TestServer::start().await;
    let host = server.addr.to_string();
    let http = http_client();
    let flat = [
        ("JobIds.0", "dts-a"),
        ("JobIds.1", "dts-b"),
        ("MigrateOption.RunMode", "1"),
        ("Tags.0.TagKey", "k"),
        ("Note", "a+b c&d=e"),
    ];
    let expected = json!({
        "JobIds": ["dts-a", "dts-b"],
        "MigrateOption": {"RunMode": "1"},
        "Tags": [{"TagKey": "k"}],
        "Note": "a+b c&d=e",
    });
    for (method_name, sig) in [
        ("HmacSHA1", v1::SignatureMethod::HmacSha1),
        ("HmacSHA256", v1::SignatureMethod::HmacSha256),
    ] {
        let mut p = v1_params("Echo", method_name, &flat);
        sign_v1("GET", &host, &mut p, sig);
        let r = response_of(
            http.get(format!("{}/?{}", server.url, encode(&p)))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(r.get("Error").is_none(), "{r}");
        assert_eq!(r["Params"], expected);
        assert_eq!(r["Encoding"], "Flat");
        assert_eq!(r["Region"], "ap-shanghai");

        let mut p = v1_params("Echo", method_name, &flat);
        sign_v1("POST", &host, &mut p, sig);
        let r = response_of(
            http.post(&server.url)
                .header("Content-Type", "application/x-www-form-urlencoded")
                .body(encode(&p))
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert!(r.get("Error").is_none(), "{r}");
        assert_eq!(r["Params"], expected);
    }
    // Tampered, unknown method, missing nonce, bad flattening, expired.
    let mut p = v1_params("Echo", "HmacSHA1", &flat);
    sign_v1("GET", &host, &mut p, v1::SignatureMethod::HmacSha1);
    p[0].1 = "DescribeEcho".into();
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure");
    let mut p = v1_params("Echo", "HmacMD5", &[]);
    sign_v1("GET", &host, &mut p, v1::SignatureMethod::HmacSha1);
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "InvalidParameterValue");
    let mut p = v1_params("Echo", "HmacSHA1", &[("A.1", "x")]);
    sign_v1("GET", &host, &mut p, v1::SignatureMethod::HmacSha1);
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "InvalidParameter");
    let mut p = v1_params("Echo", "HmacSHA1", &[]);
    p[3].1 = (now() - 1000).to_string();
    sign_v1("GET", &host, &mut p, v1::SignatureMethod::HmacSha1);
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureExpire");
    // An identical v1 GET sent twice is served twice.
    let mut p = v1_params("Echo", "HmacSHA1", &[]);
    sign_v1("GET", &host, &mut p, v1::SignatureMethod::HmacSha1);
    let url = format!("{}/?{}", server.url, encode(&p));
    let r = response_of(http.get(&url).send().await.unwrap()).await;
    assert!(r.get("Error").is_none());
    let r = response_of(http.get(&url).send().await.unwrap()).await;
    assert!(r.get("Error").is_none());
    // An unsigned X-TC-Action header does not override the signed Action (a captured read
    // resent as another action), nor X-TC-Version the signed Version.
    for (header, value) in [("X-TC-Action", "Fail"), ("X-TC-Version", "2021-12-06")] {
        let r = response_of(http.get(&url).header(header, value).send().await.unwrap()).await;
        assert_eq!(error_code(&r), "AuthFailure.SignatureFailure", "{header}: {r}");
        assert!(r["Error"]["Message"].as_str().unwrap().contains(header), "{r}");
    }
    // The same header with the signed value is fine.
    let r = response_of(http.get(&url).header("X-TC-Action", "Echo").send().await.unwrap()).await;
    assert!(r.get("Error").is_none(), "{r}");
    // v1 without a signed Action: the header does not stand in for it.
    let mut p = v1_params("Echo", "HmacSHA1", &[]);
    p.remove(0);
    sign_v1("GET", &host, &mut p, v1::SignatureMethod::HmacSha1);
    let r = response_of(
        http.get(format!("{}/?{}", server.url, encode(&p)))
            .header("X-TC-Action", "Echo")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "MissingParameter", "{r}");
    // Unsigned GET.
    let r = response_of(
        http.get(format!("{}/?Action=Echo&Version={VERSION}", server.url))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(error_code(&r), "AuthFailure.InvalidAuthorization");
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn tc3_get_with_query_parameters() {
    let server = TestServer::start().await;
    let host = server.addr.to_string();
    let ts = now();
    let query = "Limit=5&JobIds.0=dts-1&Region=ap-beijing";
    let ct = "application/x-www-form-urlencoded";
    let auth = tc3::sign(
        ID,
        KEY,
        &tc3::SignRequest {
            method: "GET",
            canonical_query: query,
            headers: &[
                ("content-type", ct),
                ("host", &host),
                ("x-tc-action", "DescribeEcho"),
            ],
            payload: b"",
            timestamp: ts,
            service: "dts",
        },
    );
    let r = response_of(
        http_client()
            .get(format!("{}/?{query}", server.url))
            .header("Content-Type", ct)
            .header("Authorization", auth)
            .header("X-TC-Action", "DescribeEcho")
            .header("X-TC-Version", VERSION)
            .header("X-TC-Timestamp", ts.to_string())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert!(r.get("Error").is_none(), "{r}");
    assert_eq!(r["Params"], json!({"Limit": "5", "JobIds": ["dts-1"]}));
    assert_eq!(r["Region"], "ap-beijing");

    // A TC3 GET whose query (signed) names the action, with X-TC-Action unsigned: the header
    // must agree with the query.
    let query = "Action=DescribeEcho&Version=2018-03-30&Limit=5";
    let sign_get = |ts: i64| {
        tc3::sign(
            ID,
            KEY,
            &tc3::SignRequest {
                method: "GET",
                canonical_query: query,
                headers: &[("content-type", ct), ("host", &host)],
                payload: b"",
                timestamp: ts,
                service: "dts",
            },
        )
    };
    let send = |action: Option<&'static str>, auth: String, ts: i64| {
        let mut req = http_client()
            .get(format!("{}/?{query}", server.url))
            .header("Content-Type", ct)
            .header("Authorization", auth)
            .header("X-TC-Timestamp", ts.to_string());
        if let Some(a) = action {
            req = req.header("X-TC-Action", a);
        }
        req.send()
    };
    let ts = now();
    let r = response_of(send(Some("Fail"), sign_get(ts), ts).await.unwrap()).await;
    assert_eq!(error_code(&r), "AuthFailure.SignatureFailure", "{r}");
    let r = response_of(send(None, sign_get(ts), ts).await.unwrap()).await;
    assert!(r.get("Error").is_none(), "the query's Action is used: {r}");
    assert_eq!(r["Action"], "DescribeEcho");
    let r = response_of(send(Some("DescribeEcho"), sign_get(ts), ts).await.unwrap()).await;
    assert!(r.get("Error").is_none(), "{r}");
    server.stop().await;
}

#[tokio::test]
async fn health_metrics_and_other_paths() {
    let server = TestServer::start().await;
    server.assert_serving().await;
    let _ = server.client().call(VERSION, "Nope", json!({})).await;
    let http = http_client();
    let health = http.get(format!("{}/healthz", server.url)).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok\n");
    let metrics = http.get(format!("{}/metrics", server.url)).send().await.unwrap();
    assert_eq!(metrics.status(), 200);
    let text = metrics.text().await.unwrap();
    assert!(
        text.contains("ferry_api_requests_total{action=\"Echo\",code=\"Success\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("ferry_api_requests_total{action=\"unknown\",code=\"InvalidAction\"} 1"),
        "{text}"
    );
    assert!(text.contains("ferry_test_handler_metric 7"), "{text}");
    let put = response_of(http.put(&server.url).body("{}").send().await.unwrap()).await;
    assert_eq!(error_code(&put), "UnsupportedProtocol");
    let other = http
        .post(format!("{}/v2/x", server.url))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    server.assert_serving().await;
    server.stop().await;
}

#[tokio::test]
async fn https_listener_with_a_self_signed_certificate() {
    let dir = std::env::temp_dir().join(format!("ferry-api-tls-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let cert =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()]).unwrap();
    let cert_pem = cert.cert.pem();
    std::fs::write(dir.join("cert.pem"), &cert_pem).unwrap();
    std::fs::write(dir.join("key.pem"), cert.signing_key.serialize_pem()).unwrap();
    let tls = TlsConfig {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
    };
    let server = TestServer::start_with(LimitsConfig::default(), Some(tls)).await;
    assert!(server.url.starts_with("https://"));
    let client = server.client().with_ca_pem(cert_pem.as_bytes()).unwrap();
    let r = client
        .call(VERSION, "Echo", json!({"Over": "tls"}))
        .await
        .unwrap();
    assert_eq!(r["Params"], json!({"Over": "tls"}));
    // Without trusting the certificate the call fails in the TLS handshake.
    let err = server
        .client()
        .call(VERSION, "Echo", json!({}))
        .await
        .unwrap_err();
    assert!(err.api_code().is_none(), "{err}");
    // Plain HTTP to the TLS port is not served.
    let plain = Client::new(server.url.replace("https://", "http://"), ID, KEY);
    assert!(plain.call(VERSION, "Echo", json!({})).await.is_err());
    let r = client.call(VERSION, "Echo", json!({})).await.unwrap();
    assert!(r.get("Error").is_none());
    server.stop().await;

    // A key file that is not a key names the setting.
    let bad = TlsConfig {
        cert: dir.join("cert.pem"),
        key: dir.join("cert.pem"),
    };
    let err = server::bind(
        "127.0.0.1:0".parse().unwrap(),
        Arc::new(TestHandler::default()),
        ServerOptions {
            tls: Some(bad),
            ..ServerOptions::default()
        },
    )
    .await
    .unwrap_err()
    .to_string();
    assert!(err.contains("tls.key"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
