//! The HTTP(S) server: routes (`POST /` and `GET /` for API calls, `GET /healthz`,
//! `GET /metrics`, the console under `/console/`), the flow of one call (read the body within its limit, authenticate, look the
//! action up, rate-limit, guard against replays, decode the parameters, call the handler, answer
//! in the envelope), one log line per call, and graceful shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use futures_util::StreamExt as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

use crate::auth::{self, Authenticated, Tc3Request, Verifier};
use crate::config::{LimitsConfig, TlsConfig};
use crate::credentials::CredentialStore;
use crate::envelope;
use crate::error::Error;
use crate::handler::{ActionHandler, ApiCall, ApiError, ParamEncoding};
use crate::hosts::AllowedHosts;
use crate::idempotency::CreatedCache;
use crate::metrics::{WireMetrics, UNKNOWN_ACTION};
use crate::params;
use crate::ratelimit::RateLimiter;

/// Answers of creating actions remembered for identical retries.
const CREATED_CAPACITY: usize = 10_000;

/// Bodies up to this size are read to the end (and discarded) after the limit is exceeded, so
/// that the client gets the `RequestSizeLimitExceeded` answer instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// The code answered when a body does not arrive in time.
const BODY_TIMEOUT_CODE: &str = "InvalidRequest";
/// The most a connection buffers of a request at a time (headers must fit in it).
const MAX_CONNECTION_BUFFER: usize = 64 * 1024;
/// How long shutdown waits for calls in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Action and version names longer than this are cut in logs.
const LOG_NAME_MAX: usize = 64;

/// What the server needs besides the handler.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    pub limits: LimitsConfig,
    pub credentials: CredentialStore,
    /// Serve HTTPS with this certificate and key.
    pub tls: Option<TlsConfig>,
    /// Host names (`NAME` or `NAME:PORT`) requests may be signed for, besides the server's own
    /// addresses (see [`AllowedHosts`]); `*` allows any.
    pub allowed_hosts: Vec<String>,
}

struct AppState {
    handler: Arc<dyn ActionHandler>,
    verifier: Verifier,
    limiter: RateLimiter,
    metrics: WireMetrics,
    limits: LimitsConfig,
    hosts: AllowedHosts,
    created: CreatedCache,
}

/// A server bound to its address, not serving yet.
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
    max_connections: usize,
    client_timeout: Duration,
}

impl std::fmt::Debug for BoundServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundServer")
            .field("local_addr", &self.local_addr)
            .field("tls", &self.tls.is_some())
            .finish()
    }
}

/// The routes of the API, for `handler`.
pub fn router(handler: Arc<dyn ActionHandler>, options: &ServerOptions) -> Router {
    let state = Arc::new(AppState {
        handler,
        verifier: Verifier::new(
            options.credentials.clone(),
            options.limits.signature_max_skew_seconds,
        ),
        limiter: RateLimiter::new(),
        metrics: WireMetrics::new(),
        limits: options.limits.clone(),
        hosts: AllowedHosts::new(&options.allowed_hosts),
        created: CreatedCache::new(CREATED_CAPACITY),
    });
    let console = crate::console::router(
        state.handler.clone(),
        options.credentials.clone(),
        options.tls.is_some(),
    );
    Router::new()
        .route("/", any(api_entry))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
        .merge(console)
}

/// Binds `addr` (port 0 picks a free port) and loads the TLS certificate when configured.
pub async fn bind(
    addr: SocketAddr,
    handler: Arc<dyn ActionHandler>,
    options: ServerOptions,
) -> Result<BoundServer, Error> {
    let tls = match options.tls.clone() {
        Some(tls) => {
            // Reads the PEM files: off the async threads.
            let config = tokio::task::spawn_blocking(move || crate::tls::server_config(&tls))
                .await
                .map_err(|e| Error::Tls {
                    message: format!("loading the certificate failed: {e}"),
                })??;
            Some(tokio_rustls::TlsAcceptor::from(config))
        }
        None => None,
    };
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })?;
    let local_addr = listener.local_addr().map_err(|source| Error::Bind {
        addr: addr.to_string(),
        source,
    })?;
    Ok(BoundServer {
        listener,
        local_addr,
        tls,
        max_connections: options.limits.max_connections,
        client_timeout: Duration::from_secs(options.limits.client_timeout_seconds.max(1)),
        router: router(handler, &options),
    })
}

