//! Why a mapspace has no valid mapping, where that can be checked without searching.

use crate::eval::operands_per_word;
use crate::mapspace::{KeepChoice, Mapspace};
use crate::milp::encode::{cumulative, tensor_bits};
use crate::model::ModelOptions;
use crate::spec::PackingMode;

/// A checked reason why no mapping of `space` is valid at `opts`, where one of these is: a dim
/// the constraints leave no factorisation ([`Mapspace::empty_reason`]), a level whose
/// smallest possible tiles of the tensors it must keep do not fit (every
/// mapping's tiles are at least those). None when neither applies (the reason is then not
/// known without searching).
pub fn diagnose(space: &Mapspace, opts: &ModelOptions) -> Option<String> {
    if let Some(r) = space.empty_reason() {
        return Some(r.to_string());
    }
    let problem = space.problem();
    let arch = space.arch();
    for (l, level) in arch.levels.iter().enumerate() {
        let Some(cap) = level.capacity_words() else {
            continue;
        };
        if level.dummy {
            continue;
        }
        let mut need = 0;
        for (t, tensor) in problem.tensors.iter().enumerate() {
            if space.keep_choice(l, t) != KeepChoice::Fixed(true) {
                continue;
            }
            // The smallest tile: every dim at its smallest cumulative extent over its choices.
            let ext: Vec<u64> = (0..problem.dims.len())
                .map(|d| {
                    space
                        .dim_choices(d)
                        .iter()
                        .map(|c| cumulative(space, c, l))
                        .min()
                        .unwrap_or(1)
                })
                .collect();
            let pts = tensor.tile_points(&ext);
            let bits = tensor_bits(opts, problem, t, level.word_bits, false) as u64;
            need += match (opts.packing, &opts.bits) {
                (PackingMode::Ideal, Some(_)) => (pts * bits).div_ceil(level.word_bits),
                _ => pts.div_ceil(operands_per_word(level.word_bits, bits)),
            };
        }
        if need > cap {
            return Some(format!(
                "capacity: the smallest tiles of the tensors {} must keep need {need} words, it has {cap}",
                level.name
            ));
        }
    }
    None
}
