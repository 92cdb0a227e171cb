//! Each kernel of the DSP table against the scalar reference, on the target's real instructions:
//! random bytes, the extremes (-128 and 127 everywhere, and alternating), odd and short lengths,
//! every row count around the 4-row blocking, broken length contracts (which must take the
//! reference's path), the 4-pixel `matvec4_i8` on runs shorter than its rows' stride, and
//! requantization over every shift with random and extreme
//! accumulators and multipliers.

use cortex_m_semihosting::heprintln;
use runtime_mobile::kernels::{Kernels, Requant, scalar};

/// Cases run and cases whose outputs differed.
pub struct Tally {
    pub total: usize,
    pub failed: usize,
}

/// Largest shapes: conv2 of the MNIST model is 64 rows of 800.
const MAX_K: usize = 800;
const MAX_ROWS: usize = 10;

/// xorshift32: deterministic, covers every byte value.
struct Rng(u32);
impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
    fn byte(&mut self) -> i8 {
        (self.next() >> 11) as i8
    }
}

#[derive(Clone, Copy)]
enum Fill {
    Random,
    Value(i8),
    /// -128, 127, -128, ...
    Alternate,
}

fn fill(v: &mut [i8], how: Fill, rng: &mut Rng) {
    for (i, b) in v.iter_mut().enumerate() {
        *b = match how {
            Fill::Random => rng.byte(),
            Fill::Value(x) => x,
            Fill::Alternate => [-128, 127][i % 2],
        };
    }
}

fn as_words(b: &[i8], out: &mut [i32]) {
    for (o, c) in out.iter_mut().zip(b.chunks_exact(4)) {
        *o = i32::from_le_bytes([c[0] as u8, c[1] as u8, c[2] as u8, c[3] as u8]);
    }
}

/// Work buffers for [`run`] (statics of `main`: too large for the stack).
pub struct Buffers {
    pub w: [i8; MAX_ROWS * MAX_K],
    pub x: [i8; MAX_K],
    pub wt: [i32; MAX_ROWS * MAX_K / 4],
    pub xp: [i32; MAX_K / 4],
    /// 4 pixels' runs for `matvec4_i8`.
    pub xs: [i8; 4 * MAX_K],
}

impl Buffers {
    pub const ZERO: Buffers = Buffers {
        w: [0; MAX_ROWS * MAX_K],
        x: [0; MAX_K],
        wt: [0; MAX_ROWS * MAX_K / 4],
        xp: [0; MAX_K / 4],
        xs: [0; 4 * MAX_K],
    };
}

