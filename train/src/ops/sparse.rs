//! Sparse backward of the fused conv + ReLU + 2x2 max-pool.
//!
//! Behind the pool, the pre-activation gradient `dy` (`[C_out, B * P]` per chunk) has at most
//! one non-zero per pooling window, i.e. at most a quarter of it (less where ReLU clipped a
//! window). A dense GEMM over it wastes three quarters of its work, so the non-zeros are listed
//! twice, by output channel ([`Lists`] `by_co`: where the position's inputs start, and the
//! value) and by output position (`by_q`: the channel and the value), and two register-blocked
//! kernels consume them:
//!
//! - weight gradient: `dw[co][c][ky][kx] = Σ_{(q, d) in by_co[co]} d * x[b][c][oy + ky][ox + kx]`,
//!   from a channels-last copy of the chunk's input (`[B][H][W][C]`), where for each `ky` the
//!   `K * C` inputs one position sees are contiguous. Up to ten 8-float groups of `dw[co]` are
//!   held in registers over the channel's whole list (`by_co` stores each position as its
//!   offset in that copy), so the column matrix is not needed at all.
//! - input gradient: `dx[b][c][oy + ky][ox + kx] += Σ_{(co, d) in by_q[q]} d * W[co][c][ky][kx]`,
//!   computed on a channels-last copy of the image (`[H][W][Cp]`, `Cp` = `C_in` rounded up to 8)
//!   where, for each `ky`, the `K * Cp` values touched by one position are contiguous, as are
//!   the matching weights in a `[C_out][K][K][Cp]` copy of `W`: the run is accumulated in
//!   registers over the position's list, then stored once.
//!
//! Every sum runs in a fixed order (list order, which follows the data layout), so results
//! never depend on the thread schedule. Each term is one fused multiply-add in the AVX2 + FMA
//! kernels and in the portable ones alike (`mul_add`), which therefore give the same bits
//! (tested below); only on targets without a hardware FMA does the portable code multiply and
//! add separately ([`Kernel::Unfused`]), as a software `mul_add` per term would be far slower.

use super::conv::ConvGeom;
use super::fused::NO_GRAD;
use super::pool::window_offset;
use super::scratch::Buf;
use super::simd;

/// One non-zero of `dy`. In a per-channel list `idx` is the position's offset in the
/// channels-last input (`((b * H + oy) * W + ox) * C_in`); in a per-position list, the channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Entry {
    pub idx: u32,
    pub d: f32,
}

/// Compressed rows: row `r`'s entries are `entries[start[r]..start[r + 1]]`.
#[derive(Debug, Default)]
pub struct Lists {
    start: Vec<u32>,
    entries: Vec<Entry>,
}

impl Lists {
    pub fn row(&self, r: usize) -> &[Entry] {
        &self.entries[self.start[r] as usize..self.start[r + 1] as usize]
    }

    pub fn rows(&self) -> usize {
        self.start.len().saturating_sub(1)
    }
}

/// Floats of sums a kernel keeps in registers: ten 8-float registers, which with the
/// broadcast multiplier leaves spare registers out of AVX2's sixteen.
const BLOCK: usize = 80;
const LANES: usize = 8;

