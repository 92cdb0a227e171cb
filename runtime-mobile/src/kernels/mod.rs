//! Compute kernels, separated from graph/planning code (the tract-linalg split): the engine only
//! calls through a [`Kernels`] table, so SIMD implementations slot in as new tables that must be
//! bit-exact with [`scalar::KERNELS`]. Integer arithmetic makes "bit-exact" achievable: wrapping
//! i32 sums are order-independent, and every SIMD product/partial sum used is exact.
//!
//! # Choosing a table soundly without `std`
//!
//! SIMD tables run `#[target_feature]` code, which is undefined behaviour on a CPU lacking the
//! feature. Their statics are private; a table is only handed out where the feature is known:
//! - at compile time, by `cfg(target_feature = ...)`: [`best`] without the `std` feature (NEON is
//!   baseline on aarch64; AVX2 needs `-C target-feature=+avx2` or a `target-cpu` that has it);
//! - at run time with the `std` feature: `detect` / `available` use
//!   `is_x86_feature_detected!` / `is_aarch64_feature_detected!`, and [`best`] becomes `detect`;
//! - or by the caller's promise: the `unsafe fn`s of the `x86_64` and `aarch64` modules
//!   (e.g. firmware that knows its CPU).
//!
//! Under Miri (`cfg(miri)`) only the scalar tables are handed out: [`compile_time_best`], [`best`],
//! `detect` and `available` never return a SIMD table, so the interpreter checks the scalar
//! kernels and everything around them without emulating vendor intrinsics. (The SIMD kernels'
//! memory safety is tested natively: `tests/kernels.rs`, and the `parse_and_infer` fuzz target
//! under AddressSanitizer.)

pub mod scalar;

#[cfg(all(target_arch = "x86_64", target_endian = "little"))]
pub mod x86_64;

#[cfg(all(target_arch = "aarch64", target_endian = "little", target_feature = "neon"))]
pub mod aarch64;

#[cfg(target_arch = "wasm32")]
pub mod wasm32;

// The DSP table: built with the `dsp` feature on ARMv7E-M targets (build.rs sets
// `armv7em_target`; lib.rs refuses the feature on other ARM targets), and in host unit tests
// on exact models of the instructions.
#[cfg(any(all(feature = "dsp", target_arch = "arm", armv7em_target), all(test, not(target_arch = "arm"))))]
mod armv7em;

/// The Cortex-M4/M7 table on the DSP extension (`SMLAD`, `SXTB16`; see `kernels/armv7em`),
/// bit-exact with [`scalar::KERNELS`]. Exists with the `dsp` feature on thumbv7em targets, where
/// the DSP extension is part of the architecture, so it needs no run-time check.
#[cfg(all(feature = "dsp", target_arch = "arm", armv7em_target))]
pub fn armv7em_dsp() -> &'static Kernels {
    &armv7em::ARMV7EM_DSP
}

