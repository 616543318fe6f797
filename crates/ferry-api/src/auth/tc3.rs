//! TC3-HMAC-SHA256, the signature of Tencent Cloud API 3.0: the canonical request, the string to
//! sign, the derived signing key and the `Authorization` header, used by both the server (to
//! verify) and the client (to sign).
//!
//! ```text
//! CanonicalRequest = METHOD \n "/" \n CanonicalQueryString \n CanonicalHeaders \n SignedHeaders \n hex(sha256(body))
//! StringToSign     = "TC3-HMAC-SHA256" \n Timestamp \n DATE/SERVICE/tc3_request \n hex(sha256(CanonicalRequest))
//! Signature        = hex(HMAC(HMAC(HMAC(HMAC("TC3"+SecretKey, DATE), SERVICE), "tc3_request"), StringToSign))
//! ```

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The algorithm name that starts the `Authorization` header and the string to sign.
pub const ALGORITHM: &str = "TC3-HMAC-SHA256";

type HmacSha256 = Hmac<Sha256>;

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length: new_from_slice cannot fail for it.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable_hmac(),
    };
    mac.update(message);
    mac.finalize().into_bytes().to_vec()
}

#[cold]
fn unreachable_hmac() -> ! {
    unreachable!("HMAC accepts keys of every length")
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// The canonical request. `headers` are the signed headers in the order of `SignedHeaders`,
/// names lowercase, values as they go into the canonical form (see [`canonical_header_value`]).
pub fn canonical_request(
    method: &str,
    canonical_query: &str,
    headers: &[(String, String)],
    payload_sha256_hex: &str,
) -> String {
    let mut canonical_headers = String::new();
    for (name, value) in headers {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let signed: Vec<&str> = headers.iter().map(|(n, _)| n.as_str()).collect();
    format!(
        "{method}\n/\n{canonical_query}\n{canonical_headers}\n{}\n{payload_sha256_hex}",
        signed.join(";")
    )
}

/// A header value in its canonical form: surrounding whitespace removed and lowercased, as
/// Tencent documents it (`x-tc-action:describeinstances`).
pub fn canonical_header_value(value: &str) -> String {
    value.trim().to_ascii_lowercase()
}

/// `DATE/SERVICE/tc3_request`.
pub fn credential_scope(date: &str, service: &str) -> String {
    format!("{date}/{service}/tc3_request")
}

/// The string to sign.
pub fn string_to_sign(timestamp: i64, credential_scope: &str, canonical_request: &str) -> String {
    format!(
        "{ALGORITHM}\n{timestamp}\n{credential_scope}\n{}",
        sha256_hex(canonical_request.as_bytes())
    )
}

/// The signature (lowercase hex) of `string_to_sign` with the key derived from `secret_key`,
/// `date` (YYYY-MM-DD) and `service`.
pub fn signature(secret_key: &str, date: &str, service: &str, string_to_sign: &str) -> String {
    let k_date = hmac_sha256(format!("TC3{secret_key}").as_bytes(), date.as_bytes());
    let k_service = hmac_sha256(&k_date, service.as_bytes());
    let k_signing = hmac_sha256(&k_service, b"tc3_request");
    hex::encode(hmac_sha256(&k_signing, string_to_sign.as_bytes()))
}

/// The UTC calendar date (YYYY-MM-DD) of a Unix timestamp, as the credential scope wants it.
pub fn utc_date(timestamp: i64) -> String {
    // Howard Hinnant's days-to-civil algorithm.
    let days = timestamp.div_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// The parts of an `Authorization: TC3-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`
/// header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub secret_id: String,
    pub date: String,
    pub service: String,
    /// Lowercase header names, in the order given.
    pub signed_headers: Vec<String>,
    /// Lowercase hex.
    pub signature: String,
}

impl Authorization {
    /// Parses the header value; `Err` says what is wrong with it.
    pub fn parse(value: &str) -> Result<Authorization, String> {
        let rest = value
            .trim()
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| format!("the Authorization header must start with {ALGORITHM}"))?;
        if !rest.starts_with(' ') {
            return Err(format!(
                "the Authorization header must start with {ALGORITHM} and a space"
            ));
        }
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            let (key, val) = part
                .split_once('=')
                .ok_or_else(|| format!("the Authorization header part {part:?} is not KEY=VALUE"))?;
            let slot = match key.trim() {
                "Credential" => &mut credential,
                "SignedHeaders" => &mut signed,
                "Signature" => &mut signature,
                other => return Err(format!("the Authorization header has an unknown part {other:?}")),
            };
            if slot.replace(val.trim().to_string()).is_some() {
                return Err(format!("the Authorization header repeats {}", key.trim()));
            }
        }
        let credential = credential.ok_or("the Authorization header has no Credential")?;
        let signed = signed.ok_or("the Authorization header has no SignedHeaders")?;
        let signature = signature.ok_or("the Authorization header has no Signature")?;
        let pieces: Vec<&str> = credential.split('/').collect();
        let [secret_id, date, service, terminator] = pieces.as_slice() else {
            return Err("Credential must be SECRET_ID/DATE/SERVICE/tc3_request".to_string());
        };
        if *terminator != "tc3_request" || secret_id.is_empty() || service.is_empty() {
            return Err("Credential must be SECRET_ID/DATE/SERVICE/tc3_request".to_string());
        }
        if !is_date(date) {
            return Err(format!("the Credential date {date:?} is not YYYY-MM-DD"));
        }
        let signed_headers: Vec<String> = signed.split(';').map(|h| h.trim().to_ascii_lowercase()).collect();
        if signed_headers.iter().any(|h| h.is_empty()) {
            return Err("SignedHeaders has an empty header name".to_string());
        }
        if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err("Signature must be 64 hex digits".to_string());
        }
        Ok(Authorization {
            secret_id: secret_id.to_string(),
            date: date.to_string(),
            service: service.to_string(),
            signed_headers,
            signature: signature.to_ascii_lowercase(),
        })
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        format!(
            "{ALGORITHM} Credential={}/{}/{}/tc3_request, SignedHeaders={}, Signature={}",
            self.secret_id,
            self.date,
            self.service,
            self.signed_headers.join(";"),
            self.signature
        )
    }
}

