//! The monitoring files shipped in `deploy/` are valid and name only metrics that `ferry serve`
//! exports:
//!
//! - `deploy/prometheus/ferry-alerts.yml`: read with a small block-style YAML reader (the file keeps
//!   to block mappings, block sequences, plain and double-quoted scalars; anything else is refused
//!   by name, so an edit in another style fails here rather than in Prometheus), checked against
//!   the rule-file schema (groups, unique alert names, `expr`, `for`, `severity`, `summary`,
//!   `description`, balanced brackets and templates); when `promtool` is on the PATH, `promtool
//!   check rules` too; when Python's `yaml` module is there, the reader's result must equal
//!   `yaml.safe_load`'s;
//! - `deploy/grafana/ferry-dashboard.json`: JSON, unique panel ids, every target with an `expr`;
//! - every `ferry_*` metric in a rule or a panel has a `# TYPE` line in the `/metrics` output of a
//!   running `ferry serve` (no job or database needed: the series' headers are always there).
//!
//! The alerts the issue asks for are there: lag, job failed, endpoint down, retries climbing,
//! verification inconsistent.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{anyhow, bail, ensure, Context, Result};
use common::serve::Serve;
use serde_json::{Map, Value};

fn deploy(rel: &str) -> PathBuf {
    ferry_testkit::repo_root().join("deploy").join(rel)
}

// ---- a block-style YAML reader (the subset the shipped rule file uses) ----

struct Line {
    no: usize,
    indent: usize,
    text: String,
}

fn yaml_lines(src: &str) -> Result<Vec<Line>> {
    let mut out = Vec::new();
    for (i, raw) in src.lines().enumerate() {
        ensure!(
            !raw.contains('\t'),
            "line {}: tabs are not allowed in YAML indentation",
            i + 1
        );
        let text = raw.trim_start();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        out.push(Line {
            no: i + 1,
            indent: raw.len() - text.len(),
            text: text.trim_end().to_string(),
        });
    }
    Ok(out)
}

fn scalar(v: &str, no: usize) -> Result<Value> {
    if let Some(rest) = v.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = rest.chars();
        loop {
            match chars.next() {
                None => bail!("line {no}: unterminated double-quoted string"),
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('"') => out.push('"'),
                    Some('\\') => out.push('\\'),
                    Some('n') => out.push('\n'),
                    other => bail!("line {no}: escape \\{other:?} is not supported here"),
                },
                Some(c) => out.push(c),
            }
        }
        ensure!(
            chars.as_str().trim().is_empty(),
            "line {no}: text after a quoted string"
        );
        return Ok(Value::String(out));
    }
    if let Some(c) = v.chars().next() {
        ensure!(
            !"{[&*!|>'%@`".contains(c),
            "line {no}: `{c}` starts a YAML construct this reader does not support (use block style and double quotes)"
        );
    }
    ensure!(
        !v.contains(": ") && !v.contains(" #"),
        "line {no}: a plain scalar with \": \" or \" #\" must be double-quoted"
    );
    Ok(Value::String(v.to_string()))
}

fn block(lines: &mut [Line], i: &mut usize, indent: usize) -> Result<Value> {
    let Some(l) = lines.get(*i) else {
        return Ok(Value::Null);
    };
    ensure!(l.indent == indent, "line {}: unexpected indentation", l.no);
    if l.text == "-" || l.text.starts_with("- ") {
        let mut items = Vec::new();
        while let Some(l) = lines.get(*i) {
            if l.indent < indent {
                break;
            }
            ensure!(
                l.indent == indent && (l.text == "-" || l.text.starts_with("- ")),
                "line {}: expected a list item",
                l.no
            );
            let rest = l.text[1..].trim_start().to_string();
            if rest.is_empty() {
                *i += 1;
                let deeper = lines.get(*i).map(|n| n.indent).filter(|d| *d > indent);
                items.push(match deeper {
                    Some(d) => block(lines, i, d)?,
                    None => Value::Null,
                });
            } else if rest.starts_with('"') || !(rest.contains(": ") || rest.ends_with(':')) {
                let no = l.no;
                *i += 1;
                items.push(scalar(&rest, no)?);
            } else {
                let inner = indent + (l.text.len() - rest.len());
                lines[*i].indent = inner;
                lines[*i].text = rest;
                items.push(block(lines, i, inner)?);
            }
        }
        return Ok(Value::Array(items));
    }
    let mut map = Map::new();
    while let Some(l) = lines.get(*i) {
        if l.indent < indent {
            break;
        }
        ensure!(l.indent == indent, "line {}: unexpected indentation", l.no);
        ensure!(
            !l.text.starts_with("- "),
            "line {}: a list item inside a mapping",
            l.no
        );
        let (key, value) = match l.text.split_once(": ") {
            Some((k, v)) => (k.to_string(), v.trim().to_string()),
            None => match l.text.strip_suffix(':') {
                Some(k) => (k.to_string(), String::new()),
                None => bail!("line {}: expected `key: value`", l.no),
            },
        };
        let no = l.no;
        ensure!(
            !key.is_empty() && !key.contains(['"', '\'', '{', '[']),
            "line {no}: unsupported key {key:?}"
        );
        *i += 1;
        let v = if value.is_empty() {
            match lines.get(*i).map(|n| n.indent).filter(|d| *d > indent) {
                Some(d) => block(lines, i, d)?,
                // A sequence may sit at the key's own indentation.
                None if lines
                    .get(*i)
                    .is_some_and(|n| n.indent == indent && n.text.starts_with("- ")) =>
                {
                    block(lines, i, indent)?
                }
                None => Value::Null,
            }
        } else {
            scalar(&value, no)?
        };
        ensure!(
            map.insert(key.clone(), v).is_none(),
            "line {no}: duplicate key {key}"
        );
    }
    Ok(Value::Object(map))
}

