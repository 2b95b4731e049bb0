//! The model of one bypass pattern, built from the mapspace by `Builder`, whose parts encode
//! one concern each: the dims' one-hots (`dims`), loop orders (`order`), tiles and instance
//! counts (`tiles`), the transfers between keepers (`transfers`) and capacities (`capacity`).

use crate::mapspace::Mapspace;
use crate::milp::encode::view::View;
use crate::milp::encode::Vars;
use crate::milp::lin::Lin;
use crate::milp::model::{lin_range, ExpTerm, Model};
use crate::milp::rounds::Pattern;
use crate::model::{ModelOptions, Problem};
use std::collections::HashMap;

/// The model under construction: the mapspace it reads, the model and one-hots so far, and
/// what the parts share.
pub(super) struct Builder<'a> {
    pub(super) v: &'a View<'a>,
    pub(super) m: Model,
    pub(super) vars: Vars,
    /// Per level ≥ 1: 1 when all its temporal loops are unit (a binary, or the constant 1
    /// when no dim can be non-unit there).
    pub(super) none: Vec<Option<Lin>>,
    /// log tile of (tensor, level) and its ranks' parts ([`Builder::log_tile`]).
    pub(super) tile_cache: HashMap<(usize, usize), (Lin, Vec<Lin>)>,
    /// log charged instances of a level ([`Builder::charged_log`]).
    pub(super) charged_cache: HashMap<usize, (Lin, Option<usize>)>,
    /// The objective's linear parts (Outputs' subtracted partitions).
    pub(super) linear_cost: Lin,
}

/// Builds the model of one bypass pattern (None when a dim has no allowed factorisation).
pub(in crate::milp) fn build_pattern(
    space: &Mapspace,
    opts: &ModelOptions,
    keep: &[Vec<bool>],
    slice_choices: (usize, usize),
) -> Result<Option<Pattern>, String> {
    let view = View::new(space, opts, keep);
    if view.choices.iter().any(|c| c.is_empty()) {
        return Ok(None);
    }
    check_ranks(view.problem)?;
    let mut b = Builder::new(&view);
    b.choice_onehots(slice_choices);
    b.mirror_cut();
    b.fanouts();
    b.latency_budget();
    b.loop_order();
    for t in 0..view.problem.tensors.len() {
        b.tensor_terms(t)?;
    }
    b.capacities();
    Ok(Some(b.finish()))
}

/// The rank shapes the encoding supports.
fn check_ranks(problem: &Problem) -> Result<(), String> {
    for t in &problem.tensors {
        if t.ranks.iter().any(|r| r.len() > 2) {
            return Err(format!(
                "the MILP supports ranks of at most two terms ({} has more)",
                t.name
            ));
        }
        if t.read_write && t.ranks.iter().any(|r| r.len() != 1 || r[0].coef != 1) {
            return Err("the MILP needs the read-write tensor's ranks to be single dims".into());
        }
    }
    Ok(())
}

impl<'a> Builder<'a> {
    fn new(v: &'a View<'a>) -> Builder<'a> {
        Builder {
            v,
            m: Model::default(),
            vars: Vars {
                x: vec![],
                delta: vec![vec![None; v.nd]; v.nl],
            },
            none: vec![None; v.nl],
            tile_cache: HashMap::new(),
            charged_cache: HashMap::new(),
            linear_cost: Lin::default(),
        }
    }

    /// The objective's linear parts, the a-priori tangents and the one-hot liftings: the
    /// pattern ready for its first round.
    fn finish(mut self) -> Pattern {
        let m = &mut self.m;
        for &(i, v) in &self.linear_cost.t {
            m.col_cost[i] += v;
        }
        let (problem, arch, opts) = (self.v.problem, self.v.arch, self.v.opts);
        m.cost_const = self.linear_cost.c
            + problem.macs() as f64 * crate::eval::mac_energy_per_op(arch, problem, opts)
                / self.v.scale;
        // A-priori tangents: at every term's exponent range midpoint grid (coarse).
        for t in m.terms.clone() {
            grid(m, &t);
        }
        for t in m.cap_terms.clone() {
            grid(m, &t);
        }
        for t in m.floors.clone() {
            grid(m, &t);
        }
        // One-hot lifting of every term.
        for t in (m.terms.iter().chain(&m.cap_terms).chain(&m.floors))
            .cloned()
            .collect::<Vec<_>>()
        {
            m.lift(&t);
        }
        Pattern::built(self.m, self.vars, self.v.keep.to_vec(), self.v.scale)
    }
}

/// Tangents of term `t` on a coarse grid of its exponent's range.
fn grid(m: &mut Model, t: &ExpTerm) {
    let (lo, hi) = lin_range(&t.a, m);
    let hi = hi.min(80.0);
    let lo = lo.max(hi - 40.0);
    let n = (((hi - lo) / 3.0).ceil() as usize).clamp(1, 6);
    for i in 0..=n {
        m.tangent(t, lo + (hi - lo) * i as f64 / n as f64);
    }
}
