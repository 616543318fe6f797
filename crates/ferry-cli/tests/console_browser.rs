//! The web console in a real browser: headless Chromium driven over WebDriver (chromedriver,
//! `scripts/browser.sh install` installs Debian's `chromium` and `chromium-driver`) through the
//! real `ferry serve`. A MigrateType 3 job is created with the API while a writer commits on the
//! source; in the browser a wrong key is refused, the right one signs in, the job is started from
//! its page, its steps, progress and per-table chunks advance, the lag chart gets points, it is
//! paused and resumed, completed (the cut-over position shows), and a comparison shows the tables
//! equal; then rows planted on the target make a second comparison list the differing keys, and
//! the repair SQL downloaded from the page (an attachment, only with the session) makes the target
//! equal again; deleting the job from the page deletes its repair SQL. An action without the CSRF token (a plain
//! HTTP request with the browser's session cookie) is refused. The target equals the source by
//! digest. Screenshots go to `docs/img/console-*.png`. Only the database `console_browser` is
//! touched.

mod common;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context as _, Result};
use common::serve::Serve;
use fantoccini::{Client as Browser, ClientBuilder, Locator};
use ferry_api::Client;
use ferry_testkit::{connect, source, target, wait_until};
use mysql_async::prelude::Queryable;
use serde_json::json;

const DB: &str = "console_browser";
const SECRET_ID: &str = "AKIDferryconsolebrowser";
const SECRET_KEY: &str = "ferry-console-browser-key";
/// Generous: the suite runs on two shared cores.
const WAIT: u64 = 300;

/// chromedriver: FERRY_TEST_CHROMEDRIVER, else on PATH or where Debian puts it.
fn chromedriver() -> Result<String> {
    if let Ok(p) = std::env::var("FERRY_TEST_CHROMEDRIVER") {
        return Ok(p);
    }
    let out = Command::new(ferry_testkit::repo_root().join("scripts/browser.sh"))
        .arg("path")
        .output()
        .context("running scripts/browser.sh path")?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if !out.status.success() || path.is_empty() {
        bail!("no chromedriver: run `scripts/browser.sh install` (Debian's chromium and chromium-driver)");
    }
    Ok(path)
}

/// chromedriver on a free local port, killed when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver() -> Result<Driver> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let child = Command::new(chromedriver()?)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting chromedriver")?;
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    wait_until(60, "chromedriver to listen", || async move {
        Ok(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok())
    })
    .await?;
    Ok(driver)
}

async fn open_browser(driver: &Driver) -> Result<Browser> {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1280,1700"]}),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .map_err(|e| anyhow!("WebDriver session: {e}"))
}

/// The text of the first element matching `css`, `None` when there is none (yet).
async fn text_of(b: &Browser, css: &str) -> Option<String> {
    match b.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.ok(),
        Err(_) => None,
    }
}

/// Waits until the element `css` exists and its text satisfies `ok` (the page polls itself).
async fn wait_text(b: &Browser, css: &str, what: &str, ok: impl Fn(&str) -> bool) -> Result<()> {
    wait_until(WAIT, what, || async {
        Ok(text_of(b, css).await.is_some_and(|t| ok(&t)))
    })
    .await
}

/// Reloads `url` until the element `css` is there (action buttons follow the state at load).
async fn wait_button(b: &Browser, url: &str, css: &str) -> Result<()> {
    wait_until(WAIT, css, || async {
        b.goto(url).await?;
        Ok(b.find(Locator::Css(css)).await.is_ok())
    })
    .await
}

/// Clicks an action button and accepts its confirmation.
async fn act(b: &Browser, button: &str) -> Result<()> {
    b.find(Locator::Css(button)).await?.click().await?;
    b.accept_alert().await?;
    // The action redirects back to the job page with a notice.
    wait_until(WAIT, "the action's notice", || async {
        Ok(b.find(Locator::Css("main > p.notice")).await.is_ok())
    })
    .await?;
    let notice = text_of(b, "main > p.notice").await.unwrap_or_default();
    if b.find(Locator::Css("main > p.notice.error")).await.is_ok() {
        bail!("{button}: {notice}");
    }
    Ok(())
}

