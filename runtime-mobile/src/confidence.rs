//! Confidence: a softmax over the dequantized scores in integer fixed point, so every target
//! (x86, aarch64, Cortex-M0 without an FPU, wasm) computes the same bits.
//!
//! Format: [`Confidence`] is Q15, an integer in `0..=32768` where 32768 is 100% (so one unit is
//! about 0.003 percentage points). For scores `s_i` with output quantization `(scale, zp)`:
//!
//! ```text
//! p_i = exp(scale * (s_i - s_max)) / sum_j exp(scale * (s_j - s_max))
//! ```
//!
//! (the zero point cancels). Each `exp` is evaluated as `2^-t` with `t = k * scale * log2(e)`,
//! `k = s_max - s_i` in `0..=255`: `scale` is read exactly from its IEEE-754 bits, `t` is a
//! 32.32 fixed-point number, `2^-frac(t)` a 12-term series in Q32, and `p_i` is rounded to
//! nearest. Only `u64` integer arithmetic: the error against the `f64` softmax is below 2^-16
//! (tested over the whole test sets of both shipped models by the end-to-end tests).

/// Q15 one: 100%.
pub const Q15_ONE: u16 = 1 << 15;

/// A probability in Q15 (`0..=32768`, 32768 = 100%); see the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Confidence(u16);

impl Confidence {
    /// From raw Q15 (values above [`Q15_ONE`] saturate to it).
    pub const fn from_q15(q15: u16) -> Self {
        Confidence(if q15 > Q15_ONE { Q15_ONE } else { q15 })
    }

    /// The raw Q15 value, `0..=32768`.
    pub const fn q15(self) -> u16 {
        self.0
    }

    /// Rounded to tenths of a percent (`0..=1000`).
    pub const fn per_mille(self) -> u16 {
        ((self.0 as u32 * 1000 + (Q15_ONE as u32 / 2)) / Q15_ONE as u32) as u16
    }

    /// As a fraction in `[0, 1]` (exact: every Q15 value is an `f32`), for display.
    pub fn fraction(self) -> f32 {
        self.0 as f32 / Q15_ONE as f32
    }
}

/// `log2(e)` in Q31 (1.4426950408889634 * 2^31, rounded).
const LOG2E_Q31: u64 = 3_098_164_009;
/// `ln(2)` in Q32 (0.6931471805599453 * 2^32, rounded).
const LN2_Q32: u64 = 2_977_044_472;
const Q32_ONE: u64 = 1 << 32;

/// `exp(-k * scale)` in Q32 (`Q32_ONE` = 1.0) for a score gap `k`. `scale` must be finite and
/// positive (the parser guarantees it for every layer's output).
pub(crate) fn exp_neg_q32(k: u8, scale: f32) -> u64 {
    if k == 0 {
        return Q32_ONE;
    }
    // scale = mant * 2^pow exactly.
    let bits = scale.to_bits();
    let biased = ((bits >> 23) & 0xff) as i32;
    let frac = (bits & 0x7f_ffff) as u64;
    let (mant, pow) = if biased == 0 { (frac, -149) } else { (frac | 0x80_0000, biased - 150) };
    // t = k * scale * log2(e) in 32.32: k * mant * LOG2E_Q31 < 2^8 * 2^24 * 2^32 = 2^64 is the
    // product's value times 2^(31 - pow); shift it to 2^32.
    let prod = k as u64 * mant * LOG2E_Q31;
    let shift = pow + 1; // t_q32 = prod * 2^(pow + 1)
    let t = if shift >= 0 {
        // Anything with an integer part of 32 or more underflows Q32 to 0 anyway.
        if shift >= 64 || prod > (u64::MAX >> shift) {
            return 0;
        }
        prod << shift
    } else if shift <= -64 {
        0
    } else {
        prod >> -shift
    };
    let whole = t >> 32;
    if whole >= 32 {
        return 0;
    }
    // 2^-f = e^(-f ln 2), u = f ln 2 in [0, ln 2): Horner on the Taylor series, 12 terms
    // (truncation < 0.7^13 / 13! < 2^-40). Every intermediate stays in [0, 2^32].
    let u = ((t & (Q32_ONE - 1)) * LN2_Q32) >> 32;
    let mut r = Q32_ONE;
    for j in (1..=12u64).rev() {
        r = Q32_ONE - ((u * r) >> 32) / j;
    }
    r >> whole
}

