//! Cortex-M4/M7 kernels on the DSP extension of ARMv7E-M (`SMLAD`, `SXTB16`, `USADA8`).
//!
//! Exactness: bytes are sign-extended to 16-bit halves (`SXTB16`, and `SXTB16 ..., ROR #8` for
//! the odd bytes) and `SMLAD` adds two exact 16x16-bit products to an i32 accumulator, wrapping
//! like the reference (it only sets the sticky Q flag). Any int8 product (at most 2^14) and any
//! pair of i16 products fit, so every table entry is bit-exact with [`scalar::KERNELS`] for every
//! input, `-128` weights included: `matvec_i8_sym` is `matvec_i8`.
//!
//! Pairing: a word of `x` holds bytes `x0 x1 x2 x3`; `SXTB16` gives the halves `(x0, x2)` and
//! `SXTB16 ROR #8` gives `(x1, x3)`. Weights get the same treatment, so `SMLAD` on the two
//! "even" words and on the two "odd" words sums all four products. No reordering in memory is
//! needed (CMSIS-NN reorders weights offline; here the model file is used as it is).
//!
//! Shape: `matvec` sign-extends `x` once (128 bytes at a time, on the stack); 4 weight rows per
//! pass share each extended word of it (a conv layer's output channels; the MNIST model's conv2
//! is 64 rows of 800). `matvec4` turns that around for a 2x2 pool window: each row's weight word
//! is extended once and serves the window's 4 pixels (15 instructions per 16 MACs instead of
//! 21), which is what the engine's conv path runs on this table. Rows need no alignment: plain `LDR` loads unaligned words on ARMv7-M (unless
//! the firmware sets `CCR.UNALIGN_TRP`, which is off at reset). Requantization is the reference's arithmetic rearranged for a
//! 32-bit core ([`requantize_one`]); the packed path is the reference's.
//!
//! Choosing it: stable Rust does not set `target_feature = "dsp"` for thumbv7em targets, so the
//! table is opt-in: the `dsp` cargo feature builds it on thumbv7em targets (build.rs checks the
//! target), [`crate::kernels::armv7em_dsp`] returns it and [`crate::kernels::best`] picks it.
//! ARMv7E-M always has the DSP extension, so handing it out there is sound.
//!
//! The instructions are in [`insn`]; host unit tests (below) run the same loops on exact models
//! of them, and `firmware/kernel-check` runs the real ones under QEMU against the reference.

mod insn;

use super::{Kernels, Requant, scalar};
use crate::bytes::le_i32;
use insn::{smlad, sxtb16, sxtb16_ror8, usada8};

/// The table; reachable through [`crate::kernels::armv7em_dsp`] on ARMv7E-M (and through the
/// host unit tests, on the instruction models).
pub(crate) static ARMV7EM_DSP: Kernels = Kernels {
    name: "armv7em-dsp",
    conv_packed: false,
    matvec_i8: matvec,
    // SMLAD is exact for -128 weights too: nothing to gain from the bound.
    matvec_i8_sym: matvec,
    matvec_pairs_i16,
    matvec4_i8: Some(matvec4),
    // The packed conv path needs the conv weights copied into RAM (51 KB for conv2): off on a
    // microcontroller. The reference, for completeness.
    gemm_u8i8: scalar::gemm_u8i8,
    gemm_u8i8_max: scalar::gemm_u8i8_max,
    row_sums_i8,
    requantize_i32,
    requantize_rows,
};

/// Rows per pass of [`matvec`]: 4 accumulators, 3 pointers, the row stride and 4 temporaries
/// take all 12 registers inline `asm!` may use on Thumb (r6, r7, SP and PC are off limits).
const ROWS: usize = 4;

/// An unaligned little-endian word.
///
/// # Safety
/// `p` valid for reading 4 bytes.
#[inline(always)]
unsafe fn word(p: *const i8) -> u32 {
    // SAFETY: the caller guarantees 4 readable bytes; `read_unaligned` has no alignment demand
    // (an `LDR`, which ARMv7-M executes unaligned).
    unsafe { p.cast::<u32>().read_unaligned() }
}

/// `acc + x . w` over one word of each, both as int8x4.
#[inline(always)]
fn dot_word(acc: i32, x_even: u32, x_odd: u32, w: u32) -> i32 {
    smlad(sxtb16_ror8(w), x_odd, smlad(sxtb16(w), x_even, acc))
}

