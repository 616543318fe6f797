//! The HTTP(S) server: routes (`POST /` and `GET /` for API calls, `GET /healthz`,
//! `GET /metrics`), the flow of one call (read the body within its limit, authenticate, look the
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
use crate::metrics::{WireMetrics, UNKNOWN_ACTION};
use crate::params;
use crate::ratelimit::RateLimiter;

/// Bodies up to this size are read to the end (and discarded) after the limit is exceeded, so
/// that the client gets the `RequestSizeLimitExceeded` answer instead of a reset connection.
const DRAIN_LIMIT: u64 = 64 * 1024 * 1024;
/// How long a client may take to send its request headers or finish the TLS handshake.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);
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
}

struct AppState {
    handler: Arc<dyn ActionHandler>,
    verifier: Verifier,
    limiter: RateLimiter,
    metrics: WireMetrics,
    limits: LimitsConfig,
}

/// A server bound to its address, not serving yet.
pub struct BoundServer {
    listener: TcpListener,
    local_addr: SocketAddr,
    tls: Option<tokio_rustls::TlsAcceptor>,
    router: Router,
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
    });
    Router::new()
        .route("/", any(api_entry))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .with_state(state)
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
            tls,
            router,
            ..
        } = self;
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let accepted = tokio::select! {
                accepted = listener.accept() => accepted,
                () = &mut shutdown => break,
            };
            let stream = match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service = TowerToHyperService::new(router.clone());
            let watcher = graceful.watcher();
            let tls = tls.clone();
            tokio::spawn(async move {
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(CLIENT_TIMEOUT);
                let result = match tls {
                    None => {
                        watcher
                            .watch(builder.serve_connection(TokioIo::new(stream), service))
                            .await
                    }
                    Some(acceptor) => {
                        let handshake = tokio::time::timeout(CLIENT_TIMEOUT, acceptor.accept(stream)).await;
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
        "the API is served at path /; health at /healthz and metrics at /metrics",
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
    let body = match outcome {
        Ok(fields) => envelope::success(fields, &request_id),
        Err(e) => envelope::error(&e, &request_id),
    };
    json_response(&body)
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
    let body = read_body(body, &parts.headers, state.limits.max_body_bytes).await?;
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
    let flat_common = match &payload {
        Payload::Flat(pairs) => Some(params::split_common(pairs)),
        Payload::Json => None,
    };
    let common = flat_common.as_ref().map(|(c, _)| c.clone()).unwrap_or_default();
    log.action = header_str(headers, "x-tc-action")
        .map(str::to_string)
        .or_else(|| common.action.clone());
    log.version = header_str(headers, "x-tc-version")
        .map(str::to_string)
        .or_else(|| common.version.clone());

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
            Payload::Flat(pairs) if pairs.iter().any(|(n, _)| n == "Signature" || n == "SecretId") => {
                let host = header_str(headers, "host").unwrap_or("");
                state
                    .verifier
                    .verify_v1(method.as_str(), host, parts.uri.path(), pairs, now)?
            }
            _ => {
                return Err(ApiError::invalid_authorization(
                    "the request is not signed: send an Authorization: TC3-HMAC-SHA256 header \
                     (or Signature and SecretId parameters)",
                ))
            }
        }
    };

    let action = log
        .action
        .clone()
        .filter(|a| !a.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("Action (X-TC-Action)"))?;
    let version = log
        .version
        .clone()
        .filter(|v| !v.is_empty())
        .ok_or_else(|| ApiError::missing_parameter("Version (X-TC-Version)"))?;
    let info = state.handler.lookup(&version, &action)?;
    log.known_action = true;

    let per_second = state
        .limits
        .requests_per_second_for(&action, info.requests_per_second);
    if !state.limiter.try_acquire(&action, per_second, Instant::now()) {
        return Err(ApiError::request_limit_exceeded(&action, per_second));
    }
    // Describe* actions only read: a repeated signature is served for them at any time within
    // the skew window (an SDK polling twice in one second sends the same one).
    state
        .verifier
        .check_replay(&authenticated, &action, now, action.starts_with("Describe"))?;

    let (params, encoding) = match (payload, flat_common) {
        (Payload::Json, _) => (params::parse_json_body(&body)?, ParamEncoding::Json),
        (Payload::Flat(_), Some((_, rest))) => (params::unflatten(&rest)?, ParamEncoding::Flat),
        (Payload::Flat(pairs), None) => {
            let (_, rest) = params::split_common(&pairs);
            (params::unflatten(&rest)?, ParamEncoding::Flat)
        }
    };
    let region = header_str(headers, "x-tc-region")
        .map(str::to_string)
        .or(common.region)
        .filter(|r| !r.is_empty());
    state
        .handler
        .handle(ApiCall {
            version,
            action,
            region,
            params,
            encoding,
            request_id: request_id.to_string(),
            secret_id: authenticated.secret_id,
        })
        .await
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Reads the body up to `limit` bytes; a larger one is read on (and dropped) up to
/// [`DRAIN_LIMIT`] so that the answer reaches the client, then refused.
async fn read_body(body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared: Option<u64> = header_str(headers, "content-length").and_then(|v| v.parse().ok());
    let limit_u64 = u64::try_from(limit).unwrap_or(u64::MAX);
    if declared.is_some_and(|n| n > DRAIN_LIMIT) {
        return Err(ApiError::request_size_limit_exceeded(limit));
    }
    let mut stream = body.into_data_stream();
    let mut out: Vec<u8> =
        Vec::with_capacity(usize::try_from(declared.unwrap_or(0).min(limit_u64)).unwrap_or(0));
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
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
