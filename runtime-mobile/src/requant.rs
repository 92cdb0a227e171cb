//! Fixed-point requantization, gemmlowp/TFLite style, integer only (bit-exact on every target).
//!
//! `q = clamp(zp_out + RDBPOT(SRDHM(x, M), shift), lo, 127)` where `x = acc` for `shift >= 0` and
//! `x = saturate_i32(acc * 2^-shift)` for `shift < 0`. `M` is Q0.31 in [0, 2^31-1], so the real
//! multiplier is `M * 2^-31 * 2^-shift`.

/// Saturating rounding doubling high multiply: `floor((a*b + 2^30) / 2^31)`, i.e. `a*b/2^31`
/// rounded half up, saturated (only `i32::MIN * i32::MIN` overflows).
#[inline]
pub fn srdhm(a: i32, b: i32) -> i32 {
    if a == i32::MIN && b == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    // Truncating division, exactly as gemmlowp; fits i32 after the saturation case above.
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// Rounding divide by `2^exponent` (`0..=31`), ties away from zero (gemmlowp `RoundingDivideByPOT`).
#[inline]
pub fn rdbpot(x: i32, exponent: u32) -> i32 {
    let e = exponent.min(31);
    let x = x as i64;
    let mask = (1i64 << e) - 1;
    let remainder = x & mask;
    let threshold = (mask >> 1) + (x < 0) as i64;
    ((x >> e) + (remainder > threshold) as i64) as i32
}

/// Requantizes one accumulator. `shift` must be in [`crate::format::SHIFT_MIN`],
/// [`crate::format::SHIFT_MAX`] (checked at parse time; clamped here so no input can panic).
#[inline]
pub fn requantize(acc: i32, multiplier: i32, shift: i32, zp_out: i32, lo: i32) -> i8 {
    let x = if shift < 0 {
        let left = shift.unsigned_abs().min(31);
        ((acc as i64) << left).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    } else {
        acc
    };
    let y = srdhm(x, multiplier);
    let z = if shift > 0 { rdbpot(y, shift as u32) } else { y };
    zp_out.saturating_add(z).clamp(lo, 127) as i8
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_definition() {
        assert_eq!(srdhm(1 << 30, 1 << 30), 1 << 29);
        assert_eq!(srdhm(i32::MIN, i32::MIN), i32::MAX);
        // -0.5 rounds up to 0, 0.5 up to 1.
        assert_eq!(srdhm(-(1 << 30), 1), 0);
        assert_eq!(srdhm(1 << 30, 1), 1);
        assert_eq!(rdbpot(3, 1), 2); // 1.5 -> 2
        assert_eq!(rdbpot(-3, 1), -2); // -1.5 -> -2
        assert_eq!(rdbpot(-1, 1), -1); // -0.5 -> -1
        assert_eq!(rdbpot(5, 0), 5);
        assert_eq!(rdbpot(i32::MIN, 31), -1);
        assert_eq!(rdbpot(i32::MAX, 31), 1);
        // M = 0.5 in Q31, shift 1 -> scale 0.25.
        assert_eq!(requantize(100, 1 << 30, 1, 0, -128), 25);
        assert_eq!(requantize(-1000, 1 << 30, 1, 0, -128), -128);
        assert_eq!(requantize(-10, 1 << 30, 1, -5, -5), -5);
        // Left shift saturates instead of wrapping.
        assert_eq!(requantize(i32::MAX, i32::MAX, -31, 0, -128), 127);
        assert_eq!(requantize(i32::MIN, i32::MAX, -31, 0, -128), -128);
    }
}
