//! The energy terms of a tensor's transfers: MACs' accesses at its innermost keeper, and per
//! pair of keepers the child's fills and the parent's reads (and updates), under the load
//! modes a pair may take (whole tiles with temporal reuse, or sliding windows, with Timeloop's
//! window carried across wrap-arounds).

use crate::milp::ceilings::{whole, MultiCount, Whole};
use crate::milp::encode::build::Builder;
use crate::milp::encode::carry::{carry_possible, WindowCarry};
use crate::milp::encode::view::ln;
use crate::milp::lin::Lin;
use crate::milp::model::lin_range;
use crate::milp::OFF;
use crate::model::Term;

/// A load mode: its binary (None: the only mode) and the log counts of its parts.
type Mode = (Option<usize>, Vec<Lin>);

/// One consumer of a pair's loads: the level charged, the energy coefficient per scalar, the
/// log multiplier of the loads, the floor energy when the count is at least one vector, and
/// the charged instances (their log and the level when they vary).
struct Consumer {
    at: usize,
    coef: f64,
    mult: Lin,
    floor: f64,
    charged: (Lin, Option<usize>),
}

/// What the load modes of a keeper pair (child c) read: its tile, its ranks' parts, the
/// temporal loops above c, and the reuse of the leading run of irrelevant loops.
struct PairLogs {
    tile: Lin,
    ranks: Vec<Lin>,
    above: Lin,
    savings: Lin,
}

