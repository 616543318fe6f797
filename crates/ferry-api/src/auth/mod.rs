//! Authentication of API calls: which signature scheme a request uses, the checks common to both
//! (known SecretId, timestamp within the allowed skew, signature compared in constant time), and
//! the replay guard. The signature algorithms themselves live in [`tc3`] and [`v1`].

pub mod replay;
pub mod tc3;
pub mod v1;

use std::time::{SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::credentials::CredentialStore;
use crate::handler::ApiError;

/// The service every TC3 credential scope must name.
pub const SERVICE: &str = "dts";

/// Signatures remembered for the replay guard.
const REPLAY_CAPACITY: usize = 100_000;

/// The current Unix time in seconds.
pub fn unix_now() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
        Err(_) => 0,
    }
}

/// A request whose signature checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub secret_id: String,
    /// The request's timestamp (Unix seconds).
    pub timestamp: i64,
    /// Identifies the signed request for the replay guard.
    pub replay_key: String,
}

/// Checks signatures against the configured credentials.
#[derive(Debug)]
pub struct Verifier {
    credentials: CredentialStore,
    max_skew_seconds: i64,
    replay: replay::ReplayCache,
}

/// The parts of an HTTP request a TC3 signature covers.
#[derive(Debug, Clone, Copy)]
pub struct Tc3Request<'a> {
    pub method: &'a str,
    /// The raw query string (without `?`), empty when there is none.
    pub query: &'a str,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

impl Verifier {
    pub fn new(credentials: CredentialStore, max_skew_seconds: u64) -> Verifier {
        Verifier {
            credentials,
            max_skew_seconds: i64::try_from(max_skew_seconds).unwrap_or(i64::MAX),
            replay: replay::ReplayCache::new(REPLAY_CAPACITY),
        }
    }

    fn check_skew(&self, timestamp: i64, now: i64) -> Result<(), ApiError> {
        if timestamp.abs_diff(now) > self.max_skew_seconds.unsigned_abs() {
            return Err(ApiError::signature_expire(format!(
                "the request timestamp {timestamp} is {} seconds away from the server's clock \
                 ({now}); at most {} are allowed: sync the client's clock and sign again",
                timestamp.abs_diff(now),
                self.max_skew_seconds
            )));
        }
        Ok(())
    }

    fn secret_key(&self, secret_id: &str) -> Result<&str, ApiError> {
        self.credentials
            .secret_key(secret_id)
            .ok_or_else(ApiError::secret_id_not_found)
    }

    /// Verifies a TC3-HMAC-SHA256 request (its `Authorization` header).
    pub fn verify_tc3(&self, request: Tc3Request<'_>, now: i64) -> Result<Authenticated, ApiError> {
        let header = header_str(request.headers, "authorization")
            .ok_or_else(|| ApiError::invalid_authorization("the Authorization header is missing"))?;
        let auth = tc3::Authorization::parse(header).map_err(ApiError::invalid_authorization)?;
        for required in ["content-type", "host"] {
            if !auth.signed_headers.iter().any(|h| h == required) {
                return Err(ApiError::invalid_authorization(format!(
                    "SignedHeaders must include {required}"
                )));
            }
        }
        if auth.service != SERVICE {
            return Err(ApiError::signature_failure(format!(
                "the Credential is scoped to the service {:?}; sign for the service {SERVICE} \
                 (DATE/{SERVICE}/tc3_request)",
                crate::params::shown_name(&auth.service)
            )));
        }
        let timestamp_text = header_str(request.headers, "x-tc-timestamp")
            .ok_or_else(|| ApiError::missing_parameter("X-TC-Timestamp"))?;
        let timestamp: i64 = timestamp_text.trim().parse().map_err(|_| {
            ApiError::invalid_parameter_value(format!(
                "X-TC-Timestamp {:?} is not a Unix time in seconds",
                crate::params::shown_name(timestamp_text)
            ))
        })?;
        self.check_skew(timestamp, now)?;
        let secret_key = self.secret_key(&auth.secret_id)?;
        let date = tc3::utc_date(timestamp);
        if auth.date != date {
            return Err(ApiError::signature_failure(format!(
                "the Credential date {} is not the UTC date {date} of X-TC-Timestamp {timestamp}",
                auth.date
            )));
        }
        if header_str(request.headers, "x-tc-content-sha256")
            .is_some_and(|v| v.eq_ignore_ascii_case("UNSIGNED-PAYLOAD"))
        {
            return Err(ApiError::signature_failure(
                "unsigned payloads are not accepted: sign the request body",
            ));
        }
        let mut raw_values = Vec::with_capacity(auth.signed_headers.len());
        for name in &auth.signed_headers {
            let values: Vec<&str> = request
                .headers
                .get_all(name.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok())
                .collect();
            if values.is_empty() {
                return Err(ApiError::signature_failure(format!(
                    "the signed header {name} is not in the request"
                )));
            }
            raw_values.push((name.clone(), values.join(",")));
        }
        let payload_hash = tc3::sha256_hex(request.body);
        let scope = tc3::credential_scope(&auth.date, &auth.service);
        let expected_for = |headers: &[(String, String)]| {
            let canonical = tc3::canonical_request(request.method, request.query, headers, &payload_hash);
            let to_sign = tc3::string_to_sign(timestamp, &scope, &canonical);
            tc3::signature(secret_key, &auth.date, &auth.service, &to_sign)
        };
        // Canonical values are trimmed and lowercased as documented; clients that sign the value
        // as sent (only trimmed) are accepted too.
        let lowered: Vec<(String, String)> = raw_values
            .iter()
            .map(|(n, v)| (n.clone(), tc3::canonical_header_value(v)))
            .collect();
        let mut ok = constant_time_eq(&expected_for(&lowered), &auth.signature);
        if !ok {
            let trimmed: Vec<(String, String)> = raw_values
                .iter()
                .map(|(n, v)| (n.clone(), v.trim().to_string()))
                .collect();
            if trimmed != lowered {
                ok = constant_time_eq(&expected_for(&trimmed), &auth.signature);
            }
        }
        if !ok {
            return Err(ApiError::signature_failure(
                "the signature does not match the request: check the SecretKey and the \
                 TC3-HMAC-SHA256 signing steps",
            ));
        }
        Ok(Authenticated {
            secret_id: auth.secret_id,
            timestamp,
            replay_key: format!("tc3:{}", auth.signature),
        })
    }

