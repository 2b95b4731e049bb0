//! The float32 kernels of inference on a batch: the tensor layout (channel-major `C x N x H x W`,
//! so that a 1x1 convolution over the whole batch is one matrix product with long rows), the
//! matrix product (`matrixmultiply`'s sgemm: this module holds the only `unsafe` outside
//! `solver/ffi.rs`, a call checked against its slices' bounds), convolutions (1x1, depthwise
//! direct loops, any other by im2col per group), and the element-wise and pooling operators.

/// A batch of feature maps, stored channel-major: value (c, n, y, x) at `((c·N + n)·H + y)·W + x`.
/// A matrix `[N, K]` (after Flatten) is K channels of 1x1 maps.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub c: usize,
    pub n: usize,
    pub h: usize,
    pub w: usize,
    pub data: Vec<f32>,
}

impl Tensor {
    /// A zero tensor of the given shape.
    pub fn zeros(c: usize, n: usize, h: usize, w: usize) -> Tensor {
        Tensor {
            c,
            n,
            h,
            w,
            data: vec![0.0; c * n * h * w],
        }
    }

    /// Values per channel (N·H·W).
    pub fn plane(&self) -> usize {
        self.n * self.h * self.w
    }
}

/// C[m×n] (row-major, contiguous) = A·B + beta·C, A `m×k` and B `k×n` given by their slices and
/// (row stride, column stride).
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm(
    (m, k, n): (usize, usize, usize),
    a: &[f32],
    (rsa, csa): (usize, usize),
    b: &[f32],
    (rsb, csb): (usize, usize),
    beta: f32,
    c: &mut [f32],
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, cols: usize, rs: usize, cs: usize| (rows - 1) * rs + (cols - 1) * cs;
    assert!(
        k == 0 || last(m, k, rsa, csa) < a.len(),
        "gemm: A out of bounds"
    );
    assert!(
        k == 0 || last(k, n, rsb, csb) < b.len(),
        "gemm: B out of bounds"
    );
    assert!(m * n <= c.len(), "gemm: C out of bounds");
    // SAFETY: every index sgemm reads or writes, (i·rs + j·cs) for i, j within the dims, is
    // within the slices: checked above (strides are non-negative, so the largest is the last).
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            rsa as isize,
            csa as isize,
            b.as_ptr(),
            rsb as isize,
            csb as isize,
            beta,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// A convolution's geometry (ONNX Conv attributes, resolved).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ConvGeom {
    /// Output channels, input channels, groups.
    pub m: usize,
    pub c: usize,
    pub groups: usize,
    /// Kernel rows, columns.
    pub r: usize,
    pub s: usize,
    /// Strides (rows, columns).
    pub stride: (usize, usize),
    /// Pads: top, left, bottom, right.
    pub pads: [usize; 4],
}

impl ConvGeom {
    /// Output rows and columns for an `h x w` input (None when the kernel does not fit).
    pub fn out_size(&self, h: usize, w: usize) -> Option<(usize, usize)> {
        let (ph, pw) = (
            h + self.pads[0] + self.pads[2],
            w + self.pads[1] + self.pads[3],
        );
        (ph >= self.r && pw >= self.s).then(|| {
            (
                (ph - self.r) / self.stride.0 + 1,
                (pw - self.s) / self.stride.1 + 1,
            )
        })
    }

    fn is_pointwise(&self) -> bool {
        self.r == 1 && self.s == 1 && self.stride == (1, 1) && self.pads == [0; 4]
    }

    fn is_depthwise(&self) -> bool {
        self.groups == self.c && self.groups == self.m
    }
}