/// The softmax of `scores` (output quantization `scale`) at class `i`, given
/// `sum = Σ exp_neg_q32(max - s_j)`; rounded to nearest.
pub(crate) fn confidence(score: i8, max: i8, scale: f32, sum: u64) -> Confidence {
    let e = exp_neg_q32(max.abs_diff(score), scale);
    // sum >= Q32_ONE (the top class contributes 1) and e <= Q32_ONE: no division by zero,
    // e * 2^15 < 2^48, and the quotient is at most 2^15.
    let q = (e * Q15_ONE as u64 + sum / 2) / sum.max(1);
    Confidence::from_q15(q as u16)
}

/// `Σ_j exp(scale * (s_j - max))` in Q32. At most `scores.len()` * 2^32: no overflow below
/// 2^32 classes.
pub(crate) fn exp_sum(scores: &[i8], max: i8, scale: f32) -> u64 {
    scores.iter().map(|&s| exp_neg_q32(max.abs_diff(s), scale)).fold(0u64, u64::saturating_add)
}

/// The softmax of every score, for callers that want them all (the fixed-point path above
/// applied to each class).
pub fn softmax_q15(scores: &[i8], scale: f32, out: &mut [Confidence]) {
    let max = scores.iter().copied().max().unwrap_or(0);
    let sum = exp_sum(scores, max, scale);
    for (o, &s) in out.iter_mut().zip(scores) {
        *o = confidence(s, max, scale, sum);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exp_f64(k: u8, scale: f32) -> f64 {
        (-(k as f64) * scale as f64).exp()
    }

    #[test]
    fn exp_matches_f64_over_every_gap_and_many_scales() {
        let mut scales = std::vec![1e-30f32, 1e-8, 0.001, 0.0123, 0.05, 0.0939, 0.1, 0.25, 0.5, 1.0, 3.7, 100.0, 1e30];
        scales.push(f32::from_bits(1)); // smallest subnormal
        scales.push(f32::MAX);
        for scale in scales {
            for k in (0..=255u8).step_by(if cfg!(miri) { 17 } else { 1 }) {
                let got = exp_neg_q32(k, scale) as f64 / Q32_ONE as f64;
                let want = exp_f64(k, scale);
                assert!((got - want).abs() < 4e-9, "k {k} scale {scale}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn softmax_is_close_to_f64_and_sums_to_one() {
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut out = [Confidence::default(); 10];
        for _ in 0..if cfg!(miri) { 20 } else { 2000 } {
            let scores: [i8; 10] = core::array::from_fn(|_| next() as i8);
            let scale = f32::from_bits(0x3a00_0000 + (next() % 0x0500_0000) as u32); // ~5e-4 .. ~20
            softmax_q15(&scores, scale, &mut out);
            let real: std::vec::Vec<f64> = scores.iter().map(|&s| scale as f64 * s as f64).collect();
            let m = real.iter().copied().fold(f64::MIN, f64::max);
            let z: f64 = real.iter().map(|r| (r - m).exp()).sum();
            let mut total = 0i32;
            for (c, r) in out.iter().zip(&real) {
                let want = (r - m).exp() / z;
                assert!((c.fraction() as f64 - want).abs() <= 1.0 / 32768.0, "{scores:?} {scale}: {c:?} vs {want}");
                total += c.q15() as i32;
            }
            assert!((total - 32768).abs() <= 10, "Q15 sum {total}");
        }
    }

    #[test]
    fn conversions() {
        assert_eq!(Confidence::from_q15(40000).q15(), Q15_ONE);
        assert_eq!(Confidence::from_q15(Q15_ONE).per_mille(), 1000);
        assert_eq!(Confidence::from_q15(16384).per_mille(), 500);
        assert_eq!(Confidence::from_q15(16).per_mille(), 0);
        assert_eq!(Confidence::from_q15(17).per_mille(), 1);
        assert_eq!(Confidence::from_q15(8192).fraction(), 0.25);
    }
}