/// Lists the non-zeros of one chunk's `dy` from its pooled gradient and argmax (both
/// `[B, C_out, PH, PW]`). `by_co` rows are channels, each in (image, window) order; `by_q`
/// (only if `need_q`) rows are positions `q = b * P + oy * OW + ox`, each in channel order.
/// Windows that ReLU clipped ([`NO_GRAD`]) are left out.
pub fn build_lists(g: &ConvGeom, b_imgs: usize, grad: &[f32], argmax: &[u8], need_q: bool) -> (Lists, Lists) {
    let (ph, pw) = (g.oh / 2, g.ow / 2);
    let (plane, p) = (ph * pw, g.p());
    let bp = b_imgs * p;
    assert_eq!(grad.len(), b_imgs * g.c_out * plane, "pooled gradient length");
    assert_eq!(argmax.len(), grad.len(), "argmax length");
    assert!(u32::try_from(b_imgs * g.img_len()).is_ok() && u32::try_from(bp).is_ok(), "chunk too large for u32 offsets");
    // Offsets of each window's top-left corner and of each argmax within a window, as
    // channels-last input offsets and as positions `q`.
    let win = |scale_y: usize, scale: usize| -> Vec<u32> {
        (0..plane).map(|j| ((2 * (j / pw) * scale_y + 2 * (j % pw)) * scale) as u32).collect()
    };
    let (win_pos, win_q) = (win(g.w, g.c_in), win(g.ow, 1));
    let in_win = |w: usize, scale: usize| -> [u32; 4] { [0, 1, 2, 3].map(|a| (window_offset(a, w) * scale) as u32) };
    let (a_pos, a_q) = (in_win(g.w, g.c_in), in_win(g.ow, 1));
    // Branch-free compaction (whether ReLU clipped a window is data-dependent and would be
    // mispredicted often): every window writes its slot, and only kept ones advance `n`.
    let mut entries = vec![Entry { idx: 0, d: 0.0 }; grad.len()];
    let mut qs = vec![0u32; if need_q { grad.len() } else { 0 }];
    let mut q_count = vec![0u32; if need_q { bp + 1 } else { 0 }];
    let mut start = Vec::with_capacity(g.c_out + 1);
    let mut n = 0;
    start.push(0);
    for co in 0..g.c_out {
        for b in 0..b_imgs {
            let off = (b * g.c_out + co) * plane;
            let (gp, ap) = (&grad[off..][..plane], &argmax[off..][..plane]);
            let (img_pos, img_q) = ((b * g.img_len()) as u32, (b * p) as u32);
            for (j, (&a, &d)) in ap.iter().zip(gp).enumerate() {
                let keep = a != NO_GRAD;
                let a = a as usize & 3;
                entries[n] = Entry { idx: img_pos + win_pos[j] + a_pos[a], d };
                if need_q {
                    let q = img_q + win_q[j] + a_q[a];
                    q_count[q as usize + 1] += keep as u32;
                    qs[n] = q;
                }
                n += keep as usize;
            }
        }
        start.push(n as u32);
    }
    entries.truncate(n);
    let by_co = Lists { start, entries };
    if !need_q {
        return (by_co, Lists::default());
    }
    // Counting sort by position; walking the channels in order keeps each row in channel order.
    for q in 0..bp {
        q_count[q + 1] += q_count[q];
    }
    let mut fill = q_count.clone();
    let mut entries = vec![Entry { idx: 0, d: 0.0 }; by_co.entries.len()];
    for co in 0..g.c_out {
        let row = by_co.start[co] as usize..by_co.start[co + 1] as usize;
        for (e, q) in by_co.entries[row.clone()].iter().zip(&qs[row]) {
            let slot = &mut fill[*q as usize];
            entries[*slot as usize] = Entry { idx: co as u32, d: e.d };
            *slot += 1;
        }
    }
    (by_co, Lists { start: q_count, entries })
}

/// `W` `[C_out, C_in, K, K]` as `[C_out][K][K][Cp]` with zero channels `C_in..Cp`.
pub fn weights_channels_last(g: &ConvGeom, w: &[f32]) -> Vec<f32> {
    let (k, cp) = (g.k, g.c_in.next_multiple_of(LANES));
    let mut wt = vec![0.0; g.c_out * k * k * cp];
    for (co, wc) in w.chunks_exact(g.ck()).enumerate() {
        for (c, wk) in wc.chunks_exact(k * k).enumerate() {
            for (kk, v) in wk.iter().enumerate() {
                wt[(co * k * k + kk) * cp + c] = *v;
            }
        }
    }
    wt
}

/// One chunk's weight gradient into `dw` (`[C_out][K][K][C_in]`, channels last; overwritten)
/// from the chunk's input `x` (`[B, C_in, H, W]`) and the per-channel lists of [`build_lists`].
pub fn weight_grad(g: &ConvGeom, by_co: &Lists, x: &[f32], dw: &mut [f32]) {
    weight_grad_with(g, by_co, x, dw, Kernel::detect())
}

/// Adds one chunk's input gradient to `dx` (the chunk's `[B, C_in, H, W]`), given the
/// per-position lists and [`weights_channels_last`].
pub fn input_grad(g: &ConvGeom, by_q: &Lists, wt: &[f32], dx: &mut [f32]) {
    input_grad_with(g, by_q, wt, dx, Kernel::detect())
}

