//! Every kernel table the host CPU supports against the scalar reference, and the scalar
//! reference against a wide-integer definition. Random data over many lengths (below, at and
//! past multiples of the 16-byte vector width) and the extreme values -128/127.
//!
//! Under Miri only the scalar table exists (`kernels::available`), and the sizes shrink.

use runtime_mobile::kernels::{self, Kernels, Patches, Requant, scalar};
use testkit::{Rng, ref_requant};

/// The definition with i64 sums, reduced mod 2^32 at the end (what wrapping i32 means).
fn naive_matvec(w: &[i8], x: &[i8], rows: usize) -> Vec<i32> {
    (0..rows)
        .map(|r| {
            let s: i64 = (0..x.len()).map(|k| w[r * x.len() + k] as i64 * x[k] as i64).sum();
            s as i32
        })
        .collect()
}

fn tables() -> Vec<&'static Kernels> {
    let t: Vec<_> = kernels::available().into_iter().flatten().collect();
    eprintln!("kernel tables on this CPU: {:?}", t.iter().map(|k| k.name).collect::<Vec<_>>());
    t
}

/// Fills with one of several value patterns, including all-extreme ones.
fn fill(rng: &mut Rng, n: usize, pattern: u64) -> Vec<i8> {
    (0..n)
        .map(|_| match pattern {
            0 => rng.i8(),
            1 => -128,
            2 => 127,
            3 => {
                if rng.next().is_multiple_of(2) {
                    -128
                } else {
                    127
                }
            }
            _ => [-128, -127, -1, 0, 1, 126, 127][(rng.next() % 7) as usize],
        })
        .collect()
}

const LENS: &[usize] = if cfg!(miri) {
    &[1, 7, 16, 17, 33]
} else {
    &[
        1, 2, 3, 7, 8, 9, 15, 16, 17, 24, 25, 31, 32, 33, 47, 48, 49, 63, 64, 65, 100, 127, 128, 129, 255, 256, 257, 800, 1023,
        1024, 1025,
    ]
};
const ROWS: &[usize] = if cfg!(miri) { &[1, 3, 8, 9] } else { &[1, 2, 3, 4, 5, 7, 8, 9, 10, 12, 15, 16, 17, 32, 33, 64] };

#[test]
fn matvec_matches_scalar() {
    let tables = tables();
    let mut rng = Rng(0x1234_5678_9ABC_DEF1);
    for &k in LENS {
        for &rows in ROWS {
            for pattern in 0..5 {
                let w = fill(&mut rng, rows * k, pattern);
                let xp = (pattern + rng.next() % 2) % 5;
                let x = fill(&mut rng, k, xp);
                let want = naive_matvec(&w, &x, rows);
                for t in &tables {
                    // Sentinel: every output must be written.
                    let mut out = vec![0x5A5A_5A5A; rows];
                    (t.matvec_i8)(&w, &x, &mut out);
                    assert_eq!(out, want, "{} k={k} rows={rows} pattern={pattern}", t.name);
                }
            }
        }
    }
}

/// `gemm_u8i8`'s definition, in i64 then wrapped: patch `i`, byte `t` at
/// `xu[starts[i] + (t / seg) * row_stride + t % seg]`, times quad `t / 4` of channel `o`.
#[allow(clippy::too_many_arguments)]
fn naive_gemm(wp: &[i8], xu: &[u8], starts: &[usize], rows: usize, row_stride: usize, seg: usize, bias: &[i32]) -> Vec<i32> {
    let ocp = bias.len();
    let mut out = Vec::new();
    for &s in starts {
        for o in 0..ocp {
            let mut acc = bias[o] as i64;
            for t in 0..rows * seg {
                let u = xu[s + (t / seg) * row_stride + t % seg] as i64;
                acc += u * wp[((t / 4) * ocp + o) * 4 + t % 4] as i64;
            }
            out.push(acc as i32);
        }
    }
    out
}

