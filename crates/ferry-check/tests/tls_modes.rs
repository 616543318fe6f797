//! TLS modes against a TLS test instance of its own (`scripts/servers.sh start-one i_tls`, which
//! serves the test CA's certificate for `ferry-test-db` and `127.0.0.1`, not for `localhost`):
//! every mode, a wrong CA, a wrong name, an account that `REQUIRE SSL` and one that
//! `REQUIRE X509`, and what the pre-check says about each.
//!
//! Only accounts `i_tls_*` are created on that instance.

use std::process::Command;
use std::sync::OnceLock;

use anyhow::{bail, Context, Result};
use ferry_check::{run_checks, CheckInput, CheckStatus};
use ferry_core::tls::{KeyPem, Pem};
use ferry_core::{CoreError, Endpoint, ErrorKind, Secret, Selection, TlsConfig, TlsMode};
use ferry_testkit as tk;
use mysql_async::prelude::Queryable;

use ferry_testkit::tls_file;

/// The TLS instance (started once per test binary) as `ferry` over plain TCP.
fn tls_server() -> Result<Endpoint> {
    static URL: OnceLock<String> = OnceLock::new();
    if URL.get().is_none() {
        let script = tk::repo_root().join("scripts/servers.sh");
        let mut url = String::new();
        for args in [&["start-one", "i_tls"][..], &["url", "i_tls"][..]] {
            let out = Command::new(&script).args(args).output()?;
            if !out.status.success() {
                bail!("servers.sh {args:?}: {}", String::from_utf8_lossy(&out.stderr));
            }
            url = String::from_utf8(out.stdout)?.trim().to_string();
        }
        let _ = URL.set(url);
    }
    let url = URL.get().context("no URL")?;
    Ok(Endpoint::from_url(url)?)
}

fn tls(mode: TlsMode) -> TlsConfig {
    TlsConfig {
        mode,
        field: "Ferry.SourceTls".into(),
        ..TlsConfig::default()
    }
}

fn with_ca(mut c: TlsConfig, ca: &str) -> TlsConfig {
    c.ca = Some(Pem::File(tls_file(ca)));
    c
}

