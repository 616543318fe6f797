//! TLS to a server: the mode (what `mysql --ssl-mode` means), the CA, the client certificate, and
//! how they become mysql_async's rustls `SslOpts`.
//!
//! | Mode | Encrypted | Certificate chain checked | Host name checked | Server without TLS |
//! |---|---|---|---|---|
//! | `disabled` | no | – | – | plain |
//! | `preferred` (default) | when the server offers TLS | no | no | plain |
//! | `required` | yes | no | no | definite error |
//! | `verify_ca` | yes | yes (`Ca`/`CaFile`, else the public web roots) | no | definite error |
//! | `verify_identity` | yes | yes | yes (the host Ferry connects to) | definite error |
//!
//! How two of them are done with mysql_async 0.37 (rustls):
//! - `preferred`: mysql_async either demands TLS or never uses it, so Ferry reads the server's
//!   greeting first (a TCP connection that is closed right after the greeting, [`probe`]) and uses
//!   TLS when its capability flags offer `CLIENT_SSL`, as the mysql client does. The answer is
//!   cached per host, port and settings for [`PROBE_TTL`].
//! - `verify_ca`: mysql_async's "skip domain validation" does not work with the rustls version in
//!   use (it matches the text `NotValidForName`, which rustls 0.23 no longer prints). Ferry
//!   therefore probes the server's certificate once with the configured roots; when the chain is
//!   trusted and only the name differs, the real connections verify the certificate fully against
//!   one of the names the certificate itself lists (`tls_hostname_override`). The chain is always
//!   checked by the real connection.
//!
//! Client certificates (`Cert`/`Key`) are PEM (PKCS#1, PKCS#8 or SEC1 keys), as rustls takes them;
//! PKCS#12 bundles are not supported. The key is a [`Secret`]: never printed or serialized.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use mysql_async::{ClientIdentity, SslOpts};

use crate::endpoint::Secret;

/// How long a probe's answer (does the server offer TLS, which name to verify) is reused.
pub const PROBE_TTL: Duration = Duration::from_secs(60);

/// `mysql --ssl-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TlsMode {
    /// Never TLS.
    Disabled,
    /// TLS when the server offers it, without verification; plain otherwise.
    #[default]
    Preferred,
    /// TLS, without verification; a server without TLS is an error.
    Required,
    /// TLS, the certificate chain verified.
    VerifyCa,
    /// TLS, the certificate chain and the host name verified.
    VerifyIdentity,
}

impl TlsMode {
    /// All modes with their names.
    pub const ALL: [(&'static str, TlsMode); 5] = [
        ("disabled", TlsMode::Disabled),
        ("preferred", TlsMode::Preferred),
        ("required", TlsMode::Required),
        ("verify_ca", TlsMode::VerifyCa),
        ("verify_identity", TlsMode::VerifyIdentity),
    ];

    /// Parses a name (case-insensitive; `-` for `_` accepted, as `mysql --ssl-mode=VERIFY-CA` is
    /// sometimes written).
    pub fn parse(s: &str) -> Option<TlsMode> {
        let s = s.trim().replace('-', "_");
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&s))
            .map(|(_, m)| *m)
    }

    /// The name.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map(|(n, _)| *n)
            .unwrap_or("preferred")
    }

    /// True for the modes that fail when the server has no TLS.
    pub fn demands_tls(self) -> bool {
        matches!(
            self,
            TlsMode::Required | TlsMode::VerifyCa | TlsMode::VerifyIdentity
        )
    }
}

/// A certificate given inline (PEM text) or as a file path.
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum Pem {
    /// PEM text.
    Text(String),
    /// A file holding PEM (or DER).
    File(PathBuf),
}

impl std::fmt::Debug for Pem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Pem::Text(_) => f.write_str("Pem(<inline>)"),
            Pem::File(p) => write!(f, "Pem({})", p.display()),
        }
    }
}

impl Pem {
    /// mysql_async's `PathOrBuf` (which it does not re-export).
    fn path_or_buf<T: From<Vec<u8>> + From<PathBuf>>(&self) -> T {
        match self {
            Pem::Text(t) => t.as_bytes().to_vec().into(),
            Pem::File(p) => p.clone().into(),
        }
    }

    fn bytes(&self) -> std::io::Result<Vec<u8>> {
        match self {
            Pem::Text(t) => Ok(t.as_bytes().to_vec()),
            Pem::File(p) => std::fs::read(p),
        }
    }
}

