//! A client of the API: signs calls with TC3-HMAC-SHA256, POSTs them as JSON over HTTP or HTTPS
//! (rustls with the ring provider; the Mozilla roots plus any given CA) and unwraps the
//! `Response` envelope. Used by `ferry api` and by tests.

use std::sync::OnceLock;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::CertificateDer;
use serde_json::{Map, Value};

use crate::auth::tc3;

/// The service name put in the credential scope.
pub use crate::auth::SERVICE;

/// An error of a call made with [`Client`].
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server answered `Response.Error`.
    #[error("{code}: {message} (RequestId {request_id})")]
    Api {
        code: String,
        message: String,
        request_id: String,
    },
    #[error("the endpoint {endpoint:?} is not usable: {message}")]
    Endpoint { endpoint: String, message: String },
    #[error("the parameters must be a JSON object, not {0}")]
    Params(String),
    #[error("TLS setup: {0}")]
    Tls(String),
    /// The request could not be sent or the answer not received (transient).
    #[error("cannot reach {endpoint}: {message}")]
    Transport { endpoint: String, message: String },
    #[error("the server answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("the answer is not a Tencent Cloud API response: {0}")]
    Decode(String),
}

impl ClientError {
    /// The API error code when the server answered one.
    pub fn api_code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// `true` when trying again later may succeed (transport errors, rate limits, HTTP 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ClientError::Transport { .. } => true,
            ClientError::Http { status, .. } => *status >= 500,
            ClientError::Api { code, .. } => code.starts_with("RequestLimitExceeded"),
            _ => false,
        }
    }
}