/// `(Ssl_version, Ssl_cipher)` of a new connection.
async fn session_tls(ep: &Endpoint) -> Result<(String, String), CoreError> {
    let mut c = ep.connect(vec![]).await?;
    let rows: Vec<(String, String)> = c
        .query("SHOW SESSION STATUS WHERE Variable_name IN ('Ssl_version', 'Ssl_cipher')")
        .await
        .map_err(|e| CoreError::mysql("status", e))?;
    let _ = c.disconnect().await;
    let get = |n: &str| {
        rows.iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    Ok((get("Ssl_version"), get("Ssl_cipher")))
}

async fn accounts(admin: &Endpoint) -> Result<()> {
    let mut c = admin.connect(vec![]).await?;
    for sql in [
        "CREATE USER IF NOT EXISTS 'i_tls_ssl'@'%' IDENTIFIED BY 'pw-ssl-1234' REQUIRE SSL",
        "CREATE USER IF NOT EXISTS 'i_tls_x509'@'%' IDENTIFIED BY 'pw-x509-1234' REQUIRE X509",
        "GRANT SELECT, RELOAD, REPLICATION CLIENT, REPLICATION SLAVE, PROCESS, SHOW VIEW ON *.* TO 'i_tls_ssl'@'%'",
        "GRANT SELECT, RELOAD, REPLICATION CLIENT, REPLICATION SLAVE, PROCESS, SHOW VIEW ON *.* TO 'i_tls_x509'@'%'",
    ] {
        c.query_drop(sql).await?;
    }
    let _ = c.disconnect().await;
    Ok(())
}

fn as_user(ep: &Endpoint, user: &str, pw: &str, cfg: TlsConfig) -> Endpoint {
    let mut e = ep.clone();
    e.user = user.into();
    e.password = Secret::new(pw);
    e.with_tls(cfg)
}

fn expect_tls_error(r: Result<(String, String), CoreError>, what: &[&str]) {
    match r {
        Ok(v) => panic!("connected ({v:?}), expected a TLS failure mentioning {what:?}"),
        Err(e) => {
            assert!(matches!(e, CoreError::Tls { .. }), "not a TLS error: {e}");
            assert_eq!(e.kind(), ErrorKind::Definite, "{e}");
            let m = e.to_string();
            for w in what {
                assert!(m.contains(w), "{m:?} does not mention {w:?}");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_mode_against_a_tls_server() -> Result<()> {
    let plain = tls_server()?;

    let (v, _) = session_tls(&plain.clone().with_tls(tls(TlsMode::Disabled))).await?;
    assert_eq!(v, "", "disabled must not encrypt");

    for mode in [TlsMode::Preferred, TlsMode::Required] {
        let (v, cipher) = session_tls(&plain.clone().with_tls(tls(mode))).await?;
        assert!(v.starts_with("TLS"), "{mode:?}: {v:?}");
        assert!(!cipher.is_empty());
    }

    // verify_ca and verify_identity with the right CA, to the name the certificate lists
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyIdentity] {
        let (v, _) = session_tls(&plain.clone().with_tls(with_ca(tls(mode), "ca.pem"))).await?;
        assert!(v.starts_with("TLS"), "{mode:?}: {v:?}");
    }

    // a name the certificate does not list: verify_ca accepts it, verify_identity refuses it
    let mut by_name = plain.clone();
    by_name.host = "localhost".into();
    let (v, _) = session_tls(
        &by_name
            .clone()
            .with_tls(with_ca(tls(TlsMode::VerifyCa), "ca.pem")),
    )
    .await?;
    assert!(v.starts_with("TLS"), "verify_ca by another name: {v:?}");
    expect_tls_error(
        session_tls(&by_name.with_tls(with_ca(tls(TlsMode::VerifyIdentity), "ca.pem"))).await,
        &["source", "not valid for the name", "localhost", "verify_ca"],
    );

    // a CA that did not sign the server's certificate
    for mode in [TlsMode::VerifyCa, TlsMode::VerifyIdentity] {
        expect_tls_error(
            session_tls(&plain.clone().with_tls(with_ca(tls(mode), "other-ca.pem"))).await,
            &["source", "not signed by a trusted CA", "Ferry.SourceTls.Ca"],
        );
    }
    // no CA: the public web roots do not know the test CA
    expect_tls_error(
        session_tls(&plain.clone().with_tls(tls(TlsMode::VerifyIdentity))).await,
        &["not signed by a trusted CA"],
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_that_require_ssl_and_x509() -> Result<()> {
    let admin = tls_server()?;
    accounts(&admin).await?;

    // REQUIRE SSL: refused without TLS (and the error names the field), accepted with it
    let ssl = |m| as_user(&admin, "i_tls_ssl", "pw-ssl-1234", tls(m));
    let e = session_tls(&ssl(TlsMode::Disabled))
        .await
        .expect_err("REQUIRE SSL without TLS");
    let m = e.to_string();
    assert!(
        m.contains("Ferry.SourceTls.Mode") && !m.contains("pw-ssl-1234"),
        "{m}"
    );
    assert!(session_tls(&ssl(TlsMode::Required)).await?.0.starts_with("TLS"));
    assert!(session_tls(&ssl(TlsMode::Preferred)).await?.0.starts_with("TLS"));

    // REQUIRE X509: refused without a client certificate, accepted with one (files or inline PEM)
    let x509 = |cfg| as_user(&admin, "i_tls_x509", "pw-x509-1234", cfg);
    assert!(session_tls(&x509(tls(TlsMode::Required))).await.is_err());
    let mut files = with_ca(tls(TlsMode::VerifyIdentity), "ca.pem");
    files.cert = Some(Pem::File(tls_file("client.pem")));
    files.key = Some(KeyPem::File(tls_file("client-key.pem")));
    assert!(session_tls(&x509(files)).await?.0.starts_with("TLS"));
    let mut inline = tls(TlsMode::Required);
    inline.cert = Some(Pem::Text(std::fs::read_to_string(tls_file("client.pem"))?));
    inline.key = Some(KeyPem::Text(Secret::new(std::fs::read_to_string(tls_file(
        "client-key.pem",
    ))?)));
    assert!(!format!("{inline:?}").contains("PRIVATE KEY"));
    assert!(session_tls(&x509(inline)).await?.0.starts_with("TLS"));

    // the pre-check: TLS state of a connection, the field to set for an account that needs more
    let target = tk::target();
    let run = |source: Endpoint| {
        let target = target.clone();
        async move {
            let input = CheckInput {
                source,
                target,
                selection: Selection::whole_instance(),
                incremental: false,
                fail_on_nonempty_target_tables: false,
                allow_downgrade: false,
                estimated_load_seconds: None,
                target_binlog: true,
                snapshot_mode: ferry_core::SnapshotMode::Auto,
                accounts: None,
                target_read_only: false,
            };
            let items = run_checks(&input, |_, _| {}).await;
            items
                .into_iter()
                .find(|i| i.id == "source_connection")
                .expect("source_connection item")
        }
    };
    let ok = run(ssl(TlsMode::Required)).await;
    assert_eq!(ok.status, CheckStatus::Passed, "{}", ok.message);
    assert!(ok.message.contains("encrypted with TLS"), "{}", ok.message);
    let no_tls = run(ssl(TlsMode::Disabled)).await;
    assert_eq!(no_tls.status, CheckStatus::Failed);
    assert!(
        no_tls.message.contains("set Ferry.SourceTls.Mode"),
        "{}",
        no_tls.message
    );
    let no_cert = run(x509(tls(TlsMode::Required))).await;
    assert_eq!(no_cert.status, CheckStatus::Failed);
    assert!(
        no_cert.message.contains("Ferry.SourceTls.Cert"),
        "{}",
        no_cert.message
    );
    let wrong_ca = run(admin
        .clone()
        .with_tls(with_ca(tls(TlsMode::VerifyCa), "other-ca.pem")))
    .await;
    assert_eq!(wrong_ca.status, CheckStatus::Failed);
    assert!(
        wrong_ca.message.contains("not signed by a trusted CA"),
        "{}",
        wrong_ca.message
    );
    Ok(())
}

/// A server whose greeting offers no TLS: `required` is refused by name, `preferred` goes plain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_without_tls() -> Result<()> {
    use std::io::{Read, Write};
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = l.local_addr()?.port();
    std::thread::spawn(move || {
        for c in l.incoming().take(4) {
            let Ok(mut c) = c else { return };
            let caps: u32 = 0x0000_f7ff & !0x0800; // no CLIENT_SSL
            let mut h = vec![10u8];
            h.extend_from_slice(b"10.11.6-MariaDB\0");
            h.extend_from_slice(&1u32.to_le_bytes());
            h.extend_from_slice(b"abcdefgh\0");
            h.extend_from_slice(&(caps as u16).to_le_bytes());
            h.push(45);
            h.extend_from_slice(&2u16.to_le_bytes());
            h.extend_from_slice(&0u16.to_le_bytes());
            h.push(21);
            h.extend_from_slice(&[0u8; 10]);
            h.extend_from_slice(b"ijklmnopqrst\0");
            h.extend_from_slice(b"mysql_native_password\0");
            let n = h.len() as u32;
            let mut p = vec![n as u8, (n >> 8) as u8, (n >> 16) as u8, 0];
            p.extend_from_slice(&h);
            let _ = c.write_all(&p);
            let mut buf = [0u8; 256];
            let _ = c.read(&mut buf);
        }
    });
    let ep = Endpoint::new("127.0.0.1", port, "u", Secret::new("pw"));
    expect_tls_error(
        session_tls(&ep.clone().with_tls(tls(TlsMode::Required))).await,
        &["does not offer TLS", "Ferry.SourceTls.Mode is required"],
    );
    let cfg = tls(TlsMode::Preferred);
    let probe =
        ferry_core::tls::probe_blocking("127.0.0.1", port, ep.connect_timeout, &cfg).context("probe")?;
    assert!(!probe.offers_tls);
    assert!(cfg.ssl_opts(Some(&probe)).is_none(), "preferred goes plain");
    Ok(())
}
