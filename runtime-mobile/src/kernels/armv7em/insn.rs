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

/// One word of `x` in [`dot4x16`]'s loop (its register names): the word's `LDRD` from `xx`,
/// then per row `LDR`, 2 `SXTB16`, 2 `SMLAD`: rows 1 and 3 by offset `k` from rows 0 and 2,
/// then 2 and 0 with post-increment. The loop body is this four times (16 bytes of each row).
#[cfg(target_arch = "arm")]
macro_rules! dot4x16_word {
    () => {
        concat!(
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "ldr {t}, [{w0}, {k}]\n",
            "sxtb16 {u}, {t}\n",
            "sxtb16 {t}, {t}, ror #8\n",
            "smlad {a1}, {u}, {xe}, {a1}\n",
            "smlad {a1}, {t}, {xo}, {a1}\n",
            "ldr {t}, [{w2}, {k}]\n",
            "sxtb16 {u}, {t}\n",
            "sxtb16 {t}, {t}, ror #8\n",
            "smlad {a3}, {u}, {xe}, {a3}\n",
            "smlad {a3}, {t}, {xo}, {a3}\n",
            "ldr {t}, [{w2}], #4\n",
            "sxtb16 {u}, {t}\n",
            "sxtb16 {t}, {t}, ror #8\n",
            "smlad {a2}, {u}, {xe}, {a2}\n",
            "smlad {a2}, {t}, {xo}, {a2}\n",
            "ldr {t}, [{w0}], #4\n",
            "sxtb16 {u}, {t}\n",
            "sxtb16 {t}, {t}, ror #8\n",
            "smlad {a0}, {u}, {xe}, {a0}\n",
            "smlad {a0}, {t}, {xo}, {a0}\n",
        )
    };
}

/// The M4's hot loop: for every group of 4 rows, `out[4g..4g + 4] +=` the group's rows dotted
/// with `16 * blocks` bytes of `x`. Row `j` of group `g` starts at `w + (4g + j) * k`; all share
/// `xx`, the extended `x` (per word of `x`, `SXTB16` of it then of it `ROR #8`). One block so
/// that the 4 accumulators, 3 pointers, the row stride and 4 temporaries stay in the 12
/// registers `asm!` may use; the loops' other state sits on the stack. Per word: one `LDRD` of
/// `xx`, and per row `LDR`, 2 `SXTB16` and 2 `SMLAD`: 21 instructions per 16 MACs.
///
/// # Safety
/// `blocks >= 1`, `groups >= 1`; `out` valid for reading and writing `4 * groups` aligned i32s;
/// each of the `4 * groups` rows valid for reading `16 * blocks` bytes; `xx` valid for reading
/// `8 * blocks` aligned u32s.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) unsafe fn dot4x16(out: *mut i32, groups: usize, w: *const i8, k: usize, xx: *const u32, blocks: usize) {
    // SAFETY: reads xx[..8 * blocks] (aligned, as `LDRD` needs), the rows' first 16 * blocks
    // bytes (`LDR` allows unaligned words on ARMv7-M) and out[..4 * groups], writes
    // out[..4 * groups] (aligned i32s): all guaranteed by the caller. Registers only otherwise,
    // and 24 bytes it reserves below SP (restored before the end). DSP instructions: see
    // `smlad`.
    unsafe {
        asm!(
            // Stack: [0] end of xx, [4] this group's out, [8] end of out, [12] from a row's
            // end of this chunk to the next group's start, [16] start of xx.
            "add {t}, {x}, {t}, lsl #5",
            "sub sp, sp, #24",
            "str {t}, [sp]",
            "str {a0}, [sp, #4]",
            "str {a1}, [sp, #8]",
            "str {a2}, [sp, #12]",
            "str {x}, [sp, #16]",
            "3:",
            "ldr {t}, [sp, #4]",
            "ldrd {a0}, {a1}, [{t}]",
            "ldrd {a2}, {a3}, [{t}, #8]",
            "add {w2}, {w0}, {k}, lsl #1",
            "2:",
            // 4 words of x: rows 1 and 3 by offset, then 2 and 0 with post-increment
            dot4x16_word!(),
            dot4x16_word!(),
            dot4x16_word!(),
            dot4x16_word!(),
            "ldr {t}, [sp]",
            "cmp {x}, {t}",
            "bne 2b",
            "ldr {t}, [sp, #4]",
            "strd {a0}, {a1}, [{t}]",
            "strd {a2}, {a3}, [{t}, #8]",
            "add {t}, {t}, #16",
            "str {t}, [sp, #4]",
            "ldr {u}, [sp, #12]",
            "add {w0}, {w0}, {u}",
            "ldr {x}, [sp, #16]",
            "ldr {u}, [sp, #8]",
            "cmp {t}, {u}",
            "bne 3b",
            "add sp, sp, #24",
            a0 = inout(reg) out => _,
            a1 = inout(reg) out.wrapping_add(4 * groups) => _,
            a2 = inout(reg) k.wrapping_mul(4).wrapping_sub(16 * blocks) => _,
            a3 = out(reg) _,
            w0 = inout(reg) w => _,
            w2 = out(reg) _,
            x = inout(reg) xx => _,
            k = in(reg) k,
            xe = out(reg) _,
            xo = out(reg) _,
            t = inout(reg) blocks => _,
            u = out(reg) _,
        );
    }
}

