//! Pooling on its own (not fused into a conv) and the windows' geometry.

use super::{BROKEN, div_round};
use crate::error::Error;
use crate::format::{Pool, Shape};
use crate::plan::Stage;

/// The coordinates along `axis` (0: rows, 1: columns) of pooled index `i`'s window that lie
/// inside `0..len`: window offsets `k` with `0 <= i * stride + k - padding < len`, so pool
/// padding is skipped (the plan keeps padding <= kernel/2: the range is never empty for a valid
/// pooled index).
pub(super) fn window_range(p: &Pool, axis: usize, i: usize, len: usize) -> core::ops::Range<usize> {
    let (start, pad) = (i * p.stride[axis], p.padding[axis]);
    let lo = start.max(pad) - pad;
    let hi = (start + p.kernel[axis]).min(pad + len).saturating_sub(pad);
    lo..hi.max(lo)
}

pub(super) fn pool_standalone(st: &Stage, p: &Pool, avg: bool, x: &[i8], out: &mut [i8]) -> Result<(), Error> {
    let (Shape::Chw(c, h, w), Shape::Chw(_, oh, ow)) = (st.in_shape, st.out_shape) else {
        return Err(BROKEN);
    };
    for ch in 0..c {
        for oy in 0..oh {
            for ox in 0..ow {
                let (mut acc, mut count) = (if avg { 0i32 } else { i32::MIN }, 0i32);
                for iy in window_range(p, 0, oy, h) {
                    for ix in window_range(p, 1, ox, w) {
                        let v = x[(ch * h + iy) * w + ix] as i32;
                        acc = if avg { acc + v } else { acc.max(v) };
                        count += 1;
                    }
                }
                let v = if avg { div_round(acc, count.max(1)) } else { acc };
                out[(ch * oh + oy) * ow + ox] = v as i8;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `window_range` against its definition: every window offset, kept when inside the plane.
    #[test]
    fn window_range_is_the_cells_inside_the_plane() {
        for kernel in 1..5 {
            for stride in 1..4 {
                for padding in 0..=kernel / 2 {
                    let p = Pool { kernel: [kernel, 1], stride: [stride, 1], padding: [padding, 0] };
                    for len in 1..9 {
                        for i in 0..len + 2 {
                            let want: std::vec::Vec<usize> =
                                (0..kernel).filter_map(|k| (i * stride + k).checked_sub(padding)).filter(|&v| v < len).collect();
                            let got: std::vec::Vec<usize> = window_range(&p, 0, i, len).collect();
                            assert_eq!(got, want, "kernel {kernel} stride {stride} padding {padding} len {len} i {i}");
                        }
                    }
                }
            }
        }
    }
}
