//! The wire layer's metrics in the Prometheus text format: calls by action and result code, and
//! their total handling time by action. Actions the handler does not know are counted under
//! `action="unknown"` so that clients cannot create unbounded label values.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

/// The label value for calls whose action is not known.
pub const UNKNOWN_ACTION: &str = "unknown";

/// Counters of served calls.
#[derive(Debug, Default)]
pub struct WireMetrics {
    inner: Mutex<Counts>,
}

#[derive(Debug, Default)]
struct Counts {
    /// (action, code) → calls.
    requests: BTreeMap<(String, String), u64>,
    /// action → (calls, seconds).
    durations: BTreeMap<String, (u64, f64)>,
}

impl WireMetrics {
    pub fn new() -> WireMetrics {
        WireMetrics::default()
    }

    /// Counts one call of `action` (or [`UNKNOWN_ACTION`]) answered with `code` (`Success` or an
    /// error code).
    pub fn record(&self, action: &str, code: &str, elapsed: Duration) {
        let mut counts = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *counts
            .requests
            .entry((action.to_string(), code.to_string()))
            .or_insert(0) += 1;
        let entry = counts.durations.entry(action.to_string()).or_insert((0, 0.0));
        entry.0 += 1;
        entry.1 += elapsed.as_secs_f64();
    }

    /// Calls of `action` answered with `code` so far.
    pub fn count(&self, action: &str, code: &str) -> u64 {
        let counts = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        counts
            .requests
            .get(&(action.to_string(), code.to_string()))
            .copied()
            .unwrap_or(0)
    }

    /// The Prometheus text exposition of the counters.
    pub fn render(&self) -> String {
        let counts = match self.inner.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = String::new();
        out.push_str("# HELP ferry_api_requests_total API calls by action and result code.\n");
        out.push_str("# TYPE ferry_api_requests_total counter\n");
        for ((action, code), n) in &counts.requests {
            let _ = writeln!(
                out,
                "ferry_api_requests_total{{action=\"{}\",code=\"{}\"}} {n}",
                escape(action),
                escape(code)
            );
        }
        out.push_str(
            "# HELP ferry_api_request_duration_seconds Time spent answering API calls, by action.\n",
        );
        out.push_str("# TYPE ferry_api_request_duration_seconds summary\n");
        for (action, (n, secs)) in &counts.durations {
            let _ = writeln!(
                out,
                "ferry_api_request_duration_seconds_sum{{action=\"{}\"}} {secs}",
                escape(action)
            );
            let _ = writeln!(
                out,
                "ferry_api_request_duration_seconds_count{{action=\"{}\"}} {n}",
                escape(action)
            );
        }
        out
    }
}

/// Escapes a label value (backslash, double quote, newline).
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters() {
        let m = WireMetrics::new();
        m.record("DescribeMigrateJobs", "Success", Duration::from_millis(5));
        m.record("DescribeMigrateJobs", "Success", Duration::from_millis(5));
        m.record(UNKNOWN_ACTION, "InvalidAction", Duration::from_millis(1));
        let text = m.render();
        assert!(
            text.contains("ferry_api_requests_total{action=\"DescribeMigrateJobs\",code=\"Success\"} 2\n")
        );
        assert!(text.contains("ferry_api_requests_total{action=\"unknown\",code=\"InvalidAction\"} 1\n"));
        assert!(text.contains("ferry_api_request_duration_seconds_count{action=\"DescribeMigrateJobs\"} 2\n"));
        assert_eq!(m.count("DescribeMigrateJobs", "Success"), 2);
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