/// The page, or only the element `css` when given.
async fn screenshot_of(b: &Browser, name: &str, css: Option<&str>) -> Result<()> {
    let png = match css {
        Some(css) => b.find(Locator::Css(css)).await?.screenshot().await?,
        None => b.screenshot().await?,
    };
    let dir = ferry_testkit::repo_root().join("docs/img");
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join(format!("console-{name}.png")), png)?;
    Ok(())
}

async fn screenshot(b: &Browser, name: &str) -> Result<()> {
    screenshot_of(b, name, None).await
}

async fn sign_in(b: &Browser, base: &str, key: &str) -> Result<()> {
    b.goto(&format!("{base}/console/login")).await?;
    b.find(Locator::Css("input[name=secret_id]"))
        .await?
        .send_keys(SECRET_ID)
        .await?;
    b.find(Locator::Css("input[name=secret_key]"))
        .await?
        .send_keys(key)
        .await?;
    b.find(Locator::Css("#signin")).await?.click().await?;
    Ok(())
}

fn writer(stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<Result<()>> {
    tokio::spawn(async move {
        let mut c = connect(&source()).await?;
        let mut i = 0u64;
        while !stop.load(Ordering::SeqCst) {
            i += 1;
            c.query_drop(format!(
                "INSERT INTO {DB}.journal (v, pad) VALUES ({i}, REPEAT('j', {}))",
                i % 100
            ))
            .await?;
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_a_browser_follows_a_job_to_the_end() -> Result<()> {
    let mut s = connect(&source()).await?;
    let mut t = connect(&target()).await?;
    ferry_testkit::fresh_db(&mut s, DB).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    ferry_testkit::exec(
        &mut s,
        &format!(
            "USE {DB}; CREATE TABLE journal (id BIGINT AUTO_INCREMENT PRIMARY KEY, v BIGINT NOT NULL, pad VARCHAR(200)); \
             CREATE TABLE bulk (id INT PRIMARY KEY, x VARCHAR(64)); INSERT INTO bulk SELECT seq, MD5(seq) FROM seq_1_to_30000"
        ),
    )
    .await?;
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = Some(writer(stop.clone()));

    let dir = std::env::temp_dir().join(format!("ferry-console-browser-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(
        &dir,
        &["--data-dir", data.to_str().ok_or_else(|| anyhow!("not UTF-8"))?],
        &[("FERRY_SECRET_ID", SECRET_ID), ("FERRY_SECRET_KEY", SECRET_KEY)],
    );
    let base = serve.url.clone();
    let api = Client::new(base.clone(), SECRET_ID, SECRET_KEY);
    let mut request = common::job(
        "console-demo",
        json!([{"Database": DB}]),
        // Slow enough for the progress to be seen advancing.
        json!({"ChunkRows": 1000, "Threads": 2, "RowsPerSecond": 3000}),
        3,
    );
    // The job verifies every row at its end; the page shows that report.
    request["MigrateOption"]["ConsistencyType"] = json!(2);
    let id = api
        .call("2018-03-30", "CreateMigrateJob", request)
        .await
        .map_err(|e| anyhow!("CreateMigrateJob: {e}"))?["JobId"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    let driver = start_driver().await?;
    let b = open_browser(&driver).await?;
    let result = drive(&b, &base, &id, &stop, &mut w, &data).await;
    let csrf_check = match &result {
        Ok(()) => csrf_refused(&b, &base, &id).await,
        Err(_) => Ok(()),
    };
    if result.is_err() {
        let _ = screenshot(&b, "failure").await;
    }
    let _ = b.close().await;
    drop(driver);
    stop.store(true, Ordering::SeqCst);
    if let Some(w) = w {
        w.await??;
    }
    result?;
    csrf_check?;

    let a = ferry_testkit::db_digest(&mut s, DB).await?;
    let z = ferry_testkit::db_digest(&mut t, DB).await?;
    assert_eq!(a, z, "source and target differ");
    assert!(
        !serve.stderr().contains(SECRET_KEY),
        "the key never reaches the log"
    );
    drop(serve);
    ferry_testkit::drop_dbs(&mut s, &[DB]).await?;
    ferry_testkit::drop_dbs(&mut t, &[DB]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The browser part, up to the verification result. The writer is stopped (and waited for)
/// before the cut-over, as the runbook says.
async fn drive(
    b: &Browser,
    base: &str,
    id: &str,
    stop: &AtomicBool,
    writer: &mut Option<tokio::task::JoinHandle<Result<()>>>,
    data: &std::path::Path,
) -> Result<()> {
    // A wrong key is refused.
    sign_in(b, base, "not-the-key").await?;
    wait_text(b, "main > p.notice.error", "the refusal", |t| {
        t.contains("wrong SecretId or SecretKey")
    })
    .await?;
    screenshot(b, "signin").await?;
    // The right one signs in: the jobs page lists the job.
    sign_in(b, base, SECRET_KEY).await?;
    wait_text(b, &format!("tr[data-job='{id}']"), "the job in the list", |t| {
        t.contains("console-demo")
    })
    .await?;

    let page = format!("{base}/console/jobs/{id}");
    b.goto(&page).await?;
    act(b, "#do-check").await?;
    wait_button(b, &page, "#do-start").await?;
    act(b, "#do-start").await?;
    // Progress advances: the full load step runs, the overall progress grows, and the table
    // list shows the chunks of `bulk` being copied.
    wait_text(
        b,
        "tr[data-step='full_data'] td.step",
        "the full load to run",
        |t| t == "running" || t == "finished",
    )
    .await?;
    wait_text(b, "#job-progress", "progress above 0", |t| {
        t.trim_end_matches('%').parse::<u64>().unwrap_or(0) > 0
    })
    .await?;
    let bulk = format!("tr[data-table='{DB}.bulk'] span.chunks");
    wait_text(b, &bulk, "chunks of bulk done", |t| {
        chunks(t).is_some_and(|(done, all)| done > 0 && all > 1)
    })
    .await?;
    screenshot(b, "job-full-load").await?;
    wait_text(b, &bulk, "every chunk of bulk done", |t| {
        chunks(t).is_some_and(|(done, all)| done == all)
    })
    .await?;
    wait_text(
        b,
        &format!("tr[data-table='{DB}.bulk'] td.tstate"),
        "bulk done",
        |t| t == "done",
    )
    .await?;
    wait_text(b, "#pos-snapshot", "the snapshot position", |t| t.contains(':')).await?;
    // The replay catches up and the lag chart gets points (a sample every 5 s).
    wait_text(b, "#job-status", "ReadyComplete", |t| t.contains("ReadyComplete")).await?;
    wait_until(WAIT, "the lag chart to have a line", || async {
        Ok(b.find(Locator::Css("svg.chart polyline.l1")).await.is_ok())
    })
    .await?;
    screenshot(b, "job").await?;

    // Pause and resume from the page.
    wait_button(b, &page, "#do-pause").await?;
    act(b, "#do-pause").await?;
    wait_button(b, &page, "#do-resume").await?;
    wait_text(b, "#job-status", "paused", |t| t.contains("manualPaused")).await?;
    act(b, "#do-resume").await?;
    wait_button(b, &page, "#do-pause").await?;

    // Complete (cut over) once the source's writes have stopped and the replay caught up.
    stop.store(true, Ordering::SeqCst);
    if let Some(w) = writer.take() {
        w.await??;
    }
    wait_button(b, &page, "#do-complete").await?;
    act(b, "#do-complete").await?;
    wait_text(b, "#job-status", "Success", |t| t.starts_with("Success")).await?;
    wait_text(b, "#pos-cutover", "the cut-over position", |t| t.contains(':')).await?;
    // The job's own verification, per table.
    wait_text(b, "#job-verify-conclusion", "the job's verification", |t| {
        t.contains(": same") && t.contains("0 of ")
    })
    .await?;
    let body = b.find(Locator::Css("#verification")).await?.text().await?;
    assert!(
        body.contains(&format!("{DB}.bulk")) && body.contains("same"),
        "{body}"
    );

    // A comparison: the verification report shows the tables equal.
    wait_button(b, &page, "#do-compare").await?;
    act(b, "#do-compare").await?;
    wait_text(b, "#verify-conclusion", "the comparison's conclusion", |t| {
        t.contains(": same")
    })
    .await?;
    let body = b.find(Locator::Css("#verification")).await?.text().await?;
    assert!(body.contains(&format!("{DB}.bulk")), "{body}");
    assert!(
        b.find(Locator::Css("#repair-sql")).await.is_err(),
        "no repair SQL for an equal comparison"
    );

    // A planted difference: a comparison finds it, lists the keys and offers the repair SQL.
    let mut t = connect(&target()).await?;
    ferry_testkit::exec(
        &mut t,
        &format!(
            "UPDATE {DB}.bulk SET x = 'planted' WHERE id = 7; DELETE FROM {DB}.bulk WHERE id = 8; \
             INSERT INTO {DB}.bulk VALUES (900001, 'extra')"
        ),
    )
    .await?;
    wait_button(b, &page, "#do-compare").await?;
    act(b, "#do-compare").await?;
    wait_text(b, "#verify-conclusion", "the comparison's differences", |t| {
        t.contains(": different")
    })
    .await?;
    let body = b.find(Locator::Css("#verification")).await?.text().await?;
    for key in ["7", "8", "900001"] {
        assert!(
            body.lines()
                .any(|l| l.contains(&format!("{DB}.bulk")) && l.split_whitespace().any(|w| w == key)),
            "key {key} listed: {body}"
        );
    }
    screenshot_of(b, "verification", Some("#verification")).await?;
    let href = b
        .find(Locator::Css("#repair-sql"))
        .await?
        .attr("href")
        .await?
        .ok_or_else(|| anyhow!("the repair SQL link has no href"))?;
    let sql = download(b, &format!("{base}{href}")).await?;
    ferry_testkit::exec(&mut t, &sql).await?;
    b.goto(&format!("{base}/console/")).await?;
    wait_text(
        b,
        &format!("tr[data-job='{id}'] td.status"),
        "Success in the list",
        |t| t == "Success",
    )
    .await?;
    screenshot(b, "jobs").await?;

    // Delete from the page: the job and its repair SQL are gone.
    let repair_dir = data.join("repair").join(id);
    assert!(repair_dir.is_dir(), "{}", repair_dir.display());
    b.goto(&page).await?;
    act(b, "#do-delete").await?;
    wait_until(WAIT, "the job to leave the list", || async {
        Ok(b.find(Locator::Css(&format!("tr[data-job='{id}']")))
            .await
            .is_err())
    })
    .await?;
    assert!(!repair_dir.exists(), "{}", repair_dir.display());
    Ok(())
}

/// `done / all` of a table's chunks cell.
fn chunks(t: &str) -> Option<(u64, u64)> {
    let (a, b) = t.split_once('/')?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

/// Downloads a console link with the browser's session, as the browser would: an attachment.
async fn download(b: &Browser, url: &str) -> Result<String> {
    let cookie = b
        .get_named_cookie("ferry_console")
        .await
        .map_err(|e| anyhow!("the session cookie: {e}"))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let c = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    // Without the session: refused.
    assert_eq!(
        c.get(url).send().await?.status(),
        reqwest::StatusCode::UNAUTHORIZED
    );
    let r = c
        .get(url)
        .header("cookie", format!("ferry_console={}", cookie.value()))
        .send()
        .await?;
    assert_eq!(r.status(), reqwest::StatusCode::OK, "{url}");
    let disposition = r
        .headers()
        .get("content-disposition")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        disposition.starts_with("attachment; filename=\"") && disposition.ends_with("-repair.sql\""),
        "{disposition}"
    );
    let sql = r.text().await?;
    assert!(sql.starts_with("-- Ferry repair SQL"), "{sql:.200}");
    Ok(sql)
}

/// An action with the browser's session but without the CSRF token is refused (403).
async fn csrf_refused(b: &Browser, base: &str, id: &str) -> Result<()> {
    let cookie = b
        .get_named_cookie("ferry_console")
        .await
        .map_err(|e| anyhow!("the session cookie: {e}"))?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?
        .post(format!("{base}/console/jobs/{id}/action"))
        .header("cookie", format!("ferry_console={}", cookie.value()))
        .form(&[("action", "delete")])
        .send()
        .await?;
    assert_eq!(r.status(), reqwest::StatusCode::FORBIDDEN);
    Ok(())
}