#[test]
fn gemm_u8i8_matches_definition() {
    // Patch counts around the kernels' blocks of 4, channel counts around their 16-lane groups,
    // segments and row strides as conv layers make them (and overlapping ones), all byte values
    // including 255 x -128, the largest products, and start values that make the sums wrap.
    let tables = tables();
    let mut rng = Rng(0x6E33_0808);
    let geometries: &[(usize, usize, usize)] = if cfg!(miri) {
        &[(2, 8, 12)]
    } else {
        &[(1, 4, 4), (1, 28, 28), (5, 8, 28), (5, 160, 384), (3, 12, 8), (2, 1024, 1024), (4, 64, 70)]
    };
    for &(rows, seg, row_stride) in geometries {
        let (ocs, ns): (&[usize], &[usize]) =
            if cfg!(miri) { (&[17], &[1, 5]) } else { (&[1, 10, 16, 17, 32, 48, 64, 65, 80], &[1, 2, 3, 4, 5, 8, 9]) };
        for &oc in ocs {
            for &n in ns {
                let pattern = rng.next() % 5;
                let ocp = oc.next_multiple_of(kernels::PACK_OC);
                let wp = fill(&mut rng, rows * seg * ocp, pattern);
                let span = (rows - 1) * row_stride + seg;
                let xu: Vec<u8> = fill(&mut rng, span + 37, (pattern + 1) % 5).iter().map(|&v| v as u8).collect();
                let starts: Vec<usize> = (0..n).map(|_| (rng.next() % 38) as usize).collect();
                let bias: Vec<i32> = (0..ocp).map(|_| rng.next() as i32).collect();
                let want = naive_gemm(&wp, &xu, &starts, rows, row_stride, seg, &bias);
                let pmax0: Vec<i32> = (0..ocp).map(|_| rng.next() as i32).collect();
                let want_max: Vec<i32> = (0..ocp).map(|o| (0..n).map(|i| want[i * ocp + o]).fold(pmax0[o], i32::max)).collect();
                let src = Patches { xu: &xu, starts: &starts, rows, row_stride, seg };
                assert!(src.in_bounds());
                for t in &tables {
                    let mut out = vec![0x5A5A_5A5A; want.len()];
                    (t.gemm_u8i8)(&wp, &src, &bias, &mut out);
                    assert_eq!(out, want, "{} rows={rows} seg={seg} oc={oc} n={n} pattern={pattern}", t.name);
                    let mut pmax = pmax0.clone();
                    (t.gemm_u8i8_max)(&wp, &src, &bias, &mut pmax);
                    assert_eq!(pmax, want_max, "{} max, rows={rows} seg={seg} oc={oc} n={n}", t.name);
                }
            }
        }
    }
}

#[test]
fn gemm_u8i8_is_exact_at_the_extremes() {
    // Every quad at the largest products, 255 x -128 and 255 x 127 (and 128 x -128), in every
    // pair position: a u8 x i8 pair sum of 2 * 255 * 128 = 65280 would saturate `vpmaddubsw`'s
    // i16, so any table that used it unchecked would differ here. 800-byte patches (the MNIST
    // conv2) also make the i32 sums large: 800 * 255 * 128 = 26,112,000.
    let (rows, seg, row_stride) = if cfg!(miri) { (2, 8, 12) } else { (5, 160, 384) };
    let ocps: &[usize] = if cfg!(miri) { &[16] } else { &[16, 32, 64] };
    let span = (rows - 1) * row_stride + seg;
    for (xv, wv) in [(255u8, -128i8), (255, 127), (128, -128), (0, -128)] {
        for &ocp in ocps {
            let wp = vec![wv; rows * seg * ocp];
            let xu = vec![xv; span + 4];
            let starts = [0usize, 4, 0, 3];
            let bias: Vec<i32> = (0..ocp).map(|o| o as i32 * 1_000_003 - i32::MAX / 2).collect();
            let want = naive_gemm(&wp, &xu, &starts, rows, row_stride, seg, &bias);
            let src = Patches { xu: &xu, starts: &starts, rows, row_stride, seg };
            for t in tables() {
                let mut out = vec![0; want.len()];
                (t.gemm_u8i8)(&wp, &src, &bias, &mut out);
                assert_eq!(out, want, "{} x={xv} w={wv} ocp={ocp}", t.name);
                let mut pmax = vec![i32::MIN; ocp];
                (t.gemm_u8i8_max)(&wp, &src, &bias, &mut pmax);
                assert_eq!(pmax, want[..ocp], "{} max x={xv} w={wv} ocp={ocp}", t.name);
            }
        }
    }
    // Mixed signs within a quad: x = [255, 255, 0, 255] against w = [-128, -128, 127, 127].
    let ocp = 16;
    let wp: Vec<i8> = (0..8 * ocp).map(|i| if i % 4 < 2 { -128 } else { 127 }).collect();
    let xu: Vec<u8> = (0..8).map(|i| if i % 4 == 2 { 0 } else { 255 }).collect();
    let bias = vec![0; ocp];
    let want = naive_gemm(&wp, &xu, &[0], 1, 8, 8, &bias);
    for t in tables() {
        let mut out = vec![0; ocp];
        (t.gemm_u8i8)(&wp, &Patches { xu: &xu, starts: &[0], rows: 1, row_stride: 8, seg: 8 }, &bias, &mut out);
        assert_eq!(out, want, "{} mixed", t.name);
    }
}

