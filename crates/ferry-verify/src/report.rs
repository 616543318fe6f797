//! The verification report: per table counts and the first differing keys, object differences,
//! the readable rendering `ferry verify` prints, and the exit status it maps to. The serialized
//! [`VerifyReport`] is the `--json` output.

use std::fmt::Write;

use serde::{Deserialize, Serialize};

/// How a row differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DiffKind {
    /// The key (or, for a keyless table, the row) exists only on the source.
    OnlyInSource,
    /// The key (or row) exists only on the target.
    OnlyInTarget,
    /// The key exists on both sides with different values.
    Different,
}

impl DiffKind {
    fn label(self) -> &'static str {
        match self {
            DiffKind::OnlyInSource => "only in source",
            DiffKind::OnlyInTarget => "only in target",
            DiffKind::Different => "different",
        }
    }
}

/// One differing row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiffKey {
    pub kind: DiffKind,
    /// The key's values (for a keyless table: every column's value), as display strings.
    pub key: Vec<String>,
    /// For `Different`: the columns whose values differ.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub columns: Vec<String>,
    /// How many rows this entry stands for (more than 1 only for duplicate rows of keyless tables).
    pub count: u64,
}

/// The comparison of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableReport {
    pub database: String,
    pub table: String,
    pub target_database: String,
    pub target_table: String,
    /// Source rows in the compared chunks.
    pub rows_compared: u64,
    /// Target rows in the compared chunks.
    pub target_rows: u64,
    pub only_in_source: u64,
    pub only_in_target: u64,
    pub different: u64,
    /// The names of the key columns (for a keyless table, every column).
    pub key_columns: Vec<String>,
    /// The first differing keys, in key order of the chunks (at most `max_keys_reported`).
    pub keys: Vec<DiffKey>,
    /// `chunked-checksum` or `keyless-multiset`.
    pub method: String,
    pub chunks: u64,
    pub chunks_compared: u64,
    pub chunks_different: u64,
    /// Why the table could not be compared (target table or column missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Remarks (e.g. a chunk whose digests differ while its rows compare equal, which happens when
    /// the two sides' column types print the same values differently).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Under live replay: rows written on the source during every re-check (changing
    /// continuously). They are not compared and not counted as differences; verify again after
    /// cut-over to compare them.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub changing: u64,
    /// The keys of the first such rows (at most `max_keys_reported`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changing_keys: Vec<Vec<String>>,
    /// Percent of the rows of each chunk compared (100: every row; 0: row counts only, method
    /// `row-count`).
    #[serde(default = "hundred")]
    pub sample_percent: u8,
    /// The row sample selected no row on either side, so the table was compared in full.
    #[serde(default, skip_serializing_if = "is_false")]
    pub sample_fallback: bool,
    /// The row filter (`FilterCondition`) applied on both sides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    /// When only some columns are compared (`ColumnMode` partial): those columns (the row key
    /// included).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub compared_columns: Vec<String>,
    /// Chunks whose digests were taken from an interrupted run of the same verification, not
    /// digested again (`ferry verify` resuming; `crate::resume`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub chunks_resumed: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn hundred() -> u8 {
    100
}

impl TableReport {
    /// True when the table compared equal, and something was compared: rows, or (a table empty
    /// on both sides) every chunk of the whole table. A table with no row compared is never
    /// consistent unless it was verified empty in full.
    pub fn consistent(&self) -> bool {
        self.error.is_none()
            && self.only_in_source == 0
            && self.only_in_target == 0
            && self.different == 0
            && self.notes.is_empty()
            && self.checked()
    }

    /// True when rows were compared (or counted), or the whole table was read and is empty on
    /// both sides.
    pub fn checked(&self) -> bool {
        self.rows_compared > 0
            || self.target_rows > 0
            || (self.error.is_none()
                && self.chunks_compared == self.chunks
                && self.chunks > 0
                && (self.sample_percent >= 100 || self.method == "row-count"))
    }

    /// True when the table was verified empty on both sides (under its filter, if any).
    pub fn empty(&self) -> bool {
        self.consistent() && self.rows_compared == 0 && self.target_rows == 0
    }

