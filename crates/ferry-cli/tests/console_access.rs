//! The console's access rules through the real `ferry serve` binary over HTTP (no browser, no
//! database): without a session every console page redirects to the sign-in page and every
//! fragment, download and action answers 401; a wrong key is refused and, after five failures,
//! throttled; a sign-in without the sign-in form's token and cookie is refused (login CSRF); a
//! right key gives an HttpOnly SameSite=Strict session cookie; an action without its CSRF token is
//! refused; a download of a missing repair file is 404; every answer carries the security headers; signing out ends the
//! session.

mod common;

use anyhow::{anyhow, Result};
use common::serve::Serve;
use reqwest::header::{HeaderMap, COOKIE, LOCATION, SET_COOKIE};
use reqwest::StatusCode;

const SECRET_ID: &str = "AKIDferryconsoleaccess";
const SECRET_KEY: &str = "ferry-console-access-key";

fn client() -> Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?)
}

fn location(h: &HeaderMap) -> String {
    h.get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

fn assert_security_headers(h: &HeaderMap) {
    let csp = h
        .get("content-security-policy")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"),
        "{csp}"
    );
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(h.get("x-frame-options").map(|v| v.as_bytes()), Some(&b"DENY"[..]));
    assert_eq!(
        h.get("x-content-type-options").map(|v| v.as_bytes()),
        Some(&b"nosniff"[..])
    );
}

/// The sign-in form's token and its cookie, from a fresh sign-in page.
async fn sign_in_form(c: &reqwest::Client, base: &str) -> Result<(String, String)> {
    let r = c.get(format!("{base}/console/login")).send().await?;
    let cookie = r
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.starts_with("ferry_console_login=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    let token = csrf_of(&r.text().await?)?;
    Ok((token, cookie.split(';').next().unwrap_or_default().to_string()))
}

/// Signs in as a browser does: the sign-in page, then its form.
async fn sign_in(c: &reqwest::Client, base: &str, id: &str, key: &str) -> Result<reqwest::Response> {
    let (token, cookie) = sign_in_form(c, base).await?;
    Ok(c.post(format!("{base}/console/login"))
        .header(COOKIE, cookie)
        .form(&[("secret_id", id), ("secret_key", key), ("csrf", token.as_str())])
        .send()
        .await?)
}

/// The value of the `csrf` hidden field in a page.
fn csrf_of(page: &str) -> Result<String> {
    let at = page
        .find("name=\"csrf\" value=\"")
        .ok_or_else(|| anyhow!("no CSRF field in the page"))?;
    let rest = &page[at + "name=\"csrf\" value=\"".len()..];
    Ok(rest.split('"').next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn console_access_rules() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("ferry-console-access-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &["--data-dir", data.to_str().ok_or_else(|| anyhow!("not UTF-8"))?],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let base = serve.url.clone();
    let c = client()?;

    // Without a session: pages redirect to the sign-in page, the rest is 401.
    for page in ["/console/", "/console/jobs/dts-nothere", "/console/nope"] {
        let r = c.get(format!("{base}{page}")).send().await?;
        assert_eq!(r.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(location(r.headers()), "/console/login", "{page}");
        assert_security_headers(r.headers());
    }
    for path in [
        "/console/live",
        "/console/jobs/dts-x/live",
        "/console/jobs/dts-x/compare/c/differences.csv",
        "/console/jobs/dts-x/compare/c/repair.sql",
    ] {
        let r = c.get(format!("{base}{path}")).send().await?;
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = c
        .post(format!("{base}/console/jobs/dts-x/action"))
        .form(&[("action", "stop")])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = c.get(format!("{base}/console/login")).send().await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(r.headers());
    assert!(r.text().await?.contains("Sign in"));
    for asset in ["/console/static/console.js", "/console/static/console.css"] {
        assert_eq!(
            c.get(format!("{base}{asset}")).send().await?.status(),
            StatusCode::OK
        );
    }
    assert_eq!(
        c.get(format!("{base}/healthz")).send().await?.status(),
        StatusCode::OK
    );

    // Login CSRF: the right key posted without the sign-in form's token and cookie (as another
    // site could post it), or with a token but not its cookie, is refused without a session.
    let r = c
        .post(format!("{base}/console/login"))
        .form(&[("secret_id", SECRET_ID), ("secret_key", SECRET_KEY)])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert!(!r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(b"ferry_console=")));
    let (token, _) = sign_in_form(&c, &base).await?;
    let r = c
        .post(format!("{base}/console/login"))
        .form(&[
            ("secret_id", SECRET_ID),
            ("secret_key", SECRET_KEY),
            ("csrf", token.as_str()),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let (_, cookie) = sign_in_form(&c, &base).await?;
    let r = c
        .post(format!("{base}/console/login"))
        .header(COOKIE, cookie)
        .form(&[
            ("secret_id", SECRET_ID),
            ("secret_key", SECRET_KEY),
            ("csrf", "0000"),
        ])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    // A wrong key is refused, without a session cookie.
    let r = sign_in(&c, &base, SECRET_ID, "wrong-key").await?;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(!r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(b"ferry_console=")));
    assert!(r.text().await?.contains("wrong SecretId or SecretKey"));

    // The right key: a session cookie.
    let r = sign_in(&c, &base, SECRET_ID, SECRET_KEY).await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("ferry_console="))
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict") && cookie.contains("Max-Age="),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain HTTP: no Secure flag");
    let session = cookie.split(';').next().unwrap_or_default().to_string();

    let r = c
        .get(format!("{base}/console/"))
        .header(COOKIE, &session)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::OK);
    assert_security_headers(r.headers());
    let page = r.text().await?;
    assert!(page.contains("No job matches"), "{page}");
    assert!(!page.contains(SECRET_KEY));
    let csrf = csrf_of(&page)?;
    let r = c
        .get(format!("{base}/console/jobs/dts-nothere/compare/c/repair.sql"))
        .header(COOKIE, &session)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);

    // An action without (or with a wrong) CSRF token is refused.
    for form in [
        vec![("action", "stop")],
        vec![("action", "stop"), ("csrf", "0000")],
    ] {
        let r = c
            .post(format!("{base}/console/jobs/dts-nothere/action"))
            .header(COOKIE, &session)
            .form(&form)
            .send()
            .await?;
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
    }
    // With the token, the action runs and its error (no such job) comes back to the page.
    let r = c
        .post(format!("{base}/console/jobs/dts-nothere/action"))
        .header(COOKIE, &session)
        .form(&[("action", "stop"), ("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert!(
        location(r.headers()).contains("JobNotExist"),
        "{}",
        location(r.headers())
    );

    // Sign out ends the session.
    let r = c
        .post(format!("{base}/console/logout"))
        .header(COOKIE, &session)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = c
        .get(format!("{base}/console/"))
        .header(COOKIE, &session)
        .send()
        .await?;
    assert_eq!(r.status(), StatusCode::SEE_OTHER);

    // Failed sign-ins are throttled: after five, even the right key waits.
    for _ in 0..5 {
        assert_eq!(
            sign_in(&c, &base, SECRET_ID, "nope").await?.status(),
            StatusCode::UNAUTHORIZED
        );
    }
    let r = sign_in(&c, &base, SECRET_ID, SECRET_KEY).await?;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        !serve.stderr().contains(SECRET_KEY),
        "the key never reaches the log"
    );
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
