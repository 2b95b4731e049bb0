//! Shape arithmetic of the importer: node attributes, NumPy broadcasting, the output extent and
//! padding of a sliding window (Conv, MaxPool, AveragePool, with ONNX's `pads` and `auto_pad`),
//! and the shape-only ops (Flatten, Reshape, Transpose, Squeeze, Unsqueeze).

use super::proto::{AttributeProto, NodeProto};

/// The attribute `name` of a node.
pub fn attr<'a>(n: &'a NodeProto, name: &str) -> Option<&'a AttributeProto> {
    n.attribute.iter().find(|a| a.name.as_deref() == Some(name))
}

/// An integer attribute.
pub fn attr_int(n: &NodeProto, name: &str) -> Option<i64> {
    attr(n, name).and_then(|a| a.i)
}

/// An integer-list attribute.
pub fn attr_ints(n: &NodeProto, name: &str) -> Option<Vec<i64>> {
    attr(n, name).map(|a| a.ints.clone())
}

/// A string attribute.
pub fn attr_str(n: &NodeProto, name: &str) -> Option<String> {
    attr(n, name).and_then(|a| {
        a.s.as_ref()
            .map(|s| String::from_utf8_lossy(s).into_owned())
    })
}

/// The NumPy broadcast of shapes (None when they do not broadcast).
pub fn broadcast(shapes: &[&[u64]]) -> Option<Vec<u64>> {
    let rank = shapes.iter().map(|s| s.len()).max().unwrap_or(0);
    let mut out = vec![1u64; rank];
    for s in shapes {
        for (k, &d) in s.iter().enumerate() {
            let o = &mut out[rank - s.len() + k];
            match (*o, d) {
                (a, b) if a == b || b == 1 => {}
                (1, b) => *o = b,
                _ => return None,
            }
        }
    }
    Some(out)
}

/// One spatial axis of a sliding window: input extent, kernel, stride, dilation.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub input: u64,
    pub kernel: u64,
    pub stride: u64,
    pub dilation: u64,
}

impl Window {
    /// The span of the (dilated) kernel.
    pub fn span(&self) -> u64 {
        self.dilation * (self.kernel - 1) + 1
    }

    /// The output extent with padding `begin` + `end` (floor, or ceil with `ceil_mode`).
    pub fn output(&self, begin: u64, end: u64, ceil: bool) -> Option<u64> {
        let room = (self.input + begin + end).checked_sub(self.span())?;
        let steps = if ceil {
            room.div_ceil(self.stride)
        } else {
            room / self.stride
        };
        Some(steps + 1)
    }

    /// The padding ONNX's `auto_pad` gives (`SAME_UPPER`/`SAME_LOWER`: output = ceil(input /
    /// stride), the extra pad at the end or the beginning; `VALID`: none).
    pub fn auto_pad(&self, mode: &str) -> Option<(u64, u64)> {
        match mode {
            "VALID" => Some((0, 0)),
            "SAME_UPPER" | "SAME_LOWER" => {
                let out = self.input.div_ceil(self.stride);
                let total = ((out - 1) * self.stride + self.span()).saturating_sub(self.input);
                let (small, large) = (total / 2, total - total / 2);
                Some(if mode == "SAME_UPPER" {
                    (small, large)
                } else {
                    (large, small)
                })
            }
            _ => None,
        }
    }

    /// The symmetric padding qmap records for ONNX's `begin`/`end` padding of this axis: the
    /// same when they are equal; otherwise the largest pad between the two that gives the same
    /// output extent (qmap's input extent follows from the output, the stride and the filter,
    /// so the counts are unchanged); None when none does.
    pub fn symmetric_pad(&self, begin: u64, end: u64) -> Option<u64> {
        let out = self.output(begin, end, false)?;
        (begin.min(end)..=begin.max(end))
            .rev()
            .find(|&p| self.output(p, p, false) == Some(out))
    }
}

/// Normalises a possibly negative axis of a rank-`rank` tensor.
pub fn axis(a: i64, rank: usize) -> Option<usize> {
    let r = rank as i64;
    let a = if a < 0 { a + r } else { a };
    (0..r).contains(&a).then_some(a as usize)
}

/// Flatten's output: dims before `axis` into one, the rest into another.
pub fn flatten(shape: &[u64], axis_attr: i64) -> Option<Vec<u64>> {
    let a = if axis_attr == shape.len() as i64 {
        shape.len()
    } else {
        axis(axis_attr, shape.len())?
    };
    Some(vec![
        shape[..a].iter().product(),
        shape[a..].iter().product(),
    ])
}

