//! A front as it is stored (a cache file of `qmap front`): each point's table entries per
//! layer, checked against the selection problem when read back.
//!
//! [`StoredFront::of`] keeps a complete front; [`StoredFront::check`] rebuilds its points from
//! the problem (a point must be a chained selection of selectable entries) and takes them only
//! when every point meets the budgets and none dominates another: the stored front is then the
//! front [`trace_front`](super::trace_front) would trace again (the key a caller files it under
//! must name the problem and the options).

use super::trace::{dominates, same_costs};
use super::{Front, FrontKind, FrontOptions, PointStatus, SelectionProblem};
use serde::{Deserialize, Serialize};

/// A complete front as table entries (see the module doc).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredFront {
    pub kind: FrontKind,
    /// Per point, per layer: the index of the chosen entry in the table's layer.
    pub points: Vec<Vec<usize>>,
    /// The trace's work (reported again when read).
    pub solves: usize,
    pub entries: usize,
    pub entries_kept: usize,
    #[serde(default)]
    pub milp_solves: usize,
}

impl StoredFront {
    /// The stored form of a front; None unless it is complete and every point is optimal.
    pub fn of(front: &Front) -> Option<StoredFront> {
        let proven = front
            .points
            .iter()
            .all(|p| p.status == PointStatus::Optimal);
        (front.complete && proven).then(|| StoredFront {
            kind: front.kind,
            points: front
                .points
                .iter()
                .map(|p| p.layers.iter().map(|l| l.entry).collect())
                .collect(),
            solves: front.solves,
            entries: front.entries,
            entries_kept: front.entries_kept,
            milp_solves: front.milp_solves,
        })
    }

    /// The front again, its points rebuilt from `problem` and checked (see the module doc);
    /// why not when they do not check out.
    pub fn check(&self, problem: &SelectionProblem, opts: &FrontOptions) -> Result<Front, String> {
        let t0 = std::time::Instant::now();
        let mut points = Vec::with_capacity(self.points.len());
        for (i, entries) in self.points.iter().enumerate() {
            let p = problem
                .point_of_entries(entries, PointStatus::Optimal)
                .ok_or_else(|| format!("point {i} is not a selection of the table"))?;
            let all = [p.energy_pj, -p.accuracy, p.memory_bytes, p.cycles as f64];
            if opts
                .budgets
                .bounds()
                .iter()
                .any(|&(c, v)| all[c.index()] > v)
            {
                return Err(format!("point {i} is outside the budgets"));
            }
            points.push(p);
        }
        let criteria = self.kind.criteria();
        let costs: Vec<Vec<f64>> = points.iter().map(|p| p.costs(criteria)).collect();
        for (i, a) in costs.iter().enumerate() {
            let beaten = costs.iter().enumerate().any(|(j, b)| {
                dominates(b, a) || (j != i && same_costs(&points[i], &points[j], criteria))
            });
            if beaten {
                return Err(format!("point {i} is dominated or repeated"));
            }
        }
        Ok(Front {
            kind: self.kind,
            points,
            complete: true,
            stopped: None,
            solves: self.solves,
            cache_hits: 0,
            milp_solves: self.milp_solves,
            entries: self.entries,
            entries_kept: self.entries_kept,
            seconds: t0.elapsed().as_secs_f64(),
        })
    }
}
