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