    /// Verifies a v1 (HmacSHA1 / HmacSHA256) request: `params` are all decoded query or form
    /// parameters, `host` the Host header and `path` the request path.
    pub fn verify_v1(
        &self,
        method: &str,
        host: &str,
        path: &str,
        params: &[(String, String)],
        now: i64,
    ) -> Result<Authenticated, ApiError> {
        let get = |name: &str| params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str());
        let secret_id = get("SecretId").ok_or_else(|| ApiError::missing_parameter("SecretId"))?;
        let given = get("Signature").ok_or_else(|| ApiError::missing_parameter("Signature"))?;
        let timestamp_text = get("Timestamp").ok_or_else(|| ApiError::missing_parameter("Timestamp"))?;
        if get("Nonce").is_none() {
            return Err(ApiError::missing_parameter("Nonce"));
        }
        let method_name = get("SignatureMethod").unwrap_or("HmacSHA1");
        let sign_method = v1::SignatureMethod::parse(method_name).ok_or_else(|| {
            ApiError::invalid_parameter_value(format!(
                "SignatureMethod {:?} is not supported: use HmacSHA1 or HmacSHA256",
                crate::params::shown_name(method_name)
            ))
        })?;
        let timestamp: i64 = timestamp_text.trim().parse().map_err(|_| {
            ApiError::invalid_parameter_value(format!(
                "Timestamp {:?} is not a Unix time in seconds",
                crate::params::shown_name(timestamp_text)
            ))
        })?;
        self.check_skew(timestamp, now)?;
        let secret_key = self.secret_key(secret_id)?;
        // A `+` sent unencoded in a query arrives as a space.
        let given = given.replace(' ', "+");
        let expected = v1::signature(
            secret_key,
            &v1::string_to_sign(method, host, path, params),
            sign_method,
        );
        let mut ok = constant_time_eq(&expected, &given);
        if !ok && params.iter().any(|(n, _)| n.contains('_')) {
            // The Python SDK signs parameter names with `_` replaced by `.`.
            let dotted: Vec<(String, String)> = params
                .iter()
                .map(|(n, v)| (n.replace('_', "."), v.clone()))
                .collect();
            let expected = v1::signature(
                secret_key,
                &v1::string_to_sign(method, host, path, &dotted),
                sign_method,
            );
            ok = constant_time_eq(&expected, &given);
        }
        if !ok {
            return Err(ApiError::signature_failure(
                "the signature does not match the request: check the SecretKey and the \
                 signing steps (parameters sorted, raw values, METHOD + Host + Path + ?)",
            ));
        }
        Ok(Authenticated {
            secret_id: secret_id.to_string(),
            timestamp,
            replay_key: format!("v1:{given}"),
        })
    }

    /// The replay guard and the rate of repeats (see [`replay`]): `Ok(true)` for the first use
    /// of the signature for `action` (the caller then draws from the quota of the SecretId and
    /// action), `Ok(false)` for an identical retry within the signature's own rate, `Err` for a
    /// signature used before by another address for another, mutating action, or repeated too
    /// often. `peer` is the client's address.
    pub fn record_use(
        &self,
        auth: &Authenticated,
        action: &str,
        per_second: u32,
        peer: Option<std::net::IpAddr>,
        now: i64,
        instant: std::time::Instant,
    ) -> Result<bool, ApiError> {
        let attempt = replay::Attempt {
            key: &auth.replay_key,
            action,
            read_only: is_read_only(action),
            per_second,
            expires_at: auth.timestamp.saturating_add(self.max_skew_seconds),
            peer,
        };
        match self.replay.record(&attempt, now, instant) {
            replay::Use::First => Ok(true),
            replay::Use::Repeat => Ok(false),
            replay::Use::RepeatLimited => Err(ApiError::request_limit_exceeded(action, per_second)),
            replay::Use::OtherAction { first } => Err(ApiError::signature_failure(format!(
                "replayed request: this signature was already used for {first} by another \
                 client address, and the action was not signed; sign every request anew (a new \
                 timestamp or nonce), or sign the x-tc-action header"
            ))),
        }
    }
}

/// Actions that only read (`Describe*`): a signature may be reused for them.
pub fn is_read_only(action: &str) -> bool {
    action.starts_with("Describe")
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Compares two strings in time independent of where they differ.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}