/// A signing API client.
pub struct Client {
    endpoint: String,
    secret_id: String,
    secret_key: String,
    region: Option<String>,
    extra_roots: Vec<CertificateDer<'static>>,
    /// Trust exactly the server certificate with this SHA-256 (names and CAs not checked).
    pinned: Option<[u8; 32]>,
    timeout: Duration,
    timestamp_offset: i64,
    http: OnceLock<Result<reqwest::Client, String>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoint", &self.endpoint)
            .field("secret_id", &self.secret_id)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `endpoint` (`http://HOST:PORT` or `https://…`), signing with the
    /// given key pair. Nothing is checked until the first call.
    pub fn new(
        endpoint: impl Into<String>,
        secret_id: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Client {
        Client {
            endpoint: endpoint.into(),
            secret_id: secret_id.into(),
            secret_key: secret_key.into(),
            region: None,
            extra_roots: Vec::new(),
            pinned: None,
            timeout: Duration::from_secs(60),
            timestamp_offset: 0,
            http: OnceLock::new(),
        }
    }

    /// Sends `X-TC-Region`.
    pub fn with_region(mut self, region: impl Into<String>) -> Client {
        self.region = Some(region.into());
        self
    }

    /// Also trusts the CA certificates of this PEM text (for a server with its own CA or a
    /// self-signed certificate).
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Client, ClientError> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ClientError::Tls(format!("the CA file is not valid PEM: {e}")))?;
        if certs.is_empty() {
            return Err(ClientError::Tls(
                "the CA file holds no CERTIFICATE block".to_string(),
            ));
        }
        self.extra_roots.extend(certs);
        self.http = OnceLock::new();
        Ok(self)
    }

    /// Trusts exactly the server certificate whose SHA-256 fingerprint is `fingerprint` (hex,
    /// with or without `:`, as `ferry serve` prints it), whatever its names and issuer.
    pub fn with_pinned_fingerprint(mut self, fingerprint: &str) -> Result<Client, ClientError> {
        let digest = crate::tls::parse_fingerprint(fingerprint).ok_or_else(|| {
            ClientError::Tls(
                "the fingerprint is not a SHA-256 (64 hex digits, with or without colons)".to_string(),
            )
        })?;
        self.pinned = Some(digest);
        self.http = OnceLock::new();
        Ok(self)
    }

    /// The whole-call timeout (default 60 s).
    pub fn with_timeout(mut self, timeout: Duration) -> Client {
        self.timeout = timeout;
        self.http = OnceLock::new();
        self
    }

    /// Signs with a timestamp this many seconds away from the local clock (tests of expired
    /// signatures; clients whose clock is known to be off).
    pub fn with_timestamp_offset(mut self, seconds: i64) -> Client {
        self.timestamp_offset = seconds;
        self
    }

    fn http(&self) -> Result<&reqwest::Client, ClientError> {
        let built = self.http.get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            for cert in &self.extra_roots {
                roots
                    .add(cert.clone())
                    .map_err(|e| format!("a CA certificate is not usable: {e}"))?;
            }
            let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
            let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()
                .map_err(|e| e.to_string())?;
            let tls = match self.pinned {
                Some(sha256) => builder
                    .dangerous()
                    .with_custom_certificate_verifier(std::sync::Arc::new(Pinned { sha256, provider }))
                    .with_no_client_auth(),
                None => builder.with_root_certificates(roots).with_no_client_auth(),
            };
            reqwest::Client::builder()
                .use_preconfigured_tls(tls)
                .timeout(self.timeout)
                .build()
                .map_err(|e| e.to_string())
        });
        built.as_ref().map_err(|e| ClientError::Tls(e.clone()))
    }

    /// Calls `action` of API `version` with `params` (a JSON object). `Ok` is the `Response`
    /// object (with `RequestId`); a `Response.Error` is [`ClientError::Api`].
    pub async fn call(&self, version: &str, action: &str, params: Value) -> Result<Value, ClientError> {
        let response = self.call_response(version, action, params).await?;
        if let Some(error) = response.get("Error") {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
            return Err(ClientError::Api {
                code: text(error.get("Code")),
                message: text(error.get("Message")),
                request_id: text(response.get("RequestId")),
            });
        }
        Ok(response)
    }

    /// As [`Client::call`], but answers the `Response` object whether or not it holds `Error`.
    pub async fn call_response(
        &self,
        version: &str,
        action: &str,
        params: Value,
    ) -> Result<Value, ClientError> {
        let body = match params {
            Value::Object(map) => serde_json::to_vec(&map),
            Value::Null => serde_json::to_vec(&Map::new()),
            other => return Err(ClientError::Params(other.to_string())),
        }
        .map_err(|e| ClientError::Params(e.to_string()))?;
        self.send(version, action, body).await
    }

    /// Signs and POSTs `body` as it is (tests send malformed bodies with it); answers the
    /// `Response` object.
    pub async fn send(&self, version: &str, action: &str, body: Vec<u8>) -> Result<Value, ClientError> {
        let url = reqwest::Url::parse(&self.endpoint).map_err(|e| ClientError::Endpoint {
            endpoint: self.endpoint.clone(),
            message: format!("{e}; give a URL like http://127.0.0.1:8080"),
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ClientError::Endpoint {
                endpoint: self.endpoint.clone(),
                message: "the scheme must be http or https".to_string(),
            });
        }
        let host = match (url.host_str(), url.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => {
                return Err(ClientError::Endpoint {
                    endpoint: self.endpoint.clone(),
                    message: "it has no host".to_string(),
                })
            }
        };
        let timestamp = crate::auth::unix_now().saturating_add(self.timestamp_offset);
        let content_type = "application/json; charset=utf-8";
        // A signed nonce makes every call's signature unique, so that the server's replay guard
        // never refuses two identical calls made within the same second.
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let authorization = tc3::sign(
            &self.secret_id,
            &self.secret_key,
            &tc3::SignRequest {
                method: "POST",
                canonical_query: "",
                headers: &[
                    ("content-type", content_type),
                    ("host", &host),
                    ("x-tc-action", action),
                    ("x-ferry-nonce", &nonce),
                ],
                payload: &body,
                timestamp,
                service: SERVICE,
            },
        );
        let mut request = self
            .http()?
            .post(url.clone())
            .header("Content-Type", content_type)
            .header("Host", &host)
            .header("Authorization", authorization)
            .header("X-TC-Action", action)
            .header("X-TC-Version", version)
            .header("X-TC-Timestamp", timestamp.to_string())
            .header("X-TC-RequestClient", concat!("ferry/", env!("CARGO_PKG_VERSION")))
            .header("X-Ferry-Nonce", &nonce);
        if let Some(region) = &self.region {
            request = request.header("X-TC-Region", region);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|e| ClientError::Transport {
                endpoint: self.endpoint.clone(),
                message: error_chain(&e),
            })?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| ClientError::Transport {
            endpoint: self.endpoint.clone(),
            message: error_chain(&e),
        })?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&bytes);
            return Err(ClientError::Http {
                status: status.as_u16(),
                body: text.chars().take(500).collect(),
            });
        }
        let mut value: Value =
            serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()))?;
        match value.get_mut("Response").map(Value::take) {
            Some(response @ Value::Object(_)) => Ok(response),
            _ => Err(ClientError::Decode("it has no \"Response\" object".to_string())),
        }
    }
}

/// Accepts exactly the server certificate with a given SHA-256; handshake signatures are
/// verified as usual.
#[derive(Debug)]
struct Pinned {
    sha256: [u8; 32],
    provider: std::sync::Arc<rustls::crypto::CryptoProvider>,
}

impl rustls::client::danger::ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let got = crate::tls::sha256(end_entity.as_ref());
        if bool::from(subtle::ConstantTimeEq::ct_eq(&got[..], &self.sha256[..])) {
            Ok(rustls::client::danger::ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::General(format!(
                "the server's certificate has the SHA-256 fingerprint {}, not the pinned {}",
                crate::tls::format_fingerprint(&got),
                crate::tls::format_fingerprint(&self.sha256)
            )))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// An error and its causes, joined.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
