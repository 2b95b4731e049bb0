//! The README's tour runs as written on a fresh copy of the repository: the tracked files
//! (`git ls-files`) are copied to an empty directory, every `qmap` command of the README's
//! code blocks marked `<!-- tour -->` is run there by `sh` with the built binary as `qmap` on
//! the PATH (no network, a fresh cache), and each must succeed. The number of commands must
//! be the one the README states, so a line cannot drop out of the test unnoticed.

mod common;

use common::{root, scratch};
use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The tour's commands: each `qmap ...` line of the code blocks after a `<!-- tour -->` marker,
/// continuation lines (`\`) joined; comment-only lines are skipped. Any other command in a
/// tour block is an error (the tour is `qmap` commands only).
fn tour_commands(readme: &str) -> Vec<String> {
    let mut commands = vec![];
    let mut lines = readme.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- tour -->" {
            continue;
        }
        assert_eq!(
            lines.next().map(str::trim),
            Some("```sh"),
            "a tour marker before ```sh"
        );
        let mut pending = String::new();
        for line in lines.by_ref().take_while(|l| l.trim() != "```") {
            let t = line.trim();
            if pending.is_empty() && (t.is_empty() || t.starts_with('#')) {
                continue;
            }
            match t.strip_suffix('\\') {
                Some(head) => pending.push_str(head),
                None => {
                    pending.push_str(t);
                    assert!(
                        pending.starts_with("qmap "),
                        "not a qmap command: {pending}"
                    );
                    commands.push(std::mem::take(&mut pending));
                }
            }
        }
        assert!(
            pending.is_empty(),
            "a tour block ends inside a command: {pending}"
        );
    }
    commands
}

/// The number of commands the README says the tour has ("runs the tour's N `qmap` commands").
fn stated_count(readme: &str) -> usize {
    let at = readme
        .find("runs the tour's ")
        .expect("the README states the tour's size");
    let rest = &readme[at + "runs the tour's ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().expect("a number of commands")
}

/// Copies the repository's tracked files (as a fresh clone has them) into `dir`.
fn copy_tracked_files(dir: &Path) {
    let out = Command::new("git")
        .args(["ls-files", "-z"])
        .current_dir(root())
        .output()
        .expect("git runs");
    assert!(
        out.status.success(),
        "git ls-files: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let files = String::from_utf8(out.stdout).unwrap();
    let mut copied = 0;
    for f in files.split('\0').filter(|f| !f.is_empty()) {
        let (from, to) = (root().join(f), dir.join(f));
        if !from.is_file() {
            continue; // deleted in the work tree: a clone of the next commit lacks it too
        }
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(&from, &to).unwrap();
        copied += 1;
    }
    assert!(copied > 100, "only {copied} tracked files");
}

#[test]
fn readme_tour_runs_as_written_on_a_fresh_copy() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let commands = tour_commands(&readme);
    assert!(!commands.is_empty(), "no tour commands found in README.md");
    assert_eq!(
        commands.len(),
        stated_count(&readme),
        "the README's count of tour commands"
    );

    let dir = scratch("readme_tour");
    let repo = dir.join("qmap");
    copy_tracked_files(&repo);
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_qmap"), bin.join("qmap")).unwrap();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );

    let mut failed = vec![];
    for cmd in &commands {
        let t = Instant::now();
        let out = Command::new("sh")
            .args(["-c", cmd])
            .current_dir(&repo)
            .env("PATH", &path)
            .output()
            .unwrap();
        eprintln!(
            "{:6.2} s  exit {:?}  {cmd}",
            t.elapsed().as_secs_f64(),
            out.status.code()
        );
        if !out.status.success() || out.stdout.is_empty() {
            failed.push(format!(
                "{cmd}: exit {:?}\n{}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "tour commands failed:\n{}",
        failed.join("\n")
    );
    // What the tour says its lines write is there.
    for written in [
        "best.yaml",
        "best.map.yaml",
        "map.yaml",
        "tl/map.yaml",
        "baseline/summary.csv",
        "gap.xml",
    ] {
        assert!(repo.join(written).is_file(), "the tour wrote no {written}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
