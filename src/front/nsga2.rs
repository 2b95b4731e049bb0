//! The seed paper's NSGA-II baseline over the same table as the exact fronts.
//!
//! [`nsga2`] is the seed paper's NSGA-II (genome: per-layer weight bits and output activation
//! bits, inputs chained; objectives energy, −accuracy, memory; initial population the uniform
//! configurations; seeded ChaCha8): fast non-dominated sort, crowding distance, binary
//! tournament, uniform crossover, per-gene mutation, Deb's constrained domination (a genome
//! whose bits some layer has no table entry for is infeasible).

use super::trace::{dominates, lex_cmp, same_costs};
use super::{Criterion, FrontPoint, PointStatus, SelectionProblem};
use rand::rngs::ChaCha8Rng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

/// Settings of the NSGA-II baseline (defaults: the seed paper's).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Nsga2Options {
    pub parents: usize,
    pub offspring: usize,
    pub generations: usize,
    pub seed: u64,
    /// Probability that a child is the uniform crossover of its two parents (else a copy of the
    /// first).
    pub crossover_probability: f64,
    /// Per-gene mutation probability; None = 1 / number of genes.
    pub mutation_probability: Option<f64>,
}

impl Default for Nsga2Options {
    fn default() -> Self {
        Nsga2Options {
            parents: 10,
            offspring: 10,
            generations: 25,
            seed: 0,
            crossover_probability: 0.9,
            mutation_probability: None,
        }
    }
}

/// What NSGA-II found.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Nsga2Result {
    /// The final population's first front (feasible, one per objective vector), status
    /// `heuristic`.
    pub front: Vec<FrontPoint>,
    /// Designs evaluated.
    pub evaluations: usize,
}

/// An individual: genes = per-layer weight bits then per-layer output bits.
#[derive(Clone)]
struct Individual {
    genes: Vec<u32>,
    /// Layers without a table entry for their bits (0 = feasible).
    violation: usize,
    costs: [f64; 3],
    choice: Vec<usize>,
    rank: usize,
    crowding: f64,
}

const NSGA_CRITERIA: [Criterion; 3] = [Criterion::Energy, Criterion::Accuracy, Criterion::Memory];

/// NSGA-II over the table (objectives: energy, −accuracy, memory): fast non-dominated sort,
/// crowding distance, binary tournament, uniform crossover, per-gene mutation; the initial
/// population holds the uniform configurations (every bit value in both sets; evenly spread if
/// more than `parents`), the rest random. Deterministic for a seed.
pub fn nsga2(problem: &SelectionProblem, opts: &Nsga2Options) -> Nsga2Result {
    let parents = opts.parents.max(2);
    let mut ga = Ga::new(problem, opts);
    let mut pop = ga.initial_population(parents);
    rank_and_crowd(&mut pop);
    for _ in 0..opts.generations {
        let children = ga.offspring(&pop);
        pop.extend(children);
        rank_and_crowd(&mut pop);
        pop.sort_by(|a, b| a.rank.cmp(&b.rank).then(b.crowding.total_cmp(&a.crowding)));
        pop.truncate(parents);
        rank_and_crowd(&mut pop);
    }
    let mut front: Vec<FrontPoint> = Vec::new();
    for ind in pop.iter().filter(|i| i.rank == 0 && i.violation == 0) {
        let p = problem.point(&ind.choice, PointStatus::Heuristic);
        if !front.iter().any(|q| same_costs(q, &p, &NSGA_CRITERIA)) {
            front.push(p);
        }
    }
    front.sort_by(|a, b| lex_cmp(&a.costs(&NSGA_CRITERIA), &b.costs(&NSGA_CRITERIA)));
    Nsga2Result {
        front,
        evaluations: ga.evaluations,
    }
}

/// The genetic algorithm's state: the problem, the settings, the random stream and the count of
/// designs evaluated.
struct Ga<'a> {
    problem: &'a SelectionProblem,
    opts: &'a Nsga2Options,
    rng: ChaCha8Rng,
    /// Layers (a genome has twice as many genes).
    n: usize,
    /// Per-gene mutation probability.
    pm: f64,
    evaluations: usize,
}

impl<'a> Ga<'a> {
    fn new(problem: &'a SelectionProblem, opts: &'a Nsga2Options) -> Self {
        let n = problem.layer_count();
        let pm = opts
            .mutation_probability
            .unwrap_or(1.0 / (2 * n) as f64)
            .clamp(0.0, 1.0);
        Ga {
            problem,
            opts,
            rng: ChaCha8Rng::seed_from_u64(opts.seed),
            n,
            pm,
            evaluations: 0,
        }
    }

    /// The uniform configurations (evenly spread if more than `parents`), then random genomes
    /// up to `parents`.
    fn initial_population(&mut self, parents: usize) -> Vec<Individual> {
        let bits = &self.problem.bits;
        let mut uniform: Vec<u32> = bits
            .weights
            .iter()
            .copied()
            .filter(|b| bits.activations.contains(b))
            .collect();
        uniform.sort_unstable();
        if uniform.len() > parents {
            let m = uniform.len() - 1;
            uniform = (0..parents)
                .map(|i| uniform[(i * m + (parents - 1) / 2) / (parents - 1)])
                .collect();
        }
        let genes = 2 * self.n;
        let mut pop: Vec<Individual> = uniform.iter().map(|&b| self.eval(vec![b; genes])).collect();
        while pop.len() < parents {
            let g = (0..genes).map(|i| self.random_gene(i)).collect();
            pop.push(self.eval(g));
        }
        pop
    }

