//! A safe, bounds-checked front end to the `gemm` crate (the kernel candle itself uses).
//!
//! The conv kernels need products of strided views (transposes without copies); `gemm::gemm`
//! takes raw pointers and strides, so this module checks every view against its slice once and
//! keeps the single `unsafe` call in one place.

/// Read-only strided matrix view: element `(i, j)` is `data[i * rs + j * cs]`.
#[derive(Clone, Copy, Debug)]
pub struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// A contiguous row-major `rows x cols` matrix.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize) -> Self {
        let m = Self { data, rows, cols, rs: cols, cs: 1 };
        m.check();
        m
    }

    /// The transpose, as a view of the same memory.
    pub fn t(self) -> Self {
        Self { data: self.data, rows: self.cols, cols: self.rows, rs: self.cs, cs: self.rs }
    }

    fn check(&self) {
        assert!(fits(self.data.len(), self.rows, self.cols, self.rs, self.cs), "view out of bounds");
    }
}

/// Mutable contiguous row-major matrix (the only destination layout the ops need, and one
/// whose elements can never alias each other).
#[derive(Debug)]
pub struct MatMut<'a> {
    data: &'a mut [f32],
    rows: usize,
    cols: usize,
}

impl<'a> MatMut<'a> {
    pub fn row_major(data: &'a mut [f32], rows: usize, cols: usize) -> Self {
        assert!(fits(data.len(), rows, cols, cols, 1), "view out of bounds");
        Self { data, rows, cols }
    }
}

/// True if every element `(i, j)` of a `rows x cols` view with strides `rs`, `cs` lies in `len`.
fn fits(len: usize, rows: usize, cols: usize, rs: usize, cs: usize) -> bool {
    rows == 0 || cols == 0 || (rows - 1) * rs + (cols - 1) * cs < len
}

/// `dst = a * b`, or `dst += a * b` when `accumulate`. Single-threaded: callers parallelise over
/// independent chunks so the result never depends on the thread schedule.
pub fn matmul(dst: MatMut<'_>, a: Mat<'_>, b: Mat<'_>, accumulate: bool) {
    assert_eq!(a.cols, b.rows, "inner dimensions differ");
    assert_eq!((dst.rows, dst.cols), (a.rows, b.cols), "destination shape");
    if dst.rows == 0 || dst.cols == 0 {
        return;
    }
    if a.cols == 0 {
        if !accumulate {
            dst.data[..dst.rows * dst.cols].fill(0.0);
        }
        return;
    }
    // SAFETY: `Mat::row_major`/`t` and `MatMut::row_major` checked (via `fits`) that every index
    // gemm reads or writes, `i * rs + j * cs` for `i < rows`, `j < cols`, lies inside the
    // borrowed slice. `dst` is borrowed mutably, so it cannot alias `a` or `b`, and being
    // row-major with `cs = 1, rs = cols` its elements are distinct. Strides fit in `isize`
    // because they index slices. Covered by `ops::gemm::tests`.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            a.cols,
            dst.data.as_mut_ptr(),
            1,
            dst.cols as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], ar: usize, ac: usize, a_t: bool, b: &[f32], bc: usize, b_t: bool) -> Vec<f32> {
        let at = |i: usize, k: usize| if a_t { a[k * ar + i] } else { a[i * ac + k] };
        let bt = |k: usize, j: usize| if b_t { b[j * ac + k] } else { b[k * bc + j] };
        let mut out = vec![0.0; ar * bc];
        for i in 0..ar {
            for j in 0..bc {
                out[i * bc + j] = (0..ac).map(|k| at(i, k) * bt(k, j)).sum();
            }
        }
        out
    }

    #[test]
    fn matches_naive_with_transposes_and_accumulation() {
        let (m, k, n) = (7, 13, 5);
        let a: Vec<f32> = (0..m * k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        for (a_t, b_t) in [(false, false), (true, false), (false, true), (true, true)] {
            let av = if a_t { Mat::row_major(&a, k, m).t() } else { Mat::row_major(&a, m, k) };
            let bv = if b_t { Mat::row_major(&b, n, k).t() } else { Mat::row_major(&b, k, n) };
            let want = naive(&a, m, k, a_t, &b, n, b_t);
            let mut got = vec![1.0; m * n];
            matmul(MatMut::row_major(&mut got, m, n), av, bv, true);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - (w + 1.0)).abs() < 1e-5, "{g} vs {w} + 1");
            }
            matmul(MatMut::row_major(&mut got, m, n), av, bv, false);
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() < 1e-5, "{g} vs {w}");
            }
        }
    }

    #[test]
    #[should_panic(expected = "view out of bounds")]
    fn rejects_views_past_the_slice() {
        let data = [0.0; 5];
        let _ = Mat::row_major(&data, 2, 3);
    }
}
