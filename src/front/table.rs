//! The table E*(layer, bits) the fronts select from, and the allowed bit-widths.
//!
//! - [`EnergyTable`]: for every layer its name, weight count, producer and entries: for a bit
//!   configuration (input, weight, output bits) the optimal energy (pJ) and its cycles. A bit
//!   configuration may have several entries (its (energy, cycles) Pareto set, for latency and EDP);
//!   entries with a non-finite energy (no valid mapping) are ignored.
//! - [`BitSets`]: the allowed weight bits and activation bits (default 2..=8 both) and the bits of
//!   the network input (`first_input`, read by every layer without producer) and of the last
//!   layer's output (`last_output`), both 8 by default. Table entries outside the sets are ignored.

use crate::workload::Layer;
use serde::{Deserialize, Serialize};

pub use crate::model::BitConfig;

/// One entry of a layer's table: the optimal energy of a bit configuration and its cycles. Several
/// entries may share a bit configuration (its (energy, cycles) Pareto set).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TableEntry {
    pub bits: BitConfig,
    pub energy_pj: f64,
    pub cycles: u64,
}

/// One layer of the table.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LayerTable {
    pub name: String,
    /// Number of weights (memory = weights · weight bits).
    pub weights: u64,
    /// Index of the layer producing this layer's input (an earlier layer), None for the network
    /// input.
    pub producer: Option<usize>,
    pub entries: Vec<TableEntry>,
}

/// The table E*(layer, bits) of a network, layers in execution order (producers first).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EnergyTable {
    pub layers: Vec<LayerTable>,
}

impl EnergyTable {
    /// A table with the network's layer names, weight counts and producers, and no entries yet.
    pub fn for_layers(layers: &[Layer]) -> EnergyTable {
        EnergyTable {
            layers: layers
                .iter()
                .map(|l| LayerTable {
                    name: l.name.clone(),
                    weights: l.weights,
                    producer: l.producer,
                    entries: Vec::new(),
                })
                .collect(),
        }
    }
}

/// The allowed bit-widths.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BitSets {
    /// Weight bits of every layer.
    pub weights: Vec<u32>,
    /// Activation bits between layers.
    pub activations: Vec<u32>,
    /// Bits of the network input (read by every layer without producer).
    pub first_input: u32,
    /// Bits of the last layer's output.
    pub last_output: u32,
}

impl Default for BitSets {
    /// The seed's: weights and activations in 2..=8, network input and output at 8 bits.
    fn default() -> Self {
        BitSets {
            weights: (2..=8).collect(),
            activations: (2..=8).collect(),
            first_input: 8,
            last_output: 8,
        }
    }
}

impl BitSets {
    /// Input bits a layer may read.
    pub fn input_bits(&self, producer: Option<usize>) -> Vec<u32> {
        match producer {
            None => vec![self.first_input],
            Some(_) => self.activations.clone(),
        }
    }

    /// Output bits a layer may write.
    pub fn output_bits(&self, is_last: bool) -> Vec<u32> {
        if is_last {
            vec![self.last_output]
        } else {
            self.activations.clone()
        }
    }

    /// Every bit configuration a layer may take (what the table needs for it).
    pub fn layer_configs(&self, producer: Option<usize>, is_last: bool) -> Vec<BitConfig> {
        let mut v = Vec::new();
        for &input_bits in &self.input_bits(producer) {
            for &weight_bits in &self.weights {
                for &output_bits in &self.output_bits(is_last) {
                    v.push(BitConfig {
                        input_bits,
                        weight_bits,
                        output_bits,
                    });
                }
            }
        }
        v
    }

    /// Whether a layer (with `producer`, the last one or not) may take `b`.
    pub(crate) fn allows(&self, producer: Option<usize>, is_last: bool, b: BitConfig) -> bool {
        self.input_bits(producer).contains(&b.input_bits)
            && self.weights.contains(&b.weight_bits)
            && self.output_bits(is_last).contains(&b.output_bits)
    }
}
