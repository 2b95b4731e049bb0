//! The terminal text of the commands about one layer's mapping: `map` (the certificate),
//! `search`, `eval` and `export`.

use super::text::{evaluation_table, loop_nest, mapspace_size, settings_line, status_name};
use crate::app::eval::EvalReport;
use crate::app::export::TimeloopDir;
use crate::app::job::Found;
use crate::app::map::MapReport;
use crate::app::search::{NotFound, Searched};
use crate::eval::Evaluation;
use crate::milp::Status;
use crate::optimum::ProofKind;
use crate::spec::Objective;
use std::fmt::Write;

/// How values of an objective are printed.
pub fn value_unit(objective: Objective) -> fn(f64) -> String {
    match objective {
        Objective::Energy => super::energy,
        Objective::Latency => |v: f64| format!("{v:.0} cycles"),
        Objective::Edp => |v: f64| format!("{v:.4e} pJ*cycles"),
    }
}

fn objective_name(o: Objective) -> &'static str {
    match o {
        Objective::Energy => "energy",
        Objective::Latency => "latency",
        Objective::Edp => "EDP",
    }
}

/// The mapping as a loop nest and its evaluation, each after a blank line (nothing without
/// a mapping).
fn mapping_and_evaluation(out: &mut String, found: &Found, ev: Option<&Evaluation>) {
    if let (Some(m), Some(ev)) = (&found.mapping, ev) {
        out.push('\n');
        out.push_str(&loop_nest(m, &found.arch, &found.problem));
        out.push('\n');
        out.push_str(&evaluation_table(ev));
    }
}

/// `qmap map`'s text: the design, the mapping and its evaluation, the status and the proof.
pub fn map_text(r: &MapReport) -> String {
    let found = &r.text.found;
    let mut out = String::new();
    writeln!(out, "qmap map: {}", found.title).unwrap();
    writeln!(out, "{}", settings_line(&found.problem, &found.opts)).unwrap();
    if r.bit_choices > 1 {
        writeln!(out, "bit-width choices: {} (best shown)", r.bit_choices).unwrap();
        out.push_str(&bits_note(&found.arch));
    }
    writeln!(out, "mapspace: {}", mapspace_size(r.answer.mapspace_size)).unwrap();
    if let Some(b) = &r.budget {
        out.push_str(&budget_line(b));
    }
    mapping_and_evaluation(&mut out, found, r.answer.evaluation.as_ref());
    out.push('\n');
    let unit = value_unit(r.answer.objective);
    let value = |v: f64| {
        if v.is_finite() {
            unit(v)
        } else {
            "-".to_string()
        }
    };
    let found_value = if found.mapping.is_none() && r.cert.status == Status::TimeLimit {
        "no mapping found yet".to_string()
    } else {
        format!(
            "{} {}",
            objective_name(r.answer.objective),
            value(r.cert.value)
        )
    };
    writeln!(
        out,
        "status: {}   {found_value}   bound {}   gap {:.3e}   {}   {:.2} s",
        status_name(r.cert.status),
        value(r.cert.bound),
        r.cert.gap,
        proof_text(r),
        r.cert.seconds
    )
    .unwrap();
    if let Some(reason) = &r.cert.reason {
        writeln!(out, "reason: {reason}").unwrap();
    }
    if let Some(c) = r.cert.check.filter(|c| c.samples > 0) {
        writeln!(
            out,
            "self-check: {} random valid mappings of {} drawn, none below the bound ({:.2} s)",
            c.valid, c.samples, c.seconds
        )
        .unwrap();
    }
    out
}

/// Why `map` over bit-width lists ends at the smallest bits: it has no accuracy term, and
/// fewer bits never cost more (they pack at least as densely; the MAC energy depends on bits
/// only through a MAC energy table), unless that table prices fewer bits above more.
fn bits_note(arch: &crate::model::Arch) -> String {
    if !arch.mac.fewer_bits_never_cost_more() {
        return "note: map minimises the objective alone, with no accuracy term; this design's \
                MAC energy table prices some fewer bits above more, so the answer need not be \
                at the smallest bits. `qmap front` trades energy against accuracy.\n"
            .to_string();
    }
    let mac = if arch.mac.energy_table.is_empty() {
        "the MAC energy does not depend on bits in this design"
    } else {
        "this design's MAC energy table prices bits"
    };
    format!(
        "note: map minimises the objective alone, with no accuracy term: fewer bits never cost \
         more (they pack at least as densely; {mac}), so the answer is at the smallest bits or \
         one as cheap. `qmap front` trades energy against accuracy.\n"
    )
}