    /// The verdict printed: `CONSISTENT`, `EMPTY` (verified empty on both sides),
    /// `NOT CHECKED` (nothing compared) or `INCONSISTENT`.
    pub fn verdict(&self) -> &'static str {
        if self.empty() {
            "EMPTY"
        } else if self.consistent() {
            "CONSISTENT"
        } else if self.error.is_none()
            && self.only_in_source + self.only_in_target + self.different == 0
            && self.notes.is_empty()
        {
            "NOT CHECKED"
        } else {
            "INCONSISTENT"
        }
    }

    /// How the rows were chosen, for reports: `all rows`, `sample 50% of rows`, `row counts only`,
    /// with the filter when there is one.
    pub fn scope_text(&self) -> String {
        let mut s = if self.method == "row-count" {
            "row counts only".to_string()
        } else if self.sample_fallback {
            "all rows (the row sample selected none)".to_string()
        } else if self.sample_percent >= 100 {
            "all rows".to_string()
        } else {
            format!("sample {}% of rows", self.sample_percent)
        };
        if let Some(f) = &self.filter {
            s.push_str(&format!(" where {f}"));
        }
        if !self.compared_columns.is_empty() {
            s.push_str(&format!(" · columns {}", self.compared_columns.join(", ")));
        }
        s
    }
}

/// How a sample verification chose what to compare.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sampling {
    /// Percent of the rows of each chunk compared.
    pub rows_percent: u8,
    /// Percent of the tables whose rows are compared.
    pub tables_percent: u8,
    /// Percent of the tables whose row counts are compared (content-compared tables included).
    pub count_tables_percent: u8,
    /// The selected tables left out of both samples (`db.table`): not compared at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_compared: Vec<String>,
}

/// One object-level difference (Huawei DRS's object comparison: type, names, both values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectDiff {
    /// `DATABASE`, `TABLE`, `COLUMN`, `INDEX`, `VIEW`, `ROUTINE`, `TRIGGER`, `EVENT`.
    pub object_type: String,
    /// The object on the source (`db.table`, `db.table.column`, …).
    pub source_name: String,
    /// The object on the target, renamed through the job's mapping.
    pub target_name: String,
    /// The source's definition, `None` when the object exists only on the target.
    pub source: Option<String>,
    /// The target's definition, `None` when the object is missing on the target.
    pub target: Option<String>,
}

impl ObjectDiff {
    /// `missing on target`, `only on target` or `different`.
    pub fn status(&self) -> &'static str {
        match (&self.source, &self.target) {
            (Some(_), None) => "missing on target",
            (None, Some(_)) => "only on target",
            _ => "different",
        }
    }
}

/// The result of a verification.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyReport {
    /// True when every compared table and every object compared equal.
    pub consistent: bool,
    pub tables: Vec<TableReport>,
    pub objects: Vec<ObjectDiff>,
    pub elapsed_ms: u64,
    /// Sample mode: the rates and the tables left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sampling: Option<Sampling>,
}

impl VerifyReport {
    /// The process exit status of `ferry verify`: 0 consistent, 2 differences.
    pub fn exit_status(&self) -> u8 {
        if self.consistent {
            0
        } else {
            2
        }
    }

    /// The tables that differ, as (source db, source table).
    pub fn inconsistent_tables(&self) -> Vec<(String, String)> {
        self.tables
            .iter()
            .filter(|t| !t.consistent())
            .map(|t| (t.database.clone(), t.table.clone()))
            .collect()
    }

