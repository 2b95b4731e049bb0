//! Unit tests of the evaluator: packing modes, partial-sum widths, bit-widths above the word,
//! order-free loads against every loop order, window counts and Timeloop's cycle rounding.

use super::price::level_cycles;

use super::loads::{order_free_loads, timeloop_loads};
use super::nest::{box_points, NestLoop};
use crate::model::PsumPolicy;
use crate::spec::PackingMode;

use super::*;

use crate::model::{conv_problem, Bits, Level, LevelMapping, Loop, Mac};

/// One 16-bit-word buffer under a DRAM, a 1x1 conv of 3 input and 4 output channels.
fn tiny() -> (Problem, Arch, Mapping) {
    let p = conv_problem("t", false, [1, 4, 3, 1, 1, 1, 1], [1, 1, 1, 1]);
    let level = |name: &str, depth| Level {
        name: name.into(),
        instances: 1,
        mesh_x: 1,
        mesh_y: 1,
        depth,
        width: 16,
        word_bits: 16,
        block_size: 1,
        cluster_size: 1,
        dummy: false,
        must_keep: vec![],
        must_bypass: vec![],
        read_energy: 1.0,
        write_energy: 2.0,
        update_energy: 3.0,
        read_bandwidth: None,
        write_bandwidth: None,
        shared_bandwidth: None,
    };
    let arch = Arch {
        name: "a".into(),
        levels: vec![level("buf", Some(64)), level("dram", None)],
        mac: Mac {
            name: "mac".into(),
            instances: 1,
            mesh_x: 1,
            mesh_y: 1,
            energy: 1.0,
            energy_table: vec![],
        },
    };
    // buf: for C3 (innermost) for M4, keeps everything; DRAM keeps everything.
    let m = Mapping {
        levels: vec![
            LevelMapping {
                temporal: vec![Loop { dim: 2, factor: 3 }, Loop { dim: 1, factor: 4 }],
                keep: vec![true; 3],
                ..Default::default()
            },
            LevelMapping {
                keep: vec![true; 3],
                ..Default::default()
            },
        ],
    };
    (p, arch, m)
}

/// Native packing options at per-tensor bit-widths `bits`.
fn at_bits(bits: &[u32]) -> ModelOptions {
    ModelOptions {
        bits: Some(Bits(bits.to_vec())),
        ..Default::default()
    }
}

fn counts(ev: &Evaluation, level: &str, tensor: &str) -> (u64, u64, u64) {
    let l = ev.levels.iter().find(|l| l.name == level).unwrap();
    let t = l.tensors.iter().find(|t| t.name == tensor).unwrap();
    (t.reads, t.fills, t.updates)
}

#[test]
fn seed_and_ideal_packing() {
    let (p, a, m) = tiny();
    // Tensor order: Weights, Inputs, Outputs. Native: 12 MACs read 12 weights and 12 inputs,
    // update outputs 12 times (reads 12 - 4 first writes).
    let native = evaluate(&p, &a, &m, &ModelOptions::default());
    assert_eq!(counts(&native, "buf", "Weights"), (12, 12, 0));
    assert_eq!(counts(&native, "buf", "Outputs"), (8, 0, 12));
    // Seed packing, 5-bit weights in 16-bit words: k = 3, ceil(12 / 3) = 4.
    let seed = at_bits(&[5, 16, 16]);
    let ev = evaluate(&p, &a, &m, &seed);
    assert_eq!(counts(&ev, "buf", "Weights"), (4, 4, 0));
    assert_eq!(ev.levels[0].tensors[0].tile_words, 4);
    // Ideal packing counts bits: ceil(12 * 5 / 16) = 4 words, tile ceil(12 * 5 / 16) = 4.
    let ideal = ModelOptions {
        packing: PackingMode::Ideal,
        ..seed.clone()
    };
    let ev = evaluate(&p, &a, &m, &ideal);
    assert_eq!(counts(&ev, "buf", "Weights"), (4, 4, 0));
    // 6-bit weights: the seed packs 2 per word (6 words), ideal packs bits (ceil(72/16) = 5).
    let seed6 = at_bits(&[6, 16, 16]);
    assert_eq!(
        counts(&evaluate(&p, &a, &m, &seed6), "buf", "Weights"),
        (6, 6, 0)
    );
    let ideal6 = ModelOptions {
        packing: PackingMode::Ideal,
        ..seed6
    };
    assert_eq!(
        counts(&evaluate(&p, &a, &m, &ideal6), "buf", "Weights"),
        (5, 5, 0)
    );
}

