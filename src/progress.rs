//! Progress on stderr. One long solve: the engine, the incumbent, the bound, the gap and the
//! elapsed time, refreshed every second — a line redrawn in place on a terminal, a plain line
//! every 5 s elsewhere. A table: a bar of layer shapes on a terminal, plain lines elsewhere
//! ([`Counter`]). A stage of a longer run (`qmap front`'s table, trace, baseline, NSGA-II):
//! its message of what it has done ([`Stage`]). Never on stdout, so `--json` output stays
//! clean; `--quiet` shows nothing.
//!
//! The engines report through process-wide atomics ([`incumbent`], [`bound`], [`phase`],
//! [`parts`]) that cost one relaxed load when no display is running; a [`Display`] started
//! by a command shows them and stops (clearing its line) when dropped.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

static ACTIVE: AtomicBool = AtomicBool::new(false);
static INCUMBENT: AtomicU64 = AtomicU64::new(u64::MAX);
static BOUND: AtomicU64 = AtomicU64::new(0);
static PARTS_DONE: AtomicUsize = AtomicUsize::new(0);
static PARTS: AtomicUsize = AtomicUsize::new(0);
static PHASE: Mutex<&'static str> = Mutex::new("");

/// A better objective value found (kept when it is the least so far).
pub fn incumbent(value: f64) {
    if ACTIVE.load(Relaxed) && value.is_finite() && value >= 0.0 {
        INCUMBENT.fetch_min(value.to_bits(), Relaxed);
    }
}

/// The current lower bound (replaces the last one).
pub fn bound(value: f64) {
    if ACTIVE.load(Relaxed) && value.is_finite() && value >= 0.0 {
        BOUND.store(value.to_bits(), Relaxed);
    }
}

/// What runs now (`enumeration`, `MILP`, `self-check`).
pub fn phase(name: &'static str) {
    if ACTIVE.load(Relaxed) {
        *PHASE.lock().unwrap_or_else(|e| e.into_inner()) = name;
        PARTS.store(0, Relaxed);
    }
}

/// Parts of an enumeration searched so far, of `total`.
pub fn parts(done: usize, total: usize) {
    if ACTIVE.load(Relaxed) {
        PARTS_DONE.store(done, Relaxed);
        PARTS.store(total, Relaxed);
    }
}

/// A running display; stops when dropped.
pub struct Display {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// A line redrawn every second on a terminal, a plain line every 5 s elsewhere.
    Auto,
    /// The same as `Auto` (`--progress`, kept for scripts that pass it).
    Always,
    /// Nothing.
    Quiet,
}

impl Display {
    /// Starts showing the solve's progress (`unit` formats objective values), after a second
    /// (a solve that ends sooner shows nothing). None when the mode shows nothing here.
    pub fn start(mode: Mode, unit: fn(f64) -> String) -> Option<Display> {
        let terminal = std::io::stderr().is_terminal();
        if mode == Mode::Quiet {
            return None;
        }
        INCUMBENT.store(u64::MAX, Relaxed);
        BOUND.store(0, Relaxed);
        PARTS.store(0, Relaxed);
        ACTIVE.store(true, Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || show(&flag, terminal, unit));
        Some(Display {
            stop,
            thread: Some(thread),
        })
    }
}

impl Drop for Display {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        ACTIVE.store(false, Relaxed);
    }
}

/// The display loop: a line every second on a terminal (redrawn in place), every five
/// seconds elsewhere.
fn show(stop: &AtomicBool, terminal: bool, unit: fn(f64) -> String) {
    let every = Duration::from_secs(if terminal { 1 } else { 5 });
    let mut drawn = false;
    ticks(stop, |start| {
        let line = status_line(start.elapsed().as_secs_f64(), unit);
        if terminal {
            eprint!("\r\x1b[2K{line}");
            drawn = true;
        } else {
            eprintln!("{line}");
        }
        every
    });
    if drawn {
        eprint!("\r\x1b[2K");
    }
}

/// `[12.0 s] MILP: incumbent 1.359e6 uJ, bound 1.20e6 uJ, gap 11.7 %`.
fn status_line(elapsed: f64, unit: fn(f64) -> String) -> String {
    let phase = *PHASE.lock().unwrap_or_else(|e| e.into_inner());
    let inc = f64::from_bits(INCUMBENT.load(Relaxed));
    let bound = f64::from_bits(BOUND.load(Relaxed));
    let mut line = format!("[{elapsed:.0} s] {phase}");
    if inc.is_finite() {
        line += &format!(": incumbent {}", unit(inc));
    } else {
        line += ": no mapping found yet";
    }
    if bound > 0.0 {
        line += &format!(", bound {}", unit(bound));
        if inc.is_finite() && inc > 0.0 {
            line += &format!(", gap {:.2} %", 100.0 * (inc - bound).max(0.0) / inc);
        }
    }
    let (done, total) = (PARTS_DONE.load(Relaxed), PARTS.load(Relaxed));
    if total > 0 {
        line += &format!(", {done}/{total} parts searched");
    }
    line
}

