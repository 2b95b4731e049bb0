//! qmap: provably optimal mapping and mixed-precision co-design for DNN accelerators.
//!
//! Data flows one way: [`spec`] (file formats) and [`timeloop`] (Timeloop's formats) →
//! [`model`] (problem, architecture, mapping, bits) → [`instance`] (a loaded instance) →
//! [`eval`] (Timeloop v3.0.3's cost model plus packing: the single source of truth) →
//! [`mapspace`] (the one space every engine searches) → [`search`] (enumeration, bounds,
//! random sampling) and [`milp`] (the MILP proof) → [`optimum`] (the engine choice, the
//! per-layer table and its cache) → [`front`] (the exact Pareto fronts over the table) →
//! [`app`] (each command as a function returning a typed report) → [`report`] (text, files)
//! → [`cli`]. `docs/architecture.md` walks one layer through it.
//!
//! # A tour
//!
//! An instance is loaded, its mapping evaluated, the optimum proved, the table of per-layer
//! optima built for a network, and the exact energy × accuracy front traced over it:
//!
//! ```
//! use qmap::{eval, front, instance, mapspace::Mapspace, milp, optimum, spec::Objective};
//! use qmap::model::BitConfig;
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // 1. An instance: architecture, workload, bit-widths, constraints (and here a mapping).
//! let inst = instance::load("instances/default.yaml".as_ref())?;
//! let layer = inst.layer();
//! let opts = inst.options(&layer.problem, Some(BitConfig::uniform(8)));
//!
//! // 2. Evaluate its mapping under Timeloop's model: per-level counts, energy, cycles.
//! let (mapping, _) = inst.mapping.clone().expect("default.yaml carries a mapping");
//! let ev = eval::evaluate(&layer.problem, &inst.arch, &mapping, &opts);
//! assert!(ev.valid);
//!
//! // 3. Prove the energy optimum over the declared mapspace: a certificate with a bound.
//! let cons = inst.constraints()?;
//! let space = Mapspace::new(&layer.problem, &inst.arch, &cons)?;
//! let (cert, _) = optimum::prove_best(
//!     &space,
//!     &[opts],
//!     Objective::Energy,
//!     optimum::Engine::Auto,
//!     optimum::ENUMERATE_LIMIT,
//!     &milp::SolveOptions::default(),
//! )?;
//! assert_eq!(cert.status, milp::Status::Optimal);
//! assert!(cert.bound <= cert.value && cert.value <= ev.energy_pj);
//! println!("{:?}: {} pJ (the instance's mapping: {} pJ)", cert.proof, cert.value, ev.energy_pj);
//!
//! // 4. A network's table: every distinct layer shape's optimum at each bit choice.
//! let net = instance::load("instances/front_mbv2_eyeriss.yaml".as_ref())?;
//! let net_cons = net.constraints()?;
//! let choices = [Some(BitConfig::uniform(8)), Some(BitConfig::new(8, 4, 8))];
//! let settings = optimum::TableSettings::default();
//! let table = optimum::build(&net, &net_cons, &choices, &settings)?;
//! assert!(table.layers.iter().flatten().all(|e| e.cert.status == milp::Status::Optimal));
//!
//! // 5. The exact energy × accuracy front over the table (8-bit activations, weights 8 or 4).
//! let mut energies = front::EnergyTable::for_layers(&net.layers);
//! for (row, entries) in energies.layers.iter_mut().zip(&table.layers) {
//!     for e in entries {
//!         let bits = e.bits.expect("bit choices");
//!         let (energy_pj, cycles) = (e.energy_pj().unwrap(), e.cycles().unwrap());
//!         row.entries.push(front::TableEntry { bits, energy_pj, cycles });
//!     }
//! }
//! let accuracy = front::AccuracyModel::load(&net.front.as_ref().unwrap().accuracy_file)?;
//! let bitsets = front::BitSets {
//!     weights: vec![4, 8],
//!     activations: vec![8],
//!     first_input: 8,
//!     last_output: 8,
//! };
//! let problem = front::SelectionProblem::new(&energies, &accuracy, &bitsets)?;
//! let exact = front::trace_front(&problem, front::FrontKind::EnergyAccuracy, &Default::default())?;
//! assert!(exact.complete && exact.points.len() >= 2);
//! let (low, high) = (&exact.points[0], exact.points.last().unwrap());
//! assert!(low.energy_pj < high.energy_pj && low.accuracy < high.accuracy);
//! # Ok(())
//! # }
//! ```

pub mod app;
pub mod budget;
pub mod certify;
pub mod cli;
pub mod error;
pub mod eval;
pub mod front;
pub mod infer;
pub mod instance;
pub mod mapspace;
pub mod milp;
pub mod model;
pub mod notices;
pub mod onnx;
pub mod optimum;
pub mod progress;
pub mod proof;
pub mod report;
pub mod search;
pub mod solver;
pub mod spec;
pub mod timeloop;
pub mod workload;
