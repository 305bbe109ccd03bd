//! The convolution itself, on plain `f32` slices in NCHW order: im2col over a chunk of whole images, one matrix
//! product per chunk, and the same two products backwards.
//!
//! Notation: `N` images of `C × H × W`, `O` filters of `C × kh × kw`, outputs `Ho × Wo` (`P = Ho·Wo` positions).
//! A chunk of images `[n0, n1)` has `M = (n1 − n0)·P` output positions; its im2col matrix is `K × M`, row
//! `(c, tap)`, column `(n − n0)·P + p`.
//!
//! Two things keep the copies cheap on small feature maps, where they cost as much as the products:
//! - each input plane is first laid out padded and split by stride phase (`s × s` planes, one for each
//!   (row, column) remainder modulo the stride), so every run of an im2col row is one contiguous copy with no
//!   border test, whatever the stride, padding or dilation;
//! - kernel taps that read only padding for every output position (all but the centre of a 3 × 3 kernel on a
//!   1 × 1 map) are left out of `K`: they add zeros to the output and get a zero weight gradient.

use cadet_core::linalg::{Threads, matmul_into};
use ndarray::{ArrayView2, ArrayViewMut2};
use rayon::prelude::*;

/// Floats of one chunk's im2col matrix aimed at: large enough that the products are efficient, small enough to
/// stay in the cache between the copy and the product and to spread over the threads.
const CHUNK_FLOATS: usize = 1 << 17;

/// Output positions a chunk holds at least (several images of a large map share one product).
const MIN_COLUMNS: usize = 256;

/// Lanes of the backward pass: each adds the weight gradients of its consecutive chunks into one buffer, the
/// lanes' buffers are then summed in order. A fixed number (not the thread count), so the sums are the same on
/// every machine, and the memory is `LANES · O · K` floats however many chunks there are.
const LANES: usize = 16;

/// The shape of a 2-d convolution, checked consistent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub n: usize,
    pub c: usize,
    pub h: usize,
    pub w: usize,
    pub o: usize,
    pub kh: usize,
    pub kw: usize,
    pub stride: [usize; 2],
    /// Padding before the first row and column (the padding after only changes `ho`, `wo`).
    pub pad: [usize; 2],
    pub dilation: [usize; 2],
    pub ho: usize,
    pub wo: usize,
    /// The kernel taps `(i, j)` that read at least one input pixel.
    taps: Vec<(usize, usize)>,
    /// The padded extent that the outputs read, per axis: `(Ho − 1)·s + (k − 1)·d + 1`.
    span: [usize; 2],
    /// Offsets of the `sh × sw` stride-phase planes in one buffer, and its length.
    phases: (Vec<usize>, usize),
    /// For each read tap, in order: where its runs start in the phase buffer (phase offset plus the tap's shift)
    /// and that phase's row length. Row `oh` of the tap's block starts `oh · row_len` further.
    sources: Vec<(usize, usize)>,
    /// For maps narrower than [`GATHER_BELOW`] outputs: for each read tap and output position, the input pixel
    /// it reads (`h·w` for padding), so that the copies are one gather per tap rather than runs of one or two.
    gather: Option<Vec<u32>>,
}

/// Output widths below which im2col gathers through [`Geometry::gather`] instead of copying runs.
const GATHER_BELOW: usize = 8;

impl Geometry {
    /// The geometry of `x: [N, C, H, W]` convolved with `weight: [O, C, kh, kw]`, or `None` when the shapes do
    /// not fit one another (left to Burn, which says why) or the output would be empty.
    /// The output size `(Ho, Wo)` of `x: [N, C, H, W]` convolved with `weight: [O, C, kh, kw]`, or `None` when
    /// the shapes do not fit one another (left to Burn, which says why) or the output would be empty. Cheap: what
    /// deciding whether this path applies needs.
    pub fn output_size(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
    ) -> Option<(usize, usize)> {
        let [n, c, h, w] = x;
        let [o, cw, kh, kw] = weight;
        if cw != c
            || stride.contains(&0)
            || dilation.contains(&0)
            || [n, c, h, w, o, kh, kw].contains(&0)
        {
            return None;
        }
        let out = |size: usize, (before, after): (usize, usize), k: usize, s: usize, d: usize| {
            let reach = d * (k - 1) + 1;
            let padded = size + before + after;
            (padded >= reach).then(|| (padded - reach) / s + 1)
        };
        Some((
            out(h, padding[0], kh, stride[0], dilation[0])?,
            out(w, padding[1], kw, stride[1], dilation[1])?,
        ))
    }