#[test]
fn psum_bits_widen_inner_outputs() {
    let (p, a, m) = tiny();
    // 8-bit outputs pack 2 per word at both levels by default; with 32-bit partial sums the
    // inner level stores each partial sum in 2 words, the outermost keeps 8-bit outputs.
    let out8 = at_bits(&[16, 16, 8]);
    let ev = evaluate(&p, &a, &m, &out8);
    assert_eq!(counts(&ev, "buf", "Outputs"), (4, 0, 6));
    let psum = ModelOptions {
        psum: PsumPolicy::Bits(32),
        ..out8
    };
    let ev = evaluate(&p, &a, &m, &psum);
    assert_eq!(counts(&ev, "buf", "Outputs"), (16, 0, 24));
    assert_eq!(counts(&ev, "dram", "Outputs"), (0, 0, 2));
}

#[test]
fn bits_above_word_are_invalid() {
    let (p, a, m) = tiny();
    let wide = at_bits(&[17, 16, 16]);
    let ev = evaluate(&p, &a, &m, &wide);
    assert!(!ev.valid);
    assert_eq!(ev.invalid.unwrap().level.as_deref(), Some("buf"));
}

/// The loads of a child tile under every order of the loops above it, per level: the least
/// of [`timeloop_loads`] by brute force.
fn loads_min_over_orders(
    terms: &[RankTerm],
    mapping: &Mapping,
    nd: usize,
    child: usize,
    tile: u64,
) -> u64 {
    use itertools::Itertools;
    let nl = mapping.levels.len();
    let perms: Vec<Vec<Vec<Loop>>> = (0..nl)
        .map(|l| {
            let t = &mapping.levels[l].temporal;
            if l <= child {
                vec![t.clone()]
            } else {
                t.iter().copied().permutations(t.len()).collect()
            }
        })
        .collect();
    let mut best = u64::MAX;
    for combo in perms.iter().map(|p| p.iter()).multi_cartesian_product() {
        let mut m = mapping.clone();
        for (l, t) in combo.into_iter().enumerate() {
            m.levels[l].temporal = t.clone();
        }
        let mut nest = Nest::default();
        nest.build(&m, nd);
        let ext = nest.ext(child).to_vec();
        best = best.min(timeloop_loads(
            terms,
            &ext,
            tile,
            nest.temporal_from(child + 1),
        ));
    }
    best
}

/// The order-free loads ([`order_free_loads`]) are the least loads over every order of the
/// loops above the child, on random nests with halos (strides and dilations 1-2), for
/// every tensor and child level: the bound is exact, and so never above any order.
#[test]
fn order_free_loads_are_the_least_over_orders() {
    use rand::{RngExt, SeedableRng};
    let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(21);
    let (mut cases, mut below_canonical) = (0, 0);
    while cases < 3000 {
        let pick = |rng: &mut rand::rngs::ChaCha8Rng, v: &[u64]| v[rng.random_range(0..v.len())];
        let b = [
            pick(&mut rng, &[1, 2]),
            pick(&mut rng, &[1, 2, 3]),
            pick(&mut rng, &[1, 2, 3]),
            pick(&mut rng, &[2, 4, 6, 8]),
            pick(&mut rng, &[1, 2, 4]),
            pick(&mut rng, &[1, 2, 3]),
            pick(&mut rng, &[1, 2, 3]),
        ];
        let coef = [
            pick(&mut rng, &[1, 1, 2]),
            pick(&mut rng, &[1, 2]),
            pick(&mut rng, &[1, 1, 2]),
            1,
        ];
        let p = conv_problem("r", false, b, coef);
        let nd = p.dims.len();
        let nl = rng.random_range(2..=4usize);
        // Each prime factor of each bound at a random level's temporal loop.
        let mut f = vec![vec![1u64; nd]; nl];
        for (d, &bound) in p.bounds.iter().enumerate() {
            let mut n = bound;
            let mut q = 2;
            while n > 1 {
                while n.is_multiple_of(q) {
                    f[rng.random_range(0..nl)][d] *= q;
                    n /= q;
                }
                q += 1;
            }
        }
        let mut m = Mapping::default();
        for fl in &f {
            let mut temporal: Vec<Loop> = (0..nd)
                .filter(|&d| fl[d] > 1)
                .map(|d| Loop {
                    dim: d,
                    factor: fl[d],
                })
                .collect();
            for i in (1..temporal.len()).rev() {
                temporal.swap(i, rng.random_range(0..=i));
            }
            m.levels.push(LevelMapping {
                temporal,
                keep: vec![true; 3],
                ..Default::default()
            });
        }
        if m.levels.iter().map(|l| l.temporal.len()).product::<usize>() > 400 {
            continue;
        }
        cases += 1;
        let mut nest = Nest::default();
        nest.build(&m, nd);
        for tensor in &p.tensors {
            let terms = rank_terms(tensor);
            let relevant: Vec<bool> = (0..nd).map(|d| tensor.relevant(d)).collect();
            for child in 0..nl - 1 {
                let ext = nest.ext(child).to_vec();
                let tile = box_points(&terms, |d| ext[d]);
                let above = nest.temporal_from(child + 1);
                let steps: u64 = above.iter().map(|l| l.factor).product();
                let free = order_free_loads(&terms, &nest, &relevant, &ext, tile, child + 1, steps);
                let brute = loads_min_over_orders(&terms, &m, nd, child, tile);
                assert_eq!(
                    free, brute,
                    "{} child {child}: {m:?} {b:?} {coef:?}",
                    tensor.name
                );
                let this = timeloop_loads(&terms, &ext, tile, above);
                below_canonical += (free < this) as usize;
            }
        }
    }
    assert!(below_canonical > 500, "{below_canonical}");
}

