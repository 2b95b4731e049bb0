//! One function per command: its arguments → an `app` call → a `report` printer → how it ended.

use super::args::*;
use crate::app;
use crate::error::{Error, Outcome};
use crate::report::{self, files::check_outputs, files::write_file};
use crate::spec::{InputError, Objective};
use std::path::Path;
use std::time::Instant;

/// `println!` to stdout through [`super::emit`]: a closed pipe ends the run quietly.
macro_rules! outln {
    ($($t:tt)*) => { super::emit(format_args!("{}\n", format_args!($($t)*))) };
}

/// `print!` to stdout through [`super::emit`].
macro_rules! out {
    ($($t:tt)*) => { super::emit(format_args!($($t)*)) };
}

/// Tells the user, once per run and on stderr, what went wrong with the cache: an unusable
/// directory, or files that did not check out (their entries were recomputed).
fn warn_cache(w: &[String]) {
    if w.is_empty() {
        return;
    }
    eprintln!(
        "warning: {} cache problem(s); what they concern was recomputed:",
        w.len()
    );
    for line in w.iter().take(5) {
        eprintln!("  {line}");
    }
    if w.len() > 5 {
        eprintln!("  ... and {} more", w.len() - 5);
    }
}

pub fn eval(a: EvalArgs) -> Result<Outcome, Error> {
    let req = match (&a.timeloop, &a.instance) {
        (Some(tl), _) => app::eval::EvalRequest::Timeloop(tl),
        (None, Some(path)) => app::eval::EvalRequest::Instance {
            path,
            layer: a.layer.as_deref(),
            mapping: a.mapping.as_deref(),
        },
        (None, None) => unreachable!("clap requires INSTANCE without --timeloop"),
    };
    let r = app::eval::run(&req)?;
    for w in &r.warnings {
        eprintln!("warning: {w}");
    }
    if a.json {
        let text = serde_json::to_string_pretty(&r.evaluation).expect("evaluation serialises");
        outln!("{text}");
    } else if r.evaluation.valid {
        out!("{}", report::map::eval_text(&r));
    }
    match r.invalid() {
        Some(e) => Err(e.into()),
        None => Ok(Outcome::Ok),
    }
}

pub fn map(a: MapArgs) -> Result<Outcome, Error> {
    // The time limit is on the whole command: loading and counting the mapspace included.
    let start = Instant::now();
    let outputs = a.outputs.checked()?;
    let r = app::map::run(&app::map::MapRequest {
        instance: a.design.instance.as_deref(),
        layer: a.layer.clone(),
        timeloop: a.design.timeloop.as_deref(),
        constraints: a.design.constraints.as_deref(),
        objective: a.objective.map(Objective::from),
        time_limit: a.time_limit,
        start,
        gap: a.gap,
        engine: a.prover.engine.into(),
        enumerate_limit: a.prover.enumerate_limit,
        progress: a.progress.mode(),
        outputs,
        cache: a.cache.as_deref(),
        budget: a.budget.into(),
    })?;
    if a.json {
        outln!("{}", report::files::json(&r));
    } else {
        out!("{}", report::map::map_text(&r));
    }
    Ok(Outcome::check(r.pass()))
}

pub fn search(a: SearchArgs) -> Result<Outcome, Error> {
    let start = Instant::now();
    let outputs = a.outputs.checked()?;
    let r = app::search::run(&app::search::SearchRequest {
        instance: &a.instance,
        layer: a.layer.clone(),
        method: a.method.into(),
        samples: a.samples,
        victory: a.victory,
        seed: a.seed,
        limit: (!a.force).then_some(a.limit),
        time_limit: a.time_limit,
        start,
        objective: a.objective.map(Objective::from),
        progress: a.progress.mode(),
        outputs,
    })?;
    let found = matches!(r, app::search::SearchReport::Found(_));
    match r {
        app::search::SearchReport::NotFound(nf) if a.json => {
            outln!("{}", serde_json::to_value(&nf).expect("json"));
        }
        app::search::SearchReport::NotFound(nf) => {
            out!("{}", report::map::search_not_found_text(&nf))
        }
        app::search::SearchReport::Found(s) if a.json => outln!("{}", report::files::json(&s)),
        app::search::SearchReport::Found(s) => out!("{}", report::map::search_text(&s)),
    }
    Ok(Outcome::check(found))
}

pub fn export(a: ExportArgs) -> Result<Outcome, Error> {
    check_outputs(&[(a.out.as_deref(), "--out")])?;
    let e = app::export::load(&app::export::ExportRequest {
        instance: &a.instance,
        layer: a.layer.clone(),
        mapping: a.mapping.as_deref(),
    })?;
    if let Some(out) = &a.out {
        app::export::write_timeloop_file(&e, out)?;
        outln!("wrote {} ({})", out.display(), e.title);
    }
    if let Some(dir) = &a.timeloop_dir {
        let written = app::export::write_timeloop_dir(&e, dir)?;
        out!("{}", report::map::timeloop_dir_text(&written, &e.title));
    }
    Ok(Outcome::Ok)
}

