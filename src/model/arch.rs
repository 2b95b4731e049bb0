//! The architecture: storage levels (sizes, words, bandwidths, energies, fanouts, keep rules)
//! and the MAC, built and checked from the `spec` format.

use super::*;
use crate::spec::{self, InputError};
use std::path::Path;

/// Whether a level may, must or must not keep a tensor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeepRule {
    Must,
    Never,
    Free,
}

/// One storage level.
#[derive(Debug, Clone, PartialEq)]
pub struct Level {
    pub name: String,
    pub instances: u64,
    pub mesh_x: u64,
    pub mesh_y: u64,
    /// Rows per instance; None = unbounded.
    pub depth: Option<u64>,
    pub width: u64,
    pub word_bits: u64,
    pub block_size: u64,
    pub cluster_size: u64,
    pub dummy: bool,
    /// Keep rule per tensor name, resolved against a problem by [`Level::keep_rule`].
    pub must_keep: Vec<String>,
    pub must_bypass: Vec<String>,
    pub read_energy: f64,
    pub write_energy: f64,
    pub update_energy: f64,
    pub read_bandwidth: Option<f64>,
    pub write_bandwidth: Option<f64>,
    pub shared_bandwidth: Option<f64>,
}

impl Level {
    /// Capacity in words (depth × block size); None = unbounded.
    pub fn capacity_words(&self) -> Option<u64> {
        self.depth.map(|d| d * self.block_size)
    }