/// A private key given inline (a [`Secret`]) or as a file path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KeyPem {
    /// PEM text, secret.
    Text(Secret),
    /// A file holding the key.
    File(PathBuf),
}

/// The TLS settings of one endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct TlsConfig {
    /// The mode.
    pub mode: TlsMode,
    /// The CA certificate(s) to trust; none: the public web roots.
    pub ca: Option<Pem>,
    /// The client certificate (chain), for accounts that `REQUIRE X509` / `SUBJECT` / `ISSUER`.
    pub cert: Option<Pem>,
    /// The client certificate's private key.
    pub key: Option<KeyPem>,
    /// The job field that holds these settings (`Ferry.SourceTls`, `Ferry.TargetTls`), for
    /// messages; empty: "the TLS settings".
    pub field: String,
}

impl TlsConfig {
    /// Settings with a mode and nothing else.
    pub fn mode(mode: TlsMode) -> Self {
        TlsConfig {
            mode,
            ..TlsConfig::default()
        }
    }

    /// The field name for messages.
    pub fn field_name(&self) -> &str {
        if self.field.is_empty() {
            "the TLS settings"
        } else {
            &self.field
        }
    }

    /// Does a connection need the server's greeting or certificate before it can be configured?
    fn needs_probe(&self) -> bool {
        matches!(self.mode, TlsMode::Preferred | TlsMode::VerifyCa)
    }

    /// The mysql_async TLS options for a connection to `host`, given what the probe learned.
    pub fn ssl_opts(&self, probe: Option<&Probe>) -> Option<SslOpts> {
        let base = || {
            let mut o = SslOpts::default();
            if let Some(ca) = &self.ca {
                o = o
                    .with_root_certs(vec![ca.path_or_buf()])
                    .with_disable_built_in_roots(true);
            }
            if let (Some(cert), Some(key)) = (&self.cert, &self.key) {
                let key = match key {
                    KeyPem::Text(s) => s.expose().as_bytes().to_vec().into(),
                    KeyPem::File(p) => p.clone().into(),
                };
                o = o.with_client_identity(Some(ClientIdentity::new(cert.path_or_buf(), key)));
            }
            o
        };
        match self.mode {
            TlsMode::Disabled => None,
            TlsMode::Preferred => match probe {
                Some(p) if p.offers_tls => Some(base().with_danger_accept_invalid_certs(true)),
                _ => None,
            },
            TlsMode::Required => Some(base().with_danger_accept_invalid_certs(true)),
            TlsMode::VerifyCa => {
                Some(base().with_danger_tls_hostname_override(probe.and_then(|p| p.verify_name.clone())))
            }
            TlsMode::VerifyIdentity => Some(base()),
        }
    }
}

/// What Ferry learned from a server before connecting.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Probe {
    /// The greeting offers `CLIENT_SSL`.
    pub offers_tls: bool,
    /// `verify_ca`: a name the (trusted) certificate lists, to verify against instead of the host.
    pub verify_name: Option<String>,
}

type CacheKey = (String, u16, TlsConfig);

fn cache() -> &'static Mutex<HashMap<CacheKey, (Probe, Instant)>> {
    static CACHE: OnceLock<Mutex<HashMap<CacheKey, (Probe, Instant)>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// The cached probe for a server, if fresh.
pub fn cached_probe(host: &str, port: u16, cfg: &TlsConfig) -> Option<Probe> {
    if !cfg.needs_probe() {
        return Some(Probe::default());
    }
    let key = (host.to_string(), port, cfg.clone());
    let c = cache().lock().ok()?;
    c.get(&key)
        .filter(|(_, at)| at.elapsed() < PROBE_TTL)
        .map(|(p, _)| p.clone())
}

/// Probes the server (blocking: TCP connect, greeting, for `verify_ca` a TLS handshake) when the
/// settings need it and no fresh answer is cached. A failed probe caches nothing and returns
/// `None`: the real connection then reports why the server cannot be reached.
pub fn probe_blocking(host: &str, port: u16, timeout: Duration, cfg: &TlsConfig) -> Option<Probe> {
    if let Some(p) = cached_probe(host, port, cfg) {
        return Some(p);
    }
    let p = probe(host, port, timeout, cfg).ok()?;
    if let Ok(mut c) = cache().lock() {
        c.retain(|_, (_, at)| at.elapsed() < PROBE_TTL);
        c.insert((host.to_string(), port, cfg.clone()), (p.clone(), Instant::now()));
    }
    Some(p)
}