impl BoundServer {
    /// The bound address (with the chosen port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// `https` with TLS, `http` otherwise.
    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }

    /// `SCHEME://ADDR`.
    pub fn url(&self) -> String {
        format!("{}://{}", self.scheme(), self.local_addr)
    }

    /// Serves until `shutdown` completes, then stops accepting, lets the calls in progress finish
    /// (up to 30 s) and returns.
    pub async fn serve(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), Error> {
        let BoundServer {
            listener,
            local_addr,
            tls,
            router,
            max_connections,
            client_timeout,
        } = self;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let connections = Arc::new(tokio::sync::Semaphore::new(max_connections.max(1)));
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            // At most `max_connections` at once: further clients wait in the listen backlog
            // until a connection ends (stalled ones end after limits.client_timeout_seconds).
            let permit = tokio::select! {
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(p) => p,
                    Err(_) => break,
                },
                () = &mut shutdown => break,
            };
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, peer)) => (stream, peer),
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let (stream, peer) = stream;
            let _ = stream.set_nodelay(true);
            let conn_info = ConnInfo {
                local: stream.local_addr().unwrap_or(local_addr),
                peer,
            };
            let service = TowerToHyperService::new(tower::ServiceExt::map_request(
                router.clone(),
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(conn_info);
                    request
                },
            ));
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(client_timeout)
                    .max_buf_size(MAX_CONNECTION_BUFFER);
                let result = match tls {
                    None => {
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(client_timeout, acceptor.accept(stream)).await;
                        let tls_stream = match handshake {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "TLS handshake failed");
                                return;
                            }
                            Err(_) => {
                                tracing::debug!("TLS handshake timed out");
                                return;
                            }
                        };
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(tls_stream), service))
                            .await
                    }
                };
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
            });
        }
        drop(listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(SHUTDOWN_GRACE) => {
                tracing::warn!("calls still in progress after {}s; closing them", SHUTDOWN_GRACE.as_secs());
            }
        }
        Ok(())
    }
}

async fn healthz() -> Response {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok\n").into_response()
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut text = state.metrics.render();
    let handler_text = state.handler.metrics().await;
    if !handler_text.is_empty() {
        text.push_str(&handler_text);
        if !text.ends_with('\n') {
            text.push('\n');
        }
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        text,
    )
        .into_response()
}

async fn not_found() -> Response {
    let request_id = envelope::new_request_id();
    let err = ApiError::unsupported_protocol(
        "the API is served at path /; health at /healthz, metrics at /metrics and the console at /console/",
    );
    (
        StatusCode::NOT_FOUND,
        json_response(&envelope::error(&err, &request_id)),
    )
        .into_response()
}

fn json_response(value: &Value) -> Response {
    let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
    let mut response = Response::new(Body::from(body));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        // Exactly `application/json`: the Python SDK only parses errors out of responses whose
        // Content-Type is exactly that (or text/plain); JSON is UTF-8 by definition.
        HeaderValue::from_static("application/json"),
    );
    response
}

/// What the log line and the metrics say about a call.
#[derive(Default)]
struct CallLog {
    action: Option<String>,
    version: Option<String>,
    /// The action exists (so it may be a metrics label).
    known_action: bool,
}

