//! The console's HTML, rendered on the server from the answers of the API's own actions (pure:
//! JSON in, markup out). Every value from a job is escaped; no inline script or style (the CSP
//! forbids both): progress is a `<progress>` element, behaviour is in `console.js`.

use std::fmt::Write as _;

use serde_json::Value;

use super::chart::{self, Line, Unit};
use crate::handler::SeriesSample;

/// Escapes text for HTML content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Escapes a path segment or query value for a URL inside an attribute.
pub fn url_part(s: &str) -> String {
    escape(&form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>())
}

/// A string at a JSON pointer (numbers shown as they are), `""` when absent.
pub fn text(v: &Value, pointer: &str) -> String {
    match v.pointer(pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    }
}

/// Tencent's names of the job status codes (DescribeMigrateJobs `Status`).
pub const STATUS_NAMES: &[(i64, &str)] = &[
    (1, "Creating"),
    (2, "Created"),
    (3, "Checking"),
    (4, "CheckPass"),
    (5, "CheckNotPass"),
    (6, "ReadyRun"),
    (7, "Running"),
    (8, "ReadyComplete"),
    (9, "Success"),
    (10, "Failed"),
    (11, "Stopping"),
    (12, "Completing"),
];

/// The name of a status code.
pub fn status_name(code: i64) -> &'static str {
    STATUS_NAMES
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("Unknown", |(_, n)| *n)
}

/// A time as the API gives it, `—` for "never".
fn when(t: &str) -> String {
    if t.is_empty() || t.starts_with("0000-") {
        "—".to_string()
    } else {
        escape(t)
    }
}

/// What the page around the content needs.
pub struct Frame<'a> {
    pub title: &'a str,
    /// The signed-in SecretId and the session's CSRF token (none on the sign-in page).
    pub session: Option<(&'a str, &'a str)>,
    /// A notice at the top (`ok` or `error` and its text).
    pub notice: Option<(&'a str, &'a str)>,
}

/// A whole page.
pub fn page(frame: &Frame<'_>, body: &str) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{} · Ferry console</title><link rel=\"stylesheet\" href=\"/console/static/console.css\">\
         <script src=\"/console/static/console.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"/console/\">Ferry console</a>",
        escape(frame.title)
    );
    if let Some((secret_id, csrf)) = frame.session {
        let _ = write!(
            out,
            "<form class=\"signout\" method=\"post\" action=\"/console/logout\">\
             <span class=\"who\">{}</span><input type=\"hidden\" name=\"csrf\" value=\"{}\">\
             <button type=\"submit\">Sign out</button></form>",
            escape(secret_id),
            escape(csrf)
        );
    }
    out.push_str("</header><main>");
    if let Some((kind, msg)) = frame.notice {
        let _ = write!(
            out,
            "<p class=\"notice {}\" role=\"status\">{}</p>",
            if kind == "ok" { "ok" } else { "error" },
            escape(msg)
        );
    }
    out.push_str(body);
    out.push_str("</main></body></html>");
    out
}

/// The sign-in form, with its login-CSRF token.
pub fn sign_in(csrf: &str) -> String {
    format!(
        "<h1>Sign in</h1><form class=\"signin\" method=\"post\" action=\"/console/login\">\
     <input type=\"hidden\" name=\"csrf\" value=\"{}\"><label>SecretId <input name=\"secret_id\" autocomplete=\"username\" required></label>\
     <label>SecretKey <input name=\"secret_key\" type=\"password\" autocomplete=\"current-password\" required></label>\
     <button type=\"submit\" id=\"signin\">Sign in</button></form>\
     <p class=\"hint\">Use an API key pair of this server: <code>ferry serve</code> prints where it \
     generated one (<code>credentials.toml</code> in its data directory), or the pairs configured \
     in <code>ferry.toml</code>.</p>",
        escape(csrf)
    )
}

/// The jobs page's filter form and the live table's container.
pub fn jobs_page(status: Option<i64>, tag: &str, live_url: &str, table: &str) -> String {
    let mut out = String::from("<h1>Jobs</h1><form class=\"filter\" method=\"get\" action=\"/console/\">");
    out.push_str("<label>Status <select name=\"status\"><option value=\"\">any</option>");
    for (code, name) in STATUS_NAMES {
        let _ = write!(
            out,
            "<option value=\"{code}\"{}>{name}</option>",
            if status == Some(*code) { " selected" } else { "" }
        );
    }
    let _ = write!(
        out,
        "</select></label><label>Tag <input name=\"tag\" value=\"{}\" placeholder=\"key or key=value\"></label>\
         <button type=\"submit\">Filter</button></form><div id=\"live\" data-live=\"{}\">{table}</div>",
        escape(tag),
        escape(live_url)
    );
    out
}