#[test]
fn matvec_on_unaligned_slices() {
    // Weights and patches sit at any byte offset (file data, arena scratch).
    let tables = tables();
    let mut rng = Rng(99);
    let (k, rows) = (41, 11);
    let wbuf = fill(&mut rng, rows * k + 16, 0);
    let xbuf = fill(&mut rng, k + 16, 0);
    for off in 0..16 {
        let (w, x) = (&wbuf[off..off + rows * k], &xbuf[off..off + k]);
        let want = naive_matvec(w, x, rows);
        for t in &tables {
            let mut out = vec![0; rows + 1];
            (t.matvec_i8)(w, x, &mut out[1..]);
            assert_eq!(out[1..], want[..], "{} offset {off}", t.name);
        }
    }
}

#[test]
#[cfg_attr(miri, ignore = "2^18 multiply-adds: minutes under Miri; arithmetic, not memory safety")]
fn matvec_wraps_like_the_reference() {
    // Over 2^17 products of (-128)(-128) = 2^14: the i32 sum wraps, identically in every table.
    let k = (1 << 17) + 35;
    let w = vec![-128i8; 2 * k];
    let mut x = vec![-128i8; k];
    x[5] = 127;
    let want = naive_matvec(&w, &x, 2);
    assert!(want[0] < 0, "the test should wrap");
    for t in tables() {
        let mut out = [0; 2];
        (t.matvec_i8)(&w, &x, &mut out);
        assert_eq!(out[..], want[..], "{}", t.name);
    }
}

/// `matvec_i8_sym`'s domain: weights in [-127, 127] (export's symmetric quantization).
fn symmetric(mut w: Vec<i8>) -> Vec<i8> {
    for v in &mut w {
        *v = (*v).max(-127);
    }
    w
}

#[test]
fn matvec_sym_matches_scalar_for_symmetric_weights() {
    // Every activation value including -128 (|x| = 128, the u8 operand's maximum), weights at
    // +-127: the largest i16 pair sums (2 * 128 * 127) the SIMD versions form.
    let tables = tables();
    let mut rng = Rng(0x005E_ED0F_5E11);
    for &k in LENS {
        for &rows in ROWS {
            for pattern in 0..5 {
                let w = symmetric(fill(&mut rng, rows * k, pattern));
                let xp = (pattern + rng.next() % 3) % 5;
                let x = fill(&mut rng, k, xp);
                let want = naive_matvec(&w, &x, rows);
                for t in &tables {
                    let mut out = vec![0x5A5A_5A5A; rows];
                    (t.matvec_i8_sym)(&w, &x, &mut out);
                    assert_eq!(out, want, "{} k={k} rows={rows} pattern={pattern}", t.name);
                }
            }
        }
    }
    // The worst case for the i16 pair sums, both signs: x = -128 against w = -127 and 127.
    for &k in &[32usize, 64, 800] {
        for wv in [-127i8, 127] {
            let (w, x) = (vec![wv; 8 * k], vec![-128i8; k]);
            for t in &tables {
                let mut out = vec![0; 8];
                (t.matvec_i8_sym)(&w, &x, &mut out);
                assert_eq!(out, vec![-128 * wv as i32 * k as i32; 8], "{} k={k} w={wv}", t.name);
            }
        }
    }
}

#[test]
fn matvec_sym_on_unaligned_slices() {
    let tables = tables();
    let mut rng = Rng(1999);
    for (k, rows) in [(41, 11), (800, 9), (75, 3)] {
        let wbuf = symmetric(fill(&mut rng, rows * k + 32, 0));
        let xbuf = fill(&mut rng, k + 32, 0);
        for off in 0..32 {
            let (w, x) = (&wbuf[off..off + rows * k], &xbuf[off..off + k]);
            let want = naive_matvec(w, x, rows);
            for t in &tables {
                let mut out = vec![0; rows + 1];
                (t.matvec_i8_sym)(w, x, &mut out[1..]);
                assert_eq!(out[1..], want[..], "{} k={k} offset {off}", t.name);
            }
        }
    }
}

