//! Connectivity items: can Ferry log in to the source and the target, and if not, why.
//!
//! A failed login is classified ([`classify`]) into the cases a person fixes differently: nothing
//! listens (refused), no answer (timeout / unreachable), unknown host name, wrong password (1045),
//! account locked (MySQL 3118, MariaDB 4151), TLS required (MySQL 3159, "requires SSL"), host not
//! allowed (1130) or blocked (1129), too many connections, expired password.

use std::io::ErrorKind as IoKind;

use ferry_core::Endpoint;
use mysql_async::{Error, IoError};

use crate::facts::ConnInfo;
use crate::{Ctx, Skip, Verdict};

/// Why a login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConnectFailure {
    /// No answer within the connect timeout.
    Timeout { secs: u64 },
    /// TCP connection refused.
    Refused,
    /// Network or host unreachable, or the TCP connect timed out in the kernel.
    Unreachable(String),
    /// The host name does not resolve.
    UnknownHost(String),
    /// 1045: wrong password, unknown account, or an account that REQUIRE SSL/X509 (MySQL and MariaDB).
    AccessDenied(String),
    /// 3118 (MySQL) / 4151 (MariaDB).
    Locked(u16),
    /// 3159 or a "requires SSL" message.
    TlsRequired(String),
    /// 1130.
    HostNotAllowed(String),
    /// 1129.
    HostBlocked,
    /// 1040 / 1203.
    TooManyConnections(u16),
    /// 1820 / 1862.
    PasswordExpired,
    /// The TLS layer failed.
    Tls(String),
    /// Anything else.
    Other(String),
}

/// Classifies a connection error.
pub(crate) fn classify(err: &Error) -> ConnectFailure {
    match err {
        Error::Io(IoError::Io(e)) => {
            let text = e.to_string();
            let lower = text.to_ascii_lowercase();
            if lower.contains("lookup")
                || lower.contains("name or service not known")
                || lower.contains("nodename nor servname")
                || lower.contains("no such host")
                || lower.contains("temporary failure in name resolution")
            {
                return ConnectFailure::UnknownHost(text);
            }
            match e.kind() {
                IoKind::ConnectionRefused => ConnectFailure::Refused,
                IoKind::TimedOut | IoKind::HostUnreachable | IoKind::NetworkUnreachable => {
                    ConnectFailure::Unreachable(text)
                }
                _ => ConnectFailure::Other(text),
            }
        }
        Error::Io(IoError::Tls(e)) => ConnectFailure::Tls(e.to_string()),
        Error::Server(s) => {
            let lower = s.message.to_ascii_lowercase();
            match s.code {
                3159 => ConnectFailure::TlsRequired(s.message.clone()),
                _ if lower.contains("requires ssl") || lower.contains("secure transport") => {
                    ConnectFailure::TlsRequired(s.message.clone())
                }
                1045 => ConnectFailure::AccessDenied(s.message.clone()),
                3118 | 4151 => ConnectFailure::Locked(s.code),
                1130 => ConnectFailure::HostNotAllowed(s.message.clone()),
                1129 => ConnectFailure::HostBlocked,
                1040 | 1203 => ConnectFailure::TooManyConnections(s.code),
                1820 | 1862 => ConnectFailure::PasswordExpired,
                _ => ConnectFailure::Other(format!("error {}: {}", s.code, s.message)),
            }
        }
        other => ConnectFailure::Other(other.to_string()),
    }
}

/// `'user'@'host'` for GRANT / ALTER USER statements in messages.
pub(crate) fn account_sql(user: &str, host: &str) -> String {
    format!("'{}'@'{}'", user.replace('\'', "''"), host.replace('\'', "''"))
}

