//! Warnings found deep in the library while inputs load (a Timeloop ERT's leakage, which qmap
//! does not charge): collected once per distinct message, and printed on stderr by the command
//! line when the command ends (`warning: ...`), never on stdout.

use std::sync::Mutex;

static NOTICES: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Records a warning (a message already recorded is not repeated).
pub fn warn(message: String) {
    let mut n = NOTICES.lock().unwrap_or_else(|e| e.into_inner());
    if !n.contains(&message) {
        n.push(message);
    }
}

/// The warnings recorded so far, in order; the record is emptied.
pub fn take() -> Vec<String> {
    std::mem::take(&mut *NOTICES.lock().unwrap_or_else(|e| e.into_inner()))
}
