//! A small SVG line-chart renderer for the console (pure: data in, markup out). A chart has a
//! title, a unit for its y axis and one or more lines; it draws the axes with labelled ticks
//! (values in the unit, times as UTC `HH:MM`), a legend, and an empty state when there is no
//! point to draw. Styling is by CSS classes (no inline style, so the console's CSP holds).

use std::fmt::Write as _;

use super::html::escape;

/// How the values of a chart are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Seconds,
    Bytes,
    PerSecond,
}

/// One line: its legend label, CSS class and points (UNIX seconds, value), oldest first.
#[derive(Debug, Clone)]
pub struct Line {
    pub label: &'static str,
    pub class: &'static str,
    pub points: Vec<(i64, f64)>,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 28.0;
const BOTTOM: f64 = 44.0;
const Y_TICKS: u32 = 4;

/// A value in the unit: `12 s`, `3.5 MiB`, `1.2k/s`.
pub fn format_value(v: f64, unit: Unit) -> String {
    let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
    match unit {
        Unit::Seconds if v >= 3600.0 => format!("{:.1} h", v / 3600.0),
        Unit::Seconds if v >= 120.0 => format!("{:.0} min", v / 60.0),
        Unit::Seconds => format!("{} s", short(v)),
        Unit::Bytes => {
            const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
            let mut x = v;
            let mut i = 0;
            while x >= 1024.0 && i + 1 < UNITS.len() {
                x /= 1024.0;
                i += 1;
            }
            format!("{} {}", short(x), UNITS[i])
        }
        Unit::PerSecond if v >= 1_000_000.0 => format!("{}M/s", short(v / 1_000_000.0)),
        Unit::PerSecond if v >= 1000.0 => format!("{}k/s", short(v / 1000.0)),
        Unit::PerSecond => format!("{}/s", short(v)),
    }
}

/// Up to two decimals below 10, one below 100, none above; trailing zeros dropped.
fn short(v: f64) -> String {
    let s = if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// UNIX seconds as UTC `HH:MM`, or `HH:MM:SS` when `seconds`.
pub fn format_clock(t: i64, seconds: bool) -> String {
    let s = t.rem_euclid(86_400);
    if seconds {
        format!("{:02}:{:02}:{:02}", s / 3600, s % 3600 / 60, s % 60)
    } else {
        format!("{:02}:{:02}", s / 3600, s % 3600 / 60)
    }
}

/// The smallest "nice" number (1, 2 or 5 times a power of ten) at least `v`.
pub fn nice_ceiling(v: f64) -> f64 {
    if !v.is_finite() || v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 5.0, 10.0] {
        if m * p >= v * (1.0 - 1e-12) {
            return m * p;
        }
    }
    10.0 * p
}

/// The chart as an `<svg>` element.
pub fn render(title: &str, unit: Unit, lines: &[Line]) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(title)
    );
    let _ = write!(
        out,
        r#"<text class="chart-title" x="{LEFT}" y="18">{}</text>"#,
        escape(title)
    );
    let points = lines.iter().flat_map(|l| l.points.iter());
    let (mut t0, mut t1, mut vmax) = (i64::MAX, i64::MIN, 0f64);
    let mut any = false;
    for (t, v) in points {
        any = true;
        t0 = t0.min(*t);
        t1 = t1.max(*t);
        if v.is_finite() {
            vmax = vmax.max(*v);
        }
    }
    let (x0, x1, y0, y1) = (LEFT, WIDTH - RIGHT, HEIGHT - BOTTOM, TOP);
    let _ = write!(
        out,
        r#"<line class="axis" x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}"/><line class="axis" x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}"/>"#
    );
    if !any {
        let _ = write!(
            out,
            r#"<text class="chart-empty" x="{}" y="{}" text-anchor="middle">No samples yet: the series starts when the job runs</text></svg>"#,
            (x0 + x1) / 2.0,
            (y0 + y1) / 2.0
        );
        return out;
    }
    // Ticks at a nice step (1, 2 or 5 times a power of ten), so that their labels are exact.
    let top = nice_ceiling(vmax / f64::from(Y_TICKS)) * f64::from(Y_TICKS);
    for i in 0..=Y_TICKS {
        let v = top * f64::from(i) / f64::from(Y_TICKS);
        let y = y0 - (y0 - y1) * f64::from(i) / f64::from(Y_TICKS);
        let _ = write!(
            out,
            r#"<line class="grid" x1="{x0}" y1="{y:.1}" x2="{x1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            x0 - 6.0,
            y + 4.0,
            escape(&format_value(v, unit))
        );
    }
    let span = (t1 - t0).max(1) as f64;
    let x_of = |t: i64| x0 + (x1 - x0) * ((t - t0) as f64 / span);
    let y_of = |v: f64| {
        let v = if v.is_finite() { v.max(0.0) } else { 0.0 };
        y0 - (y0 - y1) * (v / top)
    };
    let ticks: Vec<i64> = if t1 == t0 {
        vec![t0]
    } else {
        (0..=4).map(|i| t0 + (t1 - t0) * i / 4).collect()
    };
    let last = ticks.len().saturating_sub(1);
    for (i, t) in ticks.into_iter().enumerate() {
        // The outer labels are anchored inside the plot so that they are not cut off.
        let anchor = match i {
            0 if last > 0 => "start",
            i if i == last && last > 0 => "end",
            _ => "middle",
        };
        let _ = write!(
            out,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
            x_of(t),
            y0 + 16.0,
            format_clock(t, t1 - t0 < 600)
        );
    }
    let _ = write!(
        out,
        r#"<text class="tick" x="{}" y="{}" text-anchor="middle">time (UTC)</text>"#,
        (x0 + x1) / 2.0,
        HEIGHT - 6.0
    );
    for (i, line) in lines.iter().enumerate() {
        if line.points.len() == 1 {
            let (t, v) = line.points[0];
            let _ = write!(
                out,
                r#"<circle class="{}" cx="{:.1}" cy="{:.1}" r="3"/>"#,
                line.class,
                x_of(t),
                y_of(v)
            );
        } else if !line.points.is_empty() {
            let pts: Vec<String> = line
                .points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x_of(*t), y_of(*v)))
                .collect();
            let _ = write!(
                out,
                r#"<polyline class="{}" points="{}"/>"#,
                line.class,
                pts.join(" ")
            );
        }
        let lx = x1 - 150.0 * (lines.len() - i) as f64;
        let _ = write!(
            out,
            r#"<rect class="{}" x="{lx:.1}" y="10" width="10" height="10"/><text class="legend" x="{:.1}" y="19">{}</text>"#,
            line.class,
            lx + 14.0,
            escape(line.label)
        );
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn values_carry_their_unit() {
        assert_eq!(format_value(12.0, Unit::Seconds), "12 s");
        assert_eq!(format_value(1.25, Unit::Seconds), "1.25 s");
        assert_eq!(format_value(0.05, Unit::Seconds), "0.05 s");
        assert_eq!(format_value(12.5, Unit::Seconds), "12.5 s");
        assert_eq!(format_value(600.0, Unit::Seconds), "10 min");
        assert_eq!(format_value(7200.0, Unit::Seconds), "2.0 h");
        assert_eq!(format_value(3.5 * 1024.0 * 1024.0, Unit::Bytes), "3.5 MiB");
        assert_eq!(format_value(0.0, Unit::Bytes), "0 B");
        assert_eq!(format_value(1500.0, Unit::PerSecond), "1.5k/s");
        assert_eq!(format_value(f64::NAN, Unit::PerSecond), "0/s");
        assert_eq!(format_clock(3600 * 25 + 61, false), "01:01");
        assert_eq!(format_clock(3600 * 25 + 61, true), "01:01:01");
    }

    #[test]
    fn empty_chart_says_so() {
        let svg = render("Lag", Unit::Seconds, &[]);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("No samples yet"));
        let svg = render(
            "Lag",
            Unit::Seconds,
            &[Line {
                label: "seconds behind",
                class: "l1",
                points: vec![],
            }],
        );
        assert!(svg.contains("No samples yet"));
    }

    #[test]
    fn chart_has_axes_ticks_and_lines() {
        let svg = render(
            "Lag <1>",
            Unit::Seconds,
            &[Line {
                label: "seconds behind",
                class: "l1",
                points: vec![(0, 1.0), (60, 7.0), (120, 3.0)],
            }],
        );
        assert!(svg.contains("Lag &lt;1&gt;"));
        assert!(svg.contains("<polyline class=\"l1\""));
        assert!(svg.contains(">8 s<") && svg.contains(">2 s<"), "{svg}");
        assert!(svg.contains(">00:02:00<"), "a short span shows seconds");
        assert!(svg.contains("time (UTC)"));
        assert!(!svg.contains("style="));
        let svg = render(
            "Throughput",
            Unit::PerSecond,
            &[Line {
                label: "rows/s",
                class: "l4",
                points: vec![(0, 0.05), (7200, 0.2)],
            }],
        );
        assert!(svg.contains(">02:00<"), "{svg}");
        assert!(svg.contains(">0.05/s<") && svg.contains(">0.2/s<"), "{svg}");
    }

    proptest! {
        #[test]
        fn nice_ceiling_is_at_least_and_close(v in 1e-6f64..1e15) {
            let c = nice_ceiling(v);
            prop_assert!(c >= v * (1.0 - 1e-9));
            prop_assert!(c <= v * 5.0 + 1e-9);
        }

        #[test]
        fn any_points_render_within_the_box(points in proptest::collection::vec((0i64..1_000_000, -1e9f64..1e12), 0..50)) {
            let svg = render("x", Unit::Bytes, &[Line { label: "a", class: "l1", points }]);
            prop_assert!(svg.ends_with("</svg>"));
            prop_assert!(!svg.contains("NaN") && !svg.contains("inf"));
        }
    }
}