/// The verdict of one login.
pub(crate) fn judge_connection(
    side: &str,
    ep: &Endpoint,
    version: Option<&str>,
    result: &Result<ConnInfo, ConnectFailure>,
) -> Verdict {
    let (host, port, user) = (&ep.host, ep.port, &ep.user);
    let acct = account_sql(user, "%");
    let field = ep.tls.field_name();
    let mode = ep.tls.mode.as_str();
    let info = match result {
        Ok(c) => {
            let v = version.map(|v| format!(" ({v})")).unwrap_or_default();
            let tls = match &c.tls {
                Some((ver, cipher)) => format!(", encrypted with {ver} ({cipher}), {field}.Mode {mode}"),
                None if ep.tls.mode == ferry_core::TlsMode::Disabled => {
                    format!(", not encrypted ({field}.Mode disabled)")
                }
                None => format!(
                    ", NOT encrypted: the {side} offers no TLS ({field}.Mode {mode}); enable TLS on the \
                     server (ssl_cert, ssl_key) and set {field}.Mode to verify_identity to protect the \
                     password and the data in transit"
                ),
            };
            let text = format!(
                "connected to the {side} {}{v} in {} ms{tls}",
                ep.display_name(),
                c.millis
            );
            return Verdict::passed(text);
        }
        Err(f) => f,
    };
    let tls_hint = if !ep.tls_in_use() {
        format!(
            "Ferry connected without TLS ({field}.Mode {mode}), so an account with REQUIRE SSL or \
             X509 is refused with this same error: set {field}.Mode to required (or verify_ca / \
             verify_identity with {field}.Ca), and for REQUIRE X509 also {field}.Cert and {field}.Key"
        )
    } else if ep.tls.cert.is_none() {
        format!(
            "Ferry connected over TLS without a client certificate, so an account with REQUIRE X509 \
             (or SUBJECT / ISSUER) is refused with this same error: give the client certificate in \
             {field}.Cert/CertFile and {field}.Key/KeyFile"
        )
    } else {
        "Ferry connected over TLS with the client certificate from the job; if the account requires \
         a SUBJECT or ISSUER, check that the certificate matches it"
            .to_string()
    };
    let msg = match info {
        ConnectFailure::Timeout { secs } => format!(
            "no answer from {host}:{port} within {secs} s: the host is unreachable or a firewall drops \
             the packets. Check the address, the routing and the firewall rules for port {port}/tcp \
             between this machine and the {side}, or raise the connect timeout"
        ),
        ConnectFailure::Refused => format!(
            "connection refused by {host}:{port}: nothing listens on that port. Check the port number, \
             that the {side} server is running, and that it accepts TCP connections from this machine \
             (bind_address, skip_networking = OFF)"
        ),
        ConnectFailure::Unreachable(e) => format!(
            "network unreachable: {host}:{port} cannot be reached from this machine ({e}). Check the \
             address and the routing / firewall between this machine and the {side}"
        ),
        ConnectFailure::UnknownHost(e) => format!(
            "unknown host {host}: the name does not resolve ({e}). Check the spelling, the DNS or \
             /etc/hosts, or use an IP address"
        ),
        ConnectFailure::AccessDenied(m) => format!(
            "wrong password or unknown account, or the account requires TLS (REQUIRE SSL/X509, MySQL and \
             MariaDB) (error 1045: {m}). Check the password of {user} in the job; the account must exist \
             for the host Ferry connects from, e.g. CREATE USER {acct} IDENTIFIED BY '...'. {tls_hint}."
        ),
        ConnectFailure::Locked(code) => format!(
            "the account {user} is locked (error {code}): unlock it with ALTER USER {acct} ACCOUNT UNLOCK \
             (use the account's real host)"
        ),
        ConnectFailure::TlsRequired(m) => format!(
            "the {side} requires a TLS connection for {user} ({m}) and Ferry connected without TLS \
             ({field}.Mode {mode}): set {field}.Mode to required, or verify_ca / verify_identity with \
             {field}.Ca"
        ),
        ConnectFailure::HostNotAllowed(m) => format!(
            "the {side} has no account {user} for the host Ferry connects from (error 1130: {m}): \
             create it, e.g. CREATE USER {acct} IDENTIFIED BY '...', and grant the privileges the \
             privileges items list"
        ),
        ConnectFailure::HostBlocked => format!(
            "this machine is blocked by the {side} after too many failed connections (error 1129): run \
             FLUSH HOSTS on the {side} (or mariadb-admin flush-hosts), and consider raising \
             max_connect_errors"
        ),
        ConnectFailure::TooManyConnections(code) => format!(
            "the {side} refuses new connections (error {code}: too many connections): raise \
             max_connections (or the account's MAX_USER_CONNECTIONS); Ferry needs its thread count + 2 \
             connections"
        ),
        ConnectFailure::PasswordExpired => format!(
            "the password of {user} has expired: set a new one with ALTER USER {acct} IDENTIFIED BY \
             '...' and put it in the job"
        ),
        ConnectFailure::Tls(e) => format!("TLS to {host}:{port} failed: {e}"),
        ConnectFailure::Other(e) => format!("cannot connect to {}: {e}", ep.display_name()),
    };
    Verdict::failed(msg)
}

pub(crate) fn source_connection(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let version = ctx.facts.source.as_ref().ok().and_then(|f| f.var("version"));
    Ok(judge_connection(
        "source",
        &ctx.input.source,
        version,
        &ctx.facts.source_conn,
    ))
}

