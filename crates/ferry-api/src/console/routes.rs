//! The console's routes: sign-in and sign-out, the jobs page, the job page, their polled
//! fragments (`…/live`), the action endpoint, the differing-keys download and the embedded
//! assets; the session check and the security headers around them.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Map, Value};

use super::html::{self, Frame, JobView};
use super::reads::Reads;
use super::session::{self, Session, Sessions};
use crate::auth::unix_now;
use crate::credentials::CredentialStore;
use crate::handler::{ActionHandler, ApiError};
use crate::server::ConnInfo;

const COOKIE: &str = "ferry_console";
/// The sign-in form's CSRF cookie (path `/console/login` only).
const LOGIN_COOKIE: &str = "ferry_console_login";
/// How long a sign-in form stays valid.
const LOGIN_FORM_SECONDS: i64 = 3600;
/// Forms are small: the sign-in form and the rate-limit form.
const MAX_FORM_BYTES: usize = 16 * 1024;
/// How far back the charts go.
const CHART_WINDOW_SECONDS: i64 = 24 * 3600;
/// At most about this many points per chart.
const CHART_POINTS: i64 = 300;
/// The finest chart resolution (the sampling interval of the job service).
const CHART_MIN_RESOLUTION: i64 = 5;
const JOBS_PAGE_LIMIT: i64 = 100;
/// The jobs page lists at most this many jobs.
const JOBS_MAX: usize = 1000;

const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
const JS: &str = include_str!("assets/console.js");
const CSS: &str = include_str!("assets/console.css");

struct Console {
    reads: Reads,
    credentials: CredentialStore,
    sessions: Sessions,
    /// Served over HTTPS: the cookie is `Secure`.
    secure: bool,
}