/// [`probe_blocking`] on a blocking thread.
pub async fn probe_async(host: &str, port: u16, timeout: Duration, cfg: &TlsConfig) -> Option<Probe> {
    if let Some(p) = cached_probe(host, port, cfg) {
        return Some(p);
    }
    let (h, c) = (host.to_string(), cfg.clone());
    tokio::task::spawn_blocking(move || probe_blocking(&h, port, timeout, &c))
        .await
        .ok()
        .flatten()
}

/// Forgets cached probe answers for a server (after a failure that may mean its TLS changed).
pub fn forget_probe(host: &str, port: u16) {
    if let Ok(mut c) = cache().lock() {
        c.retain(|(h, p, _), _| !(h == host && *p == port));
    }
}

const CLIENT_SSL: u32 = 0x0800;

/// Reads the server's greeting and, for `verify_ca`, its certificate.
fn probe(host: &str, port: u16, timeout: Duration, cfg: &TlsConfig) -> std::io::Result<Probe> {
    let timeout = if timeout.is_zero() {
        Duration::from_secs(10)
    } else {
        timeout
    };
    let mut last = None;
    let mut stream = None;
    for addr in (host, port).to_socket_addrs()? {
        match TcpStream::connect_timeout(&addr, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = Some(e),
        }
    }
    let mut s = match stream {
        Some(s) => s,
        None => {
            return Err(last.unwrap_or_else(|| {
                std::io::Error::new(std::io::ErrorKind::NotFound, "the host name has no address")
            }))
        }
    };
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let greeting = read_packet(&mut s)?;
    let caps = greeting_capabilities(&greeting).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "the server's greeting is not a MySQL protocol 10 handshake",
        )
    })?;
    let offers_tls = caps & CLIENT_SSL != 0;
    let mut probe = Probe {
        offers_tls,
        verify_name: None,
    };
    if cfg.mode == TlsMode::VerifyCa && offers_tls {
        probe.verify_name = certificate_name_for_verify_ca(&mut s, host, cfg);
    }
    Ok(probe)
}

fn read_packet(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h)?;
    let n = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    let mut b = vec![0u8; n];
    s.read_exact(&mut b)?;
    Ok(b)
}

/// The capability flags of a protocol 10 greeting; `None` for an error packet or anything else.
pub fn greeting_capabilities(p: &[u8]) -> Option<u32> {
    if p.first() != Some(&10) {
        return None;
    }
    let nul = p[1..].iter().position(|&b| b == 0)? + 1;
    // version\0, connection id (4), auth data part 1 (8), filler (1), capabilities low (2),
    // charset (1), status (2), capabilities high (2)
    let low_at = nul + 1 + 4 + 8 + 1;
    let low = u32::from(*p.get(low_at)?) | u32::from(*p.get(low_at + 1)?) << 8;
    let high = match (p.get(low_at + 5), p.get(low_at + 6)) {
        (Some(a), Some(b)) => u32::from(*a) | u32::from(*b) << 8,
        _ => 0,
    };
    Some(low | high << 16)
}

