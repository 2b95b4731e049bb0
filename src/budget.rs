//! Latency budgets: `max_cycles` and `min_utilization` (from `qmap map`'s flags or an
//! instance's `budget:`), the one cycles cap they amount to, and the checked reason a budget no
//! mapping meets is infeasible (the least cycles of the mapspace, proved).
//!
//! Utilisation is the evaluator's (Timeloop's): MACs / (cycles × the design's MAC instances),
//! the MAC instances counted whether the mapping uses them or not. Every mapping of a
//! mapspace factorises each dim exactly (its loop factors multiply to the bound), so its
//! utilisation is `used/instances × compute cycles/cycles` = MACs / (instances × cycles): a
//! minimum utilisation U is exactly the cap cycles ≤ ⌊MACs / (U × instances)⌋, and the engines
//! search under the least of the two caps ([`crate::mapspace::Mapspace::with_max_cycles`]).

use crate::mapspace::Mapspace;
use crate::model::ModelOptions;
use crate::spec::Objective;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// A latency budget; no field: none.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// At most this many cycles.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_cycles: Option<u64>,
    /// Utilisation (MACs / (cycles × MAC instances)) at least this, in (0, 1].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min_utilization: Option<f64>,
}

/// Digits of `min_utilization` the cap is exact to (it is read as a fraction of 10^9).
const UTILIZATION_SCALE: u128 = 1_000_000_000;

impl Budget {
    /// Whether there is no budget.
    pub fn is_none(&self) -> bool {
        self.max_cycles.is_none() && self.min_utilization.is_none()
    }

    /// The flags' budget over the instance's: each flag given replaces its field.
    pub fn or(self, instance: Budget) -> Budget {
        Budget {
            max_cycles: self.max_cycles.or(instance.max_cycles),
            min_utilization: self.min_utilization.or(instance.min_utilization),
        }
    }

    /// The field at fault and why, when a value is out of range.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        if self.max_cycles == Some(0) {
            return Err(("max_cycles", "must be at least 1".into()));
        }
        if let Some(u) = self.min_utilization {
            if !(u > 0.0 && u <= 1.0) {
                return Err(("min_utilization", format!("must be in (0, 1], got {u}")));
            }
        }
        Ok(())
    }

    /// The cycles cap of a layer of `macs` MACs on a design of `mac_instances` MACs: the least
    /// of `max_cycles` and ⌊MACs / (U × instances)⌋ (U to nine decimals); None without a budget.
    pub fn cycles_cap(&self, macs: u64, mac_instances: u64) -> Option<u64> {
        let from_u = self.min_utilization.map(|u| {
            let num = ((u * UTILIZATION_SCALE as f64).round() as u128).max(1);
            let cap = macs as u128 * UTILIZATION_SCALE / (num * mac_instances.max(1) as u128);
            cap.min(u64::MAX as u128) as u64
        });
        [self.max_cycles, from_u].into_iter().flatten().min()
    }
}

/// Why no mapping of `space` (under its cycles cap) is found at the bit choices `choices`: the
/// least cycles of the whole mapspace, proved by enumeration (latency objective, no cap) within
/// `seconds`; None when the mapspace has no valid mapping at all (the engines' reason stands).
/// A mapping within the cap found here contradicts the budgeted search: an internal error.
pub fn infeasible_reason(
    space: &Mapspace,
    choices: &[ModelOptions],
    seconds: f64,
) -> Result<Option<String>, String> {
    let Some(cap) = space.max_cycles() else {
        return Ok(None);
    };
    let whole = space.clone().with_max_cycles(None);
    let deadline = Some(Instant::now() + Duration::from_secs_f64(seconds.max(0.0)));
    let (mut least, mut bound) = (f64::INFINITY, f64::INFINITY);
    for o in choices {
        let r = crate::search::enumerate(&whole, o, Objective::Latency, deadline);
        least = least.min(r.value);
        bound = bound.min(r.bound.unwrap_or(f64::NEG_INFINITY));
    }
    if least.is_infinite() && bound.is_infinite() {
        return Ok(None);
    }
    if least <= cap as f64 {
        return Err(crate::certify::internal_error(&format!(
            "the budgeted search found no mapping within {cap} cycles, but one of {least} \
             cycles exists"
        )));
    }
    let proved = if bound >= least {
        format!("the least cycles of the mapspace are {least} (proved by enumeration)")
    } else if bound > cap as f64 {
        format!("every mapping of the mapspace takes at least {bound} cycles (proved)")
    } else {
        format!(
            "every mapping within it was ruled out by the budgeted search; the least cycles \
             of the mapspace were not proved in {seconds:.0} s (best found {least}, bound \
             {bound})"
        )
    };
    Ok(Some(format!(
        "no mapping meets the latency budget of {cap} cycles: {proved}"
    )))
}