/// `matvec_pairs_i16` by its definition, in i64 then wrapped.
fn naive_pairs(wt: &[i32], xp: &[i32], n: usize) -> Vec<i32> {
    let half = |v: i32, hi: bool| if hi { (v >> 16) as i16 as i64 } else { v as i16 as i64 };
    (0..n)
        .map(|j| {
            let s: i64 = xp
                .iter()
                .enumerate()
                .map(|(p, &x)| {
                    let w = wt[p * n + j];
                    half(w, false) * half(x, false) + half(w, true) * half(x, true)
                })
                .sum();
            s as i32
        })
        .collect()
}

/// An i32 holding two i16 drawn from `rng`: i8-range values (what the engine packs) or any i16,
/// extremes included.
fn pair_value(rng: &mut Rng, wide: bool) -> i32 {
    let mut half = || -> u16 {
        if wide {
            [i16::MIN, i16::MAX, -1, 0, rng.next() as i16][(rng.next() % 5) as usize] as u16
        } else {
            rng.i8() as i16 as u16
        }
    };
    (half() as u32 | (half() as u32) << 16) as i32
}

#[test]
fn matvec_pairs_matches_definition() {
    let tables = tables();
    let mut rng = Rng(0xFA1E_5EED);
    for &pairs in &[0usize, 1, 2, 7, 13, 31, 32, 33] {
        for &n in &[1usize, 3, 7, 8, 9, 16, 24, 31, 32, 33, 40, 64, 65] {
            for wide in [false, true] {
                let wt: Vec<i32> = (0..pairs * n).map(|_| pair_value(&mut rng, wide)).collect();
                let xp: Vec<i32> = (0..pairs).map(|_| pair_value(&mut rng, wide)).collect();
                let want = naive_pairs(&wt, &xp, n);
                for t in &tables {
                    let mut out = vec![0x5A5A_5A5A; n];
                    (t.matvec_pairs_i16)(&wt, &xp, &mut out);
                    assert_eq!(out, want, "{} pairs={pairs} n={n} wide={wide}", t.name);
                }
            }
        }
    }
    // vpmaddwd's one overflow: (-2^15)^2 * 2 = 2^31 wraps to i32::MIN, like the definition.
    let m = (i16::MIN as u16 as u32 | (i16::MIN as u16 as u32) << 16) as i32;
    for t in &tables {
        let mut out = vec![0; 8];
        (t.matvec_pairs_i16)(&[m; 8], &[m], &mut out);
        assert_eq!(out, vec![i32::MIN; 8], "{}", t.name);
    }
}

#[test]
fn row_sums_match_scalar() {
    let tables = tables();
    let mut rng = Rng(5);
    for &k in LENS {
        for &rows in ROWS {
            let p = rng.next() % 5;
            let w = fill(&mut rng, rows * k, p);
            let want: Vec<i32> = (0..rows).map(|r| w[r * k..(r + 1) * k].iter().map(|&v| v as i32).sum()).collect();
            for t in &tables {
                let mut out = vec![0x5A5A_5A5A; rows];
                (t.row_sums_i8)(&w, k, &mut out);
                assert_eq!(out, want, "{} k={k} rows={rows}", t.name);
            }
        }
    }
}

/// Accumulators that stress every step: extremes, values that saturate the left shift, ties.
fn acc_value(rng: &mut Rng) -> i32 {
    match rng.next() % 6 {
        0 => [i32::MIN, i32::MIN + 1, -1, 0, 1, i32::MAX - 1, i32::MAX][(rng.next() % 7) as usize],
        1 => rng.next() as i32,
        2 => rng.range(-(1 << 20), 1 << 20) as i32,
        3 => (rng.range(-64, 64) as i32) << rng.range(0, 24),
        _ => rng.range(-40000, 40000) as i32,
    }
}

