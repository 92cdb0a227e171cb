//! aarch64 tables: `neon` (NEON is baseline on aarch64) and `neon_dotprod` (FEAT_DotProd,
//! `SDOT`). One file per ISA level, as in `x86_64/`.

mod neon;

#[cfg(feature = "std")]
pub use neon::detect_dotprod;
pub use neon::neon;
#[cfg(target_feature = "dotprod")]
pub use neon::neon_dotprod;
pub use neon::neon_dotprod_unchecked;
