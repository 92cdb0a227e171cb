//! Recycled `f32` buffers for the per-chunk temporaries (column matrices, GEMM outputs).
//!
//! These are 0.1-1 MB each and allocated many times per step; fresh allocations of that size
//! come from mmap and cost page faults (measured at ~20% of the step), so dropped buffers go
//! back to a small global free list instead. Every buffer is handed out zero-filled, so reuse
//! cannot leak values between calls and results stay deterministic.

use std::ops::{Deref, DerefMut};
use std::sync::Mutex;

/// Upper bound on retained buffers (≈ 8 MB at the model's largest size of ~0.8 MB).
const MAX_POOLED: usize = 48;

static FREE: Mutex<Vec<Vec<f32>>> = Mutex::new(Vec::new());

/// A zero-initialised buffer that returns its allocation to the pool when dropped.
pub struct Buf(Vec<f32>);

impl Buf {
    pub fn zeroed(len: usize) -> Self {
        let mut v = FREE.lock().map(|mut f| f.pop()).ok().flatten().unwrap_or_default();
        v.clear();
        v.resize(len, 0.0);
        Self(v)
    }
}

impl Drop for Buf {
    fn drop(&mut self) {
        if let Ok(mut free) = FREE.lock()
            && free.len() < MAX_POOLED
        {
            free.push(std::mem::take(&mut self.0));
        }
    }
}

impl Deref for Buf {
    type Target = [f32];
    fn deref(&self) -> &[f32] {
        &self.0
    }
}

impl DerefMut for Buf {
    fn deref_mut(&mut self) -> &mut [f32] {
        &mut self.0
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
}