/// Bytes of `x` that [`matvec`] sign-extends at a time, into a stack buffer (two words per 4
/// bytes: 256 bytes of stack).
const X_CHUNK: usize = 128;

/// See [`Kernels::matvec_i8`]. `x` is sign-extended once per chunk into `SMLAD` operands
/// (`(x0, x2)` and `(x1, x3)` per word), which every row group then loads with one `LDRD`.
fn matvec(w: &[i8], x: &[i8], out: &mut [i32]) {
    let k = x.len();
    // Everything below reads `w` only inside `rows * k` bytes; a broken contract takes the
    // reference instead.
    if k < 4 || out.len().checked_mul(k) != Some(w.len()) {
        return scalar::matvec_i8(w, x, out);
    }
    let quads = k / 4;
    let tail = quads * 4;
    // The last k % 4 products first: they start the accumulators.
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k)) {
        *o = tail_dot(0, &row[tail..], &x[tail..]);
    }
    let mut xx = [0u32; X_CHUNK / 2];
    let mut q0 = 0;
    while q0 < quads {
        let n = (quads - q0).min(X_CHUNK / 4);
        for (i, pair) in xx.chunks_exact_mut(2).take(n).enumerate() {
            // SAFETY: word q0 + i < quads of `x` (k >= 4 * quads bytes).
            let xw = unsafe { word(x.as_ptr().add(4 * (q0 + i))) };
            pair[0] = sxtb16(xw);
            pair[1] = sxtb16_ror8(xw);
        }
        let (groups, blocks) = (out.len() / ROWS, n / 4);
        if groups > 0 && blocks > 0 {
            // SAFETY: `out` holds 4 * groups i32s; row r's words q0..q0 + 4 * blocks lie inside
            // its k bytes (4 * (q0 + n) <= k) and the rows inside `w` (rows * k bytes); `xx`
            // holds 8 * blocks <= 2 * n words.
            unsafe { insn::dot4x16(out.as_mut_ptr(), groups, w.as_ptr().add(4 * q0), k, xx.as_ptr(), blocks) };
        }
        let mut groups = out.chunks_exact_mut(ROWS);
        let mut rows = w.chunks_exact(ROWS * k);
        for (o, wg) in (&mut groups).zip(&mut rows).filter(|_| !n.is_multiple_of(4)) {
            for (j, o) in o.iter_mut().enumerate() {
                // SAFETY: as above, for the last n % 4 words of the chunk.
                *o = unsafe { dot1(*o, wg.as_ptr().add(j * k + 4 * (q0 + 4 * blocks)), xx.as_ptr().add(8 * blocks), n % 4) };
            }
        }
        for (o, row) in groups.into_remainder().iter_mut().zip(rows.remainder().chunks_exact(k)) {
            // SAFETY: as above, for one row.
            *o = unsafe { dot1(*o, row.as_ptr().add(4 * q0), xx.as_ptr(), n) };
        }
        q0 += n;
    }
}

/// Words of each pixel's `x` that [`matvec4`] sign-extends at a time, into a stack buffer
/// (8 words per word of the 4 pixels: 512 bytes of stack).
const X4_QUADS: usize = 16;