async fn api_entry(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let started = Instant::now();
    let request_id = envelope::new_request_id();
    let mut log = CallLog::default();
    let outcome = serve_call(&state, request, &request_id, &mut log).await;
    let elapsed = started.elapsed();
    let code = match &outcome {
        Ok(_) => "Success",
        Err(e) => e.code.as_str(),
    };
    let label = match (&log.action, log.known_action) {
        (Some(action), true) => action.as_str(),
        _ => UNKNOWN_ACTION,
    };
    state.metrics.record(label, code, elapsed);
    tracing::info!(
        action = %log_name(log.action.as_deref()),
        version = %log_name(log.version.as_deref()),
        request_id = %request_id,
        code = %code,
        elapsed_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        "api call"
    );
    let close = matches!(&outcome, Err(e) if e.code == BODY_TIMEOUT_CODE);
    let body = match outcome {
        Ok(fields) => envelope::success(fields, &request_id),
        Err(e) => envelope::error(&e, &request_id),
    };
    let mut response = json_response(&body);
    if close {
        // A client that stalls its body gets no second chance on this connection.
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// A client-given name made safe for one log line.
fn log_name(name: Option<&str>) -> String {
    match name {
        None => "-".to_string(),
        Some(n) => n
            .chars()
            .take(LOG_NAME_MAX)
            .map(|c| if c.is_ascii_graphic() { c } else { '?' })
            .collect(),
    }
}

/// How the parameters came.
enum Payload {
    Json,
    Flat(Vec<(String, String)>),
}

/// Facts about the connection a request came on.
#[derive(Debug, Clone, Copy)]
pub struct ConnInfo {
    /// The server's address on that connection (the IP the client connected to).
    pub local: SocketAddr,
    /// The client's address.
    pub peer: SocketAddr,
}

/// The action (or version) of a call: the signed value, and the X-TC header, which must agree.
fn bound_name(
    header_name: &str,
    header: Option<&str>,
    signed: Option<&str>,
    param_name: &str,
) -> Result<Option<String>, ApiError> {
    match (header, signed) {
        (Some(h), Some(s)) if h != s => Err(ApiError::signature_failure(format!(
            "the {header_name} header ({}) disagrees with the signed {param_name} parameter ({}); \
             send one {param_name}",
            params::shown_name(h),
            params::shown_name(s)
        ))),
        (_, Some(s)) => Ok(Some(s.to_string())),
        (Some(h), None) => Ok(Some(h.to_string())),
        (None, None) => Ok(None),
    }
}

async fn serve_call(
    state: &AppState,
    request: Request,
    request_id: &str,
    log: &mut CallLog,
) -> Result<Map<String, Value>, ApiError> {
    let (parts, body) = request.into_parts();
    let method = parts.method.clone();
    if method != Method::GET && method != Method::POST {
        return Err(ApiError::unsupported_protocol(format!(
            "the HTTP method {method} is not supported; use POST (or GET)"
        )));
    }
    let body = read_body(body, &parts.headers, &state.limits).await?;
    let query = parts.uri.query().unwrap_or("");
    let headers = &parts.headers;

    let payload = if method == Method::GET {
        Payload::Flat(params::decode_form(query.as_bytes())?)
    } else {
        let content_type = header_str(headers, "content-type")
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("application/x-www-form-urlencoded") {
            Payload::Flat(params::decode_form(&body)?)
        } else if content_type.starts_with("multipart/") {
            return Err(ApiError::invalid_parameter(
                "multipart bodies are not supported; send the parameters as a JSON object \
                 (Content-Type: application/json)",
            ));
        } else {
            Payload::Json
        }
    };

    let now = auth::unix_now();
    let (common, flat_rest) = match &payload {
        Payload::Flat(pairs) => {
            let (common, rest) = params::split_common(pairs);
            (common, Some(rest))
        }
        Payload::Json => (params::CommonParams::default(), None),
    };
    let header_action = header_str(headers, "x-tc-action");
    let header_version = header_str(headers, "x-tc-version");
    log.action = header_action
        .map(str::to_string)
        .or_else(|| common.action.clone());
    log.version = header_version
        .map(str::to_string)
        .or_else(|| common.version.clone());

    let host = header_str(headers, "host").unwrap_or("");
    let authenticated: Authenticated = if headers.contains_key(header::AUTHORIZATION) {
        state.verifier.verify_tc3(
            Tc3Request {
                method: method.as_str(),
                query,
                headers,
                body: &body,
            },
            now,
        )?
    } else {
        match &payload {
            Payload::Flat(pairs) if pairs.iter().any(|(n, _)| n == "Signature" || n == "SecretId") => state
                .verifier
                .verify_v1(method.as_str(), host, parts.uri.path(), pairs, now)?,
            _ => {
                return Err(ApiError::invalid_authorization(
                    "the request is not signed: send an Authorization: TC3-HMAC-SHA256 header \
                     (or Signature and SecretId parameters)",
                ))
            }
        }
    };
    let conn = parts.extensions.get::<ConnInfo>().copied();
    let local = conn.map(|c| c.local);
    if !state.hosts.allows(host, local) {
        return Err(ApiError::signature_failure(format!(
            "the request is signed for the host {:?}, which is not a name of this server; call \
             it by its address (or add the name to allowed_hosts in ferry.toml, \
             FERRY_ALLOWED_HOSTS)",
            params::shown_name(host)
        )));
    }

    // The action and version are what was signed: Action/Version parameters of a v1 request, of
    // a TC3 GET query or form body; a TC3 X-TC-Action header when signed. An X-TC-* header that
    // disagrees with a signed parameter is refused (it would turn a captured request into
    // another action).
    // v1 signs its parameters only: there the headers never stand in for them.
    let tc3 = headers.contains_key(header::AUTHORIZATION);
    let unless_v1 = |h: Option<&'_ str>| if tc3 { h.map(str::to_string) } else { None };
    let action = bound_name("X-TC-Action", header_action, common.action.as_deref(), "Action")?
        .filter(|_| tc3 || common.action.is_some())
        .or_else(|| unless_v1(header_action));
    let version = bound_name(
        "X-TC-Version",
        header_version,
        common.version.as_deref(),
        "Version",
    )?
    .filter(|_| tc3 || common.version.is_some())
    .or_else(|| unless_v1(header_version));
    log.action = action.clone().or(log.action.take());
    log.version = version.clone().or(log.version.take());
    let action = action
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("Action (X-TC-Action)"))?;
    let version = version
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("Version (X-TC-Version)"))?;
    let info = state.handler.lookup(&version, &action)?;
    log.known_action = true;

    // Rate limits: the first use of a signature draws from the quota of its SecretId and
    // action; an identical retry (the same signature) from a bucket of that signature alone, so
    // that resending a captured request cannot exhaust anyone's quota.
    let per_second = state
        .limits
        .requests_per_second_for(&action, info.requests_per_second);
    let first_use = state.verifier.record_use(
        &authenticated,
        &action,
        per_second,
        conn.map(|c| c.peer.ip()),
        now,
        Instant::now(),
    )?;
    if first_use
        && !state.limiter.try_acquire(
            &format!("{}\n{action}", authenticated.secret_id),
            per_second,
            Instant::now(),
        )
    {
        return Err(ApiError::request_limit_exceeded(&action, per_second));
    }

    let (params, encoding) = match (payload, flat_rest) {
        (Payload::Flat(_), Some(rest)) => (params::unflatten(&rest)?, ParamEncoding::Flat),
        _ => (params::parse_json_body(&body)?, ParamEncoding::Json),
    };
    let region = header_str(headers, "x-tc-region")
        .map(str::to_string)
        .or(common.region)
        .filter(|r| !r.is_empty());
    let call = ApiCall {
        version,
        action,
        region,
        params,
        encoding,
        request_id: request_id.to_string(),
        secret_id: authenticated.secret_id.clone(),
    };
    // Actions that create something answer an identical retry with the first call's answer
    // instead of creating a second one.
    if is_creating(&call.action) {
        let key = format!("{}\n{}", authenticated.replay_key, call.action);
        let expires_at = authenticated
            .timestamp
            .saturating_add(i64::try_from(state.limits.signature_max_skew_seconds).unwrap_or(i64::MAX));
        let slot = state.created.slot(&key, expires_at, now);
        let handler = &state.handler;
        return slot.get_or_try_init(|| handler.handle(call)).await.cloned();
    }
    state.handler.handle(call).await
}

