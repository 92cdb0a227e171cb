//! Gathering a conv layer's receptive fields (im2col patches) from a CHW input.

#[cfg(any(feature = "dsp", not(target_arch = "arm")))]
use super::pool4::POOL4_SLACK;

/// Copies `rows` runs of 8 bytes: run `r` (channel `r / kh`, kernel row `r % kh`) from
/// `src + (r / kh) * plane + (r % kh) * stride` to `dst + r * run` (runs overlap when
/// `run < 8`; each is written in increasing order, so every run's first `run` bytes survive).
///
/// # Safety
/// Every run's 8-byte read and write must be in bounds of their allocations, which must not
/// overlap each other.
#[inline(never)]
pub(super) unsafe fn copy_rows8(src: *const i8, stride: usize, plane: usize, kh: usize, dst: *mut i8, run: usize, rows: usize) {
    // SAFETY (both calls): the caller's contract, passed on unchanged.
    match kh {
        // The common kernel heights, unrolled (MNIST's 5x5): a channel is kh load/store pairs.
        5 => unsafe { copy_rows8_kh::<5>(src, stride, plane, dst, run, rows) },
        3 => unsafe { copy_rows8_kh::<3>(src, stride, plane, dst, run, rows) },
        _ => {
            let (mut ch, mut d, mut left) = (src, dst, rows);
            while left > 0 && kh > 0 {
                let mut s = ch;
                for _ in 0..kh.min(left) {
                    // SAFETY: this run is one of the `rows` runs the caller vouches for.
                    unsafe { core::ptr::write_unaligned(d.cast::<u64>(), core::ptr::read_unaligned(s.cast::<u64>())) };
                    s = s.wrapping_add(stride);
                    d = d.wrapping_add(run);
                }
                ch = ch.wrapping_add(plane);
                left = left.saturating_sub(kh);
            }
        }
    }
}

/// [`copy_rows8`] for a kernel height known at compile time.
///
/// # Safety
/// As [`copy_rows8`].
#[inline(always)]
pub(super) unsafe fn copy_rows8_kh<const KH: usize>(
    src: *const i8,
    stride: usize,
    plane: usize,
    dst: *mut i8,
    run: usize,
    rows: usize,
) {
    let (mut ch, mut d) = (src, dst);
    for _ in 0..rows / KH {
        for ky in 0..KH {
            // SAFETY: run `done + ky` of the `rows` runs the caller vouches for.
            unsafe {
                let v = core::ptr::read_unaligned(ch.wrapping_add(ky * stride).cast::<u64>());
                core::ptr::write_unaligned(d.wrapping_add(ky * run).cast::<u64>(), v);
            }
        }
        ch = ch.wrapping_add(plane);
        d = d.wrapping_add(KH * run);
    }
    for ky in 0..rows % KH {
        // SAFETY: as above, the last channel's first rows.
        unsafe {
            let v = core::ptr::read_unaligned(ch.wrapping_add(ky * stride).cast::<u64>());
            core::ptr::write_unaligned(d.wrapping_add(ky * run).cast::<u64>(), v);
        }
    }
}

/// A conv layer's receptive-field geometry, for gathering im2col patches.
pub(super) struct Im2col {
    pub(super) c: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) kh: usize,
    pub(super) kw: usize,
    pub(super) pad_h: usize,
    pub(super) pad_w: usize,
    /// Padding cells read as the input zero point (real 0).
    pub(super) pad_val: i8,
}

