//! `qmap gap`'s report for a terminal, for stderr (its warnings) and as a JUnit XML file.

use super::text::energy;
use std::fmt::Write;

/// `qmap gap`'s table for a terminal.
pub fn gap_text(r: &crate::app::gap::GapReport) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "qmap gap: {}  (max gap {:.2}%)",
        r.suite,
        r.max_gap * 100.0
    );
    let _ = writeln!(
        s,
        "{:<16} {:>14} {:>14} {:>9}  {:<8} note",
        "layer", "heuristic", "optimum", "gap", "verdict"
    );
    for row in &r.layers {
        let verdict = if row.pass {
            "ok"
        } else if row.mapping_file.is_empty() {
            "MISSING"
        } else if !row.valid {
            "INVALID"
        } else {
            "FAIL"
        };
        let note = [
            row.reason.clone(),
            (row.optimum_status != "optimal").then(|| format!("optimum {}", row.optimum_status)),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        let _ = writeln!(
            s,
            "{:<16} {:>14} {:>14} {:>9}  {:<8} {note}",
            row.name,
            row.heuristic_pj.map_or("-".into(), energy),
            row.optimum_pj.map_or("-".into(), energy),
            row.gap.map_or("-".into(), |g| format!("{:.2}%", g * 100.0)),
            verdict
        );
    }
    let failed = r.layers.iter().filter(|x| !x.pass).count();
    let _ = writeln!(
        s,
        "{} of {} layers within the gap{}",
        r.layers.len() - failed,
        r.layers.len(),
        if failed > 0 {
            format!(", {failed} failed")
        } else {
            String::new()
        }
    );
    if !r.missing.is_empty() {
        let _ = writeln!(
            s,
            "no mapping for {} layer(s): {}",
            r.missing.len(),
            r.missing.join(", ")
        );
    }
    s
}

/// The warnings `qmap gap` gives on stderr: files that name no layer (with the nearest name).
pub fn gap_warnings(r: &crate::app::gap::GapReport) -> Vec<String> {
    r.unrecognised
        .iter()
        .map(|u| match &u.nearest {
            Some(n) => format!("{}: names no layer (did you mean `{n}`?)", u.file),
            None => format!("{}: names no layer", u.file),
        })
        .collect()
}

/// `qmap gap`'s JUnit XML report: one test suite, one test case per layer (with its numbers
/// as properties and its wall time as `time`), a failure per layer above the gap, invalid or
/// without a mapping; `error` (when the run itself failed) as one errored test case.
pub fn gap_junit(
    r: Option<&crate::app::gap::GapReport>,
    suite: &str,
    error: Option<&str>,
) -> String {
    use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};
    let mut w = quick_xml::Writer::new_with_indent(Vec::new(), b' ', 2);
    let rows = r.map_or(&[][..], |r| &r.layers[..]);
    let failures = rows.iter().filter(|x| !x.pass).count();
    let mut ev = |e: Event| w.write_event(e).expect("writing to memory");
    ev(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    let tests = (rows.len() + error.is_some() as usize).to_string();
    let (f, errs) = (failures.to_string(), (error.is_some() as usize).to_string());
    let time: f64 = rows.iter().map(|x| x.seconds).sum();
    let time = format!("{time:.3}");
    let counts = [
        ("tests", tests.as_str()),
        ("failures", f.as_str()),
        ("errors", errs.as_str()),
        ("time", time.as_str()),
    ];
    let mut top = BytesStart::new("testsuites").with_attributes([("name", "qmap gap")]);
    top.extend_attributes(counts);
    ev(Event::Start(top));
    let mut st = BytesStart::new("testsuite").with_attributes([("name", suite)]);
    st.extend_attributes(counts);
    ev(Event::Start(st));
    if let Some(message) = error {
        let case = BytesStart::new("testcase")
            .with_attributes([("name", "qmap gap"), ("classname", suite)]);
        ev(Event::Start(case));
        ev(Event::Empty(BytesStart::new("error").with_attributes([
            ("message", message),
            ("type", "error"),
        ])));
        ev(Event::End(BytesEnd::new("testcase")));
    }
    for row in rows {
        let t = format!("{:.3}", row.seconds);
        ev(Event::Start(BytesStart::new("testcase").with_attributes([
            ("name", row.name.as_str()),
            ("classname", suite),
            ("time", t.as_str()),
        ])));
        ev(Event::Start(BytesStart::new("properties")));
        for (name, value) in gap_properties(row, r.map_or(0.0, |r| r.max_gap)) {
            ev(Event::Empty(BytesStart::new("property").with_attributes([
                ("name", name),
                ("value", value.as_str()),
            ])));
        }
        ev(Event::End(BytesEnd::new("properties")));
        if !row.pass {
            let message = gap_failure(row, r.map_or(0.0, |r| r.max_gap));
            let kind = if row.mapping_file.is_empty() {
                "missing"
            } else if !row.valid {
                "invalid"
            } else {
                "gap"
            };
            ev(Event::Start(BytesStart::new("failure").with_attributes([
                ("message", message.as_str()),
                ("type", kind),
            ])));
            ev(Event::Text(BytesText::new(&format!(
                "mapping: {}",
                row.mapping_file
            ))));
            ev(Event::End(BytesEnd::new("failure")));
        }
        ev(Event::End(BytesEnd::new("testcase")));
    }
    ev(Event::End(BytesEnd::new("testsuite")));
    ev(Event::End(BytesEnd::new("testsuites")));
    let mut text = String::from_utf8(w.into_inner()).expect("utf-8");
    text.push('\n');
    text
}

/// A gap row's numbers as JUnit properties (empty values where there is none).
fn gap_properties(row: &crate::app::gap::GapRow, max_gap: f64) -> Vec<(&'static str, String)> {
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v}"));
    vec![
        ("heuristic_pj", num(row.heuristic_pj)),
        (
            "heuristic_cycles",
            row.heuristic_cycles
                .map_or(String::new(), |c| c.to_string()),
        ),
        ("optimum_pj", num(row.optimum_pj)),
        ("optimum_bound_pj", num(row.optimum_bound_pj)),
        ("optimum_status", row.optimum_status.clone()),
        ("gap", num(row.gap)),
        ("max_gap", format!("{max_gap}")),
        ("in_mapspace", row.in_mapspace.to_string()),
        ("mapping_file", row.mapping_file.clone()),
    ]
}

/// Why a gap row failed, in one line.
fn gap_failure(row: &crate::app::gap::GapRow, max_gap: f64) -> String {
    match (row.valid, row.gap) {
        (true, Some(g)) => format!(
            "gap {:.2}% exceeds {:.2}% (heuristic {:.4} pJ, optimum {:.4} pJ)",
            g * 100.0,
            max_gap * 100.0,
            row.heuristic_pj.unwrap_or(f64::NAN),
            row.optimum_pj.unwrap_or(f64::NAN)
        ),
        _ => row.reason.clone().unwrap_or("invalid mapping".into()),
    }
}
