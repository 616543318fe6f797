//! The HTTPS listener's TLS settings: the PEM certificate chain and private key of `[tls]`, served
//! with rustls and its ring provider.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsConfig;
use crate::error::Error;

/// The rustls server configuration for `[tls]`.
pub fn server_config(tls: &TlsConfig) -> Result<Arc<rustls::ServerConfig>, Error> {
    let certs = read_certs(&tls.cert)?;
    let key = PrivateKeyDer::from_pem_file(&tls.key).map_err(|e| Error::Tls {
        message: format!(
            "tls.key {}: no PEM private key could be read ({e}); give a PEM file with a \
             PRIVATE KEY block",
            tls.key.display()
        ),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls {
            message: format!("the TLS protocol versions cannot be set up: {e}"),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| Error::Tls {
            message: format!(
                "tls.cert {} and tls.key {} do not make a usable pair: {e}",
                tls.cert.display(),
                tls.key.display()
            ),
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The certificates of a PEM file.
pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let bad = |message: String| Error::Tls {
        message: format!("tls.cert {}: {message}", path.display()),
    };
    let iter = CertificateDer::pem_file_iter(path)
        .map_err(|e| bad(format!("cannot be read ({e}); give a PEM certificate chain")))?;
    let certs: Vec<CertificateDer<'static>> = iter
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("is not valid PEM ({e})")))?;
    if certs.is_empty() {
        return Err(bad(
            "holds no CERTIFICATE block; give a PEM certificate chain".to_string()
        ));
    }
    Ok(certs)
}

/// The directory of the generated certificate inside the data directory.
pub const GENERATED_DIR: &str = "tls";
/// The generated certificate's file name in [`GENERATED_DIR`].
pub const GENERATED_CERT: &str = "cert.pem";
/// The generated private key's file name in [`GENERATED_DIR`] (mode 0600).
pub const GENERATED_KEY: &str = "key.pem";

/// The certificate of `DATA_DIR/tls/`, generated (self-signed, for `localhost`, the loopback
/// addresses, the listen address when it is a specific one, and the host name) when absent, and
/// whether it was generated now.
pub fn ensure_self_signed(data_dir: &Path, listen: std::net::SocketAddr) -> Result<(TlsConfig, bool), Error> {
    use std::io::Write as _;
    use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
    let dir = data_dir.join(GENERATED_DIR);
    let config = TlsConfig {
        cert: dir.join(GENERATED_CERT),
        key: dir.join(GENERATED_KEY),
    };
    if config.cert.exists() && config.key.exists() {
        return Ok((config, false));
    }
    let bad = |message: String| Error::Tls {
        message: format!("the generated certificate in {}: {message}", dir.display()),
    };
    let mut names = vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ];
    if !listen.ip().is_unspecified() && !listen.ip().is_loopback() {
        names.push(listen.ip().to_string());
    }
    if let Ok(host) = std::fs::read_to_string("/proc/sys/kernel/hostname") {
        let host = host.trim().to_ascii_lowercase();
        if !host.is_empty() && !names.contains(&host) {
            names.push(host);
        }
    }
    let generated =
        rcgen::generate_simple_self_signed(names).map_err(|e| bad(format!("cannot be generated: {e}")))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .map_err(|e| bad(format!("cannot create the directory: {e}")))?;
    let write = |path: &Path, text: &str, mode: u32| -> std::io::Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()
    };
    write(&config.key, &generated.signing_key.serialize_pem(), 0o600)
        .map_err(|e| bad(format!("cannot write {GENERATED_KEY}: {e}")))?;
    write(&config.cert, &generated.cert.pem(), 0o644)
        .map_err(|e| bad(format!("cannot write {GENERATED_CERT}: {e}")))?;
    Ok((config, true))
}

/// The SHA-256 fingerprint of the first certificate of a PEM file, as `AB:CD:…` (32 pairs).
pub fn fingerprint(cert_path: &Path) -> Result<String, Error> {
    let certs = read_certs(cert_path)?;
    Ok(format_fingerprint(&sha256(certs[0].as_ref())))
}

/// SHA-256 of `der`.
pub fn sha256(der: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(der).into()
}

/// `AB:CD:…`.
pub fn format_fingerprint(digest: &[u8; 32]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// A fingerprint as given by a person (hex, any case, with or without `:`), or `None`.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text.trim().chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_certificate_is_kept_and_its_fingerprint_parses() {
        let dir = std::env::temp_dir().join(format!("ferry-tls-gen-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let listen = "10.1.2.3:8443".parse().unwrap();
        let (config, generated) = ensure_self_signed(&dir, listen).unwrap();
        assert!(generated);
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&config.key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let fp = fingerprint(&config.cert).unwrap();
        assert_eq!(fp.len(), 95);
        assert_eq!(
            parse_fingerprint(&fp),
            parse_fingerprint(&fp.replace(':', "").to_lowercase())
        );
        assert!(parse_fingerprint("AB:CD").is_none());
        let (again, generated) = ensure_self_signed(&dir, listen).unwrap();
        assert!(!generated);
        assert_eq!(fingerprint(&again.cert).unwrap(), fp, "kept across starts");
        server_config(&again).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }
}