    /// The readable report `ferry verify` prints.
    pub fn render_text(&self) -> String {
        let mut s = String::new();
        let rows: u64 = self.tables.iter().map(|t| t.rows_compared).sum();
        for t in &self.tables {
            let name = format!("{}.{}", t.database, t.table);
            let target = format!("{}.{}", t.target_database, t.target_table);
            let arrow = if name == target {
                name.clone()
            } else {
                format!("{name} → {target}")
            };
            let verdict = t.verdict();
            let _ = writeln!(s, "{verdict:<12} {arrow}  [{}]", t.method);
            if let Some(e) = &t.error {
                let _ = writeln!(s, "    cannot compare: {e}");
                continue;
            }
            let _ = writeln!(
                s,
                "    rows compared {} (target {}) · {} · chunks {}/{} · only in source {} · only in target {} · different {}",
                t.rows_compared,
                t.target_rows,
                t.scope_text(),
                t.chunks_compared,
                t.chunks,
                t.only_in_source,
                t.only_in_target,
                t.different
            );
            for k in &t.keys {
                let key: Vec<String> = t
                    .key_columns
                    .iter()
                    .zip(&k.key)
                    .map(|(c, v)| format!("{c}={v}"))
                    .collect();
                let _ = write!(s, "      {:<15} {}", k.kind.label(), key.join(", "));
                if !k.columns.is_empty() {
                    let _ = write!(s, "  (columns: {})", k.columns.join(", "));
                }
                if k.count > 1 {
                    let _ = write!(s, "  ×{}", k.count);
                }
                s.push('\n');
            }
            let listed: u64 = t.keys.iter().map(|k| k.count).sum();
            let total = t.only_in_source + t.only_in_target + t.different;
            if total > listed {
                let _ = writeln!(s, "      … {} more row(s)", total - listed);
            }
            for n in &t.notes {
                let _ = writeln!(s, "    note: {n}");
            }
            if t.changing > 0 {
                let keys: Vec<String> = t
                    .changing_keys
                    .iter()
                    .map(|k| {
                        t.key_columns
                            .iter()
                            .zip(k)
                            .map(|(c, v)| format!("{c}={v}"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    })
                    .collect();
                let _ = writeln!(
                    s,
                    "    changing continuously: {} row(s) written on the source during every re-check, \
                     not compared (verify again after cut-over): {}{}",
                    t.changing,
                    keys.join("; "),
                    if t.changing > keys.len() as u64 {
                        "; …"
                    } else {
                        ""
                    }
                );
            }
        }
        if !self.objects.is_empty() {
            let _ = writeln!(s, "objects that differ ({}):", self.objects.len());
            for o in &self.objects {
                let _ = writeln!(
                    s,
                    "  {:<8} {} → {}: {}",
                    o.object_type,
                    o.source_name,
                    o.target_name,
                    o.status()
                );
                if let Some(v) = &o.source {
                    let _ = writeln!(s, "      source: {}", clip(v, 200));
                }
                if let Some(v) = &o.target {
                    let _ = writeln!(s, "      target: {}", clip(v, 200));
                }
            }
        }
        let bad = self.tables.iter().filter(|t| !t.consistent()).count();
        let resumed: u64 = self.tables.iter().map(|t| t.chunks_resumed).sum();
        if resumed > 0 {
            let chunks: u64 = self.tables.iter().map(|t| t.chunks_compared).sum();
            let _ = writeln!(
                s,
                "resumed: {resumed} of {chunks} chunk(s) taken from the interrupted run (the source has not \
                 changed since), {} digested now",
                chunks.saturating_sub(resumed)
            );
        }
        if let Some(sm) = &self.sampling {
            let _ = writeln!(
                s,
                "sample: {}% of the rows of {}% of the tables{}",
                sm.rows_percent,
                sm.tables_percent,
                if sm.count_tables_percent > sm.tables_percent {
                    format!(", row counts of {}% of the tables", sm.count_tables_percent)
                } else {
                    String::new()
                }
            );
            if !sm.not_compared.is_empty() {
                let _ = writeln!(
                    s,
                    "not compared (outside the sample): {} table(s): {}",
                    sm.not_compared.len(),
                    clip(&sm.not_compared.join(", "), 400)
                );
            }
        }
        let verdict = if !self.consistent {
            "INCONSISTENT"
        } else if rows == 0 && !self.tables.is_empty() {
            "CONSISTENT (every table empty on both sides)"
        } else {
            "CONSISTENT"
        };
        let _ = writeln!(
            s,
            "{}: {} table(s), {} row(s) compared, {} table(s) inconsistent, {} object difference(s), {:.1} s",
            verdict,
            self.tables.len(),
            rows,
            bad,
            self.objects.len(),
            self.elapsed_ms as f64 / 1000.0
        );
        s
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn clip(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        let mut c: String = s.chars().take(n).collect();
        c.push('…');
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changing_rows_are_listed_but_not_differences() {
        let t = TableReport {
            database: "d".into(),
            table: "t".into(),
            target_database: "d".into(),
            target_table: "t".into(),
            rows_compared: 10,
            target_rows: 10,
            only_in_source: 0,
            only_in_target: 0,
            different: 0,
            key_columns: vec!["id".into()],
            keys: Vec::new(),
            method: "chunked-checksum".into(),
            chunks: 1,
            chunks_compared: 1,
            chunks_different: 0,
            error: None,
            notes: Vec::new(),
            changing: 2,
            changing_keys: vec![vec!["1".into()]],
            sample_percent: 100,
            sample_fallback: false,
            filter: None,
            compared_columns: Vec::new(),
            chunks_resumed: 0,
        };
        assert!(t.consistent());
        let r = VerifyReport {
            consistent: true,
            tables: vec![t],
            objects: Vec::new(),
            elapsed_ms: 5,
            sampling: None,
        };
        let text = r.render_text();
        assert!(
            text.contains("changing continuously: 2 row(s)") && text.contains("id=1; …"),
            "{text}"
        );
        let json = serde_json::to_value(&r).unwrap_or_default();
        assert_eq!(json["tables"][0]["changing"], 2);
        let back: VerifyReport = serde_json::from_value(json).unwrap_or_else(|_| r.clone());
        assert_eq!(back, r);
    }
}