fn read_yaml(src: &str) -> Result<Value> {
    let mut lines = yaml_lines(src)?;
    let mut i = 0;
    let indent = lines.first().map_or(0, |l| l.indent);
    let v = block(&mut lines, &mut i, indent)?;
    if let Some(l) = lines.get(i) {
        bail!("line {}: unexpected text", l.no);
    }
    Ok(v)
}

#[test]
fn the_yaml_reader_refuses_what_it_does_not_know() {
    let v = read_yaml("a:\n  - b: \"x: y\"\n    c: d\n  - e\nf: g\n")
        .unwrap_or_else(|e| Value::String(e.to_string()));
    assert_eq!(
        v,
        serde_json::json!({"a": [{"b": "x: y", "c": "d"}, "e"], "f": "g"})
    );
    assert!(read_yaml("a: {b: c}\n").is_err());
    assert!(read_yaml("a: b: c\n").is_err());
    assert!(read_yaml("a: 1\na: 2\n").is_err());
    assert!(read_yaml("a:\n   b: 1\n  c: 2\n").is_err());
}

// ---- checks ----

fn str_of<'a>(v: &'a Value, key: &str, at: &str) -> Result<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| anyhow!("{at}: `{key}` missing or empty"))
}

fn balanced(s: &str) -> bool {
    let mut stack = Vec::new();
    for c in s.chars() {
        match c {
            '(' | '[' | '{' => stack.push(c),
            ')' | ']' | '}' => {
                let open = match c {
                    ')' => '(',
                    ']' => '[',
                    _ => '{',
                };
                if stack.pop() != Some(open) {
                    return false;
                }
            }
            _ => {}
        }
    }
    stack.is_empty()
}

/// `ferry_…` metric names in a PromQL expression (label values in quotes skipped).
fn ferry_metrics(expr: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut in_quotes = false;
    let mut word = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c == '"' {
            in_quotes = !in_quotes;
        }
        if !in_quotes && (c.is_ascii_alphanumeric() || c == '_') {
            word.push(c);
        } else {
            if word.starts_with("ferry_") {
                out.insert(std::mem::take(&mut word));
            }
            word.clear();
        }
    }
    out
}

/// The rules: (alert name, expr).
fn check_rules(path: &Path) -> Result<Vec<(String, String)>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let doc = read_yaml(&text).with_context(|| path.display().to_string())?;
    let groups = doc
        .get("groups")
        .and_then(Value::as_array)
        .filter(|g| !g.is_empty())
        .ok_or_else(|| anyhow!("no `groups` list"))?;
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (gi, g) in groups.iter().enumerate() {
        let gname = str_of(g, "name", &format!("groups[{gi}]"))?;
        let rules = g
            .get("rules")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("group {gname}: no `rules` list"))?;
        for (ri, r) in rules.iter().enumerate() {
            let at = format!("group {gname}, rule {ri}");
            let obj = r.as_object().ok_or_else(|| anyhow!("{at}: not a mapping"))?;
            for k in obj.keys() {
                ensure!(
                    ["alert", "expr", "for", "labels", "annotations", "keep_firing_for"]
                        .contains(&k.as_str()),
                    "{at}: unknown key {k}"
                );
            }
            let alert = str_of(r, "alert", &at)?;
            ensure!(
                alert.chars().all(|c| c.is_ascii_alphanumeric()) && alert.starts_with(char::is_uppercase),
                "{at}: alert name {alert:?}"
            );
            ensure!(names.insert(alert.to_string()), "{at}: duplicate alert {alert}");
            let expr = str_of(r, "expr", &at)?;
            ensure!(balanced(expr), "{alert}: unbalanced brackets in {expr}");
            let dur = str_of(r, "for", &at)?;
            ensure!(
                dur.len() >= 2
                    && dur[..dur.len() - 1].chars().all(|c| c.is_ascii_digit())
                    && dur.ends_with(['s', 'm', 'h', 'd']),
                "{alert}: `for: {dur}` is not a duration"
            );
            let sev = r
                .get("labels")
                .map(|l| str_of(l, "severity", &at))
                .transpose()?
                .ok_or_else(|| anyhow!("{alert}: no labels.severity"))?;
            ensure!(["warning", "critical"].contains(&sev), "{alert}: severity {sev}");
            let ann = r
                .get("annotations")
                .ok_or_else(|| anyhow!("{alert}: no annotations"))?;
            for k in ["summary", "description"] {
                let t = str_of(ann, k, &at)?;
                ensure!(
                    t.matches("{{").count() == t.matches("}}").count(),
                    "{alert}: unbalanced template in {k}"
                );
            }
            out.push((alert.to_string(), expr.to_string()));
        }
    }
    if let Ok(out) = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))",
        ])
        .arg(path)
        .output()
    {
        if out.status.success() {
            let theirs: Value = serde_json::from_slice(&out.stdout)?;
            ensure!(
                theirs == doc,
                "the YAML reader and PyYAML read the rule file differently"
            );
        } else {
            eprintln!("PyYAML not available: the rule file is checked by the built-in reader only");
        }
    }
    match Command::new("promtool")
        .arg("check")
        .arg("rules")
        .arg(path)
        .output()
    {
        Ok(o) => ensure!(
            o.status.success(),
            "promtool check rules: {}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(_) => eprintln!("promtool not on the PATH: schema checked here only"),
    }
    Ok(out)
}