impl Builder<'_> {
    /// Every energy term of tensor t.
    pub(super) fn tensor_terms(&mut self, t: usize) -> Result<(), String> {
        let keep = self.v.keep;
        let keepers: Vec<usize> = (0..self.v.nl).filter(|&l| keep[l][t]).collect();
        let outer = *keepers.last().unwrap();
        self.mac_terms(t, keepers[0], outer)?;
        for w in keepers.windows(2) {
            self.keeper_pair(t, w[0], w[1], outer)?;
        }
        Ok(())
    }

    /// MACs → innermost keeper k0: reads (and updates of the read-write tensor).
    fn mac_terms(&mut self, t: usize, k0: usize, outer: usize) -> Result<(), String> {
        let v = self.v;
        let tensor = &v.problem.tensors[t];
        let mut a = Lin::default();
        for l in 0..v.nl {
            a.add(&v.temporal_log(&self.vars, l), 1.0);
        }
        for l in 0..=k0 {
            a.add(&self.log_distinct(t, l), 1.0);
        }
        let charged = self.charged_log(k0);
        let ch = charged.0.clone();
        let level = &v.arch.levels[k0];
        let count = a.plus(&ch); // total scalar accesses at k0 (charged instances)
        self.m.at = (k0, t);
        let (coef, scale) = (|e: f64| v.coef(k0, t, e, outer), v.scale);
        if !tensor.read_write {
            let floor = level.read_energy / scale;
            let w = whole(floor, &charged);
            self.m
                .term_with_floor(coef(level.read_energy), count, floor, ch.clone(), w);
            return Ok(());
        }
        if level.cluster_size > 1 {
            return Err(
                "the MILP does not support clustered levels keeping the read-write tensor".into(),
            );
        }
        let floor = level.update_energy / scale;
        let w = whole(floor, &charged);
        self.m.term_with_floor(
            coef(level.update_energy),
            count.clone(),
            floor,
            ch.clone(),
            w,
        );
        self.m.term(coef(level.read_energy), count.clone());
        let p = self.part_total(t, k0);
        self.linear_cost.add(&p, -coef(level.read_energy));
        Ok(())
    }

    /// The transfers between keepers c (child) and p (parent) of tensor t.
    fn keeper_pair(&mut self, t: usize, c: usize, p: usize, outer: usize) -> Result<(), String> {
        let (tile, ranks) = self.log_tile(t, c);
        let mut above = Lin::default();
        for l in c + 1..self.v.nl {
            above.add(&self.v.temporal_log(&self.vars, l), 1.0);
        }
        let savings = self.reuse_savings(t, c);
        let logs = PairLogs {
            tile,
            ranks,
            above,
            savings,
        };
        let modes = self.load_modes(t, c, &logs);
        let consumers = self.consumers(t, c, p, outer);
        self.consumer_terms(t, &consumers, &modes);
        Ok(())
    }

    /// Temporal reuse: the log savings of the leading run of loops irrelevant to tensor t
    /// above child c (each loop counts where every level between is transparent for t).
    fn reuse_savings(&mut self, t: usize, c: usize) -> Lin {
        let v = self.v;
        let tensor = &v.problem.tensors[t];
        let mut savings = Lin::default();
        let mut reach_prev: Option<usize> = None;
        for l in c + 1..v.nl {
            let s = v.space.level_slots(l).temporal;
            let irr: Vec<usize> = (0..v.nd)
                .filter(|&d| !tensor.relevant(d) && v.can_nonunit(d, s))
                .collect();
            // reach: every level between c and l is transparent for t
            let reach = self.m.col(0.0, 1.0, false, 0.0);
            if let Some(rp) = reach_prev {
                self.m
                    .le(&Lin::var(reach, 1.0).minus(&Lin::var(rp, 1.0)), 0.0);
                // transparency of level l−1: no relevant non-unit loop there
                let sp = v.space.level_slots(l - 1).temporal;
                for d in (0..v.nd).filter(|&d| tensor.relevant(d) && v.can_nonunit(d, sp)) {
                    let nu = v.nonunit(&self.vars, d, sp);
                    self.m.le(&Lin::var(reach, 1.0).plus(&nu), 1.0);
                }
            }
            reach_prev = Some(reach);
            for &d in &irr {
                let wv = self.run_saving(t, l, d, reach);
                savings.t.push((wv, 1.0));
            }
        }
        savings
    }

    /// A column at most the log factor of irrelevant dim d at level l, and 0 unless d's loop
    /// is in the leading run of irrelevant loops (`in_run`) and level l is reached (`reach`).
    fn run_saving(&mut self, t: usize, l: usize, d: usize, reach: usize) -> usize {
        let (v, vars, m) = (self.v, &self.vars, &mut self.m);
        let tensor = &v.problem.tensors[t];
        let s = v.space.level_slots(l).temporal;
        let rel = |dj: usize| tensor.relevant(dj) && v.can_nonunit(dj, s);
        let prefix = v.space.temporal_prefix(l).to_vec();
        let in_run = m.col(0.0, 1.0, false, 0.0);
        let pos = prefix.iter().position(|&x| x == d);
        for &dj in &prefix[..pos.unwrap_or(prefix.len())] {
            if rel(dj) {
                m.le(&Lin::var(in_run, 1.0).plus(&v.nonunit(vars, dj, s)), 1.0);
            }
        }
        if pos.is_none() {
            // the innermost loop must be irrelevant to t (or the level all unit)
            let mut l2 = Lin::var(in_run, 1.0);
            for d2 in (0..v.nd).filter(|&d2| !tensor.relevant(d2)) {
                if let Some(cd) = vars.delta[l][d2] {
                    l2.t.push((cd, -1.0));
                }
            }
            if let Some(nn) = &self.none[l] {
                l2.add(nn, -1.0);
            }
            m.le(&l2, 0.0);
        }
        let maxlog = v.max_log(d, s);
        let wv = m.col(0.0, maxlog, false, 0.0);
        m.le(&Lin::var(wv, 1.0).minus(&v.lf(vars, d, s)), 0.0);
        m.le(&Lin::var(wv, 1.0).minus(&Lin::var(in_run, maxlog)), 0.0);
        m.le(&Lin::var(wv, 1.0).minus(&Lin::var(reach, maxlog)), 0.0);
        wv
    }

    /// Load modes: whole tiles (with the run's reuse), or sliding windows. Timeloop's walk
    /// (eval::timeloop_loads) also loads only the new part at the step of a loop j outside the
    /// innermost one when `v_j = v1 + Σ_{i<j} v_i` (the window carried across the inner loops'
    /// wrap-around): each mode is a lower bound over the loop orders of its class (innermost
    /// dim per level) with such loops where they are possible ([`WindowCarry`]). Exactly one
    /// mode is taken.
    fn load_modes(&mut self, t: usize, c: usize, logs: &PairLogs) -> Vec<Mode> {
        let v = self.v;
        let tensor = &v.problem.tensors[t];
        let mut modes: Vec<Mode> = vec![];
        let ns = logs.tile.clone().plus(&logs.above).minus(&logs.savings);
        modes.push((None, vec![ns.clone()]));
        let carry = WindowCarry {
            view: v,
            tensor,
            child: c,
            possible: (tensor.ranks.iter())
                .map(|rank| carry_possible(v.space, rank, c))
                .collect(),
        };
        // The run's mode when a window loop may be carried after the first relevant loop:
        // at least half of it (the first relevant loop's own steps reload: docs/model.md).
        // The run's mode when loops may be carried after the first relevant loop a: with
        // K the product of those loops, loads ≥ T·steps/run · (1 − 1/N_a + 1/(N_a·K)) ≥
        // T·steps/run · (1 + 1/K) / 2 (N_a ≥ 2).
        if let Some((y, log_k)) = carry.after_run(&mut self.m, &self.vars, &self.none) {
            let half = ns.clone().plus(&Lin::konst(-2f64.ln()));
            modes.push((Some(y), vec![half.clone(), half.minus(&log_k)]));
        }
        for (r, rank) in tensor.ranks.iter().enumerate() {
            if rank.len() != 2 {
                continue;
            }
            for term in rank {
                for lam in c + 1..v.nl {
                    if let Some(mode) = self.sliding_mode(&carry, c, r, term, lam, logs) {
                        modes.push(mode);
                    }
                }
            }
        }
        if modes.len() > 1 {
            // Exactly one load mode.
            modes[0].0 = Some(self.m.bin());
            let sum = Lin {
                c: 0.0,
                t: modes.iter().map(|(y, _)| (y.unwrap(), 1.0)).collect(),
            };
            self.m.eq(&sum, 1.0);
        }
        modes
    }

    /// The mode sliding along rank r's `term` when its dim is level lam's innermost loop
    /// (None when it never is): its binary and the log counts of its parts.
    fn sliding_mode(
        &mut self,
        carry: &WindowCarry,
        c: usize,
        r: usize,
        term: &Term,
        lam: usize,
        logs: &PairLogs,
    ) -> Option<Mode> {
        let v = self.v;
        let d = term.dim;
        let dl = self.vars.delta[lam][d]?;
        let s = v.space.level_slots(lam).temporal;
        let y = self.m.bin();
        self.m.le(&Lin::var(y, 1.0).minus(&Lin::var(dl, 1.0)), 0.0);
        for l2 in c + 1..lam {
            if let Some(nn) = &self.none[l2] {
                self.m.le(&Lin::var(y, 1.0).minus(nn), 0.0);
            }
        }
        let vars = &self.vars;
        // log B1 and log(1 − 1/B1) of the sliding loop, log shift
        let lb1 = v.lf(vars, d, s);
        let l1m = v.per_dim(vars, d, &|ch| {
            if ch[s] > 1 {
                (1.0 - 1.0 / ch[s] as f64).ln()
            } else {
                -OFF
            }
        });
        let lshift = v.per_dim(vars, d, &|ch| {
            let inner: u64 = (v.slots.iter().enumerate())
                .filter(|(i, sl)| sl.level < lam || (sl.level == lam && *i != s))
                .map(|(i, _)| ch[i])
                .product();
            ln(term.coef * inner)
        });
        // Loops that may be carried after this one: their factors come off the reloads (the
        // whole tile once per Π of the loops outside all of them).
        let carried = carry.members(&mut self.m, &self.vars, r, term, lam);
        // With K the product of the loops carried after this one (placed right after it: the
        // most weight), loads ≥ T·steps/(B1·K) + D·steps·(1 − 1/(B1·K)), and 1 − 1/(B1·K) ≥
        // 1 − 1/B1 + [K ≥ 2]/(2·B1) + [K ≥ 4]/(4·B1).
        let (lt, above) = (&logs.tile, &logs.above);
        let t1 = above.clone().minus(&lb1).plus(lt).minus(&carried);
        let d_steps = above.clone().plus(lt).minus(&logs.ranks[r]).plus(&lshift);
        let t2 = d_steps.clone().plus(&l1m);
        let mut parts = vec![t1, t2];
        if !carried.t.is_empty() {
            // K's factors count only with the parts they bring: without y2 no loop is carried
            // (K = 1), without y4 K ≤ 4.
            let (lo, hi) = lin_range(&carried, &self.m);
            let most = hi.max(-lo).max(0.0) + 1.0;
            for (k, cap) in [(2.0f64, 0.0), (4.0, 4f64.ln())] {
                let yk = self.m.bin();
                self.m.le(&carried.clone().minus(&Lin::var(yk, most)), cap);
                let part = d_steps.clone().minus(&lb1);
                parts.push(part.plus(&Lin::konst(-k.ln())).switched(yk));
            }
        }
        Some((Some(y), parts))
    }

    /// The consumers of the loads of keeper pair (c, p) of tensor t (and, for the read-write
    /// tensor, the subtracted partitions of its first writes).
    fn consumers(&mut self, t: usize, c: usize, p: usize, outer: usize) -> Vec<Consumer> {
        let v = self.v;
        let mut distinct = Lin::default();
        for l in c + 1..=p {
            distinct.add(&self.log_distinct(t, l), 1.0);
        }
        let charged_c = self.charged_log(c);
        let charged_p = self.charged_log(p);
        let (ch_c, ch_p) = (charged_c.0.clone(), charged_p.0.clone());
        let (lc, lp) = (&v.arch.levels[c], &v.arch.levels[p]);
        let coef = |l: usize, e: f64| v.coef(l, t, e, outer);
        let consumer = |at, coef, mult, floor, charged| Consumer {
            at,
            coef,
            mult,
            floor,
            charged,
        };
        let reads = ch_p.clone().plus(&distinct);
        if !v.problem.tensors[t].read_write {
            return vec![
                consumer(
                    c,
                    coef(c, lc.write_energy),
                    ch_c,
                    lc.write_energy / v.scale,
                    charged_c,
                ),
                consumer(
                    p,
                    coef(p, lp.read_energy),
                    reads,
                    lp.read_energy / v.scale,
                    charged_p,
                ),
            ];
        }
        let out = vec![
            consumer(c, coef(c, lc.write_energy), ch_c, 0.0, Default::default()),
            consumer(
                p,
                coef(p, lp.update_energy),
                reads.clone(),
                lp.update_energy / v.scale,
                charged_p,
            ),
            consumer(p, coef(p, lp.read_energy), reads, 0.0, Default::default()),
        ];
        let pc = self.part_total(t, c);
        self.linear_cost.add(&pc, -coef(c, lc.write_energy));
        let pp = self.part_total(t, p);
        self.linear_cost.add(&pp, -coef(p, lp.read_energy));
        out
    }

    /// Each consumer's terms under each load mode: a one-part count at least one vector access
    /// per instance, a multi-part count rounded as a sum.
    fn consumer_terms(&mut self, t: usize, consumers: &[Consumer], modes: &[Mode]) {
        let gate = |a: Lin, y: &Option<usize>| match y {
            Some(y) => a.switched(*y),
            None => a,
        };
        let m = &mut self.m;
        for cs in consumers {
            m.at = (cs.at, t);
            let (k, floor_k, charged) = (cs.coef, cs.floor, &cs.charged);
            for (y, parts) in modes {
                let a = |part: &Lin| gate(part.clone().plus(&cs.mult), y);
                if parts.len() == 1 {
                    // One part: its count is at least one vector access per instance.
                    let floor_a = gate(charged.0.clone(), y);
                    m.term_with_floor(k, a(&parts[0]), floor_k, floor_a, whole(floor_k, charged));
                    continue;
                }
                let ws: Vec<usize> = parts.iter().filter_map(|part| m.term(k, a(part))).collect();
                if ws.len() <= 1 {
                    continue;
                }
                match whole(floor_k, charged) {
                    Whole::Fixed(unit) if unit > 0.0 && unit.is_finite() => {
                        m.multi.push(MultiCount::new(ws, unit, None));
                    }
                    Whole::PerInstance { charged, level } if floor_k > 0.0 => {
                        let per_instance = Some((charged.clone(), level));
                        m.multi.push(MultiCount::new(ws, floor_k, per_instance));
                    }
                    _ => {}
                }
            }
        }
    }
}