/// The model of [`dot4x16`] for host tests: the same `SMLAD`s.
///
/// # Safety
/// As for the ARM version.
#[cfg(not(target_arch = "arm"))]
pub(super) unsafe fn dot4x16(out: *mut i32, groups: usize, w: *const i8, k: usize, xx: *const u32, blocks: usize) {
    for r in 0..4 * groups {
        for q in 0..4 * blocks {
            // SAFETY: the caller guarantees these words and outputs.
            unsafe {
                let (xe, xo) = (*xx.add(2 * q), *xx.add(2 * q + 1));
                let wv = w.add(r * k + 4 * q).cast::<u32>().read_unaligned();
                *out.add(r) = smlad(sxtb16_ror8(wv), xo, smlad(sxtb16(wv), xe, *out.add(r)));
            }
        }
    }
}

/// One word of each of [`dot1x4`]'s 4 pixels (its register names): the row's word (`LDR`, two
/// `SXTB16`), then per pixel an `LDRD` of its extended word and two `SMLAD`s: 15 instructions
/// per 16 MACs.
#[cfg(target_arch = "arm")]
macro_rules! dot1x4_word {
    () => {
        concat!(
            "ldr {t}, [{w}], #4\n",
            "sxtb16 {u}, {t}\n",
            "sxtb16 {t}, {t}, ror #8\n",
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "smlad {a0}, {u}, {xe}, {a0}\n",
            "smlad {a0}, {t}, {xo}, {a0}\n",
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "smlad {a1}, {u}, {xe}, {a1}\n",
            "smlad {a1}, {t}, {xo}, {a1}\n",
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "smlad {a2}, {u}, {xe}, {a2}\n",
            "smlad {a2}, {t}, {xo}, {a2}\n",
            "ldrd {xe}, {xo}, [{x}], #8\n",
            "smlad {a3}, {u}, {xe}, {a3}\n",
            "smlad {a3}, {t}, {xo}, {a3}\n",
        )
    };
}