/// See [`Kernels::matvec4_i8`]: each row's weight word is loaded and sign-extended once for all
/// 4 pixels ([`insn::dot1x4`]), the pixels' `x` once per call (per [`X4_QUADS`] words, on the
/// stack, interleaved so one pointer walks all 4).
fn matvec4(w: &[i8], k: usize, xs: &[i8], out: &mut [i32]) {
    let (n, rows) = (xs.len() / 4, out.len() / 4);
    // Everything below reads row r's first n bytes at w[r * k..]; a broken contract takes the
    // reference instead.
    let fits = rows.checked_sub(1).and_then(|r| r.checked_mul(k)).and_then(|s| s.checked_add(n)).is_some_and(|e| e <= w.len());
    if n < 4 || n > k || !xs.len().is_multiple_of(4) || !out.len().is_multiple_of(4) || !fits {
        return scalar::matvec4_i8(w, k, xs, out);
    }
    let quads = n / 4;
    let tail = quads * 4;
    if tail < n {
        for (r, o4) in out.chunks_exact_mut(4).enumerate() {
            let row = &w[r * k + tail..r * k + n];
            for (p, o) in o4.iter_mut().enumerate() {
                *o = tail_dot(*o, row, &xs[p * n + tail..p * n + n]);
            }
        }
    }
    // Not zeroed (that cost ~200 instructions a call): only the words written below are read.
    let mut xx = core::mem::MaybeUninit::<[u32; 8 * X4_QUADS]>::uninit();
    let xxp = xx.as_mut_ptr().cast::<u32>();
    let mut q0 = 0;
    while q0 < quads {
        let nq = (quads - q0).min(X4_QUADS);
        for i in 0..nq {
            for p in 0..4 {
                // SAFETY: word q0 + i < quads of pixel p's n bytes (p < 4, xs holds 4n); xx
                // holds 8 * X4_QUADS > 8 * i + 2 * p + 1 words.
                unsafe {
                    let xw = word(xs.as_ptr().add(p * n + 4 * (q0 + i)));
                    xxp.add(8 * i + 2 * p).write(sxtb16(xw));
                    xxp.add(8 * i + 2 * p + 1).write(sxtb16_ror8(xw));
                }
            }
        }
        let blocks = nq / 8;
        if blocks > 0 {
            // SAFETY: `out` holds 4 * rows i32s (rows >= 1: n <= k and `fits`); row r's words
            // q0..q0 + 8 * blocks lie inside its first n bytes, inside `w` (`fits`); `xx`
            // holds 64 * blocks <= 8 * nq words.
            // Reads only the first 8 * nq words of xx, written above.
            unsafe { insn::dot1x4(out.as_mut_ptr(), rows, w.as_ptr().add(4 * q0), k, xxp, blocks) };
        }
        let done = 8 * blocks;
        if done < nq {
            for (r, o4) in out.chunks_exact_mut(4).enumerate() {
                for (p, o) in o4.iter_mut().enumerate() {
                    for q in done..nq {
                        // SAFETY: word q0 + q < quads of row r (inside `w`: `fits`).
                        // xx's words 8q + 2p and 8q + 2p + 1 were written above (q < nq).
                        let (wv, xe, xo) = unsafe {
                            (
                                word(w.as_ptr().add(r * k + 4 * (q0 + q))),
                                xxp.add(8 * q + 2 * p).read(),
                                xxp.add(8 * q + 2 * p + 1).read(),
                            )
                        };
                        *o = dot_word(*o, xe, xo, wv);
                    }
                }
            }
        }
        q0 += nq;
    }
}

/// The last `k % 4` products, on top of `acc`.
#[inline(always)]
fn tail_dot(acc: i32, w: &[i8], x: &[i8]) -> i32 {
    w.iter().zip(x).fold(acc, |a, (&w, &x)| a.wrapping_add(w as i32 * x as i32))
}

/// One row from `w` dotted with `quads` words of extended `x` (`xx`), on top of `acc`.
///
/// # Safety
/// `w` valid for reading `4 * quads` bytes, `xx` for `2 * quads` words.
#[inline(always)]
unsafe fn dot1(mut acc: i32, w: *const i8, xx: *const u32, quads: usize) -> i32 {
    for q in 0..quads {
        // SAFETY: word q < quads of `xx` and of the row.
        unsafe { acc = dot_word(acc, *xx.add(2 * q), *xx.add(2 * q + 1), word(w.add(4 * q))) };
    }
    acc
}

/// Output columns per pass of [`matvec_pairs_i16`].
const COLS: usize = 4;

/// See [`Kernels::matvec_pairs_i16`]: one `SMLAD` per pair, 4 output columns per pass
/// ([`insn::pair_cols4`]), the last `n % 4` columns here.
fn matvec_pairs_i16(wt: &[i32], xp: &[i32], out: &mut [i32]) {
    let n = out.len();
    // No pairs: `wt` is empty and every output is 0 (the reference's answer, without pointer
    // arithmetic on an empty slice).
    if n == 0 || xp.is_empty() || xp.len().checked_mul(n) != Some(wt.len()) {
        return scalar::matvec_pairs_i16(wt, xp, out);
    }
    let blocks = n / COLS;
    if blocks > 0 {
        // SAFETY: `out` holds n >= 4 * blocks i32s; `wt` holds xp.len() rows of n i32s
        // (aligned), of which the first 4 * blocks are read; `xp` is not empty.
        unsafe { insn::pair_cols4(out.as_mut_ptr(), blocks, wt.as_ptr(), n, xp.as_ptr(), xp.len()) };
    }
    let j = COLS * blocks;
    for (jj, o) in out.iter_mut().enumerate().skip(j) {
        *o = xp.iter().enumerate().fold(0, |a, (p, &x)| smlad(wt.get(p * n + jj).copied().unwrap_or(0) as u32, x as u32, a));
    }
}