impl Im2col {
    /// Gathers the receptive field whose top-left corner (in padded coordinates) is `origin` into
    /// `patch[..c * kh * kw]`, in the weights' `[c][kh][kw]` order; bytes after that are slack
    /// the 8-byte row copies may overwrite (`patch` must hold at least `c * kh * kw`). Out of line: inlined into `conv`, its loop
    /// spilled its counters to the stack.
    #[inline(never)]
    pub(super) fn gather(&self, x: &[i8], [oy, ox]: [usize; 2], patch: &mut [i8]) {
        let Im2col { c, h, w, kh, kw, pad_h, pad_w, .. } = *self;
        let inside = oy >= pad_h && ox >= pad_w && oy + kh <= h + pad_h && ox + kw <= w + pad_w;
        if !inside {
            return self.gather_padded(x, [oy, ox], patch);
        }
        // Fast path (no padding in the window): copy each kernel row as one run of `kw` bytes.
        // Short runs move as one 8-byte copy where both sides have room; the extra bytes land
        // where the next run is written (runs are written in increasing order).
        let (iy0, ix0) = (oy - pad_h, ox - pad_w);
        let plane = h * w;
        let base = iy0 * w + ix0;
        let rows = c * kh;
        // Row r (channel r / kh, kernel row r % kh) reads x[src(r)..][..kw] and writes
        // patch[r * kw..][..kw]; both offsets grow with r, so the rows whose 8-byte read and write
        // stay in bounds are a prefix, found by walking back from the end (rarely past one row).
        let mut fast = if kw <= 8 && kh >= 1 { rows } else { 0 };
        let (mut ic, mut ky) = (c.saturating_sub(1), kh.saturating_sub(1));
        while fast > 0 {
            let src = ic * plane + base + ky * w;
            if src + 8 <= x.len() && (fast - 1) * kw + 8 <= patch.len() {
                break;
            }
            fast -= 1;
            if ky == 0 {
                (ic, ky) = (ic.saturating_sub(1), kh - 1);
            } else {
                ky -= 1;
            }
        }
        // SAFETY: rows r < fast have their 8-byte read inside `x` and their 8-byte write inside
        // `patch` (`fits`, a prefix); `x` and `patch` are distinct borrows, so they do not overlap.
        unsafe { copy_rows8(x.as_ptr().wrapping_add(base), w, plane, kh, patch.as_mut_ptr(), kw, fast) };
        for r in fast..rows {
            let (s, d) = ((r / kh) * plane + base + (r % kh) * w, r * kw);
            if let (Some(s), Some(d)) = (x.get(s..s + kw), patch.get_mut(d..d + kw)) {
                d.copy_from_slice(s);
            }
        }
    }

    #[cfg(any(feature = "dsp", not(target_arch = "arm")))]
    /// Taps `t0..t0 + n` of the patch at `origin` (as [`Im2col::gather`]) into `dst[..n]`,
    /// every cell checked against the input bounds (padding reads `pad_val`): what
    /// [`Im2col::gather_run4`] leaves to it.
    #[inline(never)]
    pub(super) fn gather_run(&self, x: &[i8], [oy, ox]: [usize; 2], t0: usize, n: usize, dst: &mut [i8]) {
        let Im2col { h, w, kh, kw, pad_h, pad_w, pad_val, .. } = *self;
        if kw == 0 || kh == 0 {
            return;
        }
        let (mut ic, r) = (t0 / (kh * kw), t0 % (kh * kw));
        let (mut ky, mut kx) = (r / kw, r % kw);
        let mut d = 0;
        while d < n {
            let len = (kw - kx).min(n - d);
            let (iy, ix) = ((oy + ky).wrapping_sub(pad_h), (ox + kx).wrapping_sub(pad_w));
            let src = (ic * h + iy).wrapping_mul(w).wrapping_add(ix);
            for (j, v) in dst.iter_mut().skip(d).take(len).enumerate() {
                let ix = ix.wrapping_add(j);
                *v = if iy < h && ix < w { x.get(src.wrapping_add(j)).copied().unwrap_or(pad_val) } else { pad_val };
            }
            d += len;
            kx = 0;
            ky += 1;
            if ky == kh {
                (ky, ic) = (0, ic + 1);
            }
        }
    }

