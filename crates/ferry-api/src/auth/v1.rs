//! The API 2.0-style signature ("v1"), still accepted by Tencent and sent by the SDKs with
//! `signMethod` `HmacSHA1` or `HmacSHA256`: every parameter except `Signature`, sorted by name,
//! joined as `name=value` (raw, not URL-encoded) with `&`, prefixed by `METHOD + Host + Path + "?"`,
//! HMAC'd with the SecretKey and Base64-encoded.

use base64::Engine;
use hmac::{Hmac, Mac};

/// The hash of a v1 signature (`SignatureMethod`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureMethod {
    /// The default when `SignatureMethod` is absent.
    HmacSha1,
    HmacSha256,
}

impl SignatureMethod {
    /// `None` for names other than `HmacSHA1` and `HmacSHA256`.
    pub fn parse(name: &str) -> Option<SignatureMethod> {
        match name {
            "HmacSHA1" => Some(SignatureMethod::HmacSha1),
            "HmacSHA256" => Some(SignatureMethod::HmacSha256),
            _ => None,
        }
    }
}

/// The string that is signed: `METHOD + host + path + "?" + sorted name=value pairs`.
/// `Signature` itself is left out.
pub fn string_to_sign(method: &str, host: &str, path: &str, params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().filter(|(name, _)| name != "Signature").collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let joined: Vec<String> = sorted.iter().map(|(n, v)| format!("{n}={v}")).collect();
    format!("{method}{host}{path}?{}", joined.join("&"))
}

/// Base64 of the HMAC of `string_to_sign` with `secret_key`.
pub fn signature(secret_key: &str, string_to_sign: &str, method: SignatureMethod) -> String {
    let digest = match method {
        SignatureMethod::HmacSha1 => mac::<Hmac<sha1::Sha1>>(secret_key, string_to_sign),
        SignatureMethod::HmacSha256 => mac::<Hmac<sha2::Sha256>>(secret_key, string_to_sign),
    };
    base64::engine::general_purpose::STANDARD.encode(digest)
}

fn mac<M: Mac + hmac::digest::KeyInit>(key: &str, message: &str) -> Vec<u8> {
    // HMAC accepts keys of every length.
    match <M as hmac::digest::KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut m) => {
            m.update(message.as_bytes());
            m.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    /// Tencent's worked example ("Signature v1", cvm DescribeInstances). The published English
    /// page prints the result as `EliP9YW3pW28FpsEdkXt/+WcGel=`, a typo of the last letter (that
    /// string is not a valid Base64 of 20 bytes); the HMAC-SHA1 is `…WcGeI=`.
    #[test]
    fn published_example() {
        let params = pairs(&[
            ("Action", "DescribeInstances"),
            ("SecretId", "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"),
            ("Timestamp", "1465185768"),
            ("Nonce", "11886"),
            ("Region", "ap-guangzhou"),
            ("InstanceIds.0", "ins-09dx96dg"),
            ("Offset", "0"),
            ("Limit", "20"),
            ("Version", "2017-03-12"),
        ]);
        let s = string_to_sign("GET", "cvm.tencentcloudapi.com", "/", &params);
        assert_eq!(
            s,
            "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&Timestamp=1465185768&Version=2017-03-12"
        );
        assert_eq!(
            signature("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", &s, SignatureMethod::HmacSha1),
            "EliP9YW3pW28FpsEdkXt/+WcGeI="
        );
    }

    #[test]
    fn signature_parameter_is_not_signed() {
        let with = pairs(&[("Action", "A"), ("Signature", "x")]);
        let without = pairs(&[("Action", "A")]);
        assert_eq!(
            string_to_sign("POST", "h", "/", &with),
            string_to_sign("POST", "h", "/", &without)
        );
        assert_eq!(
            SignatureMethod::parse("HmacSHA256"),
            Some(SignatureMethod::HmacSha256)
        );
        assert_eq!(SignatureMethod::parse("hmacsha1"), None);
        assert_ne!(
            signature("k", "s", SignatureMethod::HmacSha1),
            signature("k", "s", SignatureMethod::HmacSha256)
        );
    }
}