/// `dw` from channels-last `[C_out][K][K][C_in]` back to the weight's `[C_out][C_in][K][K]`.
pub fn weights_from_channels_last(g: &ConvGeom, dw_cl: &[f32]) -> Vec<f32> {
    let (c, kk) = (g.c_in, g.k * g.k);
    let mut dw = vec![0.0; dw_cl.len()];
    for (out, src) in dw.chunks_exact_mut(g.ck().max(1)).zip(dw_cl.chunks_exact(g.ck().max(1))) {
        for (ch, o) in out.chunks_exact_mut(kk).enumerate() {
            for (j, v) in o.iter_mut().enumerate() {
                *v = src[j * c + ch];
            }
        }
    }
    dw
}

/// Calls `$f::<N, $extra>($args)` for a runtime `$n` in `1..=10` (the kernels' register-block
/// sizes).
macro_rules! with_n {
    ($n:expr, $($f:ident)::+ $(, [$($extra:tt)*])?, ($($arg:expr),*)) => {
        match $n {
            10 => $($f)::+::<10 $(, $($extra)*)?>($($arg),*),
            9 => $($f)::+::<9 $(, $($extra)*)?>($($arg),*),
            8 => $($f)::+::<8 $(, $($extra)*)?>($($arg),*),
            7 => $($f)::+::<7 $(, $($extra)*)?>($($arg),*),
            6 => $($f)::+::<6 $(, $($extra)*)?>($($arg),*),
            5 => $($f)::+::<5 $(, $($extra)*)?>($($arg),*),
            4 => $($f)::+::<4 $(, $($extra)*)?>($($arg),*),
            3 => $($f)::+::<3 $(, $($extra)*)?>($($arg),*),
            2 => $($f)::+::<2 $(, $($extra)*)?>($($arg),*),
            1 => $($f)::+::<1 $(, $($extra)*)?>($($arg),*),
            n => unreachable!("block of {n} groups"),
        }
    };
}

/// Which implementation of the kernels runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kernel {
    /// AVX2 + FMA intrinsics (only where the CPU has both).
    Avx2,
    /// Portable code with fused multiply-adds (`mul_add`): the same bits as `Avx2`.
    Fused,
    /// Portable code with a separate multiply and add, for targets without a hardware FMA
    /// (there `mul_add` is a library call per element).
    Unfused,
}

impl Kernel {
    fn detect() -> Kernel {
        // Where `mul_add` compiles to one instruction.
        const HW_FMA: bool = cfg!(any(target_arch = "aarch64", all(target_arch = "x86_64", target_feature = "fma")));
        if simd() {
            Kernel::Avx2
        } else if HW_FMA {
            Kernel::Fused
        } else {
            Kernel::Unfused
        }
    }
}

/// `a * b + c`, rounded once if `FUSED`, else twice.
#[inline(always)]
fn madd<const FUSED: bool>(a: f32, b: f32, c: f32) -> f32 {
    if FUSED { a.mul_add(b, c) } else { a * b + c }
}

/// [`weight_grad`] with the given kernel (`Kernel::Avx2` only where [`simd`] is true).
fn weight_grad_with(g: &ConvGeom, by_co: &Lists, x: &[f32], dw: &mut [f32], kernel: Kernel) {
    let (c, k, hw, img_len) = (g.c_in, g.k, g.h * g.w, g.img_len());
    let b_imgs = x.len() / img_len.max(1);
    let run = k * c;
    assert_eq!(x.len(), b_imgs * img_len, "input chunk");
    assert_eq!(dw.len(), g.c_out * k * run, "weight gradient");
    assert_eq!(by_co.rows(), g.c_out, "one list per channel");
    // Channels-last copy, then LANES zeros: a group may read up to 7 floats past a run's end,
    // so it always stays in the buffer (those lanes are dropped).
    let mut xs = Buf::stale(b_imgs * img_len + LANES);
    for (src, dst) in x.chunks_exact(img_len.max(1)).zip(xs.chunks_exact_mut(img_len.max(1))) {
        for (ch, plane) in src.chunks_exact(hw).enumerate() {
            for (pix, v) in plane.iter().enumerate() {
                dst[pix * c + ch] = *v;
            }
        }
    }
    xs[b_imgs * img_len..].fill(0.0);
    // The 8-float groups of one `dw[co]`: `(ky, part)` reads `xs[pos + ky * W * C + 8 * part..]`
    // and fills `dw[co][ky][..][..]` from `ky * run + 8 * part`, `valid` floats of it.
    let parts = run.div_ceil(LANES);
    let groups: Vec<Group> = (0..k)
        .flat_map(|ky| (0..parts).map(move |p| (ky, p)))
        .map(|(ky, p)| Group { src: ky * g.w * c + p * LANES, dst: ky * run + p * LANES, valid: LANES.min(run - p * LANES) })
        .collect();
    let row = k * run;
    assert!(kernel != Kernel::Avx2 || simd(), "AVX2 kernel without AVX2 + FMA");
    for block in groups.chunks(BLOCK / LANES) {
        match kernel {
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => {
                // SAFETY: the CPU has AVX2 and FMA (asserted), the kernels' only requirement.
                // Bit-identical to the fused portable kernel (tested).
                unsafe { with_n!(block.len(), avx2::gather_block, (by_co, &xs, block, row, dw)) }
            }
            Kernel::Fused => with_n!(block.len(), gather_block, [true], (by_co, &xs, block, row, dw)),
            _ => with_n!(block.len(), gather_block, [false], (by_co, &xs, block, row, dw)),
        }
    }
}