    /// One generation's children: binary tournaments, uniform crossover, per-gene mutation.
    fn offspring(&mut self, pop: &[Individual]) -> Vec<Individual> {
        let opts = self.opts;
        let mut children = Vec::with_capacity(opts.offspring);
        for _ in 0..opts.offspring {
            let a = tournament(pop, &mut self.rng);
            let b = tournament(pop, &mut self.rng);
            let mut g = pop[a].genes.clone();
            if self
                .rng
                .random_bool(opts.crossover_probability.clamp(0.0, 1.0))
            {
                for (i, x) in g.iter_mut().enumerate() {
                    if self.rng.random_bool(0.5) {
                        *x = pop[b].genes[i];
                    }
                }
            }
            for (i, x) in g.iter_mut().enumerate() {
                if self.rng.random_bool(self.pm) {
                    *x = self.random_gene(i);
                }
            }
            children.push(self.eval(g));
        }
        children
    }

    /// A random value of gene `i` (a weight bit-width, then an output bit-width per layer).
    fn random_gene(&mut self, i: usize) -> u32 {
        let bits = &self.problem.bits;
        let set = if i < self.n {
            &bits.weights
        } else {
            &bits.activations
        };
        set[self.rng.random_range(0..set.len())]
    }

    /// A genome evaluated: its design's costs, or the number of layers without a table entry
    /// for their bits.
    fn eval(&mut self, g: Vec<u32>) -> Individual {
        self.evaluations += 1;
        let n = self.n;
        let pairs: Vec<(u32, u32)> = (0..n).map(|l| (g[l], g[n + l])).collect();
        match self.problem.choice_for(&pairs) {
            Ok(choice) => {
                let p = self.problem.point(&choice, PointStatus::Heuristic);
                Individual {
                    genes: g,
                    violation: 0,
                    costs: [p.energy_pj, -p.accuracy, p.memory_bytes],
                    choice,
                    rank: 0,
                    crowding: 0.0,
                }
            }
            Err(missing) => Individual {
                genes: g,
                violation: missing,
                costs: [f64::INFINITY; 3],
                choice: Vec::new(),
                rank: 0,
                crowding: 0.0,
            },
        }
    }
}

/// Deb's constrained domination: fewer violations, or both feasible and Pareto-dominating.
fn constrained_dominates(a: &Individual, b: &Individual) -> bool {
    if a.violation != b.violation {
        return a.violation < b.violation;
    }
    a.violation == 0 && dominates(&a.costs, &b.costs)
}

/// Fast non-dominated sort and crowding distance (per front, objectives normalised by range).
fn rank_and_crowd(pop: &mut [Individual]) {
    let n = pop.len();
    let mut dominated_by: Vec<Vec<usize>> = vec![Vec::new(); n];
    let mut count = vec![0usize; n];
    for i in 0..n {
        for j in 0..n {
            if i != j && constrained_dominates(&pop[i], &pop[j]) {
                dominated_by[i].push(j);
            } else if i != j && constrained_dominates(&pop[j], &pop[i]) {
                count[i] += 1;
            }
        }
    }
    let mut current: Vec<usize> = (0..n).filter(|&i| count[i] == 0).collect();
    let mut rank = 0;
    while !current.is_empty() {
        for &i in &current {
            pop[i].rank = rank;
        }
        crowding(pop, &current);
        let mut next = Vec::new();
        for &i in &current {
            for &j in &dominated_by[i] {
                count[j] -= 1;
                if count[j] == 0 {
                    next.push(j);
                }
            }
        }
        current = next;
        rank += 1;
    }
}

fn crowding(pop: &mut [Individual], front: &[usize]) {
    for &i in front {
        pop[i].crowding = 0.0;
    }
    for m in 0..3 {
        let mut idx = front.to_vec();
        idx.sort_by(|&a, &b| pop[a].costs[m].total_cmp(&pop[b].costs[m]));
        let (Some(&first), Some(&last)) = (idx.first(), idx.last()) else {
            return;
        };
        let (lo, hi) = (pop[first].costs[m], pop[last].costs[m]);
        pop[first].crowding = f64::INFINITY;
        pop[last].crowding = f64::INFINITY;
        let range = hi - lo;
        if !range.is_finite() || range <= 0.0 {
            continue;
        }
        for w in 1..idx.len().saturating_sub(1) {
            let d = (pop[idx[w + 1]].costs[m] - pop[idx[w - 1]].costs[m]) / range;
            pop[idx[w]].crowding += d;
        }
    }
}

/// Binary tournament: lower rank, then larger crowding distance, then the first drawn.
fn tournament(pop: &[Individual], rng: &mut ChaCha8Rng) -> usize {
    let a = rng.random_range(0..pop.len());
    let b = rng.random_range(0..pop.len());
    let (x, y) = (&pop[a], &pop[b]);
    if y.rank < x.rank || (y.rank == x.rank && y.crowding > x.crowding) {
        b
    } else {
        a
    }
}