pub(crate) fn target_connection(ctx: &Ctx<'_>) -> Result<Verdict, Skip> {
    let version = ctx.facts.target.as_ref().ok().and_then(|f| f.var("version"));
    Ok(judge_connection(
        "target",
        &ctx.input.target,
        version,
        &ctx.facts.target_conn,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::CheckStatus;
    use ferry_core::Secret;
    use mysql_async::ServerError;

    fn server(code: u16, message: &str) -> Error {
        Error::Server(ServerError {
            code,
            message: message.into(),
            state: "HY000".into(),
        })
    }

    fn io(kind: IoKind, msg: &str) -> Error {
        Error::Io(IoError::Io(std::io::Error::new(kind, msg.to_string())))
    }

    #[test]
    fn classifies_every_case() {
        assert_eq!(
            classify(&io(IoKind::ConnectionRefused, "refused")),
            ConnectFailure::Refused
        );
        assert!(matches!(
            classify(&io(IoKind::HostUnreachable, "no route")),
            ConnectFailure::Unreachable(_)
        ));
        assert!(matches!(
            classify(&io(IoKind::TimedOut, "timed out")),
            ConnectFailure::Unreachable(_)
        ));
        assert!(matches!(
            classify(&io(
                IoKind::Other,
                "failed to lookup address information: Name or service not known"
            )),
            ConnectFailure::UnknownHost(_)
        ));
        assert!(matches!(
            classify(&server(
                1045,
                "Access denied for user 'x'@'y' (using password: YES)"
            )),
            ConnectFailure::AccessDenied(_)
        ));
        assert_eq!(
            classify(&server(3118, "Access denied ... Account is locked.")),
            ConnectFailure::Locked(3118)
        );
        assert_eq!(
            classify(&server(4151, "Access denied, this account is locked")),
            ConnectFailure::Locked(4151)
        );
        assert!(matches!(
            classify(&server(
                3159,
                "Connections using insecure transport are prohibited"
            )),
            ConnectFailure::TlsRequired(_)
        ));
        assert!(matches!(
            classify(&server(1045, "Access denied: account requires SSL")),
            ConnectFailure::TlsRequired(_)
        ));
        assert!(matches!(
            classify(&server(1130, "Host 'h' is not allowed")),
            ConnectFailure::HostNotAllowed(_)
        ));
        assert_eq!(classify(&server(1129, "blocked")), ConnectFailure::HostBlocked);
        assert_eq!(
            classify(&server(1040, "Too many connections")),
            ConnectFailure::TooManyConnections(1040)
        );
        assert_eq!(
            classify(&server(1862, "expired")),
            ConnectFailure::PasswordExpired
        );
        assert!(matches!(classify(&server(1234, "odd")), ConnectFailure::Other(_)));
    }

    #[test]
    fn messages_say_what_to_do() {
        let ep = Endpoint::new("db.example", 3306, "mig", Secret::new("pw"));
        let judge = |f: ConnectFailure| judge_connection("source", &ep, None, &Err(f));
        let cases = [
            (ConnectFailure::Timeout { secs: 10 }, "firewall"),
            (ConnectFailure::Refused, "nothing listens"),
            (ConnectFailure::Unreachable("x".into()), "network unreachable"),
            (ConnectFailure::UnknownHost("x".into()), "unknown host db.example"),
            (ConnectFailure::AccessDenied("x".into()), "wrong password"),
            (
                ConnectFailure::AccessDenied("x".into()),
                "requires TLS (REQUIRE SSL/X509, MySQL and MariaDB)",
            ),
            (ConnectFailure::Locked(4151), "ACCOUNT UNLOCK"),
            (
                ConnectFailure::TlsRequired("x".into()),
                "set the TLS settings.Mode to required",
            ),
            (
                ConnectFailure::HostNotAllowed("x".into()),
                "CREATE USER 'mig'@'%'",
            ),
            (ConnectFailure::HostBlocked, "FLUSH HOSTS"),
            (ConnectFailure::TooManyConnections(1040), "max_connections"),
            (ConnectFailure::PasswordExpired, "IDENTIFIED BY"),
            (ConnectFailure::Tls("x".into()), "TLS to db.example:3306 failed"),
            (ConnectFailure::Other("x".into()), "cannot connect"),
        ];
        for (f, needle) in cases {
            let v = judge(f);
            assert_eq!(v.status, CheckStatus::Failed);
            assert!(v.message.contains(needle), "{needle}: {}", v.message);
            assert!(!v.message.contains("pw'"), "no password in messages");
        }
        let ok = judge_connection(
            "source",
            &ep,
            Some("10.11.6-MariaDB"),
            &Ok(ConnInfo { millis: 3, tls: None }),
        );
        assert_eq!(ok.status, CheckStatus::Passed);
        assert!(ok.message.contains("10.11.6"));
    }
}