/// The 4-pixel loop of `matvec4`: for every row `r < rows`, `out[4r..4r + 4] +=` the row's
/// first `32 * blocks` bytes dotted with each of 4 pixels' extended `x` (`xx`: per word of `x`,
/// 8 words: pixel 0's `SXTB16` and `SXTB16 ROR #8` of it, then pixel 1's, 2's, 3's). Row `r`
/// starts at `w + r * k`. Each weight word is loaded and extended once for the 4 pixels (a 2x2
/// pool window), where [`dot4x16`] extends it once per pixel. 4 accumulators, 2 pointers, the
/// end of `xx`, the output pointer and 4 temporaries: the 12 registers `asm!` may use (the row
/// step, `xx`'s start and the end of `out` on the stack, read once per row).
///
/// # Safety
/// `blocks >= 1`, `rows >= 1`; `out` valid for reading and writing `4 * rows` aligned i32s;
/// each of the `rows` rows valid for reading `32 * blocks` bytes; `xx` valid for reading
/// `64 * blocks` aligned u32s.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) unsafe fn dot1x4(out: *mut i32, rows: usize, w: *const i8, k: usize, xx: *const u32, blocks: usize) {
    // SAFETY: reads xx[..64 * blocks] (aligned, as `LDRD` needs), the rows' first 32 * blocks
    // bytes (`LDR` allows unaligned words on ARMv7-M) and out[..4 * rows], writes
    // out[..4 * rows] (aligned i32s): all guaranteed by the caller. Registers only otherwise,
    // and 16 bytes it reserves below SP (restored before the end). DSP instructions: see
    // `smlad`.
    unsafe {
        asm!(
            // Stack: [0] end of out, [4] start of xx, [8] from a row's last word read to the
            // next row's first.
            "add {xend}, {x}, {xend}, lsl #8",
            "sub sp, sp, #16",
            "str {a1}, [sp]",
            "str {x}, [sp, #4]",
            "str {a2}, [sp, #8]",
            "3:",
            "ldrd {a0}, {a1}, [{o}]",
            "ldrd {a2}, {a3}, [{o}, #8]",
            "2:",
            dot1x4_word!(),
            dot1x4_word!(),
            dot1x4_word!(),
            dot1x4_word!(),
            dot1x4_word!(),
            dot1x4_word!(),
            dot1x4_word!(),
            dot1x4_word!(),
            "cmp {x}, {xend}",
            "bne 2b",
            "strd {a0}, {a1}, [{o}], #8",
            "strd {a2}, {a3}, [{o}], #8",
            "ldr {t}, [sp, #8]",
            "add {w}, {w}, {t}",
            "ldr {x}, [sp, #4]",
            "ldr {t}, [sp]",
            "cmp {o}, {t}",
            "bne 3b",
            "add sp, sp, #16",
            o = inout(reg) out => _,
            a0 = out(reg) _,
            a1 = inout(reg) out.wrapping_add(4 * rows) => _,
            a2 = inout(reg) k.wrapping_sub(32 * blocks) => _,
            a3 = out(reg) _,
            w = inout(reg) w => _,
            x = inout(reg) xx => _,
            xend = inout(reg) blocks => _,
            xe = out(reg) _,
            xo = out(reg) _,
            t = out(reg) _,
            u = out(reg) _,
        );
    }
}

/// The model of [`dot1x4`] for host tests: the same `SMLAD`s.
///
/// # Safety
/// As for the ARM version.
#[cfg(not(target_arch = "arm"))]
pub(super) unsafe fn dot1x4(out: *mut i32, rows: usize, w: *const i8, k: usize, xx: *const u32, blocks: usize) {
    for r in 0..rows {
        for q in 0..8 * blocks {
            // SAFETY: the caller guarantees these words and outputs.
            unsafe {
                let wv = w.add(r * k + 4 * q).cast::<u32>().read_unaligned();
                for p in 0..4 {
                    let (xe, xo) = (*xx.add(8 * q + 2 * p), *xx.add(8 * q + 2 * p + 1));
                    let o = out.add(4 * r + p);
                    *o = smlad(sxtb16_ror8(wv), xo, smlad(sxtb16(wv), xe, *o));
                }
            }
        }
    }
}

