//! The DSP-extension instructions the kernels use, one function each. On ARM they are the
//! instructions themselves (stable `asm!`); elsewhere (host unit tests only) exact Rust models
//! of the Armv7-M ARM's pseudocode, so the kernels' loops, tails and packing are tested on the
//! host too. The models are not the reference: the firmware's on-target check
//! (`firmware/kernel-check`) compares the real instructions against [`super::super::scalar`].

#[cfg(target_arch = "arm")]
use core::arch::asm;

/// SMLAD: `acc + lo(a) * lo(b) + hi(a) * hi(b)` on signed 16-bit halves, wrapping (the
/// instruction sets the sticky Q flag on overflow and otherwise wraps like the reference).
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let out: i32;
    // SAFETY: SMLAD is part of the DSP extension every ARMv7E-M core has (this module is only
    // built for thumbv7em targets: lib.rs and build.rs); it reads and writes only registers.
    // Not `preserves_flags`: it may set APSR.Q, which nothing in Rust reads.
    unsafe {
        asm!("smlad {out}, {a}, {b}, {acc}", out = lateout(reg) out, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack));
    }
    out
}

/// SXTB16: bytes 0 and 2 of `a`, each sign-extended to a 16-bit half.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) fn sxtb16(a: u32) -> u32 {
    let out: u32;
    // SAFETY: as in `smlad` (register-only DSP instruction, flags untouched).
    unsafe {
        asm!("sxtb16 {out}, {a}", out = lateout(reg) out, a = in(reg) a,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// SXTB16 with ROR #8: bytes 1 and 3 of `a`, each sign-extended to a 16-bit half.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) fn sxtb16_ror8(a: u32) -> u32 {
    let out: u32;
    // SAFETY: as in `smlad` (register-only DSP instruction, flags untouched).
    unsafe {
        asm!("sxtb16 {out}, {a}, ror #8", out = lateout(reg) out, a = in(reg) a,
             options(pure, nomem, nostack, preserves_flags));
    }
    out
}

/// USADA8: `acc + sum |a.byte[i] - b.byte[i]|` over the four unsigned bytes (wrapping).
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) fn usada8(a: u32, b: u32, acc: u32) -> u32 {
    let out: u32;
    // SAFETY: as in `smlad` (register-only DSP instruction, flags untouched).
    unsafe {
        asm!("usada8 {out}, {a}, {b}, {acc}", out = lateout(reg) out, a = in(reg) a, b = in(reg) b,
             acc = in(reg) acc, options(pure, nomem, nostack, preserves_flags));
    }
    out
}

#[cfg(not(target_arch = "arm"))]
pub(super) fn smlad(a: u32, b: u32, acc: i32) -> i32 {
    let lo = (a as i16 as i32) * (b as i16 as i32);
    let hi = ((a >> 16) as i16 as i32) * ((b >> 16) as i16 as i32);
    acc.wrapping_add(lo).wrapping_add(hi)
}

#[cfg(not(target_arch = "arm"))]
pub(super) fn sxtb16(a: u32) -> u32 {
    (a as i8 as i16 as u16 as u32) | (((a >> 16) as i8 as i16 as u16 as u32) << 16)
}

#[cfg(not(target_arch = "arm"))]
pub(super) fn sxtb16_ror8(a: u32) -> u32 {
    sxtb16(a.rotate_right(8))
}

#[cfg(not(target_arch = "arm"))]
pub(super) fn usada8(a: u32, b: u32, acc: u32) -> u32 {
    (0..4).fold(acc, |s, i| s.wrapping_add(((a >> (8 * i)) as u8).abs_diff((b >> (8 * i)) as u8) as u32))
}