/// The console's routes (all under `/console`), to be merged into the API's router.
pub fn router(handler: Arc<dyn ActionHandler>, credentials: CredentialStore, secure: bool) -> Router {
    let state = Arc::new(Console {
        reads: Reads::new(handler),
        credentials,
        sessions: Sessions::new(),
        secure,
    });
    Router::new()
        .route("/console", get(|| async { redirect("/console/") }))
        .route("/console/", get(jobs_page))
        .route("/console/live", get(jobs_live))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", post(logout))
        .route("/console/jobs/{id}", get(job_page))
        .route("/console/jobs/{id}/live", get(job_live))
        .route("/console/jobs/{id}/action", post(job_action))
        .route(
            "/console/jobs/{id}/compare/{cid}/differences.csv",
            get(differences),
        )
        .route("/console/jobs/{id}/compare/{cid}/repair.sql", get(repair_sql))
        .route(
            "/console/static/console.js",
            get(|| async { asset(JS, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/static/console.css",
            get(|| async { asset(CSS, "text/css; charset=utf-8") }),
        )
        .route("/console/{*rest}", axum::routing::any(unknown))
        .layer(axum::middleware::map_response(security_headers))
        .with_state(state)
}

async fn security_headers(mut response: Response) -> Response {
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn asset(body: &'static str, content_type: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

fn redirect(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

fn html_page(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}

fn unauthorized() -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "sign in first: /console/login\n",
    )
        .into_response()
}

/// The session of the request's cookie.
fn session_of(c: &Console, headers: &HeaderMap) -> Option<(String, Session)> {
    let now = unix_now();
    cookie_value(headers, COOKIE)
        .into_iter()
        .find_map(|token| c.sessions.get(token, now).map(|s| (token.to_string(), s)))
}

/// Why a request is not served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Denied {
    /// A page without a session: to the sign-in page.
    SignIn,
    /// Anything else without a session: 401.
    Unauthorized,
    /// A form larger than [`MAX_FORM_BYTES`].
    TooLarge,
}

impl IntoResponse for Denied {
    fn into_response(self) -> Response {
        match self {
            Denied::SignIn => redirect("/console/login"),
            Denied::Unauthorized => unauthorized(),
            Denied::TooLarge => (
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the form is larger than {MAX_FORM_BYTES} bytes\n"),
            )
                .into_response(),
        }
    }
}

/// The session, or why there is none: a page goes to the sign-in page, anything else is 401.
fn require(c: &Console, headers: &HeaderMap, page: bool) -> Result<(String, Session), Denied> {
    session_of(c, headers).ok_or(if page {
        Denied::SignIn
    } else {
        Denied::Unauthorized
    })
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    form_urlencoded::parse(q.unwrap_or("").as_bytes())
        .into_owned()
        .take(32)
        .collect()
}

fn query_get<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

/// A notice from the query (`done=…` or `error=…`, set by the action redirect).
fn notice(pairs: &[(String, String)]) -> Option<(&'static str, String)> {
    if let Some(e) = query_get(pairs, "error") {
        return Some(("error", e.chars().take(500).collect()));
    }
    query_get(pairs, "done").map(|d| ("ok", d.chars().take(200).collect()))
}

async fn read_form(request: Request) -> Result<(HeaderMap, Vec<(String, String)>, Option<IpAddr>), Denied> {
    let (parts, body) = request.into_parts();
    let peer = parts.extensions.get::<ConnInfo>().map(|c| c.peer.ip());
    let bytes = axum::body::to_bytes(body, MAX_FORM_BYTES)
        .await
        .map_err(|_| Denied::TooLarge)?;
    let pairs = form_urlencoded::parse(&bytes).into_owned().take(32).collect();
    Ok((parts.headers, pairs, peer))
}

fn csrf_ok(session: &Session, pairs: &[(String, String)]) -> bool {
    query_get(pairs, "csrf").is_some_and(|t| session::same_secret(t, &session.csrf))
}

fn csrf_refused() -> Response {
    (
        StatusCode::FORBIDDEN,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        "the form's CSRF token is missing or wrong: reload the page and try again\n",
    )
        .into_response()
}

// ---- sign-in ----

async fn login_page(State(c): State<Arc<Console>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    if session_of(&c, &headers).is_some() {
        return redirect("/console/");
    }
    let pairs = query_pairs(q.as_deref());
    let n = notice(&pairs);
    sign_in_page(&c, StatusCode::OK, n.as_ref().map(|(k, m)| (*k, m.as_str())))
}

/// The sign-in page with a fresh login-CSRF token: in the form and in a `SameSite=Strict`
/// cookie scoped to the sign-in path, so that another site cannot sign a browser in (under the
/// other site's key) by posting the form itself: its post carries neither.
fn sign_in_page(c: &Console, status: StatusCode, notice: Option<(&str, &str)>) -> Response {
    let token = match session::random_token() {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(error = %e, "no random token for the sign-in form");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the server could not make a sign-in form; try again\n",
            )
                .into_response();
        }
    };
    let frame = Frame {
        title: "Sign in",
        session: None,
        notice,
    };
    let mut r = html_page(status, html::page(&frame, &html::sign_in(&token)));
    let cookie = format!(
        "{LOGIN_COOKIE}={token}; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age={LOGIN_FORM_SECONDS}{}",
        if c.secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

/// The values of the cookie `name` in the request.
fn cookie_value<'a>(headers: &'a HeaderMap, name: &str) -> Vec<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .filter(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .collect()
}

/// The sign-in form's token matches its cookie.
fn login_csrf_ok(headers: &HeaderMap, pairs: &[(String, String)]) -> bool {
    let Some(form) = query_get(pairs, "csrf").filter(|t| !t.is_empty()) else {
        return false;
    };
    cookie_value(headers, LOGIN_COOKIE)
        .into_iter()
        .any(|c| session::same_secret(c, form))
}

async fn login(State(c): State<Arc<Console>>, request: Request) -> Response {
    let (headers, pairs, peer) = match read_form(request).await {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let ip = peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let now = unix_now();
    let refuse = |status: StatusCode, msg: &str| sign_in_page(&c, status, Some(("error", msg)));
    if !login_csrf_ok(&headers, &pairs) {
        tracing::info!(client = %ip, "console sign-in refused: no valid sign-in form token");
        return refuse(
            StatusCode::FORBIDDEN,
            "the sign-in form has expired or was not sent from this server's sign-in page: sign in again",
        );
    }
    if !c.sessions.may_try(ip, now) {
        tracing::warn!(client = %ip, "console sign-in refused: too many failed attempts");
        return refuse(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed sign-ins from this address: wait a few minutes and try again",
        );
    }
    let id = query_get(&pairs, "secret_id").unwrap_or("").trim();
    let key = query_get(&pairs, "secret_key").unwrap_or("");
    let known = c.credentials.secret_key(id);
    // The comparison runs against something even for an unknown SecretId.
    let good = session::same_secret(known.unwrap_or("\u{0}unknown"), key) && known.is_some();
    if !good {
        c.sessions.failed(ip, now);
        tracing::info!(client = %ip, "console sign-in failed");
        return refuse(StatusCode::UNAUTHORIZED, "wrong SecretId or SecretKey");
    }
    c.sessions.succeeded(ip);
    let token = match c.sessions.create(id, now) {
        Ok((token, _)) => token,
        Err(e) => {
            tracing::warn!(error = %e, "no random token for a console session");
            return refuse(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server could not start a session; try again",
            );
        }
    };
    tracing::info!(secret_id = %id, client = %ip, "console sign-in");
    let cookie = format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session::SESSION_LIFETIME_SECONDS,
        if c.secure { "; Secure" } else { "" }
    );
    let mut r = redirect("/console/");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    // The sign-in form's token is used up.
    let spent = format!(
        "{LOGIN_COOKIE}=; Path=/console/login; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if c.secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&spent) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
    r
}

async fn logout(State(c): State<Arc<Console>>, request: Request) -> Response {
    let (headers, pairs, _) = match read_form(request).await {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let Ok((token, s)) = require(&c, &headers, false) else {
        return redirect("/console/login");
    };
    if !csrf_ok(&s, &pairs) {
        return csrf_refused();
    }
    c.sessions.remove(&token);
    let mut r = redirect("/console/login?done=signed+out");
    let cookie = format!(
        "{COOKIE}=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if c.secure { "; Secure" } else { "" }
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    tracing::info!(secret_id = %s.secret_id, "console sign-out");
    r
}

async fn unknown(State(c): State<Arc<Console>>, method: Method, headers: HeaderMap) -> Response {
    if let Err(r) = require(&c, &headers, method == Method::GET) {
        return r.into_response();
    }
    (StatusCode::NOT_FOUND, "no such console page\n").into_response()
}

// ---- the jobs page ----

struct JobsFilter {
    status: Option<i64>,
    tag: String,
}

fn jobs_filter(pairs: &[(String, String)]) -> JobsFilter {
    JobsFilter {
        status: query_get(pairs, "status").and_then(|s| s.parse().ok()),
        tag: query_get(pairs, "tag")
            .unwrap_or("")
            .trim()
            .chars()
            .take(256)
            .collect(),
    }
}

/// The jobs as DescribeMigrateJobs lists and sorts them (by CreateTime, newest first), the
/// status filter applied.
async fn list_jobs(c: &Console, s: &Session, f: &JobsFilter) -> Result<Vec<Value>, ApiError> {
    let mut out = Vec::new();
    let mut offset = 0i64;
    loop {
        let mut p = Map::new();
        p.insert("Offset".into(), json!(offset));
        p.insert("Limit".into(), json!(JOBS_PAGE_LIMIT));
        if !f.tag.is_empty() {
            let (k, v) = match f.tag.split_once('=') {
                Some((k, v)) => (k.trim(), vec![v.trim()]),
                None => (f.tag.as_str(), vec![]),
            };
            p.insert("TagFilters".into(), json!([{"TagKey": k, "TagValue": v}]));
        }
        let r = c
            .reads
            .describe("2018-03-30", "DescribeMigrateJobs", p, &s.secret_id)
            .await?;
        let page = r
            .get("JobList")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        let total = r.get("TotalCount").and_then(Value::as_i64).unwrap_or(0);
        let n = page.len() as i64;
        out.extend(page.into_iter().filter(|j| {
            f.status
                .is_none_or(|st| j.get("Status").and_then(Value::as_i64) == Some(st))
        }));
        offset += n;
        if n == 0 || offset >= total || out.len() >= JOBS_MAX {
            break;
        }
    }
    out.truncate(JOBS_MAX);
    Ok(out)
}

fn error_page(s: &Session, e: &ApiError) -> Response {
    let status = if e.code.starts_with("ResourceNotFound") {
        StatusCode::NOT_FOUND
    } else {
        StatusCode::BAD_GATEWAY
    };
    let message = e.to_string();
    let frame = Frame {
        title: "Error",
        session: Some((&s.secret_id, &s.csrf)),
        notice: Some(("error", &message)),
    };
    html_page(
        status,
        html::page(&frame, "<p><a href=\"/console/\">← Jobs</a></p>"),
    )
}

fn fragment_error(e: &ApiError) -> Response {
    html_page(
        StatusCode::OK,
        format!("<p class=\"notice error\">{}</p>", html::escape(&e.to_string())),
    )
}

async fn jobs_page(State(c): State<Arc<Console>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let (_, s) = match require(&c, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let pairs = query_pairs(q.as_deref());
    let f = jobs_filter(&pairs);
    let table = match list_jobs(&c, &s, &f).await {
        Ok(jobs) => html::jobs_table(&jobs),
        Err(e) => return error_page(&s, &e),
    };
    let live = format!("/console/live?{}", q.as_deref().unwrap_or(""));
    let n = notice(&pairs);
    let frame = Frame {
        title: "Jobs",
        session: Some((&s.secret_id, &s.csrf)),
        notice: n.as_ref().map(|(k, m)| (*k, m.as_str())),
    };
    html_page(
        StatusCode::OK,
        html::page(&frame, &html::jobs_page(f.status, &f.tag, &live, &table)),
    )
}

async fn jobs_live(State(c): State<Arc<Console>>, headers: HeaderMap, RawQuery(q): RawQuery) -> Response {
    let (_, s) = match require(&c, &headers, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let f = jobs_filter(&query_pairs(q.as_deref()));
    match list_jobs(&c, &s, &f).await {
        Ok(jobs) => html_page(StatusCode::OK, html::jobs_table(&jobs)),
        Err(e) => fragment_error(&e),
    }
}

// ---- the job page ----

/// `yyyy-mm-dd hh:mm:ss` (UTC) as UNIX seconds; `None` for "never" or a malformed value.
pub fn parse_time(s: &str) -> Option<i64> {
    let (date, time) = s.split_once(' ')?;
    let mut d = date.splitn(3, '-').map(|x| x.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|x| x.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if y < 1970 || !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    let days = ferry_core::civil::days_from_civil(y, u32::try_from(m).ok()?, u32::try_from(day).ok()?);
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// The chart window: from the job's start (or creation), at most 24 h back; the resolution
/// that gives about [`CHART_POINTS`] points.
pub fn chart_window(start: Option<i64>, now: i64) -> (i64, i64) {
    let since = start.unwrap_or(now).max(now - CHART_WINDOW_SECONDS).min(now);
    let resolution = ((now - since) / CHART_POINTS).max(CHART_MIN_RESOLUTION);
    (since, resolution)
}

async fn load_job(c: &Console, s: &Session, id: &str) -> Result<Loaded, ApiError> {
    let by_id = |id: &str| {
        let mut p = Map::new();
        p.insert("JobId".into(), json!(id));
        p
    };
    let detail = Value::Object(
        c.reads
            .describe("2021-12-06", "DescribeMigrationDetail", by_id(id), &s.secret_id)
            .await?,
    );
    let listed = c
        .reads
        .describe("2018-03-30", "DescribeMigrateJobs", by_id(id), &s.secret_id)
        .await?;
    let info = listed
        .get("JobList")
        .and_then(|l| l.get(0))
        .cloned()
        .ok_or_else(|| ApiError::job_not_exist(id))?;
    let check = Value::Object(
        c.reads
            .describe("2021-12-06", "DescribeMigrationCheckJob", by_id(id), &s.secret_id)
            .await?,
    );
    let cid = html::text(&detail, "/CompareTask/CompareTaskId");
    let report = if cid.is_empty() {
        None
    } else {
        let mut p = by_id(id);
        p.insert("CompareTaskId".into(), json!(cid));
        p.insert("DifferenceLimit".into(), json!(100));
        Some(Value::Object(
            c.reads
                .describe("2021-12-06", "DescribeCompareReport", p, &s.secret_id)
                .await?,
        ))
    };
    let start = parse_time(&html::text(&detail, "/StartTime"))
        .or_else(|| parse_time(&html::text(&detail, "/CreateTime")));
    let (since, resolution) = chart_window(start, unix_now());
    let series = c.reads.series(id, since, resolution).await?;
    let extras = Value::Object(c.reads.extras(id).await?);
    Ok(Loaded {
        detail,
        info,
        check,
        report,
        series,
        extras,
    })
}

/// The answers the job page is rendered from.
struct Loaded {
    detail: Value,
    info: Value,
    check: Value,
    report: Option<Value>,
    series: Arc<Vec<crate::SeriesSample>>,
    extras: Value,
}

impl Loaded {
    fn view(&self) -> JobView<'_> {
        JobView {
            detail: &self.detail,
            info: &self.info,
            check: &self.check,
            report: self.report.as_ref(),
            series: &self.series,
            extras: &self.extras,
        }
    }
}

async fn job_page(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(q): RawQuery,
) -> Response {
    let (_, s) = match require(&c, &headers, true) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let loaded = match load_job(&c, &s, &id).await {
        Ok(v) => v,
        Err(e) => return error_page(&s, &e),
    };
    let view = loaded.view();
    let pairs = query_pairs(q.as_deref());
    let n = notice(&pairs);
    let title = format!("Job {id}");
    let frame = Frame {
        title: &title,
        session: Some((&s.secret_id, &s.csrf)),
        notice: n.as_ref().map(|(k, m)| (*k, m.as_str())),
    };
    let live = format!("/console/jobs/{}/live", html::url_part(&id));
    html_page(
        StatusCode::OK,
        html::page(&frame, &html::job_page(&view, &s.csrf, &live)),
    )
}

async fn job_live(State(c): State<Arc<Console>>, headers: HeaderMap, Path(id): Path<String>) -> Response {
    let (_, s) = match require(&c, &headers, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    match load_job(&c, &s, &id).await {
        Ok(loaded) => html_page(StatusCode::OK, html::job_live(&loaded.view(), &id)),
        Err(e) => fragment_error(&e),
    }
}

/// The action of a console form: API version, action name and parameters.
pub fn action_call(
    id: &str,
    pairs: &[(String, String)],
) -> Result<(&'static str, &'static str, Map<String, Value>), String> {
    let mut p = Map::new();
    p.insert("JobId".into(), json!(id));
    let action = query_get(pairs, "action").unwrap_or("");
    let (version, name) = match action {
        "check" => ("2018-03-30", "CreateMigrateCheckJob"),
        "start" => ("2018-03-30", "StartMigrateJob"),
        "stop" => ("2018-03-30", "StopMigrateJob"),
        "complete" => ("2018-03-30", "CompleteMigrateJob"),
        "delete" => ("2018-03-30", "DeleteMigrateJob"),
        "pause" => ("2021-12-06", "PauseMigrateJob"),
        "resume" => ("2021-12-06", "ResumeMigrateJob"),
        "compare" => ("2021-12-06", "CreateCompareTask"),
        "rate" => {
            for field in ["DumpThread", "DumpRps", "LoadThread", "LoadRps", "SinkerThread"] {
                let Some(v) = query_get(pairs, field).map(str::trim).filter(|v| !v.is_empty()) else {
                    continue;
                };
                // The form shows the current values: only the changed ones are sent.
                let was = query_get(pairs, &format!("{field}_was")).map(str::trim);
                if was == Some(v) {
                    continue;
                }
                let n: i64 = v.parse().map_err(|_| {
                    format!(
                        "{field} must be a whole number, not {:?}",
                        v.chars().take(20).collect::<String>()
                    )
                })?;
                if n == 0 && field.ends_with("Rps") {
                    return Err(format!(
                        "{field} 0 (unlimited) cannot be set by ModifyMigrateRateLimit, which takes 1 to \
                         50000000 rows/s: lift the limit with ModifyMigrateJob's Ferry.RowsPerSecond 0 while \
                         the job is not running"
                    ));
                }
                p.insert(field.into(), json!(n));
            }
            if p.len() == 1 {
                return Err("no limit changed: edit a value first".into());
            }
            ("2021-12-06", "ModifyMigrateRateLimit")
        }
        other => {
            return Err(format!(
            "unknown action {:?}: use check, start, pause, resume, rate, complete, compare, stop or delete",
            other.chars().take(20).collect::<String>()
        ))
        }
    };
    Ok((version, name, p))
}

async fn job_action(State(c): State<Arc<Console>>, Path(id): Path<String>, request: Request) -> Response {
    let (headers, pairs, _) = match read_form(request).await {
        Ok(f) => f,
        Err(r) => return r.into_response(),
    };
    let (_, s) = match require(&c, &headers, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    if !csrf_ok(&s, &pairs) {
        return csrf_refused();
    }
    let back = format!("/console/jobs/{}", url_path(&id));
    let (version, action, params) = match action_call(&id, &pairs) {
        Ok(a) => a,
        Err(msg) => return redirect(&format!("{back}?error={}", url_path(&msg))),
    };
    let done = match c.reads.act(version, action, params, &s.secret_id).await {
        // A comparison is created, then started.
        Ok(out) if action == "CreateCompareTask" => {
            let cid = out
                .get("CompareTaskId")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let mut p = Map::new();
            p.insert("JobId".into(), json!(id));
            p.insert("CompareTaskId".into(), json!(cid));
            c.reads
                .act("2021-12-06", "StartCompare", p, &s.secret_id)
                .await
                .map(|_| out)
        }
        other => other,
    };
    match done {
        Ok(out) => {
            tracing::info!(secret_id = %s.secret_id, job_id = %id, action, "console action");
            if action == "DeleteMigrateJob" {
                return redirect(&format!("/console/?done={}", url_path(&format!("deleted {id}"))));
            }
            let extra = out
                .get("CompareTaskId")
                .and_then(Value::as_str)
                .map(|c| format!(" ({c})"))
                .unwrap_or_default();
            redirect(&format!("{back}?done={}", url_path(&format!("{action}{extra}"))))
        }
        Err(e) => redirect(&format!("{back}?error={}", url_path(&e.to_string()))),
    }
}

fn url_path(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

async fn differences(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    let (_, s) = match require(&c, &headers, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let mut p = Map::new();
    p.insert("JobId".into(), json!(id));
    p.insert("CompareTaskId".into(), json!(cid));
    p.insert("DifferenceLimit".into(), json!(100_000));
    match c
        .reads
        .describe("2021-12-06", "DescribeCompareReport", p, &s.secret_id)
        .await
    {
        Ok(r) => {
            let mut resp = Response::new(Body::from(html::differences_csv(&Value::Object(r))));
            let h = resp.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/csv; charset=utf-8"),
            );
            if let Some(v) = attachment(&[&id, &cid, "differences"], "csv") {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Err(e) => (StatusCode::NOT_FOUND, format!("{e}\n")).into_response(),
    }
}

/// A download's `Content-Disposition`: an attachment named from `parts`, keeping only
/// letters, digits, `-`, `_` and `.`.
pub fn attachment(parts: &[&str], ext: &str) -> Option<HeaderValue> {
    let name: String = format!("{}.{ext}", parts.join("-"))
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")).ok()
}

async fn repair_sql(
    State(c): State<Arc<Console>>,
    headers: HeaderMap,
    Path((id, cid)): Path<(String, String)>,
) -> Response {
    let (_, s) = match require(&c, &headers, false) {
        Ok(s) => s,
        Err(r) => return r.into_response(),
    };
    let not_found = |msg: String| (StatusCode::NOT_FOUND, format!("{msg}\n")).into_response();
    let path = match c.reads.repair_sql(&id, &cid).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return not_found(format!(
                "compare task {cid} of job {id} has no repair SQL (it found no difference, compared some \
                 columns only, or does not exist)"
            ))
        }
        Err(e) => return not_found(e.to_string()),
    };
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) => {
            tracing::warn!(error = %e, "opening a repair SQL file");
            return not_found(format!("the repair SQL of {cid} cannot be read"));
        }
    };
    tracing::info!(secret_id = %s.secret_id, job_id = %id, compare_task_id = %cid, "console repair SQL download");
    let stream = futures_util::stream::unfold(file, |mut f| async move {
        use tokio::io::AsyncReadExt as _;
        let mut buf = vec![0u8; 64 * 1024];
        match f.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(buf), f))
            }
            Err(e) => Some((Err(e), f)),
        }
    });
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/sql; charset=utf-8"),
    );
    if let Some(v) = attachment(&[&id, &cid, "repair"], "sql") {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn times_parse_as_utc() {
        assert_eq!(parse_time("2018-05-24 15:06:03"), Some(1_527_174_363));
        assert_eq!(parse_time("0000-00-00 00:00:00"), None);
        assert_eq!(parse_time("garbage"), None);
        assert_eq!(parse_time("2018-13-01 00:00:00"), None);
    }

    #[test]
    fn chart_window_is_the_jobs_life_up_to_a_day() {
        assert_eq!(chart_window(Some(1000), 1600), (1000, 5));
        assert_eq!(chart_window(None, 1600), (1600, 5));
        let (since, res) = chart_window(Some(0), 200_000);
        assert_eq!(since, 200_000 - 86_400);
        assert_eq!(res, 288);
    }

    #[test]
    fn download_names_are_safe() {
        let v = attachment(&["dts-1", "../../etc\"x\r\n", "repair"], "sql").unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "attachment; filename=\"dts-1-....etcx-repair.sql\""
        );
    }

    #[test]
    fn form_actions_map_to_api_actions() {
        let (v, a, p) = action_call("dts-1", &pairs(&[("action", "pause")])).unwrap();
        assert_eq!((v, a), ("2021-12-06", "PauseMigrateJob"));
        assert_eq!(p["JobId"], "dts-1");
        let (_, a, p) = action_call(
            "dts-1",
            &pairs(&[
                ("action", "rate"),
                ("DumpThread", "4"),
                ("DumpThread_was", "2"),
                ("DumpRps", "0"),
                ("DumpRps_was", "0"),
                ("SinkerThread", " 8 "),
            ]),
        )
        .unwrap();
        assert_eq!(a, "ModifyMigrateRateLimit");
        assert_eq!(p["DumpThread"], 4);
        assert_eq!(p["SinkerThread"], 8);
        assert!(p.get("DumpRps").is_none(), "unchanged");
        let e = action_call(
            "dts-1",
            &pairs(&[("action", "rate"), ("DumpRps", "0"), ("DumpRps_was", "3000")]),
        )
        .unwrap_err();
        assert!(
            e.contains("DumpRps 0") && e.contains("Ferry.RowsPerSecond"),
            "{e}"
        );
        assert!(action_call(
            "dts-1",
            &pairs(&[("action", "rate"), ("DumpThread", "2"), ("DumpThread_was", "2")])
        )
        .unwrap_err()
        .contains("no limit changed"));
        assert!(
            action_call("dts-1", &pairs(&[("action", "rate"), ("DumpThread", "x")]))
                .unwrap_err()
                .contains("DumpThread")
        );
        assert!(action_call("dts-1", &pairs(&[("action", "nuke")]))
            .unwrap_err()
            .contains("unknown action"));
    }
}
