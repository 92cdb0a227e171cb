//! Recycled `f32` buffers for the per-chunk temporaries (GEMM and convolution outputs, column
//! matrices, channels-last copies).
//!
//! These are 0.01-1 MB each and allocated many times per step; fresh allocations of that size
//! come from mmap and cost page faults (measured at ~20% of the step), so dropped buffers go
//! back to a small global free list instead. [`Buf::zeroed`] hands a buffer out zero-filled;
//! [`Buf::stale`] skips the fill for callers that overwrite every element before reading any.
//! Either way no value from an earlier use can reach a result, so results stay deterministic.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Upper bound on retained buffers (≈ 8 MB at the model's largest size of ~0.8 MB).
const MAX_POOLED: usize = 48;

/// Pooled vectors, each at the full length it has ever been filled to (so a reuse never has
/// to fill it again, even after serving a shorter request).
static FREE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A buffer of `len` floats that returns its allocation to the pool when dropped.
pub struct Buf {
    v: Vec<f32>,
    len: usize,
}

impl Buf {
    /// `len` zeros.
    pub fn zeroed(len: usize) -> Self {
        let mut b = Self::stale(len);
        b.fill(0.0);
        b
    }

    /// `len` floats of unspecified value (zeros or values left by an earlier user): for
    /// callers that overwrite every element before reading any, and so skip the zero fill.
    /// The values are always initialised floats, so this is safe; determinism only needs the
    /// caller to really overwrite everything (what it reads back then never depends on them).
    pub fn stale(len: usize) -> Self {
        let mut v = Self::take(len);
        if v.len() < len {
            v.resize(len, 0.0);
        }
        Self { v, len }
    }

    /// The pooled vector that best fits `len`: the shortest at least `len` long (so big
    /// buffers are not spent on small requests), else the longest (the least to fill).
    fn take(len: usize) -> Vec<f32> {
        let Ok(mut free) = FREE.lock() else { return Vec::new() };
        let fits = free.iter().enumerate().filter(|(_, v)| v.len() >= len).min_by_key(|(_, v)| v.len());
        let best = fits.or_else(|| free.iter().enumerate().max_by_key(|(_, v)| v.len())).map(|(i, _)| i);
        best.map(|i| free.swap_remove(i)).unwrap_or_default()
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Ok(mut free) = FREE.lock()
            && free.len() < MAX_POOLED
        {
            free.push(std::mem::take(&mut self.v));
        }
    }
}

impl Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.v[..self.len]
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.v[..self.len]
    }
}

#[cfg(test)]
mod tests {
    use super::Buf;

    #[test]
    fn reused_buffers_come_back_zeroed() {
        let mut a = Buf::zeroed(1000);
        a.fill(7.0);
        drop(a);
        let b = Buf::zeroed(1500);
        assert_eq!(b.len(), 1500);
        assert!(b.iter().all(|v| *v == 0.0));
    }

    #[test]
    fn stale_buffers_have_the_requested_length() {
        for len in [10, 3000, 0, 17, 2999] {
            let b = Buf::stale(len);
            assert_eq!(b.len(), len);
        }
        // A long buffer that served a short request comes back zeroed when asked to.
        let mut a = Buf::stale(4000);
        a.fill(3.0);
        drop(a);
        let mut b = Buf::stale(5);
        b.fill(4.0);
        drop(b);
        assert!(Buf::zeroed(4000).iter().all(|v| *v == 0.0));
    }
}
