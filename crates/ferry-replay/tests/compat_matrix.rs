//! The compatibility matrix of binlog events and row images (`docs/compatibility.md`, section
//! "Binlog events and row images") cites, beside each row, the tests that prove it as
//! `` `file::function` ``. This test checks that every cited function exists in a Rust file of
//! that name under `crates/`, and that every row of the table cites a test or says `—`, so the
//! matrix cannot drift from the tree.

use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Every `.rs` file under `dir`, except build output.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if p.is_dir() {
            if name != "target" && !name.starts_with('.') {
                rust_files(&p, out);
            }
        } else if name.ends_with(".rs") {
            out.push(p);
        }
    }
}

/// The section's text, from its heading to the next `## ` heading.
fn section(doc: &str, heading: &str) -> Option<String> {
    let start = doc.find(heading)?;
    let rest = &doc[start + heading.len()..];
    let end = rest.find("\n## ").unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// `` `a::b` `` citations in a text: (file stem, function).
fn citations(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (i, part) in text.split('`').enumerate() {
        if i % 2 == 0 {
            continue;
        }
        let Some((file, func)) = part.split_once("::") else {
            continue;
        };
        let ident = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        };
        if ident(file) && ident(func) {
            out.push((file.to_string(), func.to_string()));
        }
    }
    out
}

fn defines(text: &str, func: &str) -> bool {
    text.match_indices(&format!("fn {func}")).any(|(i, m)| {
        let next = text[i + m.len()..].chars().next();
        matches!(next, Some('(') | Some('<'))
    })
}

#[test]
fn every_cited_test_exists() {
    let doc = std::fs::read_to_string(root().join("docs/compatibility.md")).expect("docs/compatibility.md");
    let sec = section(&doc, "## Binlog events and row images").expect("the matrix section");
    let mut files = Vec::new();
    rust_files(&root().join("crates"), &mut files);
    let mut missing = Vec::new();
    let mut cited = 0;
    for (file, func) in citations(&sec) {
        cited += 1;
        let found = files.iter().any(|p| {
            p.file_stem().is_some_and(|s| s.to_string_lossy() == file)
                && std::fs::read_to_string(p).is_ok_and(|t| defines(&t, &func))
        });
        if !found {
            missing.push(format!("{file}::{func}"));
        }
    }
    assert!(
        cited > 20,
        "only {cited} citations found: is the section's format unchanged?"
    );
    assert!(
        missing.is_empty(),
        "the matrix cites tests that do not exist: {missing:?}"
    );
    // every feature row proves itself or says it has no test
    let rows: Vec<&str> = sec
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| feature") && !l.starts_with("|---"))
        .collect();
    assert!(rows.len() > 20, "{} rows", rows.len());
    for r in rows {
        let last = r
            .trim_end()
            .trim_end_matches('|')
            .rsplit('|')
            .next()
            .unwrap_or_default();
        assert!(
            !citations(last).is_empty() || last.trim() == "—",
            "a matrix row without a test or `—`: {r}"
        );
        let cells = r.matches('|').count();
        assert_eq!(
            cells, 10,
            "a matrix row with {cells} separators (9 columns expected): {r}"
        );
    }
}

#[test]
fn citations_are_parsed() {
    let c = citations("x `a_b::c_d` and `binlog_row_image=FULL`, `e::F` `f::g`");
    assert_eq!(c, vec![("a_b".into(), "c_d".into()), ("f".into(), "g".into())]);
    assert!(defines("async fn foo() {}", "foo"));
    assert!(!defines("fn foo_bar() {}", "foo"));
}
