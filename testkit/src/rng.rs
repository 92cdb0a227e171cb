//! The tests' one random number generator: xorshift64*, deterministic, no dependency.

pub struct Rng(pub u64);

impl Rng {
    #[allow(clippy::should_implement_trait)] // an endless generator, not an iterator of items
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + (self.next() % ((hi - lo + 1) as u64)) as i64
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn i8(&mut self) -> i8 {
        self.next() as i8
    }

    /// Uniform in `-amp..=amp`, as pixel noise.
    pub fn noise(&mut self, amp: i32) -> f32 {
        if amp == 0 { 0.0 } else { (self.next() % (2 * amp as u64 + 1)) as f32 - amp as f32 }
    }
}