/// Convolution: weights `[M, C/g, R, S]`, one bias per output channel.
pub(crate) fn conv(x: &Tensor, g: &ConvGeom, weight: &[f32], bias: &[f32]) -> Tensor {
    let (p, q) = g
        .out_size(x.h, x.w)
        .expect("checked when the network was built");
    let plane = x.n * p * q;
    let mut data = Vec::with_capacity(g.m * plane);
    for &b in bias {
        data.extend(std::iter::repeat_n(b, plane));
    }
    let mut y = Tensor {
        c: g.m,
        n: x.n,
        h: p,
        w: q,
        data,
    };
    if g.is_pointwise() {
        let cols = x.plane();
        gemm(
            (g.m, g.c, cols),
            weight,
            (g.c, 1),
            &x.data,
            (cols, 1),
            1.0,
            &mut y.data,
        );
    } else if g.is_depthwise() {
        depthwise(x, g, weight, &mut y);
    } else {
        grouped_im2col(x, g, weight, &mut y);
    }
    y
}

/// Depthwise convolution (one `R x S` kernel per channel). Per channel, its images are laid
/// zero-padded one after another and every tap is one long multiply-add over the whole padded
/// plane (stride 1 everywhere: contiguous and vectorised); the outputs are read back at the
/// stride. Positions that straddle two images are computed and never read.
fn depthwise(x: &Tensor, g: &ConvGeom, weight: &[f32], y: &mut Tensor) {
    let (h, w, p, q) = (x.h, x.w, y.h, y.w);
    let (hp, wp) = (h + g.pads[0] + g.pads[2], w + g.pads[1] + g.pads[3]);
    let plane = x.n * hp * wp;
    let (mut xp, mut acc) = (vec![0.0f32; plane], vec![0.0f32; plane]);
    let kernel = g.r * g.s;
    for (ch, (xin, yout)) in (x.data.chunks_exact(x.n * h * w))
        .zip(y.data.chunks_exact_mut(y.n * p * q))
        .enumerate()
    {
        for (img, src) in xin.chunks_exact(h * w).enumerate() {
            for (iy, row) in src.chunks_exact(w).enumerate() {
                let at = (img * hp + iy + g.pads[0]) * wp + g.pads[1];
                xp[at..at + w].copy_from_slice(row);
            }
        }
        acc.fill(0.0);
        let k = &weight[ch * kernel..(ch + 1) * kernel];
        for r in 0..g.r {
            for s in 0..g.s {
                let (off, wt) = (r * wp + s, k[r * g.s + s]);
                for (a, v) in acc[..plane - off].iter_mut().zip(&xp[off..]) {
                    *a += wt * v;
                }
            }
        }
        for (img, yimg) in yout.chunks_exact_mut(p * q).enumerate() {
            for (oy, yrow) in yimg.chunks_exact_mut(q).enumerate() {
                let base = (img * hp + oy * g.stride.0) * wp;
                for (ox, yv) in yrow.iter_mut().enumerate() {
                    *yv += acc[base + ox * g.stride.1];
                }
            }
        }
    }
}

/// y[ox] += wt · x[ox·stride + s − pad] over the output columns whose input column is inside.
fn add_tap(yrow: &mut [f32], xrow: &[f32], wt: f32, s: usize, pad: usize, stride: usize) {
    let w = xrow.len();
    // First and end output column with 0 <= ox·stride + s − pad < w.
    let lo = pad.saturating_sub(s).div_ceil(stride);
    let hi = ((w + pad).saturating_sub(s))
        .div_ceil(stride)
        .min(yrow.len());
    if lo >= hi {
        return;
    }
    let start = lo * stride + s - pad;
    if stride == 1 {
        let xs = &xrow[start..start + (hi - lo)];
        for (yv, xv) in yrow[lo..hi].iter_mut().zip(xs) {
            *yv += wt * xv;
        }
    } else {
        for (i, yv) in yrow[lo..hi].iter_mut().enumerate() {
            *yv += wt * xrow[start + i * stride];
        }
    }
}

