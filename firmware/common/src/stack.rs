//! Stack high-water marks on Cortex-M (cortex-m-rt's memory layout): paint the free stack with a
//! pattern, run, then find the deepest word that no longer holds it.
//!
//! Painting finds the deepest *written* word: space a frame reserves but never writes is missed.
//! Nothing else may use the painted band meanwhile (no interrupt handlers run here that were not
//! running during painting, or their frames count too, which is what a board's figure wants).

/// Written over the free stack; a word that no longer holds it was used.
const PAINT: u32 = 0xC5AC_5EED;
/// Left unpainted below the painter's own SP: room for its frame's spills and calls.
const GAP: usize = 64;

unsafe extern "C" {
    /// End of the statics (.data, .bss, .uninit) = lowest stack address (cortex-m-rt's link.x).
    static _stack_end: u32;
    /// Top of RAM = initial SP.
    static _stack_start: u32;
    /// Start of RAM (statics begin here).
    static _ram_start: u32;
}

/// Lowest address the stack may reach (end of the statics).
pub fn stack_end() -> usize {
    &raw const _stack_end as usize
}

/// Top of the stack (the reset SP).
pub fn stack_start() -> usize {
    &raw const _stack_start as usize
}

/// Start of RAM: `stack_end() - ram_start()` is the statics' size.
pub fn ram_start() -> usize {
    &raw const _ram_start as usize
}

pub fn sp() -> usize {
    cortex_m::register::msp::read() as usize
}

/// Paints `[stack_end, SP - GAP)`; returns the painted range's top.
#[inline(never)]
pub fn paint() -> usize {
    let hi = (sp() - GAP) & !3;
    let mut a = stack_end();
    while a < hi {
        // SAFETY: `a` is word-aligned RAM between the end of the statics and below the live
        // stack (this frame and its callers sit above `hi`): no Rust object lives there, and
        // nothing else touches it while we write (see the module docs).
        unsafe { core::ptr::write_volatile(a as *mut u32, PAINT) };
        a += 4;
    }
    hi
}

/// Why there is no high-water mark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unmeasured {
    /// The lowest painted word changed: the stack reached the statics.
    Overflow,
    /// Nothing below the unpainted band changed.
    WithinGap,
}

/// Deepest stack use since [`paint`] (which returned `painted_top`), in bytes below `base`.
#[inline(never)]
pub fn high_water(base: usize, painted_top: usize) -> Result<usize, Unmeasured> {
    let lo = stack_end();
    let mut a = lo;
    while a < painted_top {
        // SAFETY: the same free, word-aligned RAM `paint` wrote; reading it races with nothing.
        if unsafe { core::ptr::read_volatile(a as *const u32) } != PAINT {
            return if a == lo { Err(Unmeasured::Overflow) } else { Ok(base - a) };
        }
        a += 4;
    }
    Err(Unmeasured::WithinGap)
}
