//! API key pairs: the store the server checks signatures against, and the pair generated into
//! `DATA_DIR/credentials.toml` (mode 0600, data directory 0700) when none is configured. Secret
//! keys never appear in `Debug` output, logs or messages.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::error::Error;

/// The generated credentials file's name inside the data directory.
pub const CREDENTIALS_FILE: &str = "credentials.toml";

/// A SecretId and its SecretKey.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyPair {
    pub secret_id: String,
    pub secret_key: String,
}

impl fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyPair")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<hidden>")
            .finish()
    }
}

impl KeyPair {
    /// A new random pair: `AKID` + 32 letters and digits, and a 40-character key (from the
    /// operating system's random source).
    pub fn generate() -> Result<KeyPair, Error> {
        Ok(KeyPair {
            secret_id: format!("AKID{}", random_alphanumeric(32)?),
            secret_key: random_alphanumeric(40)?,
        })
    }
}

fn random_alphanumeric(len: usize) -> Result<String, Error> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        getrandom::fill(&mut buf).map_err(|e| Error::Random(e.to_string()))?;
        // 62 * 4 = 248: bytes at or above it are dropped so every character is equally likely.
        for b in buf {
            if out.len() < len && b < 248 {
                out.push(char::from(ALPHABET[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// The key pairs the server accepts.
#[derive(Clone, Default)]
pub struct CredentialStore {
    keys: Arc<HashMap<String, String>>,
}

impl fmt::Debug for CredentialStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialStore")
            .field("secret_ids", &self.secret_ids())
            .finish()
    }
}

impl CredentialStore {
    pub fn new(pairs: impl IntoIterator<Item = KeyPair>) -> CredentialStore {
        CredentialStore {
            keys: Arc::new(pairs.into_iter().map(|p| (p.secret_id, p.secret_key)).collect()),
        }
    }

    /// The SecretKey of `secret_id`.
    pub fn secret_key(&self, secret_id: &str) -> Option<&str> {
        self.keys.get(secret_id).map(String::as_str)
    }

    /// The SecretIds, sorted.
    pub fn secret_ids(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = self.keys.keys().map(String::as_str).collect();
        ids.sort_unstable();
        ids
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Creates the data directory (mode 0700, parents too) when it does not exist.
pub fn ensure_data_dir(dir: &Path) -> Result<(), Error> {
    match std::fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => return Ok(()),
        Ok(_) => {
            return Err(Error::DataDir {
                path: dir.to_path_buf(),
                message: "exists but is not a directory; choose another with --data-dir or \
                          data_dir in the config file"
                    .to_string(),
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::DataDir {
                path: dir.to_path_buf(),
                message: format!(
                    "cannot be read: {e}; check its permissions or choose another with --data-dir"
                ),
            })
        }
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| Error::DataDir {
            path: dir.to_path_buf(),
            message: format!("cannot be created: {e}; create it yourself or choose another with --data-dir"),
        })
}

/// Reads a credentials file (`secret_id = "…"`, `secret_key = "…"`).
pub fn read_credentials_file(path: &Path) -> Result<KeyPair, Error> {
    let bad = |message: String| Error::CredentialsFile {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| bad(format!("cannot be read: {e}; check its permissions")))?;
    let pair: KeyPair = toml::from_str(&text).map_err(|e| {
        bad(format!(
            "{}; it must hold secret_id = \"…\" and secret_key = \"…\" (delete it to generate a new pair)",
            e.to_string().trim_end()
        ))
    })?;
    if pair.secret_id.is_empty() || pair.secret_key.is_empty() {
        return Err(bad(
            "secret_id and secret_key must not be empty (delete the file to generate a new pair)".to_string(),
        ));
    }
    if let Ok(meta) = std::fs::metadata(path) {
        if meta.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                path = %path.display(),
                "the credentials file can be read by other users; run chmod 600 on it"
            );
        }
    }
    Ok(pair)
}

/// The data directory's key pair: read from `DATA_DIR/credentials.toml`, or generated into it
/// (mode 0600) when absent. The flag is `true` when it was generated now.
pub fn load_or_generate(data_dir: &Path) -> Result<(KeyPair, PathBuf, bool), Error> {
    ensure_data_dir(data_dir)?;
    let path = data_dir.join(CREDENTIALS_FILE);
    if path.exists() {
        return Ok((read_credentials_file(&path)?, path, false));
    }
    let pair = KeyPair::generate()?;
    let text = format!(
        "# Ferry API key pair, generated by `ferry serve`. Keep it secret: it signs API calls.\n\
         secret_id = \"{}\"\nsecret_key = \"{}\"\n",
        pair.secret_id, pair.secret_key
    );
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
    {
        Ok(file) => file,
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Ok((read_credentials_file(&path)?, path, false));
        }
        Err(e) => {
            return Err(Error::CredentialsFile {
                path,
                message: format!("cannot be created: {e}; check the data directory's permissions"),
            })
        }
    };
    let written = file.write_all(text.as_bytes()).and_then(|()| file.sync_all());
    if let Err(e) = written {
        let _ = std::fs::remove_file(&path);
        return Err(Error::CredentialsFile {
            path,
            message: format!("cannot be written: {e}"),
        });
    }
    Ok((pair, path, true))
}

/// Where the server's credentials came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialSource {
    /// `[[credentials]]` in the config file and/or `FERRY_SECRET_ID`/`FERRY_SECRET_KEY`.
    Configured,
    /// `DATA_DIR/credentials.toml`, generated by an earlier start.
    DataDir(PathBuf),
    /// `DATA_DIR/credentials.toml`, generated now.
    Generated { path: PathBuf, secret_id: String },
}

/// The server's credentials: the configured pairs (config file, then the environment's pair),
/// or, when there are none, the data directory's pair (generated when absent).
pub fn resolve(
    configured: &[KeyPair],
    from_env: Option<KeyPair>,
    data_dir: &Path,
) -> Result<(CredentialStore, CredentialSource), Error> {
    let mut pairs: Vec<KeyPair> = configured.to_vec();
    pairs.extend(from_env);
    if !pairs.is_empty() {
        return Ok((CredentialStore::new(pairs), CredentialSource::Configured));
    }
    let (pair, path, generated) = load_or_generate(data_dir)?;
    let source = if generated {
        CredentialSource::Generated {
            path,
            secret_id: pair.secret_id.clone(),
        }
    } else {
        CredentialSource::DataDir(path)
    };
    Ok((CredentialStore::new([pair]), source))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_pairs_look_like_tencent_keys_and_differ() {
        let a = KeyPair::generate().unwrap();
        let b = KeyPair::generate().unwrap();
        assert!(a.secret_id.starts_with("AKID") && a.secret_id.len() == 36);
        assert_eq!(a.secret_key.len(), 40);
        assert!(a.secret_key.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_ne!(a, b);
        assert!(!format!("{a:?}").contains(&a.secret_key));
    }
}
