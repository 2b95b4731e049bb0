//! The crate's only HiGHS user: a small typed model layer (columns with bounds and integrality,
//! rows, a linear objective to minimise) solved by HiGHS under the caller's settings, returning
//! the status, the primal values, the objective and the MIP dual bound, and on request every
//! improving solution HiGHS finds on the way (through its callback, in `ffi`).

mod ffi;

use highs::{Col, RowProblem, Sense};

/// How a solve ended (HiGHS's model status).
pub use highs::HighsModelStatus as Status;

/// The least coefficient a row may carry: HiGHS treats entries at or below 1e-9 as zero, so a
/// tangent with a smaller slope would not be the row it claims to be. Such tangents are left
/// out (a tangent is only ever a cut); other rows have such entries moved into their bounds
/// ([`Problem::add_relaxed_row`], `relax_tiny`), which relaxes them.
pub const MIN_COEF: f64 = 1e-8;

/// A model to minimise: columns (bounds, integrality, cost) and rows `lo ≤ Σ v·x ≤ hi`.
#[derive(Default)]
pub struct Problem {
    pb: RowProblem,
    cols: Vec<Col>,
    bounds: Vec<(f64, f64)>,
}

/// A HiGHS option's value.
#[derive(Debug, Clone, Copy)]
pub enum Value {
    Bool(bool),
    Int(i32),
    Float(f64),
    Str(&'static str),
}

/// How a [`Problem`] is solved.
#[derive(Debug, Clone, Default)]
pub struct Settings {
    /// HiGHS options, set in this order.
    pub options: Vec<(&'static str, Value)>,
    /// Wall-clock limit in seconds (at least 0.01 is given to HiGHS).
    pub time_limit: Option<f64>,
    /// HiGHS's own log on the console (else it is quiet).
    pub log: bool,
    /// A file to write the model to before the solve (its format from its extension).
    pub write_model: Option<std::ffi::CString>,
    /// Collect every improving MIP solution (full column vectors) through HiGHS's callback.
    pub improving: bool,
}

/// What a solve returned.
#[derive(Debug, Clone)]
pub struct Solution {
    pub status: Status,
    /// The primal column values HiGHS reports (check `status` and their length).
    pub columns: Vec<f64>,
    /// The objective value HiGHS reports.
    pub objective: f64,
    /// HiGHS's MIP dual bound, when it reports one.
    pub dual_bound: Option<f64>,
    /// The improving solutions found on the way ([`Settings::improving`]), in order.
    pub improving: Vec<Vec<f64>>,
}

impl Problem {
    /// A new column of cost `cost` within `lo..=hi` (integer when `integer`); its index.
    pub fn add_column(&mut self, cost: f64, lo: f64, hi: f64, integer: bool) -> usize {
        let col = if integer {
            self.pb.add_integer_column(cost, lo..=hi)
        } else {
            self.pb.add_column(cost, lo..=hi)
        };
        self.cols.push(col);
        self.bounds.push((lo, hi));
        self.cols.len() - 1
    }

    /// The number of columns.
    pub fn columns(&self) -> usize {
        self.cols.len()
    }

    /// The row `lo ≤ Σ v·x ≤ hi` over `(column, v)` entries (an infinite bound: that side
    /// unbounded).
    pub fn add_row(&mut self, lo: f64, hi: f64, entries: &[(usize, f64)]) {
        let factors: Vec<(Col, f64)> = entries.iter().map(|&(i, v)| (self.cols[i], v)).collect();
        self.pb.add_row(lo..=hi, factors);
    }

    /// The row `lo ≤ Σ v·x ≤ hi` as HiGHS may be given it (`relax_tiny`): a relaxation of it,
    /// left out when neither bound is finite.
    pub fn add_relaxed_row(&mut self, lo: f64, hi: f64, entries: &[(usize, f64)]) {
        let (lo, hi, kept) = relax_tiny(&self.bounds, lo, hi, entries);
        if lo.is_finite() || hi.is_finite() {
            self.add_row(lo, hi, &kept);
        }
    }

    /// Minimises the problem under `settings`. Errs when HiGHS rejects the model or fails.
    pub fn solve(self, settings: &Settings) -> Result<Solution, String> {
        let n = self.cols.len();
        let mut model = self
            .pb
            .try_optimise(Sense::Minimise)
            .map_err(|e| format!("HiGHS rejected the model: {e:?}"))?;
        if settings.log {
            model.set_option("output_flag", true);
            model.set_option("log_to_console", true);
        } else {
            model.make_quiet();
        }
        for &(name, value) in &settings.options {
            match value {
                Value::Bool(v) => model.set_option(name, v),
                Value::Int(v) => model.set_option(name, v),
                Value::Float(v) => model.set_option(name, v),
                Value::Str(v) => model.set_option(name, v),
            }
        }
        if let Some(t) = settings.time_limit {
            model.set_option("time_limit", t.max(0.01));
        }
        if let Some(path) = &settings.write_model {
            ffi::write_model(&mut model, path);
        }
        let mut improving: Vec<Vec<f64>> = vec![];
        if settings.improving {
            ffi::collect_improving(&mut model, &mut improving);
        }
        let solved = model
            .try_solve()
            .map_err(|e| format!("HiGHS failed: {e:?}"))?;
        improving.retain(|s| s.len() == n);
        Ok(Solution {
            status: solved.status(),
            columns: solved.get_solution().columns().to_vec(),
            objective: solved.objective_value(),
            dual_bound: solved.double_info_value(c"mip_dual_bound").ok(),
            improving,
        })
    }
}

/// A row `lo ≤ Σ v·x ≤ hi` as HiGHS may be given it: HiGHS reads entries below 1e-9 as zero,
/// which would turn the row into another one (`w = unit·z` into `w = 0`). Each entry below
/// [`MIN_COEF`] is taken out and its range over its column's bounds moved into the row's
/// bounds, so the row HiGHS solves is a relaxation of the row the model states.
fn relax_tiny(
    bounds: &[(f64, f64)],
    lo: f64,
    hi: f64,
    t: &[(usize, f64)],
) -> (f64, f64, Vec<(usize, f64)>) {
    let (mut lo, mut hi) = (lo, hi);
    let mut kept = Vec::with_capacity(t.len());
    for &(i, v) in t {
        if v == 0.0 || v.abs() >= MIN_COEF {
            kept.push((i, v));
            continue;
        }
        let (a, b) = (v * bounds[i].0, v * bounds[i].1);
        let (least, most) = (a.min(b), a.max(b));
        // Infinite bounds give NaN products at most with v = 0, excluded above.
        lo -= most;
        hi -= least;
    }
    (lo, hi, kept)
}