/// Timeloop's extrapolated loads on the issue's VGG case (conv3 of VGG-16 on the simba
/// exercise: C = M = 256, P = Q = 56, 3×3): the GlobalBuffer tile is C256 × W2 × H58 (P2 and
/// Q56, S3 below it; R3 M2 P28 at DRAM), 29,696 points; a column of it (one W) is 14,848.
/// Per DRAM order (innermost first), `loads = 168 tiles − overlap × Σ W_j` (docs/model.md):
/// RMPCSNQ: R then P (v_P = 2 = v_R + v_R + v_M) carried: 168·29,696 − 14,848·(112 + 27)
/// = 2,925,056; RPMCSNQ: R, P (v_P = v_R + v_R): 168·29,696 − 14,848·(112 + 54)
/// = 2,524,160; MRPCSNQ: only M keeps the tile: 84 tiles = 2,494,464. Measured by Timeloop
/// v3.0.3 on these mappings (issue 21); qmap counted 3,325,952 for the first two before.
#[test]
fn issue_vgg_window_counts() {
    let p = conv_problem("vgg3", false, [1, 256, 256, 56, 56, 3, 3], [1, 1, 1, 1]);
    let terms = rank_terms(&p.tensors[1]);
    let (m_, r, pp, q, s, c) = (1, 5, 3, 4, 6, 2);
    let ext = {
        let mut e = vec![1u64; 7];
        (e[c], e[pp], e[q], e[s], e[m_]) = (256, 2, 56, 3, 128);
        e
    };
    let tile = box_points(&terms, |d| ext[d]);
    assert_eq!(tile, 29_696);
    let loop_ = |dim: usize, factor: u64, stride: u64| NestLoop {
        dim,
        factor,
        stride,
    };
    let rr = loop_(r, 3, 1);
    let mm = loop_(m_, 2, 128);
    let p28 = loop_(pp, 28, 2);
    assert_eq!(
        timeloop_loads(&terms, &ext, tile, &[rr, mm, p28]),
        2_925_056
    );
    assert_eq!(
        timeloop_loads(&terms, &ext, tile, &[rr, p28, mm]),
        2_524_160
    );
    assert_eq!(
        timeloop_loads(&terms, &ext, tile, &[mm, rr, p28]),
        2_494_464
    );
}

/// Timeloop's bandwidth throttling in double precision (eyeriss exercise, shared_glb read
/// bandwidth 16 words per cycle; `tests/timeloop_issue21.rs` runs the whole mapping): 4,608
/// compute cycles, reads 73,728 (Inputs) and 8,192 (Outputs), writes 9,216 and 2,048 +
/// 9,216. Demand 16 + 1.777… words per cycle, slowdown 0.9, ceil(4,608 / 0.9) = 5,121 (the
/// exact ceil(81,920 / 16) is 5,120). Unthrottled levels keep the compute cycles, and an
/// exact division stays exact (8,192 reads at 2 per cycle: 4,096 < 4,608).
#[test]
fn level_cycles_round_as_timeloop() {
    let (_, mut a, _) = tiny();
    let glb = &mut a.levels[0];
    glb.read_bandwidth = Some(16.0);
    glb.write_bandwidth = Some(16.0);
    let words = [(73_728, 9_216), (8_192, 11_264)];
    assert_eq!(level_cycles(glb, 4_608, words.into_iter()), 5_121);
    assert_eq!(level_cycles(glb, 4_608, [(8_192, 0)].into_iter()), 4_608);
    glb.read_bandwidth = Some(1.0);
    assert_eq!(level_cycles(glb, 4_608, [(9_216, 0)].into_iter()), 9_216);
    let mut free = a.levels[1].clone();
    free.read_bandwidth = None;
    assert_eq!(level_cycles(&free, 4_608, words.into_iter()), 4_608);
}

#[test]
fn packing_rule() {
    assert_eq!(operands_per_word(16, 8), 2);
    assert_eq!(operands_per_word(16, 6), 2);
    assert_eq!(operands_per_word(16, 5), 3);
    assert_eq!(operands_per_word(16, 16), 1);
    assert_eq!(operands_per_word(1, 8), 1);
    assert_eq!(operands_per_word(8, 3), 2);
}
