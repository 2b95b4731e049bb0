//! Warnings found deep in the library while inputs load (a Timeloop ERT's leakage, which qmap
//! does not charge), and notes (an answer read from the cache): collected once per distinct
//! message, and printed on stderr by the command line when the command ends (`warning: ...`,
//! `note: ...`), never on stdout.

use std::sync::Mutex;

static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records a warning (a message already recorded is not repeated).
pub fn warn(message: String) {
    record(format!("warning: {message}"));
}

/// Records a note (a message already recorded is not repeated).
pub fn note(message: String) {
    record(format!("note: {message}"));
}

fn record(line: String) {
    let mut n = NOTICES.lock().unwrap_or_else(|e| e.into_inner());
    if !n.contains(&line) {
        n.push(line);
    }
}

/// The lines recorded so far (`warning: ...`, `note: ...`), in order; the record is emptied.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *NOTICES.lock().unwrap_or_else(|e| e.into_inner()))
}
