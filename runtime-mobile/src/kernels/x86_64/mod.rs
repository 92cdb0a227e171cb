//! x86_64 tables, one file per ISA level: `avx2` (AVX2, `vpmaddwd`) and
//! `avx512_vnni` (AVX-512 VNNI, `vpdpbusd`), both with the packed conv path. The VNNI table
//! reuses the AVX2 kernels it does not improve on, so it requires AVX2 as well.

mod avx2;
mod avx512_vnni;

#[cfg(target_feature = "avx2")]
pub use avx2::avx2;
pub use avx2::avx2_unchecked;
#[cfg(feature = "std")]
pub use avx2::detect_avx2;
#[cfg(all(target_feature = "avx2", target_feature = "avx512f", target_feature = "avx512bw", target_feature = "avx512vnni"))]
pub use avx512_vnni::avx512_vnni;
pub use avx512_vnni::avx512_vnni_unchecked;
#[cfg(feature = "std")]
pub use avx512_vnni::detect_avx512_vnni;

/// One register block of a packed gemm kernel (`avx2`, `avx512_vnni`): the patches whose starts
/// are at `starts`, channels from `o`; `out` points at the first of those patches' output rows
/// (`pmax` when pooling). Each kernel's `block` documents how many patches and channels.
#[derive(Clone, Copy)]
struct PackedBlock {
    wp: *const i8,
    xu: *const u8,
    starts: *const usize,
    rows: usize,
    row_stride: usize,
    seg: usize,
    bias: *const i32,
    ocp: usize,
    o: usize,
    out: *mut i32,
}