    /// The geometry of `x: [N, C, H, W]` convolved with `weight: [O, C, kh, kw]`, or `None` as
    /// [`Geometry::output_size`] says.
    pub fn new(
        x: [usize; 4],
        weight: [usize; 4],
        stride: [usize; 2],
        padding: [(usize, usize); 2],
        dilation: [usize; 2],
    ) -> Option<Self> {
        let (ho, wo) = Self::output_size(x, weight, stride, padding, dilation)?;
        let [n, c, h, w] = x;
        let [o, _, kh, kw] = weight;
        // Tap i reads padded rows oh·s + i·d for oh < Ho: some of them inside [pad, pad + size)?
        let reads_inside = |i: usize, out: usize, size: usize, pad: usize, s: usize, d: usize| {
            (0..out).any(|o| (pad..pad + size).contains(&(o * s + i * d)))
        };
        let rows: Vec<bool> = (0..kh)
            .map(|i| reads_inside(i, ho, h, padding[0].0, stride[0], dilation[0]))
            .collect();
        let cols: Vec<bool> = (0..kw)
            .map(|j| reads_inside(j, wo, w, padding[1].0, stride[1], dilation[1]))
            .collect();
        let taps = (0..kh)
            .flat_map(|i| (0..kw).map(move |j| (i, j)))
            .filter(|&(i, j)| rows[i] && cols[j])
            .collect();
        let mut g = Self {
            n,
            c,
            h,
            w,
            o,
            kh,
            kw,
            stride,
            pad: [padding[0].0, padding[1].0],
            dilation,
            ho,
            wo,
            taps,
            span: [
                (ho - 1) * stride[0] + (kh - 1) * dilation[0] + 1,
                (wo - 1) * stride[1] + (kw - 1) * dilation[1] + 1,
            ],
            phases: (Vec::new(), 0),
            sources: Vec::new(),
            gather: None,
        };
        g.phases = g.phase_offsets();
        g.sources = g.tap_sources();
        if wo < GATHER_BELOW && h * w < u32::MAX as usize {
            g.gather = Some(g.gather_table());
        }
        Some(g)
    }

    /// Rows of the im2col matrix: channels × taps read.
    fn k(&self) -> usize {
        self.c * self.taps.len()
    }

    fn p(&self) -> usize {
        self.ho * self.wo
    }

    /// Images per chunk: whole images, about [`CHUNK_FLOATS`] of im2col each, and at least [`MIN_COLUMNS`]
    /// output positions so that the products are not too thin. Fixed by the shapes, not the thread count, so
    /// that the sums (and the results, to the bit) do not depend on it.
    fn images_per_chunk(&self) -> usize {
        let by_size = CHUNK_FLOATS / (self.k() * self.p()).max(1);
        by_size.max(MIN_COLUMNS.div_ceil(self.p())).clamp(1, self.n)
    }

    /// The chunks as image ranges.
    fn chunks(&self) -> Vec<(usize, usize)> {
        let step = self.images_per_chunk();
        (0..self.n)
            .step_by(step)
            .map(|n0| (n0, (n0 + step).min(self.n)))
            .collect()
    }

    /// Rows and columns of stride phase `(a, b)` of the padded plane's read extent (none when the stride is
    /// larger than the extent).
    fn phase_dims(&self, a: usize, b: usize) -> (usize, usize) {
        let [sh, sw] = self.stride;
        (
            self.span[0].saturating_sub(a).div_ceil(sh),
            self.span[1].saturating_sub(b).div_ceil(sw),
        )
    }

    /// Offsets of the `sh × sw` phase planes in one buffer, and its length.
    fn phase_offsets(&self) -> (Vec<usize>, usize) {
        let [sh, sw] = self.stride;
        let mut offsets = Vec::with_capacity(sh * sw);
        let mut total = 0;
        for a in 0..sh {
            for b in 0..sw {
                offsets.push(total);
                let (rows, cols) = self.phase_dims(a, b);
                total += rows * cols;
            }
        }
        (offsets, total)
    }

    /// [`Geometry::gather`], computed.
    fn gather_table(&self) -> Vec<u32> {
        let padding = (self.h * self.w) as u32;
        let mut table = Vec::with_capacity(self.taps.len() * self.p());
        for &(i, j) in &self.taps {
            for oh in 0..self.ho {
                for ow in 0..self.wo {
                    let y = (oh * self.stride[0] + i * self.dilation[0]).checked_sub(self.pad[0]);
                    let x = (ow * self.stride[1] + j * self.dilation[1]).checked_sub(self.pad[1]);
                    table.push(match (y, x) {
                        (Some(y), Some(x)) if y < self.h && x < self.w => (y * self.w + x) as u32,
                        _ => padding,
                    });
                }
            }
        }
        table
    }