/// One 8-float group of a weight-gradient row: read offset, write offset, floats kept.
#[derive(Clone, Copy, Debug)]
struct Group {
    src: usize,
    dst: usize,
    valid: usize,
}

/// `dw[co][g.dst + l] = Σ_{(pos, d) in by_co[co]} d * xs[pos + g.src + l]` for the `N` groups
/// `g` of `block` and `l < g.valid`, every channel `co`; the terms in list order.
fn gather_block<const N: usize, const FUSED: bool>(by_co: &Lists, xs: &[f32], block: &[Group], row: usize, dw: &mut [f32]) {
    let block: &[Group; N] = block.try_into().expect("block of N groups");
    for (co, out) in dw.chunks_exact_mut(row.max(1)).enumerate() {
        let mut acc = [[0f32; LANES]; N];
        for e in by_co.row(co) {
            for (a, g) in acc.iter_mut().zip(block) {
                let s = &xs[e.idx as usize + g.src..][..LANES];
                for (v, x) in a.iter_mut().zip(s) {
                    *v = madd::<FUSED>(e.d, *x, *v);
                }
            }
        }
        for (a, g) in acc.iter().zip(block) {
            out[g.dst..][..g.valid].copy_from_slice(&a[..g.valid]);
        }
    }
}

/// `dst[i] += Σ_{(co, d) in list} d * wt[co * stride + i]` for `i < 8N`: the sums start from
/// `dst` and take the list's terms in order.
fn axpy_block<const N: usize, const FUSED: bool>(list: &[Entry], wt: &[f32], stride: usize, dst: &mut [f32]) {
    let dst = &mut dst[..N * LANES];
    for e in list {
        let s = &wt[e.idx as usize * stride..][..N * LANES];
        for (v, w) in dst.iter_mut().zip(s) {
            *v = madd::<FUSED>(e.d, *w, *v);
        }
    }
}

/// [`input_grad`] with the given kernel (`Kernel::Avx2` only where [`simd`] is true).
fn input_grad_with(g: &ConvGeom, by_q: &Lists, wt: &[f32], dx: &mut [f32], kernel: Kernel) {
    let (k, cp) = (g.k, g.c_in.next_multiple_of(LANES));
    let run = k * cp;
    let b_imgs = dx.len() / g.img_len().max(1);
    assert_eq!(dx.len(), b_imgs * g.img_len(), "input gradient");
    assert_eq!(by_q.rows(), b_imgs * g.p(), "one list per position");
    assert_eq!(wt.len(), g.c_out * k * run, "channels-last weights");
    assert!(kernel != Kernel::Avx2 || simd(), "AVX2 kernel without AVX2 + FMA");
    let mut img = Buf::stale(g.h * g.w * cp);
    for (b, dx_img) in dx.chunks_exact_mut(g.img_len().max(1)).enumerate() {
        img.fill(0.0);
        for oy in 0..g.oh {
            for ox in 0..g.ow {
                let list = by_q.row(b * g.p() + oy * g.ow + ox);
                if list.is_empty() {
                    continue;
                }
                for ky in 0..k {
                    let dst = &mut img[((oy + ky) * g.w + ox) * cp..][..run];
                    let wt = &wt[ky * run..];
                    let stride = k * run;
                    let mut off = 0;
                    while off < run {
                        let n = ((run - off) / LANES).min(BLOCK / LANES);
                        let (wt, dst) = (&wt[off..], &mut dst[off..]);
                        match kernel {
                            #[cfg(target_arch = "x86_64")]
                            Kernel::Avx2 => {
                                // SAFETY: as in `weight_grad_with` (asserted before the loop).
                                unsafe { with_n!(n, avx2::axpy_block, (list, wt, stride, dst)) }
                            }
                            Kernel::Fused => with_n!(n, axpy_block, [true], (list, wt, stride, dst)),
                            _ => with_n!(n, axpy_block, [false], (list, wt, stride, dst)),
                        }
                        off += n * LANES;
                    }
                }
            }
        }
        // Channels-last back to [C][H][W], adding to what the caller passed in.
        for (c, plane) in dx_img.chunks_exact_mut(g.h * g.w).enumerate() {
            for (pix, d) in plane.iter_mut().enumerate() {
                *d += img[pix * cp + c];
            }
        }
    }
}