/// Four dot products over `16 * blocks` bytes, added to `acc`: row `j` starts at `w + j * k`, all
/// share `x` (int8 both). The M4's hot loop, in one block so that the 4 accumulators, 3 pointers,
/// the row stride and 4 temporaries stay in the 12 registers `asm!` may use; the loop's end
/// sits on the stack (one load per 16 bytes). Per word of `x`: `LDR` + 2 `SXTB16` for `x`, and
/// per row `LDR`, 2 `SXTB16` and 2 `SMLAD`: 23 instructions per 16 MACs.
///
/// # Safety
/// `blocks >= 1`; `x` and the 4 rows valid for reading `16 * blocks` bytes.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) unsafe fn dot4x16(acc: &mut [i32; 4], w: *const i8, k: usize, x: *const i8, blocks: usize) {
    let [mut a0, mut a1, mut a2, mut a3] = *acc;
    // SAFETY: reads only x[..16 * blocks] and the 4 rows' first 16 * blocks bytes (the caller
    // guarantees them; `LDR` allows unaligned words on ARMv7-M); writes only registers and the
    // 8 bytes it reserves below SP (restored before the end). DSP instructions: see `smlad`.
    unsafe {
        asm!(
            "add {t}, {x}, {t}, lsl #4",
            "str {t}, [sp, #-8]!",
            "2:",
            // word 1 of 4: rows 1 and 3 by offset, then 2 and 0 with post-increment
            "ldr {xo}, [{x}], #4",
            "sxtb16 {xe}, {xo}",
            "sxtb16 {xo}, {xo}, ror #8",
            "ldr {t}, [{w0}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a1}, {u}, {xe}, {a1}",
            "smlad {a1}, {t}, {xo}, {a1}",
            "ldr {t}, [{w2}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a3}, {u}, {xe}, {a3}",
            "smlad {a3}, {t}, {xo}, {a3}",
            "ldr {t}, [{w2}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a2}, {u}, {xe}, {a2}",
            "smlad {a2}, {t}, {xo}, {a2}",
            "ldr {t}, [{w0}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a0}, {u}, {xe}, {a0}",
            "smlad {a0}, {t}, {xo}, {a0}",
            "ldr {xo}, [{x}], #4",
            "sxtb16 {xe}, {xo}",
            "sxtb16 {xo}, {xo}, ror #8",
            "ldr {t}, [{w0}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a1}, {u}, {xe}, {a1}",
            "smlad {a1}, {t}, {xo}, {a1}",
            "ldr {t}, [{w2}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a3}, {u}, {xe}, {a3}",
            "smlad {a3}, {t}, {xo}, {a3}",
            "ldr {t}, [{w2}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a2}, {u}, {xe}, {a2}",
            "smlad {a2}, {t}, {xo}, {a2}",
            "ldr {t}, [{w0}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a0}, {u}, {xe}, {a0}",
            "smlad {a0}, {t}, {xo}, {a0}",
            "ldr {xo}, [{x}], #4",
            "sxtb16 {xe}, {xo}",
            "sxtb16 {xo}, {xo}, ror #8",
            "ldr {t}, [{w0}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a1}, {u}, {xe}, {a1}",
            "smlad {a1}, {t}, {xo}, {a1}",
            "ldr {t}, [{w2}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a3}, {u}, {xe}, {a3}",
            "smlad {a3}, {t}, {xo}, {a3}",
            "ldr {t}, [{w2}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a2}, {u}, {xe}, {a2}",
            "smlad {a2}, {t}, {xo}, {a2}",
            "ldr {t}, [{w0}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a0}, {u}, {xe}, {a0}",
            "smlad {a0}, {t}, {xo}, {a0}",
            "ldr {xo}, [{x}], #4",
            "sxtb16 {xe}, {xo}",
            "sxtb16 {xo}, {xo}, ror #8",
            "ldr {t}, [{w0}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a1}, {u}, {xe}, {a1}",
            "smlad {a1}, {t}, {xo}, {a1}",
            "ldr {t}, [{w2}, {k}]",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a3}, {u}, {xe}, {a3}",
            "smlad {a3}, {t}, {xo}, {a3}",
            "ldr {t}, [{w2}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a2}, {u}, {xe}, {a2}",
            "smlad {a2}, {t}, {xo}, {a2}",
            "ldr {t}, [{w0}], #4",
            "sxtb16 {u}, {t}",
            "sxtb16 {t}, {t}, ror #8",
            "smlad {a0}, {u}, {xe}, {a0}",
            "smlad {a0}, {t}, {xo}, {a0}",
            "ldr {t}, [sp]",
            "cmp {x}, {t}",
            "bne 2b",
            "add sp, sp, #8",
            a0 = inout(reg) a0,
            a1 = inout(reg) a1,
            a2 = inout(reg) a2,
            a3 = inout(reg) a3,
            w0 = inout(reg) w => _,
            w2 = inout(reg) w.wrapping_add(2 * k) => _,
            x = inout(reg) x => _,
            k = in(reg) k,
            xe = out(reg) _,
            xo = out(reg) _,
            t = inout(reg) blocks => _,
            u = out(reg) _,
        );
    }
    *acc = [a0, a1, a2, a3];
}

/// The model of [`dot4x16`] for host tests: the same sums, byte by byte.
///
/// # Safety
/// As for the ARM version.
#[cfg(not(target_arch = "arm"))]
pub(super) unsafe fn dot4x16(acc: &mut [i32; 4], w: *const i8, k: usize, x: *const i8, blocks: usize) {
    for (j, a) in acc.iter_mut().enumerate() {
        for i in 0..16 * blocks {
            // SAFETY: the caller guarantees these bytes.
            let (wv, xv) = unsafe { (*w.add(j * k + i), *x.add(i)) };
            *a = a.wrapping_add(wv as i32 * xv as i32);
        }
    }
}