/// See [`Kernels::row_sums_i8`]: `USADA8` against zero sums four `w + 128` bytes (`w ^ 0x80`)
/// per instruction, exactly in u32; `128 * k` comes off at the end, wrapped like the reference.
fn row_sums_i8(w: &[i8], k_len: usize, out: &mut [i32]) {
    // u32 sums of up to 2^24 bytes of at most 255 cannot overflow.
    if k_len == 0 || k_len > 1 << 24 || out.len().checked_mul(k_len) != Some(w.len()) {
        return scalar::row_sums_i8(w, k_len, out);
    }
    let quads = k_len / 4;
    for (o, row) in out.iter_mut().zip(w.chunks_exact(k_len)) {
        let mut s = 0u32;
        let mut p = row.as_ptr();
        // 4 words per step (fewer loop instructions), then the rest one by one.
        for _ in 0..quads / 4 {
            // SAFETY: words q..q + 4 of `row` (q + 4 <= k_len / 4).
            let v = unsafe { [word(p), word(p.add(4)), word(p.add(8)), word(p.add(12))] };
            s = v.iter().fold(s, |s, &v| usada8(v ^ 0x8080_8080, 0, s));
            // SAFETY: at most one past the last word read.
            p = unsafe { p.add(16) };
        }
        for _ in 0..quads % 4 {
            // SAFETY: the q-th word of `row` (q < k_len / 4).
            s = usada8(unsafe { word(p) } ^ 0x8080_8080, 0, s);
            // SAFETY: at most one past the last word read.
            p = unsafe { p.add(4) };
        }
        let biased = (s as i32).wrapping_sub((quads as i32).wrapping_mul(4 * 128));
        *o = row[quads * 4..].iter().fold(biased, |a, &v| a.wrapping_add(v as i32));
    }
}

/// See [`Kernels::requantize_rows`].
fn requantize_rows(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>) {
    scalar::rows_with(requantize_i32, acc, stride, channels, q);
}

/// See [`Kernels::requantize_i32`].
fn requantize_i32(acc: &mut [i32], q: &Requant<'_>) {
    let n = acc.len();
    let (Some(m), Some(s)) = (q.multiplier.get(..4 * n), q.shift.get(..4 * n)) else {
        // A broken contract: the reference's reads (0 past the end), element by element.
        for (o, a) in acc.iter_mut().enumerate() {
            *a = requantize_one(*a, le_i32(q.multiplier, o), le_i32(q.shift, o), q.zp_out, q.lo);
        }
        return;
    };
    // Lengths checked once: no bounds checks per channel; each parameter one unaligned `LDR`.
    let (m, s) = (m.as_ptr().cast::<i8>(), s.as_ptr().cast::<i8>());
    for (o, a) in acc.iter_mut().enumerate() {
        // SAFETY: word o < n of `m` and of `s` (4 * n bytes each, checked above).
        let (m, s) = unsafe { (word(m.add(4 * o)) as i32, word(s.add(4 * o)) as i32) };
        *a = requantize_one(*a, m, s, q.zp_out, q.lo);
    }
}

/// [`crate::requant::requantize`] for `M` in [0, 2^31 - 1] (the [`Requant`] contract), bit for
/// bit, in fewer instructions on a 32-bit core: with `M >= 0` SRDHM never meets
/// `i32::MIN * i32::MIN`, and its truncating division with a sign-dependent nudge equals
/// `floor((x * M + 2^30) / 2^31)` for either sign (one `SMLAL` and two shifts, no 64-bit
/// division fix-up); the rounding shift works in 32 bits (its mask and threshold fit).
#[inline(always)]
fn requantize_one(acc: i32, multiplier: i32, shift: i32, zp_out: i32, lo: i32) -> i32 {
    let x = if shift < 0 {
        let left = shift.unsigned_abs().min(31);
        ((acc as i64) << left).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    } else {
        acc
    };
    let y = ((x as i64 * multiplier as i64 + (1 << 30)) >> 31) as i32;
    let z = if shift > 0 {
        let e = shift.unsigned_abs().min(31);
        let mask = (1u32 << e) - 1;
        let threshold = (mask >> 1) + (y < 0) as u32;
        (y >> e) + ((y as u32 & mask) > threshold) as i32
    } else {
        y
    };
    zp_out.saturating_add(z).clamp(lo, 127)
}