#[test]
fn requantize_matches_reference() {
    let tables = tables();
    let mut rng = Rng(77);
    let (sizes, rounds): (&[usize], usize) = if cfg!(miri) {
        (&[0, 1, 7, 8, 9, 33], 3)
    } else {
        (&[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 31, 32, 33, 64, 100], 40)
    };
    for &n in sizes {
        for round in 0..rounds {
            let acc: Vec<i32> = (0..n).map(|_| acc_value(&mut rng)).collect();
            let m: Vec<i32> = (0..n)
                .map(|_| match rng.next() % 4 {
                    0 => [0, 1, 1 << 30, i32::MAX][(rng.next() % 4) as usize],
                    _ => rng.range(1 << 30, i32::MAX as i64) as i32,
                })
                .collect();
            let sh: Vec<i32> = (0..n)
                .map(|_| match rng.next() % 3 {
                    0 => rng.range(-31, 31) as i32,
                    1 => rng.range(-3, 0) as i32,
                    _ => rng.range(0, 12) as i32,
                })
                .collect();
            let zp = if round % 5 == 0 { [-128, 127][round % 2] } else { rng.range(-128, 127) as i32 };
            let relu = round % 2 == 1;
            // Odd byte offset: file tensors are unaligned.
            let le = |v: &[i32]| {
                let mut b = vec![0u8];
                b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
                b
            };
            let (mb, sb) = (le(&m), le(&sh));
            let q = Requant { multiplier: &mb[1..], shift: &sb[1..], zp_out: zp, lo: if relu { zp } else { -128 } };
            let want: Vec<i32> = (0..n).map(|o| ref_requant(acc[o], m[o], sh[o], zp, relu) as i32).collect();
            for t in &tables {
                let mut got = acc.clone();
                (t.requantize_i32)(&mut got, &q);
                assert_eq!(got, want, "{} n={n} round={round}", t.name);
            }
        }
    }
}

#[test]
fn requantize_is_monotonic() {
    // The engine max-pools accumulators before requantizing, which is exact only because
    // requantization never decreases as the accumulator grows. Check that on sorted inputs.
    let mut rng = Rng(123);
    for _ in 0..if cfg!(miri) { 50 } else { 2000 } {
        let m = rng.range(0, i32::MAX as i64) as i32;
        let sh = rng.range(-31, 31) as i32;
        let zp = rng.range(-128, 127) as i32;
        let mut accs: Vec<i32> = (0..16).map(|_| acc_value(&mut rng)).collect();
        accs.sort();
        let q: Vec<i8> = accs.iter().map(|&a| ref_requant(a, m, sh, zp, false)).collect();
        assert!(q.windows(2).all(|p| p[0] <= p[1]), "m={m} shift={sh} {accs:?} -> {q:?}");
    }
}

#[test]
fn broken_contracts_do_not_fault() {
    // Lengths that violate the documented contract: results are unspecified, but no table may
    // read out of bounds or panic (the SIMD ones fall back to the iterator-based reference).
    let w = [1i8; 37];
    let x = [2i8; 16];
    for t in tables() {
        let mut out = [0i32; 3];
        (t.matvec_i8)(&w, &x, &mut out);
        (t.matvec_i8)(&w, &[], &mut out);
        (t.matvec_i8)(&w[..5], &x, &mut out);
        // Outside matvec_i8_sym's contract too: wrong lengths, and -128 weights (unspecified
        // values, but no fault).
        (t.matvec_i8_sym)(&w, &x, &mut out);
        (t.matvec_i8_sym)(&w, &[], &mut out);
        (t.matvec_i8_sym)(&[-128i8; 96], &[-128i8; 32], &mut out);
        (t.matvec_pairs_i16)(&[1; 37], &[2; 4], &mut out);
        (t.matvec_pairs_i16)(&[1; 5], &[2; 4], &mut [0i32; 16]);
        (t.row_sums_i8)(&w, 0, &mut out);
        (t.row_sums_i8)(&w, 16, &mut out);
        // Packed kernels with lengths that do not match each other, patches outside `xu`, a
        // segment that is not a multiple of 4, and offsets that overflow.
        let xu = [2u8; 40];
        let p = |starts: &'static [usize], rows, row_stride, seg| Patches { xu: &xu, starts, rows, row_stride, seg };
        for f in [t.gemm_u8i8, t.gemm_u8i8_max] {
            f(&[1i8; 64], &p(&[], 1, 4, 4), &[0; 16], &mut [0i32; 16]);
            f(&[1i8; 64], &p(&[0, 1], 1, 4, 4), &[0; 16], &mut [0i32; 31]);
            f(&[1i8; 63], &p(&[0, 1], 1, 4, 4), &[0; 16], &mut [0i32; 32]);
            f(&[1i8; 64], &p(&[38], 1, 4, 4), &[0; 16], &mut [0i32; 16]);
            f(&[1i8; 64], &p(&[0], 1, 4, 4), &[0; 3], &mut [0i32; 16]);
            f(&[1i8; 96], &p(&[0], 2, 30, 3), &[0; 16], &mut [0i32; 16]);
            f(&[1i8; 128], &p(&[usize::MAX - 1], 2, usize::MAX / 2, 4), &[0; 16], &mut [0i32; 16]);
        }
        let mut acc = [1i32; 9];
        let short = Requant { multiplier: &[0; 7], shift: &[1; 3], zp_out: 300, lo: -1000 };
        (t.requantize_i32)(&mut acc, &short);
    }
}