/// A set of kernel implementations.
#[derive(Debug)]
pub struct Kernels {
    /// Human-readable name ("scalar", "scalar-packed", "avx2", "avx512-vnni", "neon",
    /// "neon-dotprod", "armv7em-dsp", "wasm-simd128").
    pub name: &'static str,
    /// Whether a [`crate::Session`] runs conv layers through the packed path (weights
    /// repacked once, channel-innermost, then [`Kernels::gemm_u8i8`] straight from a
    /// channels-last copy of the input: no im2col). [`crate::Model::run`] and tables that
    /// leave it off use the matvec kernels on one im2col patch at a time. Tables that leave it
    /// off still implement the packed kernels (the scalar reference), so tests can compare.
    pub conv_packed: bool,
    /// Matrix-vector product: for each `r < out.len()`,
    /// `out[r] = sum_k w[r * x.len() + k] * x[k]` in wrapping i32 arithmetic.
    /// Callers guarantee `w.len() == out.len() * x.len()` (implementations must stay memory-safe
    /// if they don't; results are then unspecified). Conv uses it with one im2col patch as `x`
    /// and all output channels' weights as `w`, so SIMD versions block several rows (output
    /// channels) per pass to reuse each loaded piece of `x`.
    pub matvec_i8: fn(w: &[i8], x: &[i8], out: &mut [i32]),
    /// [`Kernels::matvec_i8`] for weights with no -128 (symmetric int8 weights in [-127, 127], as
    /// export writes them): then the result is `matvec_i8`'s, bit for bit. With a -128 weight the
    /// result is unspecified (still memory-safe); the engine checks each layer's weights and
    /// uses `matvec_i8` for such layers. The bound lets SIMD versions sum two products in i16
    /// (|x * w| <= 128 * 127, twice that is 32512): AVX2 uses `vpmaddubsw` on |x| and w * sign(x)
    /// (32 products per instruction), NEON `smull` + `smlal2` before widening.
    pub matvec_i8_sym: fn(w: &[i8], x: &[i8], out: &mut [i32]),
    /// Column-major matvec on i16 pairs: with `n = out.len()` and `p` over `xp.len()` pairs,
    /// `out[j] = sum_p lo(wt[p * n + j]) * lo(xp[p]) + hi(wt[p * n + j]) * hi(xp[p])` in wrapping
    /// i32 arithmetic, where `lo`/`hi` are the i32's low/high i16 halves (`vpmaddwd`'s pairs).
    /// Callers guarantee `wt.len() == xp.len() * out.len()` (implementations must stay
    /// memory-safe if not; results are then unspecified). Conv layers with short patches (the
    /// MNIST conv1: 25 taps) use it when the arena has room for their weights laid out this way:
    /// one call yields every output channel of a pixel with no horizontal sums, where
    /// `matvec_i8` spends most of a 25-byte row on its tail and sums.
    pub matvec_pairs_i16: fn(wt: &[i32], xp: &[i32], out: &mut [i32]),
    /// A 2x2 pool window's conv outputs at once, or `None`: then the engine uses
    /// [`Kernels::matvec_i8`] per output pixel. With `n = xs.len() / 4` (patch `p` of 4 is
    /// `xs[p * n..][..n]`, a run of taps) and `rows = out.len() / 4`, for every `r < rows`,
    /// `p < 4`: `out[4 * r + p] += sum_{j < n} w[r * k + j] * xs[p * n + j]` in wrapping i32
    /// arithmetic (the runs `w[r * k..][..n]`: rows of stride `k`). Accumulating lets the engine
    /// feed a long patch run by run through little scratch. Callers guarantee `xs.len()` and
    /// `out.len()` multiples of 4, `n <= k`, and `w` long enough (implementations must stay
    /// memory-safe if not; results are then unspecified). For tables whose matvec re-extends
    /// each weight per pixel (ARMv7E-M): 4 pixels per weight word ([`scalar::matvec4_i8`] is
    /// the reference, which no scalar table hands out: its own path is as fast).
    pub matvec4_i8: Option<Matvec4>,
    /// The packed path's product, unsigned activations times signed weights, on top of a
    /// per-channel start value: for each patch `i < n = src.starts.len()` and each `o < ocp`,
    /// `out[i * ocp + o] = bias[o] + sum_t byte(i, t) * wp[((t / 4) * ocp + o) * 4 + t % 4]`
    /// over `t < src.rows * src.seg`, in wrapping i32 arithmetic (byte `t` of patch `i` as
    /// [`Patches`] defines it),
    /// where `ocp = out.len() / n` is a multiple of [`PACK_OC`], `bias` holds `ocp` values and
    /// `wp` holds `rows * seg / 4` quads of `ocp` channels. The engine passes activations as
    /// `x + 128` (`x ^ 0x80`) and folds `-128 * sum(w)` into `bias`, so `u8 x i8` is exact for
    /// every int8 value: VNNI's `vpdpbusd` sums four such products into i32 without
    /// saturation. Callers guarantee those lengths and that every patch lies inside `src.xu`
    /// (implementations must stay memory-safe if not; `out` is then unspecified).
    pub gemm_u8i8: fn(wp: &[i8], src: &Patches<'_>, bias: &[i32], out: &mut [i32]),
    /// [`Kernels::gemm_u8i8`] reduced by max over the patches, into `pmax` (`ocp` values):
    /// `pmax[o] = max(pmax[o], out[i * ocp + o] for every patch i)`, so a max-pool window's conv
    /// outputs never leave the registers. `ocp = pmax.len()`; the same contract otherwise.
    pub gemm_u8i8_max: fn(wp: &[i8], src: &Patches<'_>, bias: &[i32], pmax: &mut [i32]),
    /// Row sums: `out[r] = sum_k w[r * k_len + k]` (wrapping), used to fold the input zero point.
    pub row_sums_i8: fn(w: &[i8], k_len: usize, out: &mut [i32]),
    /// Requantizes in place: `acc[o] = requantize(acc[o], M[o], shift[o], zp_out, lo)` (see
    /// [`crate::requant::requantize`]; the result is an int8 value held in an i32) for every
    /// `o < acc.len()`. Callers guarantee `q.multiplier` and `q.shift` hold at least
    /// `acc.len()` i32s and the ranges [`Requant`] documents (as parsing validates);
    /// implementations must stay memory-safe otherwise.
    pub requantize_i32: fn(acc: &mut [i32], q: &Requant<'_>),
    /// [`Kernels::requantize_i32`] on rows: `acc[r * stride + o]` for channels `o < channels`
    /// of every whole or partial row `r` (`stride >= channels`; the values between are left
    /// alone). One call for many pixels' channel vectors keeps the parameter set-up out of the
    /// loop and lets independent rows overlap. Same parameter contract as `requantize_i32`.
    pub requantize_rows: fn(acc: &mut [i32], stride: usize, channels: usize, q: &Requant<'_>),
}

/// The signature of [`Kernels::matvec4_i8`]: `(w, k, xs, out)`.
pub type Matvec4 = fn(w: &[i8], k: usize, xs: &[i8], out: &mut [i32]);

/// One layer's requantization parameters.
#[derive(Debug, Clone, Copy)]
pub struct Requant<'a> {
    /// Little-endian i32 `M` per output channel, each in [0, 2^31 - 1] (file bytes, unaligned).
    pub multiplier: &'a [u8],
    /// Little-endian i32 shift per output channel, each in [-31, 31].
    pub shift: &'a [u8],
    /// Output zero point, in [-128, 127].
    pub zp_out: i32,
    /// Lower clamp: `zp_out` with relu, else -128.
    pub lo: i32,
}

/// Output channels per group in the packed weight layout ([`Kernels::gemm_u8i8`]): one
/// AVX-512 register of i32 lanes.
pub const PACK_OC: usize = 16;

/// Where [`Kernels::gemm_u8i8`] reads its patches: patch `i` is `rows` segments of `seg` bytes,
/// segment `r` starting at `xu[starts[i] + r * row_stride]`, so byte `t` of patch `i` is
/// `xu[starts[i] + (t / seg) * row_stride + t % seg]`. A conv layer's receptive field in a
/// channels-last (HWC) input is exactly that: one segment per kernel row, each `kw * c`
/// contiguous bytes (rounded up to `seg`, a multiple of 4; the extra bytes meet zero weights).
#[derive(Debug, Clone, Copy)]
pub struct Patches<'a> {
    /// Activation bytes (`x ^ 0x80`).
    pub xu: &'a [u8],
    /// Offset of each patch's first segment in `xu`.
    pub starts: &'a [usize],
    pub rows: usize,
    pub row_stride: usize,
    /// Bytes per segment, a multiple of 4.
    pub seg: usize,
}

impl Patches<'_> {
    /// Whether every patch lies inside `xu` and `seg` is a multiple of 4 (what SIMD kernels
    /// check before reading without bounds checks).
    pub fn in_bounds(&self) -> bool {
        let Some(span) =
            self.rows.checked_sub(1).and_then(|r| r.checked_mul(self.row_stride)).and_then(|v| v.checked_add(self.seg))
        else {
            return self.rows == 0;
        };
        self.seg.is_multiple_of(4) && self.starts.iter().all(|&s| s.checked_add(span).is_some_and(|e| e <= self.xu.len()))
    }
}

/// The fastest table this build may use without runtime checks (compile-time target features).
/// Always sound: a SIMD table is only returned when the target guarantees its features.
pub fn compile_time_best() -> &'static Kernels {
    #[cfg(all(
        target_arch = "x86_64",
        target_endian = "little",
        target_feature = "avx2",
        target_feature = "avx512f",
        target_feature = "avx512bw",
        target_feature = "avx512vnni",
        not(miri)
    ))]
    {
        return x86_64::avx512_vnni();
    }
    #[cfg(all(
        target_arch = "x86_64",
        target_endian = "little",
        target_feature = "avx2",
        not(all(target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vnni")),
        not(miri)
    ))]
    {
        return x86_64::avx2();
    }
    #[cfg(all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon",
        target_feature = "dotprod",
        not(miri)
    ))]
    {
        return aarch64::neon_dotprod();
    }
    #[cfg(all(
        target_arch = "aarch64",
        target_endian = "little",
        target_feature = "neon",
        not(target_feature = "dotprod"),
        not(miri)
    ))]
    {
        return aarch64::neon();
    }
    #[cfg(all(feature = "dsp", target_arch = "arm", armv7em_target, not(miri)))]
    {
        return armv7em_dsp();
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(miri)))]
    {
        return wasm32::simd128();
    }
    #[allow(unreachable_code)]
    &scalar::KERNELS
}