/// Progress through a known number of work items (a table's layer shapes) on stderr: an
/// indicatif bar on a terminal, elsewhere a plain line every 5 s once a second has passed
/// (`table: 12/31 layer shapes [6 s]`); nothing when hidden. Stops when dropped.
pub struct Counter {
    bar: indicatif::ProgressBar,
    done: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Counter {
    /// A counter of `total` items called `what` (`layer shapes`), shown when `show`.
    pub fn new(show: bool, total: usize, what: &'static str) -> Counter {
        Counter::labelled(show, total, "table", what)
    }

    /// A counter whose lines start with `label` instead of `table`.
    pub fn labelled(show: bool, total: usize, label: &str, what: &str) -> Counter {
        let terminal = std::io::stderr().is_terminal();
        let bar = if show && terminal {
            indicatif::ProgressBar::new(total as u64)
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_style(
            indicatif::ProgressStyle::with_template(&format!(
                "{label} {{bar:30}} {{pos}}/{{len}} {what}  {{elapsed_precise}}  {{msg}}"
            ))
            .expect("static template"),
        );
        let done = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = (show && !terminal).then(|| {
            let (done, stop) = (done.clone(), stop.clone());
            let (label, what) = (label.to_string(), what.to_string());
            std::thread::spawn(move || plain_lines(&stop, &done, total, &label, &what))
        });
        Counter {
            bar,
            done,
            stop,
            thread,
        }
    }

    /// One more item done.
    pub fn inc(&self) {
        self.done.fetch_add(1, Relaxed);
        self.bar.inc(1);
    }
}

impl Drop for Counter {
    fn drop(&mut self) {
        self.bar.finish_and_clear();
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A counter's plain lines: the first after a second, then every 5 s.
fn plain_lines(stop: &AtomicBool, done: &AtomicUsize, total: usize, label: &str, what: &str) {
    ticks(stop, |start| {
        let secs = start.elapsed().as_secs_f64();
        eprintln!(
            "{label}: {}/{total} {what} [{secs:.0} s]",
            done.load(Relaxed)
        );
        Duration::from_secs(5)
    });
}

/// A display thread's loop until `stop`: `tick` runs a second after the start, and again
/// after each wait it returns (looking at `stop` every 50 ms).
fn ticks(stop: &AtomicBool, mut tick: impl FnMut(Instant) -> Duration) {
    let start = Instant::now();
    let mut next = start + Duration::from_secs(1);
    while !stop.load(Relaxed) {
        std::thread::sleep(Duration::from_millis(50));
        if Instant::now() >= next {
            next += tick(start);
        }
    }
}

/// A stage of a longer run (the front's table, trace, baseline, NSGA-II) on stderr, shown
/// once it has run a second: an indicatif spinner with the stage's message on a terminal, a
/// plain line every five seconds elsewhere. Stops (clearing the spinner) when dropped.
pub struct Stage {
    message: Arc<Mutex<String>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Stage {
    /// Starts showing stage `name` (None with `quiet`). `on_terminal`: whether to show it on a
    /// terminal too (false when the stage draws its own bar there).
    pub fn start(quiet: bool, name: &'static str, on_terminal: bool) -> Option<Stage> {
        let terminal = std::io::stderr().is_terminal();
        if quiet || (terminal && !on_terminal) {
            return None;
        }
        let message = Arc::new(Mutex::new(String::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (m, s) = (message.clone(), stop.clone());
        let thread = std::thread::spawn(move || show_stage(name, &m, &s, terminal));
        Some(Stage {
            message,
            stop,
            thread: Some(thread),
        })
    }

    /// Replaces the stage's message (what it has done so far).
    pub fn set(&self, message: String) {
        *self.message.lock().unwrap_or_else(|e| e.into_inner()) = message;
    }
}

impl Drop for Stage {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The stage display loop (see [`Stage`]).
fn show_stage(name: &str, message: &Mutex<String>, stop: &AtomicBool, terminal: bool) {
    let line = || {
        let m = message.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if m.is_empty() {
            name.to_string()
        } else {
            format!("{name}: {m}")
        }
    };
    let mut spinner: Option<indicatif::ProgressBar> = None;
    ticks(stop, |start| {
        if !terminal {
            eprintln!("[{:.0} s] {}", start.elapsed().as_secs_f64(), line());
            return Duration::from_secs(5);
        }
        let bar = spinner.get_or_insert_with(|| {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template("{spinner} [{elapsed}] {msg}")
                    .expect("static template"),
            );
            b.enable_steady_tick(Duration::from_millis(120));
            b
        });
        bar.set_message(line());
        Duration::from_millis(200)
    });
    if let Some(b) = spinner {
        b.finish_and_clear();
    }
}