/// Any other convolution: per group, the input patches as a `(C/g·R·S) x (N·P·Q)` matrix, and
/// one matrix product with the group's weights.
fn grouped_im2col(x: &Tensor, g: &ConvGeom, weight: &[f32], y: &mut Tensor) {
    let (cg, mg) = (g.c / g.groups, g.m / g.groups);
    let k = cg * g.r * g.s;
    let cols = y.plane();
    let mut patches = vec![0.0f32; k * cols];
    for grp in 0..g.groups {
        for cl in 0..cg {
            let ch = grp * cg + cl;
            let xin = &x.data[ch * x.plane()..(ch + 1) * x.plane()];
            for r in 0..g.r {
                for s in 0..g.s {
                    let row = (cl * g.r + r) * g.s + s;
                    let prow = &mut patches[row * cols..(row + 1) * cols];
                    prow.fill(0.0);
                    im2col_row(xin, (x.h, x.w), (y.h, y.w), g, (r, s), prow);
                }
            }
        }
        let wg = &weight[grp * mg * k..(grp + 1) * mg * k];
        let yg = &mut y.data[grp * mg * cols..(grp + 1) * mg * cols];
        gemm((mg, k, cols), wg, (k, 1), &patches, (cols, 1), 1.0, yg);
    }
}

/// One row of the patch matrix: tap (r, s) of every output position of every image.
fn im2col_row(
    xin: &[f32],
    (h, w): (usize, usize),
    (p, q): (usize, usize),
    g: &ConvGeom,
    (r, s): (usize, usize),
    prow: &mut [f32],
) {
    for (img, pimg) in xin.chunks_exact(h * w).zip(prow.chunks_exact_mut(p * q)) {
        for (oy, orow) in pimg.chunks_exact_mut(q).enumerate() {
            let iy = (oy * g.stride.0 + r).wrapping_sub(g.pads[0]);
            if iy < h {
                add_tap(
                    orow,
                    &img[iy * w..(iy + 1) * w],
                    1.0,
                    s,
                    g.pads[1],
                    g.stride.1,
                );
            }
        }
    }
}

/// Gemm with A = the input `[N, K]` (K channels of 1x1 maps), B's rows the output channels
/// (`[M, K]`, as ONNX's `transB = 1` stores it; weights are kept that way), plus the bias.
pub(crate) fn gemm_layer(x: &Tensor, m: usize, weight: &[f32], alpha: f32, bias: &[f32]) -> Tensor {
    let (k, n) = (x.c, x.n);
    let mut y = Tensor::zeros(m, n, 1, 1);
    for (row, b) in y.data.chunks_exact_mut(n).zip(bias) {
        row.fill(*b);
    }
    if alpha == 1.0 {
        gemm((m, k, n), weight, (k, 1), &x.data, (n, 1), 1.0, &mut y.data);
    } else {
        let scaled: Vec<f32> = weight.iter().map(|v| alpha * v).collect();
        gemm(
            (m, k, n),
            &scaled,
            (k, 1),
            &x.data,
            (n, 1),
            1.0,
            &mut y.data,
        );
    }
    y
}

/// Clip to [lo, hi] (Relu is Clip(0, +inf)), in place.
pub(crate) fn clip(x: &mut Tensor, lo: f32, hi: f32) {
    for v in &mut x.data {
        *v = v.max(lo).min(hi);
    }
}

/// Element-wise sum (same shapes, checked when the network was built), into `a`.
pub(crate) fn add(a: &mut Tensor, b: &Tensor) {
    for (x, y) in a.data.iter_mut().zip(&b.data) {
        *x += y;
    }
}

/// Global average pooling: each map's mean (its sum divided by H·W).
pub(crate) fn global_average_pool(x: &Tensor) -> Tensor {
    let hw = x.h * x.w;
    let data = (x.data.chunks_exact(hw))
        .map(|m| m.iter().sum::<f32>() / hw as f32)
        .collect();
    Tensor {
        c: x.c,
        n: x.n,
        h: 1,
        w: 1,
        data,
    }
}