fn is_date(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

/// What a client signs: one request.
#[derive(Debug, Clone)]
pub struct SignRequest<'a> {
    pub method: &'a str,
    /// The query string as sent (empty for a JSON POST).
    pub canonical_query: &'a str,
    /// Headers to sign, names in any case; `content-type` and `host` must be among them.
    pub headers: &'a [(&'a str, &'a str)],
    pub payload: &'a [u8],
    pub timestamp: i64,
    /// The service of the credential scope, e.g. `dts`.
    pub service: &'a str,
}

/// Signs `request` and returns the `Authorization` header value.
pub fn sign(secret_id: &str, secret_key: &str, request: &SignRequest<'_>) -> String {
    let headers: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), canonical_header_value(v)))
        .collect();
    let canonical = canonical_request(
        request.method,
        request.canonical_query,
        &headers,
        &sha256_hex(request.payload),
    );
    let date = utc_date(request.timestamp);
    let scope = credential_scope(&date, request.service);
    let to_sign = string_to_sign(request.timestamp, &scope, &canonical);
    Authorization {
        secret_id: secret_id.to_string(),
        signature: signature(secret_key, &date, request.service, &to_sign),
        date,
        service: request.service.to_string(),
        signed_headers: headers.into_iter().map(|(n, _)| n).collect(),
    }
    .to_header()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tencent's published example (cvm DescribeInstances, 2019-02-25).
    #[test]
    fn published_example() {
        let payload =
            r#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;
        assert_eq!(
            sha256_hex(payload.as_bytes()),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        let header = sign(
            "AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******",
            "Gu5t9xGARNpq86cd98joQYCN3*******",
            &SignRequest {
                method: "POST",
                canonical_query: "",
                headers: &[
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Host", "cvm.tencentcloudapi.com"),
                ],
                payload: payload.as_bytes(),
                timestamp: 1551113065,
                service: "cvm",
            },
        );
        assert_eq!(
            header,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3*******/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c"
        );
    }

    #[test]
    fn utc_dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(1551113065), "2019-02-25");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(4_107_542_399), "2100-02-28");
        assert_eq!(utc_date(-1), "1969-12-31");
    }

    #[test]
    fn authorization_parse_round_trip() {
        let value = "TC3-HMAC-SHA256 Credential=AKIDx/2019-02-25/dts/tc3_request, SignedHeaders=content-type;host;x-tc-action, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c";
        let auth = Authorization::parse(value).unwrap();
        assert_eq!(auth.secret_id, "AKIDx");
        assert_eq!(auth.service, "dts");
        assert_eq!(auth.signed_headers, ["content-type", "host", "x-tc-action"]);
        assert_eq!(auth.to_header(), value);
        for bad in [
            "",
            "HMAC-SHA256 Credential=a/2019-02-25/dts/tc3_request",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/dts, SignedHeaders=host, Signature=00",
            "TC3-HMAC-SHA256 Credential=a/19-02-25/dts/tc3_request, SignedHeaders=host, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/dts/tc3_request, SignedHeaders=host, Signature=zz",
            "TC3-HMAC-SHA256 Credential=a/2019-02-25/dts/tc3_request, Signature=2230eefd229f582d8b1b891af7107b91597240707d778ab3738f756258d7652c",
        ] {
            assert!(Authorization::parse(bad).is_err(), "{bad}");
        }
    }
}