/// The dashboard's panel expressions.
fn check_dashboard(path: &Path) -> Result<Vec<String>> {
    let d: Value = serde_json::from_slice(&std::fs::read(path).with_context(|| path.display().to_string())?)?;
    str_of(&d, "title", "dashboard")?;
    str_of(&d, "uid", "dashboard")?;
    let panels = d
        .get("panels")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| anyhow!("no panels"))?;
    let mut ids = BTreeSet::new();
    let mut exprs = Vec::new();
    for p in panels {
        let title = str_of(p, "title", "panel")?;
        let id = p
            .get("id")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("{title}: no id"))?;
        ensure!(ids.insert(id), "duplicate panel id {id}");
        ensure!(p.get("gridPos").is_some(), "{title}: no gridPos");
        let targets = p
            .get("targets")
            .and_then(Value::as_array)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| anyhow!("{title}: no targets"))?;
        for t in targets {
            let e = str_of(t, "expr", title)?;
            ensure!(balanced(e), "{title}: unbalanced brackets in {e}");
            exprs.push(e.to_string());
        }
    }
    Ok(exprs)
}

/// Metric names with a `# TYPE` line (a summary's `_sum` and `_count` too).
fn exported(metrics: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for l in metrics.lines() {
        let mut w = l.split_whitespace();
        if let (Some("#"), Some("TYPE"), Some(name), Some(ty)) = (w.next(), w.next(), w.next(), w.next()) {
            out.insert(name.to_string());
            if matches!(ty, "summary" | "histogram") {
                out.insert(format!("{name}_sum"));
                out.insert(format!("{name}_count"));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_rules_and_dashboard_name_exported_metrics() -> Result<()> {
    let rules = check_rules(&deploy("prometheus/ferry-alerts.yml"))?;
    let panels = check_dashboard(&deploy("grafana/ferry-dashboard.json"))?;

    let dir = std::env::temp_dir().join(format!("ferry-deploy-check-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let data = dir.join("data");
    let serve = Serve::start(&dir, &["--data-dir", data.to_str().context("UTF-8 path")?], &[]);
    let _ = rustls::crypto::ring::default_provider().install_default();
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", serve.url))
        .send()
        .await?
        .text()
        .await?;
    drop(serve);
    let _ = std::fs::remove_dir_all(&dir);
    let have = exported(&text);
    ensure!(have.contains("ferry_job_status"), "/metrics:\n{text}");

    let mut used = BTreeSet::new();
    for (alert, expr) in &rules {
        let names = ferry_metrics(expr);
        ensure!(
            !names.is_empty() || expr.contains("up{"),
            "{alert} names no Ferry metric: {expr}"
        );
        used.extend(names);
    }
    for e in &panels {
        used.extend(ferry_metrics(e));
    }
    let missing: Vec<&String> = used.iter().filter(|m| !have.contains(*m)).collect();
    ensure!(
        missing.is_empty(),
        "not in ferry serve's /metrics: {missing:?}\n{text}"
    );

    // What the alerts must cover.
    let all_rules: String = rules
        .iter()
        .map(|(_, e)| e.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    for (what, metric) in [
        ("lag over a threshold", "ferry_job_lag_seconds"),
        ("job failed", "ferry_job_status"),
        ("endpoint down", "ferry_job_endpoint_up"),
        ("retries climbing", "ferry_job_retries_total"),
        ("verification inconsistent", "ferry_job_verification_differences"),
    ] {
        ensure!(all_rules.contains(metric), "no alert for {what} ({metric})");
    }
    // Every exported job metric is on the dashboard.
    for m in have.iter().filter(|m| m.starts_with("ferry_job_")) {
        ensure!(used.contains(m), "the dashboard does not show {m}");
    }
    eprintln!(
        "{} alert rules and {} panel queries name {} metrics, all exported",
        rules.len(),
        panels.len(),
        used.len()
    );
    Ok(())
}