    #[cfg(any(feature = "dsp", not(target_arch = "arm")))]
    /// [`Im2col::gather_run`] for the 4 pixels at `origins` into `dst[p * stride..][..n]`, in pixel
    /// order, when their receptive fields lie inside the input (else `false`, nothing useful
    /// written): the first kernel row, the rest of its channel's rows, then whole channels
    /// through [`copy_rows8`] (kh rows unrolled), each row as one 8-byte copy whose extra bytes
    /// land where the next row goes, in the next pixel's run (written after) or in the
    /// [`POOL4_SLACK`] bytes `dst` holds past the 4 runs. The tap arithmetic is done once for all.
    pub(super) fn gather_run4(
        &self,
        x: &[i8],
        origins: [[usize; 2]; 4],
        t0: usize,
        n: usize,
        stride: usize,
        dst: &mut [i8],
    ) -> bool {
        let Im2col { h, w, kh, kw, pad_h, pad_w, .. } = *self;
        let inside = |[oy, ox]: [usize; 2]| oy >= pad_h && ox >= pad_w && oy + kh <= h + pad_h && ox + kw <= w + pad_w;
        if kw == 0
            || kw > 8
            || kh == 0
            || n > stride
            || dst.len() < 4 * stride + POOL4_SLACK
            || !origins.iter().all(|&o| inside(o))
        {
            return false;
        }
        let plane = h * w;
        let (ic, r) = (t0 / (kh * kw), t0 % (kh * kw));
        let (ky, kx) = (r / kw, r % kw);
        let first = kw - kx;
        // Rows after the first: `head` more of channel ic, then `tail` from channel ic + 1's row 0.
        let rows = if n > first { (n - first).div_ceil(kw) } else { 0 };
        let head = (kh - 1 - ky).min(rows);
        let tail = rows - head;
        // Each pixel's corner in `x`; the furthest read is row ky + rows of the furthest pixel.
        let corner = origins.map(|[oy, ox]| ic * plane + (oy - pad_h) * w + (ox - pad_w));
        let last = ky + rows;
        let far = corner.iter().fold(0, |m, &c| m.max(c)) + (last / kh) * plane + (last % kh) * w + 8;
        if far > x.len() {
            return false;
        }
        for (p, &c) in corner.iter().enumerate() {
            // SAFETY: every read is 8 bytes from the start of a row q in ky..=last (plus kx for
            // the first, kx + 8 <= kw... at most the row's start + kw <= + 8), and rows grow with q,
            // so all end by `far` <= x.len(); writes start before p * stride + n and end by
            // p * stride + n + 8 <= 4 * stride + POOL4_SLACK <= dst.len(); distinct borrows.
            unsafe {
                let row = x.as_ptr().add(c + ky * w);
                let mut d = dst.as_mut_ptr().add(p * stride);
                d.cast::<u64>().write_unaligned(row.add(kx).cast::<u64>().read_unaligned());
                d = d.add(first);
                let mut s = row;
                for _ in 0..head {
                    s = s.add(w);
                    d.cast::<u64>().write_unaligned(s.cast::<u64>().read_unaligned());
                    d = d.add(kw);
                }
                if tail > 0 {
                    copy_rows8(x.as_ptr().add(c + plane), w, plane, kh, d, kw, tail);
                }
            }
        }
        true
    }

    /// The general case: every cell checked against the input bounds.
    pub(super) fn gather_padded(&self, x: &[i8], [oy, ox]: [usize; 2], patch: &mut [i8]) {
        let Im2col { c, h, w, kh, kw, pad_h, pad_w, pad_val } = *self;
        let mut idx = 0;
        for ic in 0..c {
            for ky in 0..kh {
                let iy = (oy + ky).wrapping_sub(pad_h);
                for kx in 0..kw {
                    let ix = (ox + kx).wrapping_sub(pad_w);
                    // wrapping_sub turns "before the start" into a huge index, caught by `< h/w`.
                    patch[idx] = if iy < h && ix < w { x[(ic * h + iy) * w + ix] } else { pad_val };
                    idx += 1;
                }
            }
        }
    }
}
