//! One storage component as a qmap [`Level`]: Timeloop's rules for word bits, block size,
//! cluster size and width, the capacity in blocks, the bandwidths and the mesh.
//!
//! Word bits: `word-bits` | `word_bits` | `word_width` | `datawidth` (default 16). Block size
//! (`block-size` | `block_size` | `n_words`) and cluster size (`cluster-size` | `cluster_size`)
//! follow Timeloop's rules against the width (`width` | `memory_width`): both given → they
//! must multiply to the width; one given → the other is derived; neither → block = width / word
//! bits, cluster 1; no width → block 1 and cluster 1 unless given. Capacity: `entries` words,
//! or `depth` | `memory_depth` rows of one block each, or `sizeKB`; divided by
//! `multiple-buffering`.
//!
//! Mesh: `meshX` and/or `meshY` against the instances; neither → all instances along X.

use super::attrs::Attrs;
use super::components::RawComponent;
use super::yaml::{join, Src};
use crate::model::Level;
use crate::spec::InputError;

/// Instances and mesh (Timeloop's `ValidateTopology`): neither meshX nor meshY → all along X.
pub(super) fn mesh_of(c: &RawComponent, src: Src) -> Result<(u64, u64, u64), InputError> {
    let apath = join(&c.path, "attributes");
    let instances = c.attrs.pos_u64("instances", src)?.unwrap_or(c.elements);
    if instances == 0 {
        return Err(src.err(join(&c.path, "name"), "instance count must be > 0"));
    }
    let mx = c.attrs.pos_u64("mesh_x", src)?;
    let my = c.attrs.pos_u64("mesh_y", src)?;
    let px = c.attrs.path("mesh_x", &apath);
    let py = c.attrs.path("mesh_y", &apath);
    let (x, y) = match (mx, my) {
        (Some(x), Some(y)) => {
            if x.checked_mul(y) != Some(instances) {
                return Err(src.err(
                    px,
                    format!("meshX {x} × meshY {y} differs from the {instances} instances"),
                ));
            }
            (x, y)
        }
        (Some(x), None) => {
            if !instances.is_multiple_of(x) {
                return Err(src.err(px, format!("must divide the {instances} instances")));
            }
            (x, instances / x)
        }
        (None, Some(y)) => {
            if !instances.is_multiple_of(y) {
                return Err(src.err(py, format!("must divide the {instances} instances")));
            }
            (instances / y, y)
        }
        (None, None) => (instances, 1),
    };
    Ok((instances, x, y))
}

/// The storage level a component describes.
pub(super) fn build_level(c: &RawComponent, src: Src) -> Result<Level, InputError> {
    let a = &c.attrs;
    let apath = join(&c.path, "attributes");
    let dummy = c.class.to_ascii_lowercase().contains("dummy");
    let word_bits = a.pos_u64("word_bits", src)?.unwrap_or(16);
    let (block_size, cluster_size, width) = block_geometry(a, word_bits, &apath, src)?;
    let depth = capacity_blocks(a, word_bits, block_size, dummy, &apath, src)?;
    let (read_bandwidth, write_bandwidth, shared_bandwidth) = bandwidths(a, &apath, src)?;
    let energy = match a.f64("vector_access_energy", src)? {
        Some(e) if e < 0.0 => {
            return Err(src.err(a.path("vector_access_energy", &apath), "must be >= 0"))
        }
        Some(e) => e,
        None => 0.0,
    };
    let (instances, mesh_x, mesh_y) = mesh_of(c, src)?;
    Ok(Level {
        name: c.name.clone(),
        instances,
        mesh_x,
        mesh_y,
        depth,
        width,
        word_bits,
        block_size,
        cluster_size,
        dummy,
        must_keep: Vec::new(),
        must_bypass: Vec::new(),
        read_energy: energy,
        write_energy: energy,
        update_energy: energy,
        read_bandwidth,
        write_bandwidth,
        shared_bandwidth,
    })
}