    /// [`Geometry::sources`], computed.
    fn tap_sources(&self) -> Vec<(usize, usize)> {
        let [sh, sw] = self.stride;
        let [dh, dw] = self.dilation;
        let offsets = &self.phases.0;
        self.taps
            .iter()
            .map(|&(i, j)| {
                let (a, b) = ((i * dh) % sh, (j * dw) % sw);
                let (_, cols) = self.phase_dims(a, b);
                (
                    offsets[a * sw + b] + (i * dh / sh) * cols + j * dw / sw,
                    cols,
                )
            })
            .collect()
    }
}

/// Takes this thread's scratch buffer `slot` at `len` floats (contents unspecified), or a new one when a nested
/// task holds it; give it back with [`give_back`].
fn take_scratch(
    slot: &'static std::thread::LocalKey<std::cell::Cell<Vec<f32>>>,
    len: usize,
) -> Vec<f32> {
    let mut buffer = slot.with(std::cell::Cell::take);
    buffer.resize(len, 0.0);
    buffer
}

fn give_back(slot: &'static std::thread::LocalKey<std::cell::Cell<Vec<f32>>>, buffer: Vec<f32>) {
    slot.with(|cell| cell.set(buffer));
}

thread_local! {
    static COL: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    static PRODUCT: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
    static PHASES: std::cell::Cell<Vec<f32>> = const { std::cell::Cell::new(Vec::new()) };
}

/// Copies `src` into `dst` (same length) in blocks of 16 that compile to vector moves: the runs of small maps
/// are 8 to 32 floats, where a call to `memcpy` costs more than the copy.
#[inline(always)]
fn copy_run(dst: &mut [f32], src: &[f32]) {
    let mut d = dst.chunks_exact_mut(16);
    let mut s = src.chunks_exact(16);
    for (d, s) in (&mut d).zip(&mut s) {
        let block: &[f32; 16] = s.try_into().expect("chunks of 16");
        d.copy_from_slice(block);
    }
    for (d, s) in d.into_remainder().iter_mut().zip(s.remainder()) {
        *d = *s;
    }
}

/// Adds `src` onto `dst` (same length).
#[inline(always)]
fn add_run(dst: &mut [f32], src: &[f32]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d += *s;
    }
}

