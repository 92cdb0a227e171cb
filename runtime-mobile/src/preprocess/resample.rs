//! Area-averaging resampling in 16.16 fixed point: every output pixel is the exact
//! coverage-weighted mean of the input pixels under it, so a 1-pixel stroke shrunk 5x still
//! contributes a fifth of its ink instead of vanishing (as it can with point sampling).

/// One pixel in 16.16 fixed point.
pub(crate) const ONE: i64 = 1 << 16;

/// Length of the overlap of `[a0, a1)` and `[b0, b1)`, or 0.
#[inline]
fn overlap(a0: i64, a1: i64, b0: i64, b1: i64) -> i64 {
    (a1.min(b1) - a0.max(b0)).max(0)
}

/// Coverage-weighted mean of `get(x, y)` over the rectangle `r = [x0, y0, x1, y1)` (16.16
/// coordinates, pixel `(x, y)` covering `[x, x+1) x [y, y+1)`), reading only pixels inside
/// `clip = [x0, y0, x1, y1)` (pixel indices). With `zero_outside` the parts of `r` outside
/// `clip` count as black (used when placing the digit on its empty 28x28 canvas); otherwise the
/// mean is over the clipped area only (used at frame edges). Rounds to nearest.
///
/// Overflow bound: callers keep `r` within ~513 pixels per axis (see `MAX_FRAME_DIM` and
/// `WORK_DIM`), so the sum is < 513 * 2^16 * 255 * 513 * 2^16 < 2^59.
pub(crate) fn area_mean(get: impl Fn(usize, usize) -> u8, clip: [usize; 4], r: [i64; 4], zero_outside: bool) -> u8 {
    let [rx0, ry0, rx1, ry1] = r;
    let [cx0, cy0, cx1, cy1] = clip.map(|v| v as i64);
    if rx1 <= rx0 || ry1 <= ry0 {
        return 0;
    }
    // Pixel index ranges touched by both the rectangle and the clip box.
    let px0 = rx0.div_euclid(ONE).max(cx0);
    let px1 = (rx1 + ONE - 1).div_euclid(ONE).min(cx1);
    let py0 = ry0.div_euclid(ONE).max(cy0);
    let py1 = (ry1 + ONE - 1).div_euclid(ONE).min(cy1);
    let area = if zero_outside {
        (rx1 - rx0) as u64 * (ry1 - ry0) as u64
    } else {
        overlap(rx0, rx1, cx0 * ONE, cx1 * ONE) as u64 * overlap(ry0, ry1, cy0 * ONE, cy1 * ONE) as u64
    };
    if area == 0 || px0 >= px1 || py0 >= py1 {
        return 0;
    }
    let mut sum: u64 = 0;
    for py in py0..py1 {
        let wy = overlap(py * ONE, (py + 1) * ONE, ry0, ry1) as u64;
        let mut row: u64 = 0;
        for px in px0..px1 {
            let wx = overlap(px * ONE, (px + 1) * ONE, rx0, rx1) as u64;
            row += wx * get(px as usize, py as usize) as u64;
        }
        sum += row * wy;
    }
    ((sum + area / 2) / area).min(255) as u8
}