pub fn baseline(a: BaselineArgs) -> Result<Outcome, Error> {
    let r = app::baseline::run(&app::baseline::BaselineRequest {
        instance: &a.instance,
        out: &a.out,
        layers: &a.layers,
        settings: (a.optimum).settings(a.progress.mode() != crate::progress::Mode::Quiet),
    })?;
    warn_cache(&r.cache_warnings);
    out!("{}", report::baseline::text(&r, &a.out));
    Ok(Outcome::check(r.pass()))
}

pub fn gap(a: GapArgs) -> Result<Outcome, Error> {
    check_outputs(&[(a.junit.as_deref(), "--junit")])?;
    let ran = gap_run(&a);
    // The JUnit file is written whatever happened: a CI job always has its report.
    if let Some(j) = &a.junit {
        let suite = (a.design.instance.as_ref())
            .map_or("timeloop design".to_string(), |p| p.display().to_string());
        let text = match &ran {
            Ok(r) => report::gap_junit(Some(r), &r.suite, None),
            Err(e) => report::gap_junit(None, &suite, Some(&e.to_string())),
        };
        write_file(j, &text)?;
    }
    let r = ran?;
    for w in report::gap_warnings(&r) {
        eprintln!("warning: {w}");
    }
    if !r.cache_warnings.is_empty() {
        eprintln!(
            "warning: {} cache problem(s); what they concern was recomputed: {}",
            r.cache_warnings.len(),
            r.cache_warnings.join("; ")
        );
    }
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        out!("{}", report::gap_text(&r));
    }
    Ok(Outcome::check(r.pass))
}

/// The gap check of `qmap gap`'s arguments.
fn gap_run(a: &GapArgs) -> Result<app::gap::GapReport, InputError> {
    let design = match (&a.design.timeloop, &a.design.instance) {
        (Some(tl), _) => app::gap::Design::Timeloop(tl),
        (None, Some(path)) => app::gap::Design::Instance {
            path,
            layer: a.layer.clone(),
        },
        (None, None) => unreachable!("clap requires INSTANCE without --timeloop"),
    };
    let max_gap = app::gap::parse_max_gap(&a.max_gap)
        .map_err(|m| InputError::new(Path::new("(command line)"), "--max-gap", m))?;
    app::gap::run(&app::gap::GapRequest {
        design,
        constraints: a.design.constraints.as_deref(),
        mappings: &a.mappings,
        max_gap,
        only: a.layers.clone(),
        allow_missing: a.allow_missing,
        settings: a.optimum.settings(!a.json),
    })
}

pub fn front(a: FrontArgs) -> Result<Outcome, Error> {
    use app::codesign::{self, CodesignError, CodesignRequest};
    check_outputs(&[(a.svg.as_deref(), "--svg"), (a.csv.as_deref(), "--csv")])?;
    let req = CodesignRequest {
        instance: &a.instance,
        kind: a.front.into(),
        method: a.method.into(),
        limits: crate::front::TraceLimits {
            max_points: a.points,
            time_budget: (a.front_time_limit > 0.0).then_some(a.front_time_limit),
        },
        accuracy_tolerance: a.accuracy_tolerance,
        quiet: a.quiet,
        accuracy_resolution: a.accuracy_resolution,
        budgets: crate::front::Budgets {
            min_accuracy: a.min_accuracy,
            max_memory_bytes: a.max_memory,
            max_cycles: a.max_cycles,
        },
        max_kl: a.max_kl,
        verify: (a.verify.verify_accuracy).then(|| codesign::VerifyRequest {
            data: a.verify.data.clone(),
            first: a.verify.test_from,
            test_images: a.verify.test_images,
            calib_images: a.verify.calib_images,
        }),
        seed: a.seed,
        csv: a.csv.as_deref(),
        svg: a.svg.as_deref(),
        settings: a.optimum.settings(!a.json),
    };
    let r = codesign::run(&req).map_err(|e| match e {
        CodesignError::Input(e) => Error::Input(e),
        CodesignError::Solver(e) => Error::solver(&a.instance, e),
    })?;
    warn_cache(r.cache_warnings());
    if a.json {
        outln!("{}", serde_json::to_string_pretty(&r).expect("json"));
    } else {
        out!("{}", report::codesign::text(&r, a.detail));
    }
    Ok(Outcome::check(r.pass()))
}

pub fn import(a: ImportArgs) -> Result<Outcome, Error> {
    let req = app::import::ImportRequest {
        model: &a.model,
        input_shape: a.input_shape,
        out: a.out.as_deref(),
    };
    let r = app::import::run(&req)?;
    if a.json {
        let text = serde_json::to_string_pretty(&r).expect("import report serialises");
        outln!("{text}");
    } else {
        out!("{}", report::network::import_text(&r));
    }
    Ok(Outcome::Ok)
}