/// The kernels [`crate::Model::run`] uses: `detect` with the `std` feature, else
/// [`compile_time_best`].
pub fn best() -> &'static Kernels {
    #[cfg(feature = "std")]
    {
        detect()
    }
    #[cfg(not(feature = "std"))]
    {
        compile_time_best()
    }
}

/// The fastest table the running CPU supports (runtime detection; std caches the CPUID/HWCAP
/// query, so this is cheap to call per inference).
#[cfg(feature = "std")]
pub fn detect() -> &'static Kernels {
    let mut best = &scalar::KERNELS;
    for k in available().into_iter().flatten() {
        best = k; // `available` lists tables slowest first
    }
    best
}

/// Every table usable on the running CPU, slowest (scalar) first; `None` slots are tables this
/// CPU or target lacks. Tests run each one against the scalar reference.
/// The scalar tables come first: the reference and the reference with the packed conv path
/// ([`scalar::KERNELS_PACKED`]), so every engine path is checked against the reference.
#[cfg(feature = "std")]
pub fn available() -> [Option<&'static Kernels>; 4] {
    #[allow(unused_mut)]
    let mut out: [Option<&'static Kernels>; 4] = [Some(&scalar::KERNELS), Some(&scalar::KERNELS_PACKED), None, None];
    #[cfg(all(target_arch = "x86_64", target_endian = "little", not(miri)))]
    {
        out[2] = x86_64::detect_avx2();
        out[3] = x86_64::detect_avx512_vnni();
    }
    #[cfg(all(target_arch = "aarch64", target_endian = "little", target_feature = "neon", not(miri)))]
    {
        out[2] = Some(aarch64::neon());
        out[3] = aarch64::detect_dotprod();
    }
    #[cfg(all(target_arch = "wasm32", target_feature = "simd128", not(miri)))]
    {
        out[2] = Some(wasm32::simd128());
    }
    out
}

/// `TAIL_MASK[rem..rem + 16]` keeps the last `rem` of 16 bytes and zeroes the rest. SIMD kernels
/// handle a `k % 16 = rem` tail by re-reading the last 16 bytes of `x` and of each row (always in
/// bounds when `k >= 16`) with the already-counted first `16 - rem` bytes of `x` zeroed.
#[allow(dead_code)] // unused on targets with no SIMD table
static TAIL_MASK: [i8; 32] = {
    let mut m = [0i8; 32];
    let mut i = 16;
    while i < 32 {
        m[i] = -1;
        i += 1;
    }
    m
};

/// `TAIL_MASK32[rem..rem + 32]` keeps the last `rem` of 32 bytes and zeroes the rest: the 32-byte
/// counterpart of [`TAIL_MASK`] (AVX2's `matvec_i8_sym` steps 32 bytes at a time).
#[allow(dead_code)] // unused on targets with no 32-byte SIMD table
static TAIL_MASK32: [i8; 64] = {
    let mut m = [0i8; 64];
    let mut i = 32;
    while i < 64 {
        m[i] = -1;
        i += 1;
    }
    m
};

#[cfg(test)]
mod tests {
    #[test]
    fn compile_time_choice_follows_target_features() {
        let want = if cfg!(miri) {
            "scalar"
        } else if cfg!(all(
            target_arch = "x86_64",
            target_feature = "avx2",
            target_feature = "avx512f",
            target_feature = "avx512bw",
            target_feature = "avx512vnni"
        )) {
            "avx512-vnni"
        } else if cfg!(all(target_arch = "x86_64", target_feature = "avx2")) {
            "avx2"
        } else if cfg!(all(target_arch = "aarch64", target_feature = "dotprod")) {
            "neon-dotprod"
        } else if cfg!(all(target_arch = "aarch64", target_feature = "neon")) {
            "neon"
        } else if cfg!(all(feature = "dsp", target_arch = "arm", armv7em_target)) {
            "armv7em-dsp"
        } else if cfg!(all(target_arch = "wasm32", target_feature = "simd128")) {
            "wasm-simd128"
        } else {
            "scalar"
        };
        assert_eq!(super::compile_time_best().name, want);
    }
}