/// Reshape's output for the target `spec` (0 copies the input dim, -1 is inferred).
pub fn reshape(shape: &[u64], spec: &[i64]) -> Option<Vec<u64>> {
    let total: u64 = shape.iter().product();
    let mut out = Vec::with_capacity(spec.len());
    let mut infer = None;
    for (k, &d) in spec.iter().enumerate() {
        match d {
            0 => out.push(*shape.get(k)?),
            -1 if infer.is_none() => {
                infer = Some(k);
                out.push(1);
            }
            d if d > 0 => out.push(d as u64),
            _ => return None,
        }
    }
    let known: u64 = out.iter().product();
    if let Some(k) = infer {
        if known == 0 || !total.is_multiple_of(known) {
            return None;
        }
        out[k] = total / known;
    }
    (out.iter().product::<u64>() == total).then_some(out)
}

/// Transpose's output (default: the dims reversed).
pub fn transpose(shape: &[u64], perm: Option<&[i64]>) -> Option<Vec<u64>> {
    match perm {
        None => Some(shape.iter().rev().copied().collect()),
        Some(p) if p.len() == shape.len() => p
            .iter()
            .map(|&a| axis(a, shape.len()).map(|a| shape[a]))
            .collect(),
        Some(_) => None,
    }
}

/// Squeeze's output (no axes: every dim of size 1 removed).
pub fn squeeze(shape: &[u64], axes: Option<&[i64]>) -> Option<Vec<u64>> {
    let Some(axes) = axes else {
        return Some(shape.iter().copied().filter(|&d| d != 1).collect());
    };
    let axes: Vec<usize> = axes
        .iter()
        .map(|&a| axis(a, shape.len()))
        .collect::<Option<_>>()?;
    if axes.iter().any(|&a| shape[a] != 1) {
        return None;
    }
    Some(
        (shape.iter().enumerate())
            .filter(|(k, _)| !axes.contains(k))
            .map(|(_, &d)| d)
            .collect(),
    )
}

/// Unsqueeze's output: a dim of size 1 at each of `axes` (axes of the output).
pub fn unsqueeze(shape: &[u64], axes: &[i64]) -> Option<Vec<u64>> {
    let rank = shape.len() + axes.len();
    let axes: Vec<usize> = axes.iter().map(|&a| axis(a, rank)).collect::<Option<_>>()?;
    let mut rest = shape.iter();
    (0..rank)
        .map(|k| {
            if axes.contains(&k) {
                Some(1)
            } else {
                rest.next().copied()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_and_pads() {
        let w = Window {
            input: 224,
            kernel: 3,
            stride: 2,
            dilation: 1,
        };
        assert_eq!(w.output(1, 1, false), Some(112));
        // TensorFlow's SAME for stride 2 pads 0 before and 1 after: symmetric pad 1 gives 112.
        assert_eq!(w.auto_pad("SAME_UPPER"), Some((0, 1)));
        assert_eq!(w.symmetric_pad(0, 1), Some(1));
        let odd = Window { input: 7, ..w };
        // (7 + 0 + 2 - 3) / 2 + 1 = 4; symmetric 1 gives (7 + 2 - 3) / 2 + 1 = 4.
        assert_eq!(odd.symmetric_pad(0, 2), Some(1));
        let s1 = Window { stride: 1, ..odd };
        // (7 + 0 + 2 - 3) + 1 = 7 with pads (0, 2); symmetric 1 gives 7 too, 2 gives 9.
        assert_eq!(s1.symmetric_pad(0, 2), Some(1));
        let s1b = Window { kernel: 2, ..s1 };
        // pads (0, 1), kernel 2: 7; symmetric 1 gives 8, symmetric 0 gives 6: not representable.
        assert_eq!(s1b.symmetric_pad(0, 1), None);
        assert_eq!(w.output(0, 0, true), Some(112));
        assert_eq!(w.output(0, 0, false), Some(111));
    }

    #[test]
    fn shape_ops() {
        assert_eq!(broadcast(&[&[2, 3, 4], &[3, 1]]), Some(vec![2, 3, 4]));
        assert_eq!(broadcast(&[&[2, 3], &[4]]), None);
        assert_eq!(flatten(&[1, 1280, 1, 1], 1), Some(vec![1, 1280]));
        assert_eq!(reshape(&[1, 512, 1, 1], &[1, -1]), Some(vec![1, 512]));
        assert_eq!(reshape(&[2, 6], &[0, 4]), None);
        assert_eq!(
            transpose(&[1, 128, 12, 64], Some(&[0, 2, 1, 3])),
            Some(vec![1, 12, 128, 64])
        );
        assert_eq!(squeeze(&[1, 512, 1, 1], Some(&[2, 3])), Some(vec![1, 512]));
        assert_eq!(squeeze(&[1, 512, 1, 1], None), Some(vec![512]));
        assert_eq!(unsqueeze(&[1, 512], &[-1, 2]), Some(vec![1, 512, 1, 1]));
    }
}