/// The jobs table (DescribeMigrateJobs' `JobList`, already filtered and sorted).
pub fn jobs_table(jobs: &[Value]) -> String {
    if jobs.is_empty() {
        return "<p class=\"empty\">No job matches. Create one with <code>ferry api</code> or an SDK \
                (CreateMigrateJob).</p>"
            .to_string();
    }
    let mut out = String::from(
        "<table class=\"jobs\"><thead><tr><th>Name</th><th>Id</th><th>Status</th><th>Phase</th>\
         <th>Progress</th><th>Lag</th><th>Last error</th><th>Created</th><th>Started</th></tr></thead><tbody>",
    );
    for j in jobs {
        let id = text(j, "/JobId");
        let code = j.get("Status").and_then(Value::as_i64).unwrap_or(0);
        let step_now = j.pointer("/Detail/StepNow").and_then(Value::as_i64).unwrap_or(0);
        let phase = if step_now > 0 {
            text(j, &format!("/Detail/StepInfo/{}/StepName", step_now - 1))
        } else {
            String::new()
        };
        let progress: u64 = text(j, "/Detail/Progress").parse().unwrap_or(0);
        let _ = write!(
            out,
            "<tr data-job=\"{id_attr}\"><td><a href=\"/console/jobs/{id_url}\">{name}</a></td><td><code>{id_attr}</code></td>\
             <td class=\"status s{code}\">{status}</td><td>{phase}</td>\
             <td><progress max=\"100\" value=\"{progress}\"></progress> {progress}%</td><td>{lag}</td>\
             <td class=\"err\">{err}</td><td>{created}</td><td>{started}</td></tr>",
            id_attr = escape(&id),
            id_url = url_part(&id),
            name = escape(&text(j, "/JobName")),
            status = status_name(code),
            phase = escape(&phase),
            lag = lag_text(j.pointer("/Detail/SecondsBehindMaster"), j.pointer("/Detail/MasterSlaveDistance"), code),
            err = escape(&text(j, "/ErrorInfo/0/ErrorLog")),
            created = when(&text(j, "/CreateTime")),
            started = when(&text(j, "/StartTime")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

fn lag_text(seconds: Option<&Value>, mb: Option<&Value>, code: i64) -> String {
    if !matches!(code, 7 | 8 | 12) {
        return "—".into();
    }
    let s = seconds.and_then(Value::as_i64).unwrap_or(0);
    match mb.and_then(Value::as_i64) {
        Some(m) if m >= 0 => format!("{s} s · {m} MB"),
        _ => format!("{s} s · ? MB"),
    }
}

/// What the job page shows (the answers of the API's actions).
pub struct JobView<'a> {
    /// DescribeMigrationDetail.
    pub detail: &'a Value,
    /// DescribeMigrateJobs' entry of the job.
    pub info: &'a Value,
    /// DescribeMigrationCheckJob.
    pub check: &'a Value,
    /// DescribeCompareReport of the last comparison, when there is one.
    pub report: Option<&'a Value>,
    pub series: &'a [SeriesSample],
    /// The handler's extras of the job ([`crate::ActionHandler::job_extras`]).
    pub extras: &'a Value,
}

/// The job page: header, actions and the live part.
pub fn job_page(v: &JobView<'_>, csrf: &str, live_url: &str) -> String {
    let id = text(v.detail, "/JobId");
    let mut out = String::new();
    let _ = write!(
        out,
        "<p><a href=\"/console/\">← Jobs</a></p><h1>{} <code>{}</code></h1>",
        escape(&text(v.detail, "/JobName")),
        escape(&id)
    );
    out.push_str(&actions(v.detail, &id, csrf));
    let _ = write!(
        out,
        "<div id=\"live\" data-live=\"{}\">{}</div>",
        escape(live_url),
        job_live(v, &id)
    );
    out
}

/// The action forms allowed in the job's state (each asks for a confirmation).
fn actions(detail: &Value, id: &str, csrf: &str) -> String {
    let allowed: Vec<&str> = detail
        .pointer("/Action/AllowedAction")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let action_url = format!("/console/jobs/{}/action", url_part(id));
    let form = |name: &str, label: &str, confirm: &str, extra: &str| {
        format!(
            "<form class=\"action\" method=\"post\" action=\"{action_url}\" data-confirm=\"{}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"action\" value=\"{name}\">\
             {extra}<button type=\"submit\" id=\"do-{name}\">{label}</button></form>",
            escape(confirm),
            escape(csrf)
        )
    };
    let mut out = String::from("<section class=\"actions\"><h2>Actions</h2>");
    let has = |a: &str| allowed.contains(&a);
    if has("CreateMigrateCheckJob") {
        out.push_str(&form("check", "Run the pre-check", "Run the pre-check now?", ""));
    }
    if has("StartMigrateJob") {
        out.push_str(&form("start", "Start", "Start the migration now?", ""));
    }
    if has("PauseMigrateJob") {
        out.push_str(&form(
            "pause",
            "Pause",
            "Pause the job? Capture and apply stop until you resume.",
            "",
        ));
    }
    if has("ResumeMigrateJob") {
        out.push_str(&form("resume", "Resume", "Resume the job?", ""));
    }
    if has("CompleteMigrateJob") {
        out.push_str(&form(
            "complete",
            "Complete (cut over)",
            "Complete the job? Stop writes to the source first: the replay applies what is left and ends.",
            "",
        ));
    }
    if has("CreateCompareTask") {
        out.push_str(&form(
            "compare",
            "Run a comparison",
            "Compare the source and the target now?",
            "",
        ));
    }
    if has("ModifyMigrateRateLimit") {
        let cur = |k: &str| text(detail, &format!("/MigrateOption/RateLimit/{k}"));
        let field = |name: &str, label: &str, min: u32, max: u32| {
            let v = escape(&cur(name));
            format!(
                "<label>{label} <input name=\"{name}\" type=\"number\" min=\"{min}\" max=\"{max}\" value=\"{v}\"></label>\
                 <input type=\"hidden\" name=\"{name}_was\" value=\"{v}\">"
            )
        };
        let extra = [
            field("DumpThread", "Threads", 1, 16),
            field("DumpRps", "Rows/s (0: unlimited)", 0, 50_000_000),
            field("SinkerThread", "Apply workers", 1, 64),
        ]
        .concat();
        out.push_str(&form(
            "rate",
            "Change limits",
            "Change the job's rate limits and apply workers?",
            &extra,
        ));
    }
    if has("StopMigrateJob") {
        out.push_str(&form(
            "stop",
            "Stop",
            "Stop the job? It ends Failed and cannot be resumed.",
            "",
        ));
    }
    if has("DeleteMigrateJob") {
        out.push_str(&form(
            "delete",
            "Delete",
            "Delete the job and its history? This cannot be undone.",
            "",
        ));
    }
    if allowed.is_empty() {
        out.push_str("<p class=\"empty\">No action is allowed in this state.</p>");
    }
    out.push_str("</section>");
    out
}

/// The part of the job page refreshed by polling.
pub fn job_live(v: &JobView<'_>, id: &str) -> String {
    let d = v.detail;
    let mut out = String::new();
    let code = v.info.get("Status").and_then(Value::as_i64).unwrap_or(0);
    let progress: u64 = text(v.info, "/Detail/Progress").parse().unwrap_or(0);
    let _ = write!(
        out,
        "<section class=\"summary\"><dl><dt>Status</dt><dd class=\"status s{code}\" id=\"job-status\" data-status=\"{code}-{}\">{} ({})</dd>\
         <dt>Progress</dt><dd><progress max=\"100\" value=\"{progress}\"></progress> <span id=\"job-progress\">{progress}%</span></dd>\
         <dt>Lag</dt><dd id=\"job-lag\">{}</dd><dt>Created</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>Ended</dt><dd>{}</dd></dl>",
        escape(&text(d, "/Status")),
        status_name(code),
        escape(&text(d, "/Status")),
        lag_text(d.pointer("/StepInfo/SecondsBehindMaster"), d.pointer("/StepInfo/MasterSlaveDistance"), code),
        when(&text(d, "/CreateTime")),
        when(&text(d, "/StartTime")),
        when(&text(d, "/EndTime")),
    );
    let brief = text(d, "/BriefMsg");
    if !brief.is_empty() {
        let _ = write!(
            out,
            "<p class=\"notice error\" id=\"job-error\">{}</p>",
            escape(&brief)
        );
    }
    out.push_str("</section>");

    out.push_str(
        "<section><h2>Steps</h2><table class=\"steps\"><thead><tr><th>#</th><th>Step</th><th>State</th>\
                  <th>Progress</th><th>Started</th><th>Finished</th><th>Message</th></tr></thead><tbody>",
    );
    for s in d
        .pointer("/StepInfo/StepInfo")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let pct = s.get("Percent").and_then(Value::as_i64).unwrap_or(0);
        let _ = write!(
            out,
            "<tr data-step=\"{}\"><td>{}</td><td>{}</td><td class=\"step {st}\">{st}</td>\
             <td><progress max=\"100\" value=\"{pct}\"></progress> {pct}%</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(s, "/StepId")),
            escape(&text(s, "/StepNo")),
            escape(&text(s, "/StepName")),
            when(&text(s, "/StartTime")),
            when(&text(s, "/FinishTime")),
            escape(&text(s, "/StepMessage")),
            st = escape(&text(s, "/Status")),
        );
    }
    out.push_str("</tbody></table></section>");
    out.push_str(&tables_progress(v.extras));

    out.push_str("<section class=\"charts\"><h2>Lag and throughput</h2>");
    let line = |label, class, f: fn(&SeriesSample) -> f64| Line {
        label,
        class,
        points: v.series.iter().map(|s| (s.t, f(s))).collect(),
    };
    out.push_str(&chart::render(
        "Seconds behind the source",
        Unit::Seconds,
        &[line("seconds behind", "l1", |s| s.seconds_behind)],
    ));
    out.push_str(&chart::render(
        "Binlog bytes behind the source",
        Unit::Bytes,
        &[line("bytes behind", "l2", |s| s.bytes_behind)],
    ));
    out.push_str(&chart::render(
        "Events and rows per second",
        Unit::PerSecond,
        &[
            line("events/s", "l3", |s| s.events_per_second),
            line("rows/s", "l4", |s| s.rows_per_second),
        ],
    ));
    out.push_str("</section>");

    out.push_str(&owner(v.extras));
    out.push_str(&positions(v.extras));
    out.push_str(&errors(v.extras));
    out.push_str(&endpoints(d));
    out.push_str(&check_items(v.check));
    out.push_str(&verification(d, v.report, v.extras, id));
    out
}

/// A byte count for people (`468 B`, `2.38 MiB`), as the charts write it.
pub fn human_bytes(n: u64) -> String {
    chart::format_value(n as f64, Unit::Bytes)
}

fn num(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer).and_then(Value::as_u64).unwrap_or(0)
}

/// The full load's progress per table.
fn tables_progress(x: &Value) -> String {
    let tables = x
        .get("Tables")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut out = String::from("<section id=\"tables\"><h2>Full load by table</h2>");
    if tables.is_empty() {
        out.push_str("<p class=\"empty\">No full load planned yet.</p></section>");
        return out;
    }
    out.push_str(
        "<table class=\"tables\"><thead><tr><th>Table</th><th>State</th><th>Chunks</th><th>Rows</th>\
         <th>Bytes</th><th>Time left</th></tr></thead><tbody>",
    );
    for t in &tables {
        let (chunks, done) = (num(t, "/Chunks"), num(t, "/ChunksDone"));
        let pct = (done.min(chunks) * 100).checked_div(chunks).unwrap_or(0);
        let rows = num(t, "/Rows");
        let est = num(t, "/EstimatedRows").max(rows);
        let eta = t
            .get("EtaSeconds")
            .and_then(Value::as_u64)
            .map_or("—".to_string(), |s| {
                format!("about {}", chart::format_value(s as f64, Unit::Seconds))
            });
        let _ = write!(
            out,
            "<tr data-table=\"{name}\"><td>{name}</td><td class=\"tstate {state}\">{state}</td>\
             <td><progress max=\"100\" value=\"{pct}\"></progress> <span class=\"chunks\">{done} / {chunks}</span></td>\
             <td>{rows} of about {est}</td><td>{bytes}</td><td>{eta}</td></tr>",
            name = escape(&text(t, "/Table")),
            state = escape(&text(t, "/State")),
            bytes = human_bytes(num(t, "/Bytes")),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// The node running the job in cluster mode (the extras' `Owner`; nothing with one node).
fn owner(x: &Value) -> String {
    let Some(o) = x.get("Owner").filter(|o| o.is_object()) else {
        return String::new();
    };
    let node = text(o, "/Node");
    if node.is_empty() {
        return "<p id=\"owner\">Runs on: <em>no node holds its lease now</em> (the next node to \
                claim it runs it)</p>"
            .to_string();
    }
    format!(
        "<p id=\"owner\">Runs on: node <code>{}</code> (lease epoch {}, until {})</p>",
        escape(&node),
        o.get("Epoch").and_then(Value::as_u64).unwrap_or(0),
        escape(&text(o, "/LeaseUntil"))
    )
}

/// Snapshot, start, applied and cut-over positions.
fn positions(x: &Value) -> String {
    let mut out = String::from("<section id=\"positions\"><h2>Positions</h2><dl class=\"positions\">");
    for (label, key) in [
        ("Full load snapshot", "Snapshot"),
        ("Start (Ferry.StartPosition)", "Start"),
        ("Applied (replay checkpoint)", "Applied"),
        ("Consistent after", "ConsistentAfter"),
        ("Cut-over", "CutOver"),
    ] {
        let v = text(x, &format!("/Positions/{key}"));
        if v.is_empty() && matches!(key, "Start" | "ConsistentAfter") {
            continue;
        }
        let _ = write!(
            out,
            "<dt>{label}</dt><dd id=\"pos-{}\"><code>{}</code></dd>",
            key.to_lowercase(),
            if v.is_empty() {
                "—".to_string()
            } else {
                escape(&v)
            }
        );
    }
    out.push_str("</dl></section>");
    out
}

/// The outage being retried, the retry count and the last errors.
fn errors(x: &Value) -> String {
    let mut out = String::from("<section id=\"errors\"><h2>Errors and retries</h2><dl class=\"errors\">");
    if let Some(p) = x.pointer("/Errors/Current").filter(|p| p.is_object()) {
        let side = text(p, "/Side");
        let gives_up = text(p, "/GivesUpAt");
        let _ = write!(
            out,
            "<dt>Now</dt><dd class=\"err\" id=\"err-current\">{}: {} since {} UTC, attempt {}{}: {}</dd>",
            escape(&text(p, "/What")),
            if side.is_empty() {
                "a server is failing".to_string()
            } else {
                format!("the {} is failing", escape(&side))
            },
            escape(&text(p, "/Since")),
            escape(&text(p, "/Attempt")),
            if gives_up.is_empty() {
                String::new()
            } else {
                format!(", gives up at {} UTC", escape(&gives_up))
            },
            escape(&text(p, "/Error")),
        );
    }
    let _ = write!(
        out,
        "<dt>Transient failures retried</dt><dd id=\"err-retries\">{}</dd>",
        num(x, "/Errors/Retries")
    );
    let last = text(x, "/Errors/LastRetryError");
    if !last.is_empty() {
        let _ = write!(
            out,
            "<dt>Last retried error</dt><dd class=\"err\">{} <span class=\"when\">({} UTC)</span></dd>",
            escape(&last),
            escape(&text(x, "/Errors/LastErrorAt"))
        );
    }
    let runs = num(x, "/Errors/RunRetries");
    if runs > 0 {
        let _ = write!(
            out,
            "<dt>Job runs retried (transient failure)</dt><dd id=\"err-run-retries\">{runs}</dd>"
        );
    }
    let msg = text(x, "/Errors/Message");
    if !msg.is_empty() {
        let _ = write!(out, "<dt>Job error</dt><dd class=\"err\">{}</dd>", escape(&msg));
    }
    out.push_str("</dl></section>");
    out
}

fn endpoints(d: &Value) -> String {
    let mut out = String::from(
        "<section><h2>Endpoints</h2><table class=\"endpoints\"><thead><tr><th></th><th>Type</th><th>Access</th>\
         <th>Host</th><th>Port</th><th>User</th></tr></thead><tbody>",
    );
    for (label, key) in [("Source", "SrcInfo"), ("Target", "DstInfo")] {
        let _ = write!(
            out,
            "<tr><th>{label}</th><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(d, &format!("/{key}/DatabaseType"))),
            escape(&text(d, &format!("/{key}/AccessType"))),
            escape(&text(d, &format!("/{key}/Info/0/Host"))),
            escape(&text(d, &format!("/{key}/Info/0/Port"))),
            escape(&text(d, &format!("/{key}/Info/0/User"))),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

fn check_items(c: &Value) -> String {
    let mut out = format!(
        "<section><h2>Pre-check</h2><p id=\"check-brief\">{}</p>",
        escape(&text(c, "/BriefMsg"))
    );
    let items = c
        .get("StepInfo")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if items.is_empty() {
        out.push_str("</section>");
        return out;
    }
    out.push_str("<table class=\"check\"><thead><tr><th>Item</th><th>Result</th><th>Message and fix</th></tr></thead><tbody>");
    for it in &items {
        let result = match text(it, "/StepStatus").as_str() {
            "pass" => "PASSED",
            "warning" => "WARNING",
            _ => "FAILED",
        };
        let _ = write!(
            out,
            "<tr><td>{}</td><td class=\"check {result}\">{result}{}</td><td>{}</td></tr>",
            escape(&text(it, "/StepName")),
            if it.get("HasSkipped").and_then(Value::as_bool) == Some(true) {
                " (skipped)"
            } else {
                ""
            },
            escape(&text(it, "/StepMessage")),
        );
    }
    out.push_str("</tbody></table></section>");
    out
}

/// The per-table rows of a report (DescribeCompareReport's `FullProgress` items) as a table.
fn table_rows(items: Option<&Value>) -> String {
    let mut out = String::from(
        "<table class=\"verify\"><thead><tr><th>Table</th><th>Conclusion</th><th>Source rows</th>\
                  <th>Target rows</th><th>Differing rows</th></tr></thead><tbody>",
    );
    for t in items.and_then(Value::as_array).into_iter().flatten() {
        let _ = write!(
            out,
            "<tr><td>{}.{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&text(t, "/Db")),
            escape(&text(t, "/Table")),
            escape(&text(t, "/Conclusion")),
            escape(&text(t, "/SrcItem")),
            escape(&text(t, "/DstItem")),
            escape(&text(t, "/RowCount")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The rows of a differing-keys table (DescribeCompareReport's `Difference` items).
fn diff_rows(diffs: &[Value]) -> String {
    let mut out = String::new();
    for k in diffs {
        let _ = write!(
            out,
            "<tr><td>{}.{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
            escape(&text(k, "/Db")),
            escape(&text(k, "/Table")),
            escape(&text(k, "/IndexName")),
            escape(&text(k, "/LowerBoundary")),
            escape(&text(k, "/SrcItem")),
            escape(&text(k, "/DstItem")),
        );
    }
    out
}

/// The job's own verification (ConsistencyType 2–4), from the extras' `JobVerification`.
fn job_verification(extras: &Value) -> String {
    let Some(v) = extras.get("JobVerification").filter(|v| v.is_object()) else {
        return String::new();
    };
    let mut out = String::from("<h3>The job's verification</h3>");
    let _ = write!(
        out,
        "<p id=\"job-verify-conclusion\">At the end of the job: <strong>{}</strong>; {} of {} tables differ, \
         {} rows differ, {} objects differ; finished {}.</p>",
        escape(&text(v, "/Conclusion")),
        escape(&text(v, "/DifferentTables")),
        escape(&text(v, "/TotalTables")),
        escape(&text(v, "/DifferentRows")),
        escape(&text(v, "/DifferentObjects")),
        when(&text(v, "/FinishedAt")),
    );
    out.push_str(&table_rows(v.get("Tables")));
    let diffs = v
        .get("Differences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !diffs.is_empty() {
        let _ = write!(
            out,
            "<h3>Differing keys found by the job ({} shown of {})</h3>\
             <p>Run a comparison for the repair SQL of what differs now.</p>\
             <table class=\"diffs\" id=\"job-verify-keys\"><thead><tr><th>Table</th><th>Key columns</th><th>Key</th>\
             <th>Source</th><th>Target</th></tr></thead><tbody>",
            diffs.len(),
            escape(&text(v, "/DifferenceTotal")),
        );
        out.push_str(&diff_rows(&diffs));
        out.push_str("</tbody></table>");
    }
    for t in v.get("Skipped").and_then(Value::as_array).into_iter().flatten() {
        let _ = write!(
            out,
            "<p class=\"err\">Not compared: {}.{}: {}</p>",
            escape(&text(t, "/Db")),
            escape(&text(t, "/Table")),
            escape(&text(t, "/Reason")),
        );
    }
    out
}

fn verification(d: &Value, report: Option<&Value>, extras: &Value, id: &str) -> String {
    let mut out = String::from("<section id=\"verification\"><h2>Verification</h2>");
    let own = job_verification(extras);
    out.push_str(&own);
    let cid = text(d, "/CompareTask/CompareTaskId");
    let Some(r) = report.filter(|_| !cid.is_empty()) else {
        if own.is_empty() {
            out.push_str("<p class=\"empty\">No comparison has run. Use “Run a comparison” (or a job with ConsistencyType 2–4 verifies at its end).</p>");
        }
        out.push_str("</section>");
        return out;
    };
    if !own.is_empty() {
        out.push_str("<h3>The last comparison</h3>");
    }
    let _ = write!(
        out,
        "<p id=\"verify-conclusion\">Comparison <code>{}</code>: <strong>{}</strong> ({}); {} of {} tables differ, {} rows differ; finished {}.</p>",
        escape(&cid),
        escape(&text(r, "/Abstract/Conclusion")),
        escape(&text(d, "/CompareTask/Status")),
        escape(&text(r, "/Abstract/DifferentTables")),
        escape(&text(r, "/Abstract/TotalTables")),
        escape(&text(r, "/Abstract/DifferentRows")),
        when(&text(r, "/Abstract/FinishedAt")),
    );
    out.push_str(&table_rows(r.pointer("/Detail/FullProgress/Items")));
    let diffs = r
        .pointer("/Detail/Difference/Items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let repair = (text(extras, "/RepairSql/CompareTaskId") == cid)
        .then(|| extras.pointer("/RepairSql/Bytes").and_then(Value::as_u64))
        .flatten();
    if let Some(bytes) = repair {
        let _ = write!(
            out,
            "<p><a id=\"repair-sql\" href=\"/console/jobs/{}/compare/{}/repair.sql\" download>Download the repair SQL</a> \
             ({}; run it on the target: it makes the differing rows equal to the source's as they were compared)</p>",
            url_part(id),
            url_part(&cid),
            human_bytes(bytes)
        );
    }
    if !diffs.is_empty() {
        let _ = write!(
            out,
            "<h3>Differing keys ({} shown of {})</h3><p><a href=\"/console/jobs/{}/compare/{}/differences.csv\" download>Download the differing keys (CSV)</a></p>\
             <table class=\"diffs\"><thead><tr><th>Table</th><th>Key columns</th><th>Key</th><th>Source</th><th>Target</th></tr></thead><tbody>",
            diffs.len(),
            escape(&text(r, "/Detail/Difference/TotalCount")),
            url_part(id),
            url_part(&cid)
        );
        out.push_str(&diff_rows(&diffs));
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
    out
}

/// The differing keys of a report as CSV (`db,table,key_columns,key,source,target`).
pub fn differences_csv(report: &Value) -> String {
    let field = |s: String| {
        // Spreadsheet formula injection: a leading = + - @ is quoted with a '.
        let s = if s.starts_with(['=', '+', '-', '@']) {
            format!("'{s}")
        } else {
            s
        };
        format!("\"{}\"", s.replace('"', "\"\""))
    };
    let mut out = String::from("db,table,key_columns,key,source,target\n");
    for k in report
        .pointer("/Detail/Difference/Items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let row: Vec<String> = [
            "/Db",
            "/Table",
            "/IndexName",
            "/LowerBoundary",
            "/SrcItem",
            "/DstItem",
        ]
        .iter()
        .map(|p| field(text(k, p)))
        .collect();
        out.push_str(&row.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(url_part("a b/<c>"), "a+b%2F%3Cc%3E");
    }

    #[test]
    fn jobs_table_shows_names_and_escapes() {
        let j = json!({"JobId": "dts-1", "JobName": "<b>x</b>", "Status": 7,
            "Detail": {"StepNow": 2, "Progress": "40", "SecondsBehindMaster": 3, "MasterSlaveDistance": 1,
                       "StepInfo": [{"StepName": "Structure migration"}, {"StepName": "Full data migration"}]},
            "ErrorInfo": [], "CreateTime": "2026-01-01 00:00:00", "StartTime": "0000-00-00 00:00:00"});
        let html = jobs_table(&[j]);
        assert!(html.contains("&lt;b&gt;x&lt;/b&gt;"));
        assert!(html.contains(">Running<"));
        assert!(html.contains("Full data migration"));
        assert!(html.contains("3 s · 1 MB"));
        assert!(!html.contains("<b>x"));
        assert!(jobs_table(&[]).contains("No job matches"));
    }

    #[test]
    fn job_page_has_actions_with_csrf_and_never_a_password() {
        let d = json!({"JobId": "dts-1", "JobName": "n", "Status": "running",
            "Action": {"AllowedAction": ["PauseMigrateJob", "StopMigrateJob"]},
            "SrcInfo": {"DatabaseType": "mysql", "Info": [{"Host": "h", "Port": 3306, "User": "u", "Password": ""}]},
            "StepInfo": {"StepInfo": [{"StepNo": 1, "StepId": "structure", "StepName": "Structure migration", "Status": "finished", "Percent": 100}]},
            "CompareTask": {"CompareTaskId": "", "Status": "notexist"}});
        let info = json!({"Status": 7, "Detail": {"Progress": "50"}});
        let check = json!({"BriefMsg": "check passed", "StepInfo": [{"StepName": "binlog", "StepStatus": "warning", "StepMessage": "set binlog_row_image=FULL"}]});
        let v = JobView {
            detail: &d,
            info: &info,
            check: &check,
            report: None,
            series: &[],
            extras: &json!({
                "Tables": [{"Table": "d.<t>", "State": "copying", "Chunks": 4, "ChunksDone": 1, "Rows": 250,
                            "Bytes": 2_500_000, "EstimatedRows": 1000, "EtaSeconds": 30}],
                "Positions": {"Snapshot": "b.000001:4", "Applied": "", "CutOver": "", "Start": "", "ConsistentAfter": ""},
                "Errors": {"Current": null, "Retries": 2, "LastRetryError": "refused", "LastErrorAt": "2026-01-01 00:00:00", "Message": ""},
            }),
        };
        let html = job_page(&v, "tok<", "/console/jobs/dts-1/live");
        assert!(html.contains("name=\"csrf\" value=\"tok&lt;\""));
        assert!(html.contains("id=\"do-pause\"") && html.contains("id=\"do-stop\""));
        assert!(!html.contains("id=\"do-complete\""));
        assert!(html.contains("WARNING") && html.contains("set binlog_row_image=FULL"));
        assert!(html.contains("No samples yet"));
        assert!(html.contains("No comparison has run"));
        assert!(html.contains("d.&lt;t&gt;") && html.contains("1 / 4") && html.contains("about 30 s"));
        assert!(html.contains("2.38 MiB") && html.contains("b.000001:4"));
        assert!(html.contains("id=\"err-retries\">2<") && html.contains("refused"));
        assert!(!html.to_lowercase().contains("password"));
    }

    #[test]
    fn owner_line_in_cluster_mode_only() {
        assert_eq!(owner(&json!({"Owner": null})), "");
        let o = owner(&json!({"Owner": {"Node": "n<1>", "Epoch": 3, "LeaseUntil": "2026-01-01 00:00:10"}}));
        assert!(
            o.contains("node <code>n&lt;1&gt;</code>") && o.contains("epoch 3") && o.contains("00:00:10")
        );
        let free = owner(&json!({"Owner": {"Node": "", "Epoch": 3, "LeaseUntil": ""}}));
        assert!(free.contains("no node holds its lease"));
    }

    #[test]
    fn csv_quotes_and_defuses_formulas() {
        let r = json!({"Detail": {"Difference": {"Items": [{"Db": "d", "Table": "t", "IndexName": "id", "LowerBoundary": "=1+1", "SrcItem": "present", "DstItem": "mis\"sing"}]}}});
        assert_eq!(
            differences_csv(&r),
            "db,table,key_columns,key,source,target\n\"d\",\"t\",\"id\",\"'=1+1\",\"present\",\"mis\"\"sing\"\n"
        );
    }
}