    pub fn keep_rule(&self, tensor: &str) -> KeepRule {
        if self.dummy || self.must_bypass.iter().any(|t| t == tensor) {
            KeepRule::Never
        } else if self.must_keep.iter().any(|t| t == tensor) {
            KeepRule::Must
        } else {
            KeepRule::Free
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mac {
    pub name: String,
    pub instances: u64,
    pub mesh_x: u64,
    pub mesh_y: u64,
    pub energy: f64,
    pub energy_table: Vec<spec::MacEnergyEntry>,
}

impl Mac {
    /// Energy per MAC at the given operand bit-widths: the smallest table entry covering both
    /// widths, `energy` when none does.
    pub fn energy_at(&self, weight_bits: u32, activation_bits: u32) -> f64 {
        self.energy_table
            .iter()
            .filter(|e| e.weight_bits >= weight_bits && e.activation_bits >= activation_bits)
            .min_by_key(|e| (e.weight_bits, e.activation_bits))
            .map(|e| e.energy)
            .unwrap_or(self.energy)
    }

    /// Whether fewer operand bits never cost more MAC energy ([`Mac::energy_at`] is
    /// non-decreasing in both widths, 1 to 64 bits): true without an energy table.
    pub fn fewer_bits_never_cost_more(&self) -> bool {
        (1..=64).all(|w| {
            (1..=64).all(|a| {
                let e = self.energy_at(w, a);
                e <= self.energy_at(w + 1, a) && e <= self.energy_at(w, a + 1)
            })
        })
    }
}

/// An architecture: storage levels innermost first, and the MAC array.
#[derive(Debug, Clone, PartialEq)]
pub struct Arch {
    pub name: String,
    pub levels: Vec<Level>,
    pub mac: Mac,
}

impl Arch {
    /// Keep rule of `tensor` at level `l`: the level's own rule, except that the outermost level
    /// is the backing store and keeps every tensor (as in Timeloop).
    pub fn keep_rule(&self, l: usize, tensor: &str) -> KeepRule {
        if l + 1 == self.levels.len() {
            KeepRule::Must
        } else {
            self.levels[l].keep_rule(tensor)
        }
    }

    pub fn level_index(&self, name: &str) -> Option<usize> {
        self.levels.iter().position(|l| l.name == name)
    }

    /// Spatial fanout (X, Y) from level `l` to the level below it (or the MACs).
    pub fn fanout(&self, l: usize) -> (u64, u64) {
        let (cx, cy) = if l == 0 {
            (self.mac.mesh_x, self.mac.mesh_y)
        } else {
            (self.levels[l - 1].mesh_x, self.levels[l - 1].mesh_y)
        };
        let p = &self.levels[l];
        (cx / p.mesh_x.max(1), cy / p.mesh_y.max(1))
    }

    /// Builds and validates an architecture from its spec; `file` names the source in errors.
    pub fn from_spec(s: &spec::ArchSpec, file: &Path) -> Result<Arch, InputError> {
        let err = |field: String, msg: String| InputError::new(file, field, msg);
        if s.levels.is_empty() {
            return Err(err(
                "levels".into(),
                "at least one storage level is required".into(),
            ));
        }
        let mut levels = Vec::new();
        for (i, l) in s.levels.iter().enumerate() {
            let f = |name: &str| format!("levels[{i}].{name}");
            if l.instances == 0 {
                return Err(err(f("instances"), "must be > 0".into()));
            }
            let mesh_x = l.mesh_x.unwrap_or(l.instances);
            if mesh_x == 0 || !l.instances.is_multiple_of(mesh_x) {
                return Err(err(
                    f("mesh_x"),
                    format!("must be > 0 and divide instances ({})", l.instances),
                ));
            }
            if l.depth == Some(0) {
                return Err(err(f("depth"), "must be > 0".into()));
            }
            if l.width == 0 {
                return Err(err(f("width"), "must be > 0".into()));
            }
            if l.word_bits == 0 {
                return Err(err(f("word_bits"), "must be > 0".into()));
            }
            if l.cluster_size == 0 {
                return Err(err(f("cluster_size"), "must be > 0".into()));
            }
            let block_size = match l.block_size {
                Some(0) => return Err(err(f("block_size"), "must be > 0".into())),
                Some(b) => b,
                None => (l.width / (l.word_bits * l.cluster_size)).max(1),
            };
            for (name, v) in [
                ("read", l.energy.read),
                ("write", l.energy.write),
                ("update", l.energy.update.unwrap_or(0.0)),
            ] {
                if !(v.is_finite() && v >= 0.0) {
                    return Err(err(
                        f(&format!("energy.{name}")),
                        "must be a finite number >= 0".into(),
                    ));
                }
            }
            for t in l.keep.iter().chain(&l.bypass) {
                if !["Weights", "Inputs", "Outputs"].contains(&t.as_str()) && !t.is_empty() {
                    // Other tensor names are allowed (Timeloop problems name their own data
                    // spaces); they are checked against the problem when evaluating.
                }
            }
            if let Some(t) = l.keep.iter().find(|t| l.bypass.contains(t)) {
                return Err(err(f("keep"), format!("{t} is both kept and bypassed")));
            }
            for (name, v) in [
                ("read", l.bandwidth.read),
                ("write", l.bandwidth.write),
                ("shared", l.bandwidth.shared),
            ] {
                if let Some(v) = v {
                    if !(v.is_finite() && v > 0.0) {
                        return Err(err(f(&format!("bandwidth.{name}")), "must be > 0".into()));
                    }
                }
            }
            levels.push(Level {
                name: l.name.clone(),
                instances: l.instances,
                mesh_x,
                mesh_y: l.instances / mesh_x,
                depth: l.depth,
                width: l.width,
                word_bits: l.word_bits,
                block_size,
                cluster_size: l.cluster_size,
                dummy: l.dummy,
                must_keep: l.keep.clone(),
                must_bypass: l.bypass.clone(),
                read_energy: l.energy.read,
                write_energy: l.energy.write,
                update_energy: l.energy.update.unwrap_or(l.energy.write),
                read_bandwidth: l.bandwidth.read,
                write_bandwidth: l.bandwidth.write,
                shared_bandwidth: l.bandwidth.shared,
            });
        }
        if s.mac.instances == 0 {
            return Err(err("mac.instances".into(), "must be > 0".into()));
        }
        let mac_x = s.mac.mesh_x.unwrap_or(s.mac.instances);
        if mac_x == 0 || !s.mac.instances.is_multiple_of(mac_x) {
            return Err(err(
                "mac.mesh_x".into(),
                "must be > 0 and divide mac.instances".into(),
            ));
        }
        let mac = Mac {
            name: s.mac.name.clone(),
            instances: s.mac.instances,
            mesh_x: mac_x,
            mesh_y: s.mac.instances / mac_x,
            energy: s.mac.energy,
            energy_table: s.mac.energy_table.clone(),
        };
        let arch = Arch {
            name: s.name.clone(),
            levels,
            mac,
        };
        arch.check_fanouts()
            .map_err(|(i, m)| err(format!("levels[{i}].instances"), m))?;
        arch.check_ranges().map_err(|(i, field, m)| match i {
            Some(i) => err(format!("levels[{i}].{field}"), m),
            None => err(format!("mac.{field}"), m),
        })?;
        Ok(arch)
    }

    /// Whether every size of the architecture is within what qmap computes exactly: the
    /// offending level (None: the MACs), its field and why not.
    pub fn check_ranges(&self) -> Result<(), (Option<usize>, &'static str, String)> {
        let most = |v: u64, max: u64, what: &str| {
            (v > max).then(|| format!("{v} is more than qmap computes exactly with ({what} {max})"))
        };
        for (i, l) in self.levels.iter().enumerate() {
            let checks = [
                ("instances", most(l.instances, MAX_INSTANCES, "at most")),
                ("depth", most(l.depth.unwrap_or(0), 1 << 40, "at most")),
                ("width", most(l.width, 1 << 20, "at most")),
                ("word_bits", most(l.word_bits, 1 << 10, "at most")),
                ("block_size", most(l.block_size, 1 << 20, "at most")),
                (
                    "cluster_size",
                    most(l.cluster_size, MAX_INSTANCES, "at most"),
                ),
            ];
            if let Some((field, Some(m))) = checks.into_iter().find(|c| c.1.is_some()) {
                return Err((Some(i), field, m));
            }
        }
        match most(self.mac.instances, MAX_INSTANCES, "at most") {
            Some(m) => Err((None, "instances", m)),
            None => Ok(()),
        }
    }

    /// Each level's instances (and mesh) must divide those of the level below it.
    pub fn check_fanouts(&self) -> Result<(), (usize, String)> {
        for i in 0..self.levels.len() {
            let (cx, cy, cname) = if i == 0 {
                (self.mac.mesh_x, self.mac.mesh_y, self.mac.name.as_str())
            } else {
                let c = &self.levels[i - 1];
                (c.mesh_x, c.mesh_y, c.name.as_str())
            };
            let p = &self.levels[i];
            if !cx.is_multiple_of(p.mesh_x) || !cy.is_multiple_of(p.mesh_y) {
                return Err((
                    i,
                    format!(
                        "mesh {}x{} does not divide the mesh {}x{} of {} below it",
                        p.mesh_x, p.mesh_y, cx, cy, cname
                    ),
                ));
            }
        }
        Ok(())
    }
}