/// Actions whose identical retry must not run twice (each call creates a job or a task).
fn is_creating(action: &str) -> bool {
    action.starts_with("Create")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the body up to `limit` bytes; a larger one is read on (and dropped) up to
/// [`DRAIN_LIMIT`] so that the answer reaches the client, then refused. The buffer grows with
/// what arrives (never sized from Content-Length); a body that stalls for
/// `client_timeout_seconds`, or takes longer than four times that in all, is refused.
async fn read_body(body: Body, headers: &HeaderMap, limits: &LimitsConfig) -> Result<Vec<u8>, ApiError> {
    let limit = limits.max_body_bytes;
    let idle = Duration::from_secs(limits.client_timeout_seconds.max(1));
    let whole = idle.saturating_mul(4);
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    let declared: Option<u64> = header_str(headers, "content-length").and_then(|v| v.parse().ok());
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(ApiError::request_size_limit_exceeded(limit));
    }
    let mut stream = body.into_data_stream();
    let mut out: Vec<u8> = Vec::new();
    let mut total: u64 = 0;
    let deadline = tokio::time::Instant::now() + whole;
    loop {
        let next = tokio::time::timeout_at(deadline.min(tokio::time::Instant::now() + idle), stream.next())
            .await
            .map_err(|_| body_timeout(idle, whole))?;
        let Some(chunk) = next else { break };
        let chunk = chunk
            .map_err(|e| ApiError::invalid_parameter(format!("the request body could not be read: {e}")))?;
        total = total.saturating_add(u64::try_from(chunk.len()).unwrap_or(u64::MAX));
        if total > DRAIN_LIMIT {
            return Err(ApiError::request_size_limit_exceeded(limit));
        }
        if total <= limit_u64 {
            out.extend_from_slice(&chunk);
        }
    }
    if total > limit_u64 {
        return Err(ApiError::request_size_limit_exceeded(limit));
    }
    Ok(out)
}

/// The answer to a body that does not arrive in time (the connection is closed after it).
fn body_timeout(idle: Duration, whole: Duration) -> ApiError {
    ApiError::new(
        BODY_TIMEOUT_CODE,
        format!(
            "the request body did not arrive in time (at most {} s without data, {} s in all)",
            idle.as_secs(),
            whole.as_secs()
        ),
    )
}
