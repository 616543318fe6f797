//! Secrets at rest in the job store: a job's request (it holds the databases' passwords and any
//! TLS keys) is stored encrypted with ChaCha20-Poly1305 (ring) under a 256-bit key, with the
//! JobId as associated data (a ciphertext moved to another row does not open).
//!
//! The key comes from `FERRY_STORE_KEY` (64 hex digits or Base64 of 32 bytes) when set, else
//! from `DATA_DIR/store.key` (Base64, mode 0600), generated at the first start. Stored values
//! look like `ferry-enc:v1:BASE64(nonce ‖ ciphertext ‖ tag)`; anything else is plain text from
//! an earlier version (encrypted when the store is opened).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, CHACHA20_POLY1305, NONCE_LEN};
use ring::rand::{SecureRandom as _, SystemRandom};

use crate::error::ServiceError;

/// The environment variable that supplies the key.
pub const ENV_STORE_KEY: &str = "FERRY_STORE_KEY";
/// The key file in the data directory.
pub const KEY_FILE: &str = "store.key";
/// The prefix of an encrypted value.
pub const PREFIX: &str = "ferry-enc:v1:";

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Where the key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    Environment,
    File(PathBuf),
    /// Generated now into this file.
    Generated(PathBuf),
}

/// Encrypts and decrypts stored secrets.
pub struct Cipher {
    key: LessSafeKey,
    rng: SystemRandom,
    pub source: KeySource,
}

impl std::fmt::Debug for Cipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cipher")
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

fn parse_key(text: &str) -> Option<[u8; 32]> {
    let text = text.trim();
    let bytes = if text.len() == 64 && text.bytes().all(|b| b.is_ascii_hexdigit()) {
        (0..32)
            .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
            .collect::<Option<Vec<u8>>>()?
    } else {
        B64.decode(text).ok()?
    };
    bytes.try_into().ok()
}

impl Cipher {
    /// A cipher with this key.
    pub fn from_key(key: &[u8; 32], source: KeySource) -> Result<Cipher, ServiceError> {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .map_err(|_| ServiceError::Corrupt("the store key cannot be used".into()))?;
        Ok(Cipher {
            key: LessSafeKey::new(unbound),
            rng: SystemRandom::new(),
            source,
        })
    }

    /// The key of `env_value` (the value of `FERRY_STORE_KEY`) when given, else of
    /// `DIR/store.key`, generated (mode 0600) when absent.
    pub fn load(dir: &Path, env_value: Option<&str>) -> Result<Cipher, ServiceError> {
        let data_dir_err = |message: String| ServiceError::DataDir {
            path: dir.to_path_buf(),
            message,
        };
        if let Some(text) = env_value.filter(|v| !v.trim().is_empty()) {
            let key = parse_key(text).ok_or_else(|| {
                data_dir_err(format!(
                    "{ENV_STORE_KEY} is not a 256-bit key: give 64 hex digits or the Base64 of 32 bytes"
                ))
            })?;
            return Cipher::from_key(&key, KeySource::Environment);
        }
        let path = dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let key = parse_key(&text).ok_or_else(|| {
                    data_dir_err(format!(
                        "{KEY_FILE} does not hold a 256-bit key (Base64 of 32 bytes); restore it \
                         from a backup, or set {ENV_STORE_KEY}"
                    ))
                })?;
                Cipher::from_key(&key, KeySource::File(path))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; 32];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| data_dir_err("the operating system's random source failed".into()))?;
                write_private(&path, format!("{}\n", B64.encode(key)).as_bytes())
                    .map_err(|e| data_dir_err(format!("cannot write {KEY_FILE} with mode 0600: {e}")))?;
                Cipher::from_key(&key, KeySource::Generated(path))
            }
            Err(e) => Err(data_dir_err(format!("cannot read {KEY_FILE}: {e}"))),
        }
    }

    /// `PREFIX` + Base64(nonce ‖ ciphertext ‖ tag) of `plain`, bound to `aad`.
    pub fn encrypt(&self, plain: &str, aad: &str) -> Result<String, ServiceError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.rng
            .fill(&mut nonce)
            .map_err(|_| ServiceError::Corrupt("the operating system's random source failed".into()))?;
        let mut data = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad.as_bytes()),
                &mut data,
            )
            .map_err(|_| ServiceError::Corrupt("encrypting a stored secret failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", B64.encode(out)))
    }

    /// The plain text of a stored value (`None` when it is not encrypted).
    pub fn decrypt(&self, stored: &str, aad: &str) -> Result<Option<String>, ServiceError> {
        let Some(encoded) = stored.strip_prefix(PREFIX) else {
            return Ok(None);
        };
        let wrong = || {
            ServiceError::Corrupt(format!(
                "a stored secret does not decrypt with the store key ({}): set {ENV_STORE_KEY} to \
                 the key ferry.db was written with, or restore {KEY_FILE} of the data directory",
                self.describe_source()
            ))
        };
        let bytes = B64.decode(encoded).map_err(|_| wrong())?;
        if bytes.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut sealed = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut sealed)
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map(Some).map_err(|_| wrong())
    }

    fn describe_source(&self) -> String {
        match &self.source {
            KeySource::Environment => ENV_STORE_KEY.to_string(),
            KeySource::File(p) | KeySource::Generated(p) => p.display().to_string(),
        }
    }
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_binding_and_keys() {
        let c = Cipher::from_key(&[7u8; 32], KeySource::Environment).unwrap();
        // The secret contains '-', which the sealed form's alphabet never does, so
        // the check cannot fail by chance (a short secret like "pw" can appear in
        // random base64).
        let plain = "{\"Password\":\"secret-Pw-7777\"}";
        let sealed = c.encrypt(plain, "dts-1").unwrap();
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("secret-Pw-7777"));
        assert_ne!(sealed, c.encrypt(plain, "dts-1").unwrap(), "fresh nonces");
        assert_eq!(c.decrypt(&sealed, "dts-1").unwrap().as_deref(), Some(plain));
        assert!(c.decrypt(&sealed, "dts-2").is_err(), "bound to its row");
        assert_eq!(c.decrypt("{\"plain\":1}", "dts-1").unwrap(), None);
        let other = Cipher::from_key(&[8u8; 32], KeySource::Environment).unwrap();
        let e = other.decrypt(&sealed, "dts-1").unwrap_err().to_string();
        assert!(e.contains(ENV_STORE_KEY), "{e}");
        assert_eq!(parse_key(&"ab".repeat(32)), Some([0xab; 32]));
        assert_eq!(parse_key(&B64.encode([3u8; 32])), Some([3; 32]));
        assert_eq!(parse_key("short"), None);
    }
}
