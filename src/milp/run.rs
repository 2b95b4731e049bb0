//! One MILP solve of a pattern's model: the model handed to [`crate::solver`] with the cutoff
//! and completion-bound rows, HiGHS's settings for it, and the bound it proves.

use crate::milp::lin::Lin;
use crate::milp::model::Model;
use crate::solver::{Problem, Settings, Status, Value};

/// HiGHS's MIP feasibility tolerance (its default), in objective units it is also the margin
/// by which it prunes nodes against an incumbent, so the bounds it reports are discounted by it.
pub(super) const HIGHS_MIP_FEASTOL: f64 = 1e-6;

/// HiGHS's `presolve_rule_off` bit of its probing rule (`kPresolveRuleProbing`).
pub(super) const PRESOLVE_PROBING: i32 = 1 << 15;

/// Status, the final solution, the dual bound and every improving solution found on the way.
pub(super) type Solved = (Status, Option<Vec<f64>>, f64, Vec<Vec<f64>>);

/// Solves the model (only mappings below `cutoff`, objective units, when given).
pub(super) fn run_highs(
    m: &Model,
    time_limit: Option<f64>,
    cutoff: Option<f64>,
) -> Result<Solved, String> {
    // HiGHS's presolve occasionally ends in a numerical error on these models; the same
    // model without presolve is then solved as before (slower, not different).
    run_highs_with(m, time_limit, cutoff, true)
        .or_else(|_| run_highs_with(m, time_limit, cutoff, false))
}

fn run_highs_with(
    m: &Model,
    time_limit: Option<f64>,
    cutoff: Option<f64>,
    presolve: bool,
) -> Result<Solved, String> {
    let solution = problem(m, cutoff).solve(&settings(time_limit, presolve))?;
    let status = solution.status;
    let bound = solution.dual_bound.unwrap_or(f64::NEG_INFINITY) + m.cost_const;
    let x = match status {
        Status::Optimal | Status::ReachedTimeLimit if solution.columns.len() == m.col_lo.len() => {
            Some(solution.columns)
        }
        _ => None,
    };
    let bound = if status == Status::Optimal {
        let obj = solution.objective + m.cost_const;
        if bound.is_finite() {
            obj.min(bound)
        } else {
            obj
        }
    } else {
        bound
    };
    // Once it has an incumbent, HiGHS prunes nodes whose bound is within its feasibility
    // tolerance of it (`upper_limit = incumbent − feastol` for a continuous objective), so a
    // mapping up to that much better may go unseen: the bound is valid only that much lower.
    let bound = bound - HIGHS_MIP_FEASTOL;
    Ok((status, x, bound, solution.improving))
}

/// The model as HiGHS is given it: its columns, the cutoff row, the completion-bound rows and
/// the model's rows, each relaxed where HiGHS would drop an entry.
fn problem(m: &Model, cutoff: Option<f64>) -> Problem {
    let mut pb = Problem::default();
    for i in 0..m.col_lo.len() {
        pb.add_column(m.col_cost[i], m.col_lo[i], m.col_hi[i], m.col_int[i]);
    }
    // The objective's columns: the cutoff and the completion-bound floors are rows over them.
    let objective: Vec<(usize, f64)> = (m.col_cost.iter().enumerate())
        .filter(|(_, v)| **v != 0.0)
        .map(|(i, v)| (i, *v))
        .collect();
    let mut rows: Vec<(f64, f64, Vec<(usize, f64)>)> = vec![];
    if let Some(c) = cutoff {
        // Only mappings that beat the incumbent by more than the tolerance are of interest.
        rows.push((f64::NEG_INFINITY, c - m.cost_const, objective.clone()));
    }
    // The objective is at least the completion bound of each dim's factorisation.
    for floor in &m.objective_floors {
        let mut l = Lin {
            c: 0.0,
            t: objective.clone(),
        };
        l.t.extend(floor.iter().map(|&(i, b)| (i, -b)));
        rows.push((-m.cost_const, f64::INFINITY, l.merged()));
    }
    for (lo, hi, t) in rows.iter().chain(&m.rows) {
        pb.add_relaxed_row(*lo, *hi, t);
    }
    pb
}

/// HiGHS's settings for the pattern models.
fn settings(time_limit: Option<f64>, presolve: bool) -> Settings {
    Settings {
        options: vec![
            ("threads", Value::Int(1)),
            ("mip_rel_gap", Value::Float(0.0)),
            ("mip_feasibility_tolerance", Value::Float(HIGHS_MIP_FEASTOL)),
            ("mip_abs_gap", Value::Float(0.0)),
            ("mip_allow_restart", Value::Bool(false)),
            // Presolve shrinks the dense one-hot rows a lot (the B&B is then several times
            // faster), but its probing alone costs seconds on dims with a thousand
            // factorisations: probing off.
            ("presolve", Value::Str(if presolve { "on" } else { "off" })),
            ("presolve_rule_off", Value::Int(PRESOLVE_PROBING)),
            ("mip_heuristic_run_rins", Value::Bool(false)),
            ("mip_heuristic_run_rens", Value::Bool(false)),
            ("mip_heuristic_run_root_reduced_cost", Value::Bool(false)),
            ("mip_heuristic_run_feasibility_jump", Value::Bool(false)),
        ],
        time_limit,
        // Debug switch: HiGHS's own log of every solve (presolve, B&B nodes, timing).
        log: std::env::var("QMAP_HIGHS_LOG").is_ok(),
        // Debug switch: the model as HiGHS has it (after the relaxation of tiny entries), in the
        // file's format (`.lp`, `.mps`), overwritten by each solve: the last solve's model is
        // left.
        write_model: std::env::var_os("QMAP_MILP_WRITE")
            .and_then(|p| std::ffi::CString::new(p.to_string_lossy().into_owned()).ok()),
        improving: true,
    }
}