/// `out[4b..4b + 4]` for every block `b < blocks` of 4 columns of the `[rows][n]` i16-pair
/// matrix `wt`, dotted with the `rows` pairs of `xp` (`SMLAD`: both halves at once): per pair,
/// one `LDR` of `x`, two `LDRD`s of the 4 columns and 4 `SMLAD`s. Both loops in one block (the
/// conv1 patches have 13 pairs: the per-block set-up matters); their state sits on the stack.
///
/// # Safety
/// `blocks >= 1`, `rows >= 1`; `out` valid for writing `4 * blocks` aligned i32s; `wt` aligned
/// and valid for reading the first `4 * blocks` of `n` i32s in each of `rows` rows; `xp` valid
/// for reading `rows` i32s.
#[cfg(target_arch = "arm")]
#[inline(always)]
pub(super) unsafe fn pair_cols4(out: *mut i32, blocks: usize, wt: *const i32, n: usize, xp: *const i32, rows: usize) {
    // SAFETY: reads xp[..rows] and 4 * blocks aligned i32s of each row of `wt` (`LDRD` needs
    // word alignment, which i32 pointers have), writes out[..4 * blocks]: all guaranteed by the
    // caller. Registers only otherwise, and 16 bytes it reserves below SP (restored before the
    // end). DSP instructions: see `smlad`.
    unsafe {
        asm!(
            // Stack: [0] this block's out, [4] end of out, [8] this block's first column,
            // [12] start of xp.
            "add {end}, {xp}, {end}, lsl #2",
            "sub sp, sp, #16",
            "str {a0}, [sp]",
            "str {a1}, [sp, #4]",
            "str {w}, [sp, #8]",
            "str {xp}, [sp, #12]",
            "3:",
            "mov {a0}, #0",
            "mov {a1}, #0",
            "mov {a2}, #0",
            "mov {a3}, #0",
            "2:",
            "ldr {x}, [{xp}], #4",
            "ldrd {t}, {u}, [{w}]",
            "smlad {a0}, {t}, {x}, {a0}",
            "smlad {a1}, {u}, {x}, {a1}",
            "ldrd {t}, {u}, [{w}, #8]",
            "smlad {a2}, {t}, {x}, {a2}",
            "smlad {a3}, {u}, {x}, {a3}",
            "add {w}, {w}, {stride}",
            "cmp {xp}, {end}",
            "bne 2b",
            "ldr {t}, [sp]",
            "strd {a0}, {a1}, [{t}]",
            "strd {a2}, {a3}, [{t}, #8]",
            "add {t}, {t}, #16",
            "str {t}, [sp]",
            "ldr {w}, [sp, #8]",
            "add {w}, {w}, #16",
            "str {w}, [sp, #8]",
            "ldr {xp}, [sp, #12]",
            "ldr {u}, [sp, #4]",
            "cmp {t}, {u}",
            "bne 3b",
            "add sp, sp, #16",
            a0 = inout(reg) out => _,
            a1 = inout(reg) out.wrapping_add(4 * blocks) => _,
            a2 = out(reg) _,
            a3 = out(reg) _,
            w = inout(reg) wt => _,
            xp = inout(reg) xp => _,
            end = inout(reg) rows => _,
            stride = in(reg) n.wrapping_mul(4),
            x = out(reg) _,
            t = out(reg) _,
            u = out(reg) _,
        );
    }
}

/// The model of [`pair_cols4`] for host tests: the same `SMLAD`s.
///
/// # Safety
/// As for the ARM version.
#[cfg(not(target_arch = "arm"))]
pub(super) unsafe fn pair_cols4(out: *mut i32, blocks: usize, wt: *const i32, n: usize, xp: *const i32, rows: usize) {
    for c in 0..4 * blocks {
        let mut a = 0;
        for p in 0..rows {
            // SAFETY: the caller guarantees these i32s.
            unsafe { a = smlad(*wt.add(p * n + c) as u32, *xp.add(p) as u32, a) };
        }
        // SAFETY: as above.
        unsafe { *out.add(c) = a };
    }
}
