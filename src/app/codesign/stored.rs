//! The cache of complete fronts: a front traced once is read back on a warm run.
//!
//! A file holds a [`fr::StoredFront`] under a content hash of the selection problem (the table's
//! entries joined with the accuracy model and the bit sets), the front's kind and the options
//! (the budgets; not the time budget, since only complete fronts are stored), in the table's
//! cache directory ([`crate::optimum::cache_path`]). A file is taken only when its checksum
//! matches (a file cut short or edited is not) and its points, rebuilt from the problem, meet
//! the budgets and none dominates another ([`fr::StoredFront::check`]); otherwise the front is
//! traced again.

use crate::front::{self as fr, FrontKind};
use crate::optimum::{cache_path, content_hash, MODEL_VERSION};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// A cache file.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CacheFile {
    model_version: String,
    front: fr::StoredFront,
    /// [`checksum`] of `front`: a file cut short or edited is not taken.
    checksum: String,
}

/// A content hash of a stored front's JSON.
fn checksum(front: &fr::StoredFront) -> String {
    content_hash(&[serde_json::to_string(front).unwrap_or_default()])
}

/// Where the cache in `dir` keeps the front of `problem` (see the module doc).
pub(super) fn file(
    dir: &Path,
    problem: &fr::SelectionProblem,
    kind: FrontKind,
    opts: &fr::FrontOptions,
) -> PathBuf {
    let mut opts = *opts;
    opts.limits.time_budget = None;
    let key = content_hash(&[
        "front".into(),
        MODEL_VERSION.into(),
        env!("CARGO_PKG_VERSION").into(),
        format!("{problem:?}"),
        format!("{kind:?}"),
        format!("{opts:?}"),
    ]);
    cache_path(dir, &key)
}

/// The front stored at `f` when there is one and it checks out.
pub(super) fn read(
    f: &Path,
    problem: &fr::SelectionProblem,
    opts: &fr::FrontOptions,
) -> Option<fr::Front> {
    let file: CacheFile = serde_json::from_str(&std::fs::read_to_string(f).ok()?).ok()?;
    if file.model_version != MODEL_VERSION || file.checksum != checksum(&file.front) {
        return None;
    }
    file.front.check(problem, opts).ok()
}

/// Stores `front` at `f` when it is complete (a failed write only costs a later trace).
pub(super) fn write(f: &Path, front: &fr::Front) {
    let Some(front) = fr::StoredFront::of(front) else {
        return;
    };
    let file = CacheFile {
        model_version: MODEL_VERSION.into(),
        checksum: checksum(&front),
        front,
    };
    if let Some(dir) = f.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Ok(text) = serde_json::to_string(&file) {
        let _ = crate::report::write_atomic(f, &text);
    }
}
