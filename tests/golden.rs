//! The outputs a user or a script reads stay the same: `--json` of `eval`, `map`, `search`,
//! `gap` and `front`, and `baseline`'s summary and certificates, on the shipped instances,
//! compared with the files recorded in `tests/golden/` (wall times left out: every key ending
//! in `seconds`, and JUnit's `time`). A change that alters any of them on purpose records them
//! again with `QMAP_BLESS=1 cargo test --release --test golden` and says why in its commit.

mod common;

use common::{qmap_in, root, scratch};
use std::path::PathBuf;

/// The commands whose outputs are recorded, by name: (arguments, files the command writes that
/// are recorded too).
fn commands() -> Vec<(&'static str, Vec<&'static str>, Vec<&'static str>)> {
    vec![
        (
            "eval_default",
            vec!["eval", "instances/default.yaml", "--json"],
            vec![],
        ),
        (
            "map_default",
            vec!["map", "instances/default.yaml", "--json"],
            vec![],
        ),
        (
            "map_simba_l7",
            vec!["map", "instances/simba_mbv2_l7.yaml", "--json"],
            vec![],
        ),
        (
            "map_latency",
            vec![
                "map",
                "instances/default.yaml",
                "--objective",
                "latency",
                "--json",
            ],
            vec![],
        ),
        (
            "search_random",
            vec![
                "search",
                "instances/default.yaml",
                "--method",
                "random",
                "--samples",
                "500",
                "--seed",
                "3",
                "--json",
            ],
            vec![],
        ),
        (
            "baseline",
            vec![
                "baseline",
                "instances/eyeriss_mbv2_l7.yaml",
                "--layers",
                "conv1,b1_dw,b3_exp",
                "--out",
                "out",
                "--cache",
                "none",
            ],
            vec![
                "out/summary.csv",
                "out/conv1.cert.json",
                "out/b3_exp.cert.json",
            ],
        ),
        (
            "gap",
            vec![
                "gap",
                "instances/eyeriss_mbv2_l7.yaml",
                "--mappings",
                "instances/mappings/eyeriss_mbv2_b3_exp.yaml",
                "--layer",
                "b3_exp",
                "--json",
                "--cache",
                "none",
            ],
            vec![],
        ),
        (
            "front",
            vec![
                "front",
                "instances/front_mbv1_eyeriss.yaml",
                "--json",
                "--cache",
                "none",
            ],
            vec![],
        ),
    ]
}

/// A JSON value with every wall time (keys ending in `seconds`) removed, and paths made
/// relative to the run's directory.
fn normalise(v: &mut serde_json::Value, dir: &str) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.ends_with("seconds"));
            m.values_mut().for_each(|x| normalise(x, dir));
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| normalise(x, dir)),
        serde_json::Value::String(s) => *s = s.replace(dir, "."),
        _ => {}
    }
}

/// An output as recorded: JSON normalised and pretty-printed; other text with its times
/// (`0.2 s`) left out. Outputs above 64 KiB (a front lists every point's mappings) are
/// recorded as their size and SHA-256, with their top-level scalars for a readable diff.
fn recorded(text: &str, dir: &str) -> String {
    let text = match serde_json::from_str::<serde_json::Value>(text) {
        Ok(mut v) => {
            normalise(&mut v, dir);
            serde_json::to_string_pretty(&v).unwrap() + "\n"
        }
        Err(_) => return without_times(&without_csv_times(&text.replace(dir, "."))),
    };
    if text.len() <= 64 * 1024 {
        return text;
    }
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut out = format!(
        "bytes {}\nsha256 {}\n",
        text.len(),
        qmap::optimum::content_hash(std::slice::from_ref(&text))
    );
    if let serde_json::Value::Object(m) = v {
        for (k, x) in m.iter().filter(|(_, x)| !x.is_object() && !x.is_array()) {
            out += &format!("{k}: {x}\n");
        }
    }
    out
}

/// A CSV text (a first line with commas) with the cells of its columns named `*seconds`
/// (wall times) written `_`; other text as it is.
fn without_csv_times(text: &str) -> String {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or_default().split(',').collect();
    if header.len() < 2 {
        return text.to_string();
    }
    let mut out = header.join(",") + "\n";
    for line in lines {
        let cells: Vec<&str> = (line.split(',').enumerate())
            .map(|(i, c)| match header.get(i) {
                Some(h) if h.ends_with("seconds") && !c.is_empty() => "_",
                _ => c,
            })
            .collect();
        out += &(cells.join(",") + "\n");
    }
    out
}

/// `text` with every `<number> s` (a wall time) written `_ s`.
fn without_times(text: &str) -> String {
    let mut out = String::new();
    for word in text.split_inclusive(' ') {
        let bare = word.trim_end();
        let is_time = bare.parse::<f64>().is_ok() && bare.contains('.');
        out += if is_time { "_ " } else { word };
    }
    out
}

fn golden(name: &str) -> PathBuf {
    root().join("tests/golden").join(name)
}

/// Runs every command in a scratch copy of the project's inputs and compares (or, with
/// `QMAP_BLESS`, records) its outputs.
#[test]
fn outputs_match_the_recorded_ones() {
    let bless = std::env::var_os("QMAP_BLESS").is_some();
    let mut differ = vec![];
    for (name, args, files) in commands() {
        let dir = scratch(&format!("golden-{name}"));
        for d in ["instances", "models"] {
            std::os::unix::fs::symlink(root().join(d), dir.join(d)).unwrap();
        }
        let out = qmap_in(&dir, &args);
        assert!(
            out.status.code().is_some_and(|c| c <= 1),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let d = dir.display().to_string();
        let mut outputs = vec![(
            format!("{name}.out"),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )];
        for f in files {
            let text = std::fs::read_to_string(dir.join(f)).unwrap();
            outputs.push((format!("{name}.{}", f.replace('/', "_")), text));
        }
        for (file, text) in outputs {
            let text = recorded(&text, &d);
            let path = golden(&file);
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &text).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (record with QMAP_BLESS=1)", path.display()));
            if want != text {
                differ.push(diff_line(&file, &want, &text));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "outputs differ from tests/golden:\n{}",
        differ.join("\n")
    );
}

/// The first line where two texts differ.
fn diff_line(file: &str, want: &str, got: &str) -> String {
    let (w, g): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    let i = (0..w.len().max(g.len()))
        .find(|&i| w.get(i) != g.get(i))
        .unwrap_or(0);
    format!(
        "{file}: line {}: recorded `{}`, now `{}`",
        i + 1,
        w.get(i).unwrap_or(&""),
        g.get(i).unwrap_or(&"")
    )
}