pub fn run(dsp: &Kernels, bufs: &mut Buffers) -> Tally {
    let Buffers { w, x, wt, xp, xs } = bufs;
    let mut rng = Rng(0x1234_5678);
    let mut t = Tally { total: 0, failed: 0 };
    let mut check = |what: &str, k: usize, rows: usize, a: &[i32], b: &[i32]| {
        t.total += 1;
        if a != b {
            t.failed += 1;
            heprintln!("kernel-check: {} k {} rows {}: dsp {:?} != reference {:?}", what, k, rows, b, a);
        }
    };
    let fills = [
        (Fill::Random, Fill::Random),
        (Fill::Value(-128), Fill::Value(-128)),
        (Fill::Value(127), Fill::Value(-128)),
        (Fill::Value(127), Fill::Value(127)),
        (Fill::Alternate, Fill::Alternate),
        (Fill::Random, Fill::Value(0)),
    ];
    for k in [1, 2, 3, 4, 5, 7, 8, 9, 25, 31, 64, 255, 263, 800] {
        for rows in [1, 2, 3, 4, 5, 7, 8, 9, 10] {
            for &(fw, fx) in &fills {
                let (w, x) = (&mut w[..rows * k], &mut x[..k]);
                fill(w, fw, &mut rng);
                fill(x, fx, &mut rng);
                let (mut a, mut b) = ([0x55i32; MAX_ROWS], [-0x55i32; MAX_ROWS]);
                (scalar::KERNELS.matvec_i8)(w, x, &mut a[..rows]);
                (dsp.matvec_i8)(w, x, &mut b[..rows]);
                check("matvec_i8", k, rows, &a[..rows], &b[..rows]);
                (dsp.matvec_i8_sym)(w, x, &mut b[..rows]);
                check("matvec_i8_sym", k, rows, &a[..rows], &b[..rows]);
                (scalar::KERNELS.row_sums_i8)(w, k, &mut a[..rows]);
                (dsp.row_sums_i8)(w, k, &mut b[..rows]);
                check("row_sums_i8", k, rows, &a[..rows], &b[..rows]);
                // The 4-pixel kernel: runs of n = k taps and of about half (rows of stride k),
                // accumulating onto non-zero outputs.
                for n in [k, k.div_ceil(2)] {
                    let xs = &mut xs[..4 * n];
                    fill(xs, fx, &mut rng);
                    let mut a4 = [0i32; 4 * MAX_ROWS];
                    for (i, v) in a4.iter_mut().enumerate() {
                        *v = (i as i32 - 20) * 0x0101_0101;
                    }
                    let mut b4 = a4;
                    scalar::matvec4_i8(w, k, xs, &mut a4[..4 * rows]);
                    match dsp.matvec4_i8 {
                        Some(f) => f(w, k, xs, &mut b4[..4 * rows]),
                        None => b4[0] = !a4[0],
                    }
                    check("matvec4_i8", n, rows, &a4[..4 * rows], &b4[..4 * rows]);
                }
                // The pairs kernel: `rows` columns, `k / 4` words of i16 pairs; the random and
                // extreme bytes make every half from -32768 to 32767 appear.
                let (np, n) = (k / 4, rows);
                if np * n * 4 <= w.len() {
                    as_words(&w[..np * n * 4], &mut wt[..np * n]);
                    as_words(&x[..np * 4], &mut xp[..np]);
                    (scalar::KERNELS.matvec_pairs_i16)(&wt[..np * n], &xp[..np], &mut a[..n]);
                    (dsp.matvec_pairs_i16)(&wt[..np * n], &xp[..np], &mut b[..n]);
                    check("matvec_pairs_i16", np, n, &a[..n], &b[..n]);
                }
            }
        }
    }
    requantize_cases(dsp, &mut rng, &mut check);
    // Broken length contracts: the DSP kernels must stay in bounds and answer as the reference
    // (which may leave some outputs alone: both start equal).
    let (mut a, mut b) = ([1i32; 3], [1i32; 3]);
    (scalar::KERNELS.matvec_i8)(&w[..10], &x[..4], &mut a);
    (dsp.matvec_i8)(&w[..10], &x[..4], &mut b);
    check("matvec_i8 (broken lengths)", 4, 3, &a, &b);
    (scalar::KERNELS.matvec_pairs_i16)(&wt[..5], &xp[..2], &mut a);
    (dsp.matvec_pairs_i16)(&wt[..5], &xp[..2], &mut b);
    check("matvec_pairs_i16 (broken lengths)", 2, 3, &a, &b);
    let (mut a4, mut b4) = ([1i32; 8], [1i32; 8]);
    scalar::matvec4_i8(&w[..10], 4, &xs[..32], &mut a4);
    if let Some(f) = dsp.matvec4_i8 {
        f(&w[..10], 4, &xs[..32], &mut b4);
    }
    check("matvec4_i8 (broken lengths)", 8, 2, &a4, &b4);
    (scalar::KERNELS.row_sums_i8)(&w[..7], 4, &mut a);
    (dsp.row_sums_i8)(&w[..7], 4, &mut b);
    check("row_sums_i8 (broken lengths)", 4, 3, &a, &b);
    t
}

/// Channels per requantization case.
const RQ: usize = 64;

/// `requantize_i32` and `requantize_rows` on random accumulators (every magnitude), the i32
/// extremes, multipliers in [0, 2^31 - 1] (the maximum included), every shift from -31 to 31
/// and the output zero points of ReLU and plain layers.
fn requantize_cases(dsp: &Kernels, rng: &mut Rng, check: &mut impl FnMut(&str, usize, usize, &[i32], &[i32])) {
    let (mut mb, mut sb) = ([0u8; 4 * RQ], [0u8; 4 * RQ]);
    for round in 0..63 {
        let mut acc = [0i32; RQ];
        for (i, a) in acc.iter_mut().enumerate() {
            let r = rng.next();
            *a = match i {
                0 => i32::MIN,
                1 => i32::MAX,
                2 => 0,
                3 => -1,
                _ => (rng.next() as i32) >> (r % 32),
            };
            let m = if i == 4 { i32::MAX } else { ((rng.next() >> 1) as i32) >> (r % 31) };
            // Every shift in turn, and random ones.
            let shift = if i < 8 { round - 31 } else { (rng.next() % 63) as i32 - 31 };
            mb[4 * i..4 * i + 4].copy_from_slice(&m.to_le_bytes());
            sb[4 * i..4 * i + 4].copy_from_slice(&shift.to_le_bytes());
        }
        for (zp_out, lo) in [(-128, -128), (-7, -7), (3, -128), (127, 127)] {
            let q = Requant { multiplier: &mb, shift: &sb, zp_out, lo };
            let (mut a, mut b) = (acc, acc);
            (scalar::KERNELS.requantize_i32)(&mut a, &q);
            (dsp.requantize_i32)(&mut b, &q);
            check("requantize_i32", RQ, round as usize, &a, &b);
            let (mut a, mut b) = (acc, acc);
            (scalar::KERNELS.requantize_rows)(&mut a, 10, 7, &q);
            (dsp.requantize_rows)(&mut b, 10, 7, &q);
            check("requantize_rows", RQ, round as usize, &a, &b);
        }
    }
}