/// Flatten (axis 1): `[N, C, H, W]` → `[N, C·H·W]`, feature index (c·H + y)·W + x.
pub(crate) fn flatten(x: &Tensor) -> Tensor {
    let hw = x.h * x.w;
    if hw == 1 {
        return x.clone();
    }
    let mut y = Tensor::zeros(x.c * hw, x.n, 1, 1);
    for c in 0..x.c {
        for i in 0..x.n {
            for p in 0..hw {
                y.data[(c * hw + p) * x.n + i] = x.data[(c * x.n + i) * hw + p];
            }
        }
    }
    y
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A direct convolution (the definition), to check the fast paths against.
    fn reference(x: &Tensor, g: &ConvGeom, wt: &[f32], bias: &[f32]) -> Tensor {
        let (p, q) = g.out_size(x.h, x.w).unwrap();
        let (cg, mg) = (g.c / g.groups, g.m / g.groups);
        let mut y = Tensor::zeros(g.m, x.n, p, q);
        for m in 0..g.m {
            for i in 0..x.n {
                for oy in 0..p {
                    for ox in 0..q {
                        let mut acc = bias[m];
                        for cl in 0..cg {
                            let c = (m / mg) * cg + cl;
                            for r in 0..g.r {
                                for s in 0..g.s {
                                    let iy = (oy * g.stride.0 + r) as isize - g.pads[0] as isize;
                                    let ix = (ox * g.stride.1 + s) as isize - g.pads[1] as isize;
                                    if iy < 0 || ix < 0 || iy >= x.h as isize || ix >= x.w as isize
                                    {
                                        continue;
                                    }
                                    let xv = x.data
                                        [((c * x.n + i) * x.h + iy as usize) * x.w + ix as usize];
                                    acc += wt[((m * cg + cl) * g.r + r) * g.s + s] * xv;
                                }
                            }
                        }
                        y.data[((m * x.n + i) * p + oy) * q + ox] = acc;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn fast_convolutions_match_the_definition() {
        let val = |i: usize| ((i * 37 % 101) as f32 - 50.0) / 25.0;
        for (m, c, groups, k, stride, pad) in [
            (4, 3, 1, 1, 1, 0),
            (6, 6, 6, 3, 1, 1),
            (6, 6, 6, 3, 2, 1),
            (4, 2, 1, 3, 2, 1),
            (4, 4, 2, 3, 1, 0),
            (2, 2, 2, 1, 2, 0),
        ] {
            let g = ConvGeom {
                m,
                c,
                groups,
                r: k,
                s: k,
                stride: (stride, stride),
                pads: [pad; 4],
            };
            let mut x = Tensor::zeros(c, 2, 7, 5);
            x.data.iter_mut().enumerate().for_each(|(i, v)| *v = val(i));
            let wt: Vec<f32> = (0..m * c / groups * k * k).map(|i| val(i + 3)).collect();
            let bias: Vec<f32> = (0..m).map(|i| i as f32).collect();
            let (fast, slow) = (conv(&x, &g, &wt, &bias), reference(&x, &g, &wt, &bias));
            assert_eq!((fast.h, fast.w), (slow.h, slow.w));
            for (a, b) in fast.data.iter().zip(&slow.data) {
                assert!((a - b).abs() < 1e-4, "{g:?}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn flatten_orders_features_channel_first() {
        let x = Tensor {
            c: 2,
            n: 2,
            h: 1,
            w: 2,
            data: vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0],
        };
        // Image 0: c0 = [1, 2], c1 = [5, 6] → features [1, 2, 5, 6]; image 1: [3, 4, 7, 8].
        let y = flatten(&x);
        assert_eq!((y.c, y.n), (4, 2));
        assert_eq!(y.data, vec![1.0, 3.0, 2.0, 4.0, 5.0, 7.0, 6.0, 8.0]);
    }
}