#[test]
fn selection_is_consistent() {
    let avail: Vec<_> = kernels::available().into_iter().flatten().map(|k| k.name).collect();
    assert_eq!(avail[0], "scalar");
    let detected = kernels::detect().name;
    assert_eq!(detected, *avail.last().unwrap());
    // With the `std` feature (on for tests), `best` is the detected table.
    assert_eq!(kernels::best().name, detected);
    // The compile-time choice must itself be available on this CPU.
    assert!(avail.contains(&kernels::compile_time_best().name));
    // (Under Miri only the scalar table is handed out, whatever the CPU has.)
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    assert_eq!(avail.contains(&"avx2"), std::is_x86_feature_detected!("avx2"));
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    assert_eq!(
        avail.contains(&"avx512-vnni"),
        ["avx2", "avx512f", "avx512bw", "avx512vnni"].iter().all(|f| match *f {
            "avx2" => std::is_x86_feature_detected!("avx2"),
            "avx512f" => std::is_x86_feature_detected!("avx512f"),
            "avx512bw" => std::is_x86_feature_detected!("avx512bw"),
            _ => std::is_x86_feature_detected!("avx512vnni"),
        })
    );
    // The packed path's reference always comes second.
    assert_eq!(avail[1], "scalar-packed");
    #[cfg(miri)]
    assert_eq!(avail, ["scalar", "scalar-packed"]);
    #[cfg(all(target_arch = "aarch64", not(miri)))]
    {
        assert!(avail.contains(&"neon"));
        let dot = std::arch::is_aarch64_feature_detected!("dotprod");
        assert_eq!(avail.contains(&"neon-dotprod"), dot);
    }
    eprintln!("kernel table selected: {detected}");
}

/// The `unsafe` constructors (for callers that know their CPU) hand out the very tables that
/// detection does, and those compute what the scalar reference computes.
#[test]
#[cfg_attr(miri, ignore = "SIMD tables are not handed out under Miri")]
fn unchecked_constructors_match_detection() {
    let (w, x) = ((0..40 * 3).map(|v| (v * 7 % 256) as i8).collect::<Vec<_>>(), [-128i8; 40]);
    let mut want = [0i32; 3];
    scalar::matvec_i8(&w, &x, &mut want);
    let mut checked = 0;
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 was just detected on this CPU.
        let k = unsafe { kernels::x86_64::avx2_unchecked() };
        assert!(std::ptr::eq(k, kernels::x86_64::detect_avx2().unwrap()));
        let mut out = [0i32; 3];
        (k.matvec_i8)(&w, &x, &mut out);
        assert_eq!(out, want);
        checked += 1;
    }
    #[cfg(target_arch = "x86_64")]
    if let Some(detected) = kernels::x86_64::detect_avx512_vnni() {
        // SAFETY: detection just found AVX2, AVX-512F/BW and VNNI on this CPU.
        let k = unsafe { kernels::x86_64::avx512_vnni_unchecked() };
        assert!(std::ptr::eq(k, detected));
        let mut out = [0i32; 3];
        (k.matvec_i8)(&w, &x, &mut out);
        assert_eq!(out, want);
        checked += 1;
    }
    #[cfg(target_arch = "aarch64")]
    if std::arch::is_aarch64_feature_detected!("dotprod") {
        // SAFETY: FEAT_DotProd was just detected on this CPU.
        let k = unsafe { kernels::aarch64::neon_dotprod_unchecked() };
        assert!(std::ptr::eq(k, kernels::aarch64::detect_dotprod().unwrap()));
        let mut out = [0i32; 3];
        (k.matvec_i8)(&w, &x, &mut out);
        assert_eq!(out, want);
        checked += 1;
    }
    eprintln!("unchecked constructors exercised: {checked}");
}

#[test]
fn scalar_reference_small_case() {
    let w = [1i8, 2, 3, -1, -2, -3];
    let x = [10i8, -10, 127];
    let mut out = [0i32; 2];
    scalar::matvec_i8(&w, &x, &mut out);
    assert_eq!(out, [10 - 20 + 381, -10 + 20 - 381]);
}