/// Block size, cluster size and width in bits, by Timeloop's rules against the width: both
/// sizes given → they must multiply to the width; one given → the other is derived; neither →
/// block = width / word bits, cluster 1; no width → block 1 and cluster 1 unless given.
fn block_geometry(
    a: &Attrs,
    word_bits: u64,
    apath: &str,
    src: Src,
) -> Result<(u64, u64, u64), InputError> {
    let block = a.pos_u64("block_size", src)?;
    let cluster = a.pos_u64("cluster_size", src)?;
    let Some(w) = a.pos_u64("width", src)? else {
        let (b, cs) = (block.unwrap_or(1), cluster.unwrap_or(1));
        return Ok((b, cs, word_bits.saturating_mul(b).saturating_mul(cs)));
    };
    let b0 = block.unwrap_or(1);
    if !w.is_multiple_of(word_bits.saturating_mul(b0)) {
        return Err(src.err(
            a.path("width", apath),
            format!("width {w} is not a multiple of word bits {word_bits} × block size {b0}"),
        ));
    }
    match (block, cluster) {
        (Some(b), Some(cs)) => {
            if b.checked_mul(word_bits).and_then(|x| x.checked_mul(cs)) != Some(w) {
                return Err(src.err(
                    a.path("width", apath),
                    format!(
                        "block size {b} × word bits {word_bits} × cluster size {cs} differs \
                         from the width {w}"
                    ),
                ));
            }
            Ok((b, cs, w))
        }
        (None, Some(cs)) => {
            let b = w / cs / word_bits;
            if b == 0 {
                return Err(src.err(
                    a.path("cluster_size", apath),
                    format!("cluster size {cs} × word bits {word_bits} exceeds the width {w}"),
                ));
            }
            Ok((b, cs, w))
        }
        (Some(b), None) => Ok((b, w / (word_bits * b), w)),
        (None, None) => Ok((w / word_bits, 1, w)),
    }
}

/// The capacity in blocks (None: unbounded, as any level without a size in Timeloop, DRAM
/// included; dummy levels hold nothing): `entries` words, or `depth` rows of one block, or
/// `sizeKB`, divided by `multiple-buffering`.
fn capacity_blocks(
    a: &Attrs,
    word_bits: u64,
    block_size: u64,
    dummy: bool,
    apath: &str,
    src: Src,
) -> Result<Option<u64>, InputError> {
    let p = |k: &str| a.path(k, apath);
    let size = match a.pos_u64("entries", src)? {
        Some(e) => Some((e, p("entries"))),
        None => match a.pos_u64("depth", src)? {
            Some(d) => Some((d.saturating_mul(block_size), p("depth"))),
            None => a
                .pos_u64("size_kb", src)?
                .map(|kb| (kb.saturating_mul(8192) / word_bits, p("size_kb"))),
        },
    };
    let Some((words, field)) = size.filter(|_| !dummy) else {
        return Ok(None);
    };
    let mb = a.f64("multiple_buffering", src)?.unwrap_or(1.0);
    if mb < 1.0 {
        return Err(src.err(p("multiple_buffering"), "must be >= 1"));
    }
    let effective = (words as f64 / mb).floor() as u64;
    if effective == 0 {
        return Err(src.err(field, "capacity must be > 0"));
    }
    if !effective.is_multiple_of(block_size) {
        return Err(src.err(
            field,
            format!(
                "capacity {effective} words is not a whole number of {block_size}-word blocks \
                 (not supported)"
            ),
        ));
    }
    Ok(Some(effective / block_size))
}

/// Read, write and shared bandwidths (None: unlimited).
type Bandwidths = (Option<f64>, Option<f64>, Option<f64>);

/// A level's [`Bandwidths`]; a plain `bandwidth` gives half to
/// reads and half to writes.
fn bandwidths(a: &Attrs, apath: &str, src: Src) -> Result<Bandwidths, InputError> {
    let bw = |k: &str| -> Result<Option<f64>, InputError> {
        match a.f64(k, src)? {
            Some(x) if x <= 0.0 => Err(src.err(a.path(k, apath), "must be > 0")),
            x => Ok(x),
        }
    };
    let half = bw("bandwidth")?.map(|b| b / 2.0);
    let read = bw("read_bandwidth")?.or(half);
    let write = bw("write_bandwidth")?.or(half);
    Ok((read, write, bw("shared_bandwidth")?))
}