/// Lays out one input plane (`h × w`) padded and split into stride phases, into `phases`.
fn fill_phases(g: &Geometry, plane: &[f32], phases: &mut [f32]) {
    let [sh, sw] = g.stride;
    let [pt, pl] = g.pad;
    let offsets = &g.phases.0;
    for a in 0..sh {
        for b in 0..sw {
            let (rows, cols) = g.phase_dims(a, b);
            // Phase column c is input column c·sw + b − pl: inside for c in [lo, hi).
            let lo = pl.saturating_sub(b).div_ceil(sw).min(cols);
            let hi = if g.w + pl > b {
                ((g.w + pl - b - 1) / sw + 1).clamp(lo, cols)
            } else {
                lo
            };
            let dst = &mut phases[offsets[a * sw + b]..][..rows * cols];
            for r in 0..rows {
                let out = &mut dst[r * cols..][..cols];
                // Padded row r·sh + a is input row r·sh + a − pt.
                match (r * sh + a).checked_sub(pt).filter(|&y| y < g.h) {
                    None => out.fill(0.0),
                    Some(y) => {
                        out[..lo].fill(0.0);
                        out[hi..].fill(0.0);
                        if lo < hi {
                            let row = &plane[y * g.w + (lo * sw + b - pl)..];
                            if sw == 1 {
                                copy_run(&mut out[lo..hi], &row[..hi - lo]);
                            } else {
                                for (v, x) in out[lo..hi].iter_mut().zip(row.iter().step_by(sw)) {
                                    *v = *x;
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Adds the padded, phase-split gradient `phases` back onto one input plane's gradient (`h × w`, overwritten).
fn drain_phases(g: &Geometry, phases: &[f32], plane: &mut [f32]) {
    let [sh, sw] = g.stride;
    let [pt, pl] = g.pad;
    let offsets = &g.phases.0;
    for y in 0..g.h {
        for x in 0..g.w {
            let (py, px) = (y + pt, x + pl);
            plane[y * g.w + x] = if py < g.span[0] && px < g.span[1] {
                let (a, b) = (py % sh, px % sw);
                let (_, cols) = g.phase_dims(a, b);
                phases[offsets[a * sw + b] + (py / sh) * cols + px / sw]
            } else {
                // Never read by any output.
                0.0
            };
        }
    }
}

/// The im2col matrix `K × M` of images `n0..n0 + images` of `x`, into `col` (every element written).
fn im2col(g: &Geometry, x: &[f32], n0: usize, images: usize, col: &mut [f32]) {
    let (m, p, wo, hw) = (images * g.p(), g.p(), g.wo, g.h * g.w);
    let taps = g.taps.len();
    if let Some(table) = &g.gather {
        // The plane with one zero after it, where the table sends the padding.
        let mut plane = take_scratch(&PHASES, hw + 1);
        for nl in 0..images {
            for ci in 0..g.c {
                plane[..hw].copy_from_slice(&x[((n0 + nl) * g.c + ci) * hw..][..hw]);
                plane[hw] = 0.0;
                for t in 0..taps {
                    let dst = &mut col[(ci * taps + t) * m + nl * p..][..p];
                    for (d, &i) in dst.iter_mut().zip(&table[t * p..][..p]) {
                        *d = plane[i as usize];
                    }
                }
            }
        }
        give_back(&PHASES, plane);
        return;
    }
    let mut phases = take_scratch(&PHASES, g.phases.1);
    for nl in 0..images {
        for ci in 0..g.c {
            fill_phases(g, &x[((n0 + nl) * g.c + ci) * hw..][..hw], &mut phases);
            for (t, &(start, row_len)) in g.sources.iter().enumerate() {
                let dst = &mut col[(ci * taps + t) * m + nl * p..][..p];
                for oh in 0..g.ho {
                    copy_run(
                        &mut dst[oh * wo..][..wo],
                        &phases[start + oh * row_len..][..wo],
                    );
                }
            }
        }
    }
    give_back(&PHASES, phases);
}

/// The input gradient of images `0..images` of a chunk from its im2col-shaped gradient `dcol` (`K × M`): `dx`
/// holds those images only, and is overwritten.
fn col2im(g: &Geometry, dcol: &[f32], images: usize, dx: &mut [f32]) {
    let (m, p, wo, hw) = (images * g.p(), g.p(), g.wo, g.h * g.w);
    let taps = g.taps.len();
    if let Some(table) = &g.gather {
        let mut plane = take_scratch(&PHASES, hw + 1);
        for nl in 0..images {
            for ci in 0..g.c {
                plane.fill(0.0);
                for t in 0..taps {
                    let src = &dcol[(ci * taps + t) * m + nl * p..][..p];
                    for (s, &i) in src.iter().zip(&table[t * p..][..p]) {
                        plane[i as usize] += *s;
                    }
                }
                dx[(nl * g.c + ci) * hw..][..hw].copy_from_slice(&plane[..hw]);
            }
        }
        give_back(&PHASES, plane);
        return;
    }
    let mut phases = take_scratch(&PHASES, g.phases.1);
    for nl in 0..images {
        for ci in 0..g.c {
            phases.fill(0.0);
            for (t, &(start, row_len)) in g.sources.iter().enumerate() {
                let src = &dcol[(ci * taps + t) * m + nl * p..][..p];
                for oh in 0..g.ho {
                    add_run(
                        &mut phases[start + oh * row_len..][..wo],
                        &src[oh * wo..][..wo],
                    );
                }
            }
            drain_phases(g, &phases, &mut dx[(nl * g.c + ci) * hw..][..hw]);
        }
    }
    give_back(&PHASES, phases);
}

/// The weight `[O, C, kh, kw]` as the `O × K` matrix of the read taps.
fn weight_matrix(g: &Geometry, weight: &[f32]) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let mut out = Vec::with_capacity(g.o * g.k());
    for oc in 0..g.o {
        for ci in 0..g.c {
            let filter = &weight[(oc * g.c + ci) * taps..][..taps];
            out.extend(g.taps.iter().map(|&(i, j)| filter[i * g.kw + j]));
        }
    }
    out
}

/// The `O × K` weight gradient back as `[O, C, kh, kw]`, zero at the taps that read only padding.
fn weight_gradient(g: &Geometry, dw: &[f32]) -> Vec<f32> {
    let taps = g.kh * g.kw;
    let mut out = vec![0f32; g.o * g.c * taps];
    for oc in 0..g.o {
        for ci in 0..g.c {
            let filter = &mut out[(oc * g.c + ci) * taps..][..taps];
            let row = &dw[(oc * g.c + ci) * g.taps.len()..][..g.taps.len()];
            for (&(i, j), v) in g.taps.iter().zip(row) {
                filter[i * g.kw + j] = *v;
            }
        }
    }
    out
}

/// How the chunks share the threads: chunks in parallel with one-thread products when there are enough of
/// them, else one chunk after the other with multi-threaded products. Both give the same bits.
fn chunk_threads(chunks: usize) -> (bool, Threads) {
    if chunks >= rayon::current_num_threads() {
        (true, Threads::Single)
    } else {
        (false, Threads::Rayon)
    }
}

/// Runs `work(chunks, slice of out for their images, threads)` for every unit (a run of consecutive chunks),
/// where `out` holds `per_image` floats per image; in parallel or not as [`chunk_threads`] says. Results in
/// unit order.
fn over_units<T: Send>(
    units: Vec<Vec<(usize, usize)>>,
    out: &mut [f32],
    per_image: usize,
    work: impl Fn(&[(usize, usize)], &mut [f32], Threads) -> T + Sync,
) -> Vec<T> {
    let (parallel, threads) = chunk_threads(units.len());
    let mut rest = out;
    let mut pieces = Vec::with_capacity(units.len());
    for unit in units {
        let images = unit.last().map_or(0, |c| c.1) - unit.first().map_or(0, |c| c.0);
        let (head, tail) = std::mem::take(&mut rest).split_at_mut(images * per_image);
        pieces.push((unit, head));
        rest = tail;
    }
    if parallel {
        pieces
            .into_par_iter()
            .map(|(unit, out)| work(&unit, out, threads))
            .collect()
    } else {
        pieces
            .into_iter()
            .map(|(unit, out)| work(&unit, out, threads))
            .collect()
    }
}

/// The chunks, each its own unit.
fn chunk_units(g: &Geometry) -> Vec<Vec<(usize, usize)>> {
    g.chunks().into_iter().map(|c| vec![c]).collect()
}

/// The chunks in at most [`LANES`] units of consecutive chunks.
fn lane_units(g: &Geometry) -> Vec<Vec<(usize, usize)>> {
    let chunks = g.chunks();
    let lanes = chunks.len().min(LANES);
    (0..lanes)
        .map(|l| chunks[l * chunks.len() / lanes..(l + 1) * chunks.len() / lanes].to_vec())
        .collect()
}

fn matrix(data: &[f32], rows: usize, cols: usize) -> ArrayView2<'_, f32> {
    ArrayView2::from_shape((rows, cols), data).expect("buffer sized rows × cols")
}

fn matrix_mut(data: &mut [f32], rows: usize, cols: usize) -> ArrayViewMut2<'_, f32> {
    ArrayViewMut2::from_shape((rows, cols), data).expect("buffer sized rows × cols")
}

/// The convolution `[N, O, Ho, Wo]` of `x: [N, C, H, W]` with `weight: [O, C, kh, kw]`, both contiguous NCHW.
pub(crate) fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let (k, p, o) = (g.k(), g.p(), g.o);
    let mut out = vec![0f32; g.n * o * p];
    if k == 0 {
        // Every tap reads padding only.
        return out;
    }
    let wm = weight_matrix(g, weight);
    let w = matrix(&wm, o, k);
    over_units(chunk_units(g), &mut out, o * p, |unit, out, threads| {
        let (n0, n1) = unit[0];
        let m = (n1 - n0) * p;
        let mut col = take_scratch(&COL, k * m);
        im2col(g, x, n0, n1 - n0, &mut col);
        if p == 1 {
            // One position per image: the product's transpose is the output itself.
            matmul_into(
                w,
                matrix(&col, k, m),
                matrix_mut(out, m, o).reversed_axes(),
                false,
                threads,
            )
            .expect("factors sized O × K and K × M");
        } else {
            let mut y = take_scratch(&PRODUCT, o * m);
            matmul_into(
                w,
                matrix(&col, k, m),
                matrix_mut(&mut y, o, m),
                false,
                threads,
            )
            .expect("factors sized O × K and K × M");
            // y is O × (image, position); out is (image, O, position).
            for nl in 0..n1 - n0 {
                for oc in 0..o {
                    copy_run(
                        &mut out[(nl * o + oc) * p..][..p],
                        &y[oc * m + nl * p..][..p],
                    );
                }
            }
            give_back(&PRODUCT, y);
        }
        give_back(&COL, col);
    });
    out
}

/// The gradients of the convolution's input and weight from the gradient `gy: [N, O, Ho, Wo]` of its output;
/// each only when asked for.
pub(crate) fn backward(
    g: &Geometry,
    x: &[f32],
    weight: &[f32],
    gy: &[f32],
    want_x: bool,
    want_weight: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let (k, p, o) = (g.k(), g.p(), g.o);
    let per_image = g.c * g.h * g.w;
    let mut dx = vec![0f32; if want_x { g.n * per_image } else { 0 }];
    if k == 0 {
        let dw = want_weight.then(|| vec![0f32; g.o * g.c * g.kh * g.kw]);
        return (want_x.then_some(dx), dw);
    }
    let wm = weight_matrix(g, weight);
    let w = matrix(&wm, o, k);
    let mut scratch = Vec::new();
    let target: &mut [f32] = if want_x { &mut dx } else { &mut scratch };
    let per_lane = over_units(
        lane_units(g),
        target,
        if want_x { per_image } else { 0 },
        |lane, dx_lane, threads| {
            let mut dw = want_weight.then(|| vec![0f32; o * k]);
            let lane_start = lane[0].0;
            for &(n0, n1) in lane {
                let m = (n1 - n0) * p;
                // The chunk's output gradient as O × (image, position).
                let mut gyc = take_scratch(&PRODUCT, o * m);
                for nl in 0..n1 - n0 {
                    for oc in 0..o {
                        copy_run(
                            &mut gyc[oc * m + nl * p..][..p],
                            &gy[((n0 + nl) * o + oc) * p..][..p],
                        );
                    }
                }
                let mut col = take_scratch(&COL, k * m);
                if want_x {
                    matmul_into(
                        w.t(),
                        matrix(&gyc, o, m),
                        matrix_mut(&mut col, k, m),
                        false,
                        threads,
                    )
                    .expect("factors sized K × O and O × M");
                    let dx = &mut dx_lane[(n0 - lane_start) * per_image..][..(n1 - n0) * per_image];
                    col2im(g, &col, n1 - n0, dx);
                }
                if let Some(dw) = dw.as_mut() {
                    im2col(g, x, n0, n1 - n0, &mut col);
                    // Added onto the lane's sum, chunk after chunk.
                    matmul_into(
                        matrix(&gyc, o, m),
                        matrix(&col, k, m).t(),
                        matrix_mut(dw, o, k),
                        true,
                        threads,
                    )
                    .expect("factors sized O × M and M × K");
                }
                give_back(&COL, col);
                give_back(&PRODUCT, gyc);
            }
            dw
        },
    );
    let dw = want_weight.then(|| {
        // The lanes summed in order: the same bits on every run and every thread count.
        let mut lanes = per_lane.into_iter().flatten();
        let mut sum = lanes.next().unwrap_or_else(|| vec![0f32; o * k]);
        for lane in lanes {
            sum.iter_mut().zip(&lane).for_each(|(s, v)| *s += v);
        }
        weight_gradient(g, &sum)
    });
    (want_x.then_some(dx), dw)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (x, weight, stride, padding (before, after) per axis, dilation)
    type Case = (
        [usize; 4],
        [usize; 4],
        [usize; 2],
        [(usize, usize); 2],
        [usize; 2],
    );

    /// The convolution and its two gradients by the definition, in `f64`: every (image, filter, output
    /// position, kernel tap) visited once.
    fn brute_force(
        g: &Geometry,
        x: &[f32],
        w: &[f32],
        gy: &[f32],
    ) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
        let mut y = vec![0f64; g.n * g.o * g.ho * g.wo];
        let mut dx = vec![0f64; x.len()];
        let mut dw = vec![0f64; w.len()];
        for n in 0..g.n {
            for o in 0..g.o {
                for oh in 0..g.ho {
                    for ow in 0..g.wo {
                        let yi = ((n * g.o + o) * g.ho + oh) * g.wo + ow;
                        for c in 0..g.c {
                            for i in 0..g.kh {
                                for j in 0..g.kw {
                                    let ih = (oh * g.stride[0] + i * g.dilation[0]) as i64
                                        - g.pad[0] as i64;
                                    let iw = (ow * g.stride[1] + j * g.dilation[1]) as i64
                                        - g.pad[1] as i64;
                                    if ih < 0 || iw < 0 || ih >= g.h as i64 || iw >= g.w as i64 {
                                        continue;
                                    }
                                    let xi =
                                        ((n * g.c + c) * g.h + ih as usize) * g.w + iw as usize;
                                    let wi = ((o * g.c + c) * g.kh + i) * g.kw + j;
                                    y[yi] += f64::from(x[xi]) * f64::from(w[wi]);
                                    dx[xi] += f64::from(gy[yi]) * f64::from(w[wi]);
                                    dw[wi] += f64::from(gy[yi]) * f64::from(x[xi]);
                                }
                            }
                        }
                    }
                }
            }
        }
        (y, dx, dw)
    }

    fn pseudo_random(len: usize, seed: u64) -> Vec<f32> {
        let mut state = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
            })
            .collect()
    }

    fn assert_close(what: &str, got: &[f32], expected: &[f64]) {
        assert_eq!(got.len(), expected.len(), "{what}: length");
        let scale = expected.iter().fold(1e-6f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in got.iter().zip(expected).enumerate() {
            let gap = (f64::from(*a) - b).abs() / scale;
            assert!(
                gap < 1e-5,
                "{what}[{i}]: {a} against {b} (relative gap {gap})"
            );
        }
    }

    #[test]
    fn forward_and_gradients_match_the_definition() {
        let cases: [Case; 14] = [
            // The quickstart's stem and blocks.
            (
                [3, 3, 32, 32],
                [16, 3, 7, 7],
                [2, 2],
                [(3, 3), (3, 3)],
                [1, 1],
            ),
            (
                [64, 16, 8, 8],
                [16, 16, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
            (
                [5, 32, 4, 4],
                [64, 32, 3, 3],
                [2, 2],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
            (
                [7, 64, 1, 1],
                [8, 64, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
            (
                [4, 16, 8, 8],
                [32, 16, 1, 1],
                [2, 2],
                [(0, 0), (0, 0)],
                [1, 1],
            ),
            // Asymmetric kernel, stride, padding and dilation.
            (
                [2, 3, 20, 24],
                [12, 3, 7, 5],
                [2, 1],
                [(3, 1), (2, 0)],
                [1, 2],
            ),
            // Padding wider than the kernel's reach: whole rows and columns of zeros.
            ([2, 2, 3, 3], [3, 2, 2, 2], [1, 1], [(4, 2), (3, 4)], [1, 1]),
            // Stride larger than the kernel: input pixels no output reads.
            (
                [3, 2, 9, 11],
                [4, 2, 2, 2],
                [3, 4],
                [(0, 1), (1, 0)],
                [1, 1],
            ),
            // A 1 × 1 stride-2 shortcut on a map wide enough for the run copies: pixels no output reads.
            (
                [2, 3, 16, 17],
                [4, 3, 1, 1],
                [2, 2],
                [(0, 0), (0, 0)],
                [1, 1],
            ),
            // Gathers over several chunks (64 images of 288 × 16 im2col floats), the last one partial.
            (
                [70, 32, 4, 4],
                [8, 32, 3, 3],
                [1, 1],
                [(1, 1), (1, 1)],
                [1, 1],
            ),
            // No padding, dilation 3.
            (
                [2, 4, 10, 10],
                [5, 4, 3, 3],
                [1, 1],
                [(0, 0), (0, 0)],
                [3, 3],
            ),
            // Stride and dilation together, over phases that start inside the padding.
            (
                [3, 2, 13, 12],
                [3, 2, 5, 4],
                [2, 3],
                [(2, 3), (1, 2)],
                [2, 2],
            ),
            // The same on a map wide enough for the run copies (13 outputs a row).
            (
                [2, 2, 40, 41],
                [3, 2, 3, 4],
                [2, 3],
                [(2, 3), (1, 2)],
                [2, 2],
            ),
            // Every tap reads only padding: a zero output and zero gradients.
            ([2, 2, 1, 1], [3, 2, 2, 2], [5, 5], [(3, 3), (3, 3)], [1, 1]),
        ];
        for (seed, (xs, ws, stride, padding, dilation)) in cases.into_iter().enumerate() {
            let g = Geometry::new(xs, ws, stride, padding, dilation).expect("valid case");
            let x = pseudo_random(xs.iter().product(), seed as u64);
            let w = pseudo_random(ws.iter().product(), 100 + seed as u64);
            let gy = pseudo_random(g.n * g.o * g.ho * g.wo, 200 + seed as u64);
            let (y, dx, dw) = brute_force(&g, &x, &w, &gy);
            assert!(
                y.iter().any(|v| *v != 0.0) || seed == 13,
                "case {seed} reads something"
            );
            assert_close("output", &forward(&g, &x, &w), &y);
            let (got_dx, got_dw) = backward(&g, &x, &w, &gy, true, true);
            assert_close("input gradient", &got_dx.unwrap(), &dx);
            assert_close("weight gradient", &got_dw.unwrap(), &dw);
            // Each gradient alone is the same.
            let (alone_dx, none) = backward(&g, &x, &w, &gy, true, false);
            assert!(none.is_none());
            assert_close("input gradient alone", &alone_dx.unwrap(), &dx);
            let (none, alone_dw) = backward(&g, &x, &w, &gy, false, true);
            assert!(none.is_none());
            assert_close("weight gradient alone", &alone_dw.unwrap(), &dw);
        }
    }

    /// The two ways of copying (gathers for narrow maps, runs from the stride phases for wide ones) give the
    /// same bits on the same geometry, forward and backward.
    #[test]
    fn gathers_and_runs_agree() {
        for (xs, ws, stride, padding, dilation) in [
            ([3, 5, 6, 7], [4, 5, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            ([2, 3, 9, 9], [4, 3, 3, 2], [2, 3], [(2, 0), (1, 3)], [1, 2]),
            ([4, 8, 1, 1], [6, 8, 3, 3], [1, 1], [(1, 1), (1, 1)], [1, 1]),
            (
                [2, 3, 32, 32],
                [16, 3, 7, 7],
                [2, 2],
                [(3, 3), (3, 3)],
                [1, 1],
            ),
        ] {
            let with_table = Geometry::new(xs, ws, stride, padding, dilation).unwrap();
            let mut with_runs = with_table.clone();
            let table = with_runs
                .gather
                .take()
                .or_else(|| Some(with_runs.gather_table()));
            let with_table = Geometry {
                gather: table,
                ..with_table
            };
            let x = pseudo_random(xs.iter().product(), 1);
            let w = pseudo_random(ws.iter().product(), 2);
            let gy = pseudo_random(with_runs.n * with_runs.o * with_runs.p(), 3);
            let bits = |v: Vec<f32>| v.into_iter().map(f32::to_bits).collect::<Vec<_>>();
            assert_eq!(
                bits(forward(&with_table, &x, &w)),
                bits(forward(&with_runs, &x, &w))
            );
            let (a, b) = backward(&with_table, &x, &w, &gy, true, true);
            let (c, d) = backward(&with_runs, &x, &w, &gy, true, true);
            assert_eq!(bits(a.unwrap()), bits(c.unwrap()));
            assert_eq!(bits(b.unwrap()), bits(d.unwrap()));
        }
    }

    #[test]
    fn geometry_follows_the_output_size_formula() {
        let size = |case: Case| {
            let (x, w, stride, padding, dilation) = case;
            Geometry::new(x, w, stride, padding, dilation).map(|g| (g.ho, g.wo))
        };
        let same = [(1, 1), (1, 1)];
        // (32 + 3 + 3 − 7) / 2 + 1 = 16
        assert_eq!(
            size((
                [1, 3, 32, 32],
                [16, 3, 7, 7],
                [2, 2],
                [(3, 3), (3, 3)],
                [1, 1]
            )),
            Some((16, 16))
        );
        // Asymmetric: (20 + 3 + 1 − 7) / 2 + 1 = 9; (24 + 2 + 0 − 9) / 1 + 1 = 18.
        assert_eq!(
            size((
                [1, 3, 20, 24],
                [1, 3, 7, 5],
                [2, 1],
                [(3, 1), (2, 0)],
                [1, 2]
            )),
            Some((9, 18))
        );
        // A kernel wider than the padded input, mismatched channels, a zero stride, no images: not this path's.
        assert_eq!(
            size(([1, 3, 4, 4], [1, 3, 7, 7], [1, 1], same, [1, 1])),
            None
        );
        assert_eq!(
            size(([1, 3, 8, 8], [1, 4, 3, 3], [1, 1], same, [1, 1])),
            None
        );
        assert_eq!(
            size(([1, 3, 8, 8], [1, 3, 3, 3], [0, 1], same, [1, 1])),
            None
        );
        assert_eq!(
            size(([0, 3, 8, 8], [1, 3, 3, 3], [1, 1], same, [1, 1])),
            None
        );
    }
}