/// The latency budget the answer is optimal under: the cap and what it came from.
fn budget_line(b: &crate::app::map::BudgetReport) -> String {
    let mut from = vec![];
    if let Some(n) = b.asked.max_cycles {
        from.push(format!("max cycles {n}"));
    }
    if let Some(u) = b.asked.min_utilization {
        from.push(format!("min utilization {u}"));
    }
    let answer = b
        .utilization
        .map(|u| format!("; the answer's utilization {:.2} %", u * 100.0))
        .unwrap_or_default();
    format!(
        "budget: at most {} cycles ({}){answer}\n",
        b.cycles_cap,
        from.join(", ")
    )
}

/// How the answer was proved, as the status line says it.
fn proof_text(r: &MapReport) -> String {
    match r.cert.proof {
        ProofKind::Enumerated if r.cert.status == Status::TimeLimit => format!(
            "proof: enumeration stopped at the time limit (bound: the least bound of the \
             parts left; {:.3e} factorisations × keep patterns)",
            r.text.enumeration_size
        ),
        ProofKind::Enumerated => format!(
            "proof: enumerated ({}, {:.3e} factorisations × keep patterns)",
            mapspace_size(r.answer.mapspace_size),
            r.text.enumeration_size
        ),
        ProofKind::Milp if r.cert.splits > 0 => format!(
            "proof: MILP, rounds {}   MILP solves {}   halvings {}",
            r.cert.rounds, r.cert.milp_solves, r.cert.splits
        ),
        ProofKind::Milp => format!(
            "proof: MILP, rounds {}   MILP solves {}",
            r.cert.rounds, r.cert.milp_solves
        ),
    }
}

/// `qmap search`'s text: the design, how much was searched, the best mapping.
pub fn search_text(r: &Searched) -> String {
    let mut out = String::new();
    writeln!(
        out,
        "qmap search ({:?}): {}",
        r.text.method, r.text.found.title
    )
    .unwrap();
    writeln!(
        out,
        "{}",
        settings_line(&r.text.found.problem, &r.text.found.opts)
    )
    .unwrap();
    writeln!(
        out,
        "mapspace: {}; evaluated {}, valid {}{}",
        mapspace_size(r.answer.mapspace_size),
        r.evaluated,
        r.valid,
        if r.stopped_at_time_limit {
            " (stopped at the time limit)"
        } else {
            ""
        }
    )
    .unwrap();
    mapping_and_evaluation(&mut out, &r.text.found, r.answer.evaluation.as_ref());
    out
}

/// `qmap search`'s text when no valid mapping was found.
pub fn search_not_found_text(r: &NotFound) -> String {
    format!(
        "qmap search ({:?}): {}\nno valid mapping found\n",
        r.text_method, r.title
    )
}

/// `qmap eval`'s text: the design, the problem, the loop nest and the evaluation.
pub fn eval_text(r: &EvalReport) -> String {
    let (found, ev) = (&r.found, &r.evaluation);
    let mut out = String::new();
    writeln!(out, "qmap eval: {}", found.title).unwrap();
    writeln!(out, "{}", settings_line(&found.problem, &found.opts)).unwrap();
    writeln!(
        out,
        "problem: {} ({} MACs)",
        crate::app::eval::shape(&found.problem),
        super::thousands(found.problem.macs())
    )
    .unwrap();
    mapping_and_evaluation(&mut out, found, Some(ev));
    out
}

/// What `qmap export --timeloop-dir` wrote, the notes about it and how to rerun it.
pub fn timeloop_dir_text(d: &TimeloopDir, title: &str) -> String {
    let dir = d.dir.display();
    let mut out = format!("wrote {dir}/{{arch,ERT,problem,map}}.yaml ({title})\n");
    for issue in &d.arch_issues {
        writeln!(out, "note: {issue}").unwrap();
    }
    if d.bitwidths {
        out.push_str(
            "note: the problem carries `instance.bitwidths` (the seed fork's packing); \
             Timeloop v3.0.3 itself has no packing\n",
        );
    }
    writeln!(
        out,
        "rerun: cd {dir} && timeloop-model arch.yaml problem.yaml map.yaml ERT.yaml"
    )
    .unwrap();
    out
}