#[cfg(test)]
mod tests {
    //! The loops on the instruction models (host); the firmware checks the instructions.
    use super::ARMV7EM_DSP as DSP;
    use crate::kernels::scalar::KERNELS as REF;

    /// xorshift: deterministic bytes with every value, extremes included.
    fn bytes(seed: &mut u64, n: usize) -> std::vec::Vec<i8> {
        (0..n)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed >> 24) as i8
            })
            .collect()
    }

    #[test]
    fn matvec_matches_reference() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        // 263 bytes: two full chunks of extended x, one word more and a 3-byte tail. Under Miri
        // (an interpreter) the shapes stop there.
        let ks: &[usize] = if cfg!(miri) { &[1, 3, 4, 5, 7, 25, 263] } else { &[1, 3, 4, 5, 7, 8, 25, 31, 64, 263, 800] };
        let all_rows: &[usize] = if cfg!(miri) { &[1, 4, 5, 9] } else { &[1, 3, 4, 5, 9, 10] };
        for &k in ks {
            for &rows in all_rows {
                let x = bytes(&mut seed, k);
                let w = bytes(&mut seed, rows * k);
                for (w, x) in
                    [(w.clone(), x.clone()), (vec![-128; rows * k], vec![-128; k]), (vec![127; rows * k], vec![-128; k])]
                {
                    let (mut a, mut b) = (vec![7; rows], vec![-7; rows]);
                    (REF.matvec_i8)(&w, &x, &mut a);
                    (DSP.matvec_i8)(&w, &x, &mut b);
                    assert_eq!(a, b, "k {k} rows {rows}");
                }
            }
        }
    }

    #[test]
    fn matvec4_matches_reference() {
        let mut seed = 0x2545_F491_4F6C_DD1D;
        let f = DSP.matvec4_i8.expect("the DSP table has matvec4_i8");
        // Runs of 4..=9 bytes, 25, 31, 64 (one stack chunk), 65 and 100 (two, with a tail), in
        // rows of stride k >= n; 1 to 3 rows.
        for n in [4, 5, 7, 8, 9, 16, 25, 31, 64, 65, 100] {
            for (k, rows) in [(n, 1), (n + 3, 2), (2 * n + 1, 3)] {
                let w = bytes(&mut seed, rows * k);
                let xs = bytes(&mut seed, 4 * n);
                for (w, xs) in [(w.clone(), xs.clone()), (vec![-128; rows * k], vec![-128; 4 * n]), (w, vec![127; 4 * n])] {
                    let start: std::vec::Vec<i32> = (0..4 * rows as i32).map(|i| i * 1000 - 7).collect();
                    let (mut a, mut b) = (start.clone(), start);
                    crate::kernels::scalar::matvec4_i8(&w, k, &xs, &mut a);
                    f(&w, k, &xs, &mut b);
                    assert_eq!(a, b, "n {n} k {k} rows {rows}");
                }
            }
        }
        // A broken contract (n > k; w too short) takes the reference.
        let (mut a, mut b) = ([3i32; 8], [3i32; 8]);
        crate::kernels::scalar::matvec4_i8(&[1; 10], 4, &[2; 32], &mut a);
        f(&[1; 10], 4, &[2; 32], &mut b);
        assert_eq!(a, b);
    }

    /// The engine's 4-pixel conv path (`matvec4_i8`, short patches padded in the scratch) on the
    /// instruction models: whole models, random inputs, in the minimal arena and a roomy one,
    /// bit for bit against the scalar table.
    #[test]
    #[cfg_attr(miri, ignore = "reads the model files (Miri isolates the file system); full-size models: minutes under Miri")]
    fn models_match_reference_through_matvec4() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
        let mut seed = 99;
        for path in [
            "models/mnist.int8.safetensors",
            "models/fashion-mnist.int8.safetensors",
            "runtime-mobile/tests/fixtures/narrow-mnist.int8.safetensors",
            "runtime-mobile/tests/fixtures/wide-fashion-mnist.int8.safetensors",
        ] {
            let file = std::fs::read(format!("{root}/{path}")).unwrap_or_else(|e| panic!("{path}: {e}"));
            let model = crate::Model::parse(&file).unwrap_or_else(|e| panic!("{path}: {e:?}"));
            for extra in [0, 8192] {
                let mut arena = vec![0u8; model.arena_bytes() + extra];
                for _ in 0..if cfg!(miri) { 1 } else { 4 } {
                    let input = bytes(&mut seed, model.input_len());
                    let want = model.run_with(&REF, &input, &mut arena).map(|p| p.scores.to_vec());
                    let want = want.unwrap_or_else(|e| panic!("{path}: {e:?}"));
                    let got = model.run_with(&DSP, &input, &mut arena).map(|p| p.scores.to_vec());
                    assert_eq!(Ok(want), got, "{path}, arena + {extra}");
                }
            }
        }
    }

    #[test]
    fn pairs_and_row_sums_match_reference() {
        let mut seed = 42;
        for n in [1, 3, 4, 7, 32] {
            for pairs in [0, 1, 13, 20] {
                let as_i32 = |v: std::vec::Vec<i8>| -> std::vec::Vec<i32> {
                    v.chunks_exact(4).map(|c| i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8])).collect()
                };
                let wt = as_i32(bytes(&mut seed, 4 * pairs * n));
                let mut xp = as_i32(bytes(&mut seed, 4 * pairs));
                if let Some(v) = xp.first_mut() {
                    *v = i32::MIN | 0x8000; // both halves -32768: the largest products
                }
                let (mut a, mut b) = (vec![1; n], vec![2; n]);
                (REF.matvec_pairs_i16)(&wt, &xp, &mut a);
                (DSP.matvec_pairs_i16)(&wt, &xp, &mut b);
                assert_eq!(a, b, "n {n} pairs {pairs}");
            }
        }
        for k in [1, 3, 4, 25, 800] {
            for w in [bytes(&mut seed, 5 * k), vec![-128; 5 * k], vec![127; 5 * k]] {
                let (mut a, mut b) = ([0; 5], [1; 5]);
                (REF.row_sums_i8)(&w, k, &mut a);
                (DSP.row_sums_i8)(&w, k, &mut b);
                assert_eq!(a, b, "k {k}");
            }
        }
    }

    #[test]
    fn requantize_matches_reference() {
        use crate::kernels::Requant;
        let mut seed = 7;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 16) as u32
        };
        let n = if cfg!(miri) { 512 } else { 4096 };
        let mut acc: std::vec::Vec<i32> = (0..n).map(|_| next() as i32 >> (next() % 32)).collect();
        acc[..6].copy_from_slice(&[i32::MIN, i32::MAX, 0, -1, 1, i32::MIN + 1]);
        let m: std::vec::Vec<i32> =
            (0..n).map(|i| if i % 97 == 0 { i32::MAX } else { (next() >> 1) as i32 >> (next() % 31) }).collect();
        let shift: std::vec::Vec<i32> = (0..n).map(|_| (next() % 63) as i32 - 31).collect();
        let le = |v: &[i32]| -> std::vec::Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
        let (mb, sb) = (le(&m), le(&shift));
        for (zp_out, lo) in [(-128, -128), (-5, -5), (0, -128), (127, 127)] {
            let q = Requant { multiplier: &mb, shift: &sb, zp_out, lo };
            let (mut a, mut b) = (acc.clone(), acc.clone());
            (REF.requantize_i32)(&mut a, &q);
            (DSP.requantize_i32)(&mut b, &q);
            assert_eq!(a, b, "zp {zp_out}");
            let (mut a, mut b) = (acc.clone(), acc.clone());
            (REF.requantize_rows)(&mut a, 10, 7, &q);
            (DSP.requantize_rows)(&mut b, 10, 7, &q);
            assert_eq!(a, b, "rows, zp {zp_out}");
        }
    }

    /// A broken length contract takes the reference's (memory-safe) path, which may leave some
    /// outputs alone: both start equal.
    #[test]
    fn broken_lengths_take_the_reference() {
        let (mut a, mut b) = ([5i32; 3], [5i32; 3]);
        (REF.matvec_i8)(&[1; 10], &[2; 4], &mut a);
        (DSP.matvec_i8)(&[1; 10], &[2; 4], &mut b);
        assert_eq!(a, b);
        (REF.matvec_pairs_i16)(&[1; 5], &[3; 2], &mut a);
        (DSP.matvec_pairs_i16)(&[1; 5], &[3; 2], &mut b);
        assert_eq!(a, b);
        (REF.row_sums_i8)(&[1; 7], 4, &mut a);
        (DSP.row_sums_i8)(&[1; 7], 4, &mut b);
        assert_eq!(a, b);
    }
}