/// The kernels with explicit AVX2 + FMA intrinsics: the same sums in the same order as the
/// portable ones, 8 lanes per instruction, `_mm256_fmadd_ps` rounding once per term exactly
/// like `mul_add`, so the results are bit-identical. Up to 10 sums registers (`N`) plus the
/// broadcast multiplier fit AVX2's 16 registers.
#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::*;

    use super::{Entry, Group, LANES, Lists};

    /// [`super::gather_block`]. When the block's groups are adjacent (one stretch of a `ky`
    /// run: the model's second layer) every load is at a fixed distance from one pointer,
    /// which saves reloading the offsets (they do not all fit in registers).
    #[target_feature(enable = "avx2,fma")]
    pub fn gather_block<const N: usize>(by_co: &Lists, xs: &[f32], block: &[Group], row: usize, dw: &mut [f32]) {
        let block: &[Group; N] = block.try_into().expect("block of N groups");
        if (1..N).all(|i| block[i].src == block[0].src + i * LANES) {
            gather_rows::<N, true>(by_co, xs, block, row, dw)
        } else {
            gather_rows::<N, false>(by_co, xs, block, row, dw)
        }
    }

    /// [`gather_block`] for every channel; `ADJACENT`: `block[i].src = block[0].src + 8 * i`.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    fn gather_rows<const N: usize, const ADJACENT: bool>(
        by_co: &Lists,
        xs: &[f32],
        block: &[Group; N],
        row: usize,
        dw: &mut [f32],
    ) {
        let offs = block.map(|g| g.src);
        let reach = offs.iter().max().copied().unwrap_or(0) + LANES;
        for (co, out) in dw.chunks_exact_mut(row.max(1)).enumerate() {
            let mut acc = [_mm256_setzero_ps(); N];
            for e in by_co.row(co) {
                let base = e.idx as usize;
                assert!(base + reach <= xs.len(), "position outside the input");
                let d = _mm256_set1_ps(e.d);
                for (i, a) in acc.iter_mut().enumerate() {
                    let at = if ADJACENT { base + offs[0] + i * LANES } else { base + offs[i] };
                    // SAFETY: reads `xs[base + offs[i]..][..8]` (`at` is that offset either way),
                    // and `base + offs[i] + 8 <= base + reach <= xs.len()` (asserted above).
                    let x = unsafe { _mm256_loadu_ps(xs.as_ptr().add(at)) };
                    *a = _mm256_fmadd_ps(d, x, *a);
                }
            }
            for (a, g) in acc.iter().zip(block) {
                if g.valid == LANES {
                    let out = &mut out[g.dst..][..LANES];
                    // SAFETY: writes 8 floats to `out`, which holds 8.
                    unsafe { _mm256_storeu_ps(out.as_mut_ptr(), *a) };
                } else {
                    let mut lanes = [0f32; LANES];
                    // SAFETY: writes 8 floats to `lanes`, which holds 8.
                    unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), *a) };
                    out[g.dst..][..g.valid].copy_from_slice(&lanes[..g.valid]);
                }
            }
        }
    }

    /// [`super::axpy_block`], with the sums in registers between one load and one store.
    #[target_feature(enable = "avx2,fma")]
    pub fn axpy_block<const N: usize>(list: &[Entry], wt: &[f32], stride: usize, dst: &mut [f32]) {
        let dst = &mut dst[..N * LANES];
        let mut acc = [_mm256_setzero_ps(); N];
        for (i, a) in acc.iter_mut().enumerate() {
            // SAFETY: reads `dst[8 * i..][..8]`, inside `dst` (`N * 8` floats, `i < N`).
            *a = unsafe { _mm256_loadu_ps(dst.as_ptr().add(i * LANES)) };
        }
        for e in list {
            let s = &wt[e.idx as usize * stride..][..N * LANES];
            let d = _mm256_set1_ps(e.d);
            for (i, a) in acc.iter_mut().enumerate() {
                // SAFETY: reads `s[8 * i..][..8]`, inside `s` (`N * 8` floats, `i < N`).
                let w = unsafe { _mm256_loadu_ps(s.as_ptr().add(i * LANES)) };
                *a = _mm256_fmadd_ps(d, w, *a);
            }
        }
        for (i, a) in acc.iter().enumerate() {
            // SAFETY: writes `dst[8 * i..][..8]`, inside `dst` as above.
            unsafe { _mm256_storeu_ps(dst.as_mut_ptr().add(i * LANES), *a) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A chunk with pooled gradient and argmax (some windows clipped), as the fused forward
    /// leaves them.
    fn chunk(g: &ConvGeom, seed: u64) -> (Vec<f32>, Vec<u8>, Vec<f32>, Vec<f32>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let pooled = g.n * g.c_out * (g.oh / 2) * (g.ow / 2);
        let grad: Vec<f32> = (0..pooled).map(|_| rng.random_range(-1.0f32..1.0) * 10f32.powi(rng.random_range(-3..3))).collect();
        let argmax: Vec<u8> =
            (0..pooled).map(|_| if rng.random_range(0..5) == 0 { NO_GRAD } else { rng.random_range(0..4) }).collect();
        let x: Vec<f32> = (0..g.n * g.img_len()).map(|_| rng.random_range(-1.0f32..1.0)).collect();
        let w: Vec<f32> = (0..g.c_out * g.ck()).map(|_| rng.random_range(-0.1f32..0.1)).collect();
        (grad, argmax, x, w)
    }

    fn geoms() -> Vec<ConvGeom> {
        let g = |n, c_in, h, w, c_out, k| ConvGeom { n, c_in, h, w, c_out, k, oh: h - k + 1, ow: w - k + 1 };
        // The model's layers, then odd channel counts, kernels and widths (tails of every size).
        vec![g(4, 32, 12, 12, 64, 5), g(4, 1, 28, 28, 32, 5), g(3, 3, 9, 9, 4, 3), g(2, 5, 11, 10, 7, 4), g(2, 13, 6, 7, 3, 2)]
    }

    #[test]
    fn weight_grad_avx2_is_bit_identical() {
        if !simd() {
            return;
        }
        for (i, g) in geoms().into_iter().enumerate() {
            let (grad, argmax, x, _) = chunk(&g, i as u64);
            let (by_co, _) = build_lists(&g, g.n, &grad, &argmax, false);
            let len = g.c_out * g.ck();
            let (mut a, mut b) = (vec![f32::NAN; len], vec![f32::NAN; len]);
            weight_grad_with(&g, &by_co, &x, &mut a, Kernel::Fused);
            weight_grad_with(&g, &by_co, &x, &mut b, Kernel::Avx2);
            assert!(a.iter().any(|v| *v != 0.0));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{g:?}");
        }
    }

    #[test]
    fn input_grad_avx2_is_bit_identical() {
        if !simd() {
            return;
        }
        for (i, g) in geoms().into_iter().enumerate() {
            let (grad, argmax, _, w) = chunk(&g, 10 + i as u64);
            let (_, by_q) = build_lists(&g, g.n, &grad, &argmax, true);
            let wt = weights_channels_last(&g, &w);
            let (mut a, mut b) = (vec![0.5; g.n * g.img_len()], vec![0.5; g.n * g.img_len()]);
            input_grad_with(&g, &by_q, &wt, &mut a, Kernel::Fused);
            input_grad_with(&g, &by_q, &wt, &mut b, Kernel::Avx2);
            assert!(a.iter().any(|v| *v != 0.5));
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{g:?}");
        }
    }

    /// Every kernel against a plain dense evaluation of the same sums in f64: the error allowed
    /// is f32 rounding relative to the sum of the terms' magnitudes (the gradients span six
    /// orders of magnitude, so sums cancel; a missing or wrong term would be ~1e-2 of it).
    #[test]
    fn kernels_match_dense_sums() {
        for (i, g) in geoms().into_iter().enumerate() {
            let (grad, argmax, x, w) = chunk(&g, 20 + i as u64);
            let (by_co, by_q) = build_lists(&g, g.n, &grad, &argmax, true);
            // Dense dy [C_out, B * P] from the pooled gradient.
            let (ph, pw, p) = (g.oh / 2, g.ow / 2, g.p());
            let bp = g.n * p;
            let mut dy = vec![0f64; g.c_out * bp];
            for b in 0..g.n {
                for co in 0..g.c_out {
                    for py in 0..ph {
                        for px in 0..pw {
                            let j = ((b * g.c_out + co) * ph + py) * pw + px;
                            if argmax[j] != NO_GRAD {
                                dy[co * bp + b * p + 2 * py * g.ow + 2 * px + window_offset(argmax[j], g.ow)] = grad[j] as f64;
                            }
                        }
                    }
                }
            }
            for kernel in [Kernel::Avx2, Kernel::Fused, Kernel::Unfused] {
                if kernel == Kernel::Avx2 && !simd() {
                    continue;
                }
                check_dense(&g, kernel, &by_co, &by_q, &dy, &x, &w);
            }
            // Lists: every non-zero once, by channel and by position alike.
            let nnz = argmax.iter().filter(|a| **a != NO_GRAD).count();
            assert_eq!((by_co.entries.len(), by_q.entries.len()), (nnz, nnz));
        }
    }

    /// `kernel`'s gradients against f64 sums over the dense `dy` (`[C_out, B * P]`).
    fn check_dense(g: &ConvGeom, kernel: Kernel, by_co: &Lists, by_q: &Lists, dy: &[f64], x: &[f32], w: &[f32]) {
        let (g, p) = (*g, g.p());
        let bp = g.n * p;
        let mut dw_cl = vec![f32::NAN; g.c_out * g.ck()];
        weight_grad_with(&g, by_co, x, &mut dw_cl, kernel);
        let dw = weights_from_channels_last(&g, &dw_cl);
        for co in 0..g.c_out {
            for c in 0..g.c_in {
                for ky in 0..g.k {
                    for kx in 0..g.k {
                        let (mut want, mut scale) = (0f64, 0f64);
                        for b in 0..g.n {
                            for oy in 0..g.oh {
                                for ox in 0..g.ow {
                                    let xv = x[((b * g.c_in + c) * g.h + oy + ky) * g.w + ox + kx] as f64;
                                    let t = dy[co * bp + b * p + oy * g.ow + ox] * xv;
                                    (want, scale) = (want + t, scale + t.abs());
                                }
                            }
                        }
                        let got = dw[((co * g.c_in + c) * g.k + ky) * g.k + kx] as f64;
                        assert!((got - want).abs() <= 1e-5 * scale, "{g:?} {kernel:?} dw {co} {c} {ky} {kx}: {got} vs {want}");
                    }
                }
            }
        }
        let mut dx = vec![0f32; g.n * g.img_len()];
        input_grad_with(&g, by_q, &weights_channels_last(&g, w), &mut dx, kernel);
        for b in 0..g.n {
            for c in 0..g.c_in {
                for y in 0..g.h {
                    for x in 0..g.w {
                        let (mut want, mut scale) = (0f64, 0f64);
                        for co in 0..g.c_out {
                            for ky in 0..g.k {
                                for kx in 0..g.k {
                                    let (oy, ox) = (y as isize - ky as isize, x as isize - kx as isize);
                                    if oy >= 0 && ox >= 0 && (oy as usize) < g.oh && (ox as usize) < g.ow {
                                        let q = b * p + oy as usize * g.ow + ox as usize;
                                        let t = dy[co * bp + q] * w[((co * g.c_in + c) * g.k + ky) * g.k + kx] as f64;
                                        (want, scale) = (want + t, scale + t.abs());
                                    }
                                }
                            }
                        }
                        let got = dx[((b * g.c_in + c) * g.h + y) * g.w + x] as f64;
                        assert!((got - want).abs() <= 1e-5 * scale, "{g:?} {kernel:?} dx {b} {c} {y} {x}: {got} vs {want}");
                    }
                }
            }
        }
    }
}