/// Sends an SSLRequest, handshakes with the configured roots and, when the chain is trusted but
/// the certificate does not name `host`, returns a name it does list.
fn certificate_name_for_verify_ca(s: &mut TcpStream, host: &str, cfg: &TlsConfig) -> Option<String> {
    use rustls::pki_types::{pem::PemObject, CertificateDer, ServerName};

    // SSLRequest: CLIENT_LONG_PASSWORD | CLIENT_PROTOCOL_41 | CLIENT_SSL | CLIENT_SECURE_CONNECTION
    let caps: u32 = 0x0001 | 0x0200 | CLIENT_SSL | 0x8000;
    let mut body = Vec::with_capacity(32);
    body.extend_from_slice(&caps.to_le_bytes());
    body.extend_from_slice(&(16u32 << 20).to_le_bytes());
    body.push(45); // utf8mb4_general_ci
    body.extend_from_slice(&[0u8; 23]);
    let mut packet = vec![32u8, 0, 0, 1];
    packet.extend_from_slice(&body);
    s.write_all(&packet).ok()?;

    let mut roots = rustls::RootCertStore::empty();
    match &cfg.ca {
        Some(ca) => {
            let bytes = ca.bytes().ok()?;
            let mut seen = false;
            for c in CertificateDer::pem_slice_iter(&bytes).flatten() {
                seen = true;
                let _ = roots.add(c);
            }
            if !seen {
                let _ = roots.add(CertificateDer::from(bytes));
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let inner =
        rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .ok()?;
    let seen = Arc::new(Mutex::new(None));
    let verifier = Arc::new(NameRecorder {
        inner,
        names: seen.clone(),
    });
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ok()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_string()).ok()?;
    let mut conn = rustls::ClientConnection::new(Arc::new(config), name).ok()?;
    // The handshake ends at the verifier (it refuses, so nothing is sent after it).
    while conn.is_handshaking() {
        if conn.complete_io(s).is_err() {
            break;
        }
    }
    let names = seen.lock().ok()?.take()?;
    names.into_iter().find_map(|n| usable_name(&n))
}

/// A name from rustls-webpki's "presented" list (`DnsName("db.example")`, `IpAddress(10.0.0.1)`)
/// that can be verified against; a wildcard gets a label of Ferry's.
fn usable_name(presented: &str) -> Option<String> {
    if let Some(rest) = presented.strip_prefix("DnsName(\"") {
        let n = rest.strip_suffix("\")")?;
        if let Some(base) = n.strip_prefix("*.") {
            return Some(format!("ferry-verify-ca.{base}"));
        }
        return Some(n.to_string());
    }
    let ip = presented.strip_prefix("IpAddress(")?.strip_suffix(')')?;
    ip.parse::<std::net::IpAddr>().ok().map(|a| a.to_string())
}

#[derive(Debug)]
struct NameRecorder {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    names: Arc<Mutex<Option<Vec<String>>>>,
}

impl rustls::client::danger::ServerCertVerifier for NameRecorder {
    fn verify_server_cert(
        &self,
        end_entity: &rustls::pki_types::CertificateDer<'_>,
        intermediates: &[rustls::pki_types::CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        let r = self
            .inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now);
        if let Err(rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForNameContext {
            presented,
            ..
        })) = &r
        {
            if let Ok(mut n) = self.names.lock() {
                *n = Some(presented.clone());
            }
        }
        // Always refuse: the probe only looks at the certificate.
        Err(rustls::Error::General("probe only".into()))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// A person's explanation of a connection failure that comes from TLS, naming the side, the cause
/// and the fix; `None` when the error has nothing to do with TLS.
pub fn explain(err: &mysql_async::Error, side: &str, host: &str, cfg: &TlsConfig) -> Option<String> {
    use mysql_async::{DriverError, Error as E, IoError};
    let field = cfg.field_name();
    let mode = cfg.mode.as_str();
    match err {
        E::Driver(DriverError::NoClientSslFlagFromServer) => Some(format!(
            "the {side} server does not offer TLS, but {field}.Mode is {mode}: enable TLS on the \
             server (ssl_cert and ssl_key, then restart it), or set {field}.Mode to preferred or \
             disabled to connect without encryption"
        )),
        E::Io(IoError::Tls(e)) => Some(format!(
            "the TLS settings of the {side} are unusable ({e}): check {field}.Ca/CaFile, .Cert/CertFile \
             and .Key/KeyFile (PEM; the key PKCS#1, PKCS#8 or SEC1)"
        )),
        E::Io(IoError::Io(e)) => {
            let inner = e.get_ref()?.downcast_ref::<rustls::Error>()?;
            Some(explain_rustls(inner, side, host, cfg))
        }
        E::Driver(DriverError::NoKeyFound) => Some(format!(
            "{field}.Key/KeyFile holds no private key (PEM: BEGIN PRIVATE KEY, BEGIN RSA PRIVATE KEY \
             or BEGIN EC PRIVATE KEY)"
        )),
        _ => None,
    }
}

fn explain_rustls(e: &rustls::Error, side: &str, host: &str, cfg: &TlsConfig) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let field = cfg.field_name();
    match e {
        R::InvalidCertificate(C::UnknownIssuer) => format!(
            "the {side} server's certificate is not signed by a trusted CA (unknown issuer): put the CA \
             that signed it in {field}.Ca (PEM) or {field}.CaFile, or set {field}.Mode to required to \
             encrypt without verifying the certificate"
        ),
        R::InvalidCertificate(C::NotValidForNameContext { expected, presented }) => format!(
            "the {side} server's certificate is not valid for the name Ferry connects to ({host}; \
             expected {expected:?}, the certificate lists {}): connect by a name the certificate \
             lists, or set {field}.Mode to verify_ca to check only the CA",
            presented.join(", ")
        ),
        R::InvalidCertificate(C::NotValidForName) => format!(
            "the {side} server's certificate is not valid for {host}: connect by a name the \
             certificate lists, or set {field}.Mode to verify_ca to check only the CA"
        ),
        R::InvalidCertificate(c) => format!(
            "the {side} server's certificate was refused ({c}): renew or fix the server's \
             certificate, or change {field}"
        ),
        R::AlertReceived(
            A::CertificateRequired
            | A::HandshakeFailure
            | A::BadCertificate
            | A::UnknownCA
            | A::CertificateUnknown,
        ) => format!(
            "the {side} server refused the TLS handshake ({e}): if the account requires a client \
             certificate (REQUIRE X509 / SUBJECT / ISSUER), give it in {field}.Cert/CertFile and \
             {field}.Key/KeyFile, signed by a CA the server trusts (ssl_ca)"
        ),
        other => format!("the TLS handshake with the {side} failed ({other}); check {field}"),
    }
}

/// True when a connection error is a TLS failure that retrying cannot fix (a certificate refused,
/// a server without TLS under a mode that demands it, unusable TLS material).
pub fn is_definite_tls_failure(err: &mysql_async::Error) -> bool {
    use mysql_async::{DriverError, Error as E, IoError};
    match err {
        E::Driver(DriverError::NoClientSslFlagFromServer | DriverError::NoKeyFound) => true,
        E::Io(IoError::Tls(_)) => true,
        E::Io(IoError::Io(e)) => e
            .get_ref()
            .and_then(|i| i.downcast_ref::<rustls::Error>())
            .is_some_and(|r| {
                matches!(
                    r,
                    rustls::Error::InvalidCertificate(_)
                        | rustls::Error::AlertReceived(_)
                        | rustls::Error::NoCertificatesPresented
                        | rustls::Error::PeerIncompatible(_)
                )
            }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modes_parse_like_ssl_mode() {
        assert_eq!(TlsMode::parse("VERIFY-CA"), Some(TlsMode::VerifyCa));
        assert_eq!(TlsMode::parse("verify_identity"), Some(TlsMode::VerifyIdentity));
        assert_eq!(TlsMode::parse("off"), None);
        for (n, m) in TlsMode::ALL {
            assert_eq!(m.as_str(), n);
        }
    }

    #[test]
    fn greeting_capabilities_parse() {
        let mut h = vec![10u8];
        h.extend_from_slice(b"10.11.6-MariaDB\0");
        h.extend_from_slice(&1u32.to_le_bytes());
        h.extend_from_slice(b"abcdefgh\0");
        h.extend_from_slice(&0xf7ffu16.to_le_bytes());
        h.push(45);
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&0x81ffu16.to_le_bytes());
        let caps = greeting_capabilities(&h).expect("caps");
        assert_eq!(caps & CLIENT_SSL, 0);
        assert_eq!(caps >> 16, 0x81ff);
        let at = h.len() - 6;
        h[at] |= 0x08;
        let caps = greeting_capabilities(&h).expect("caps");
        assert_ne!(caps & CLIENT_SSL, 0);
        assert_eq!(greeting_capabilities(&[0xff, 1, 2]), None);
    }

    #[test]
    fn presented_names_become_verifiable_names() {
        assert_eq!(
            usable_name("DnsName(\"db.example\")").as_deref(),
            Some("db.example")
        );
        assert_eq!(
            usable_name("DnsName(\"*.example.net\")").as_deref(),
            Some("ferry-verify-ca.example.net")
        );
        assert_eq!(usable_name("IpAddress(10.1.2.3)").as_deref(), Some("10.1.2.3"));
        assert_eq!(usable_name("DirectoryName"), None);
    }

    #[test]
    fn keys_never_print() {
        let c = TlsConfig {
            key: Some(KeyPem::Text(Secret::new("-----BEGIN PRIVATE KEY----- hunter2"))),
            cert: Some(Pem::Text("CERT".into())),
            ..TlsConfig::default()
        };
        let d = format!("{c:?}");
        assert!(!d.contains("hunter2") && !d.contains("CERT"), "{d}");
    }
}
