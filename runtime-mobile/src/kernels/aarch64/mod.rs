//! aarch64 tables: `neon` (NEON is baseline on aarch64; packed conv path in `widen`) and `neon_dotprod` (FEAT_DotProd,
//! `SDOT`, with the packed conv path in `dotprod`). One file per ISA level, as in `x86_64/`.

mod dotprod;
mod neon;
mod requant;
mod widen;

#[cfg(feature = "std")]
pub use neon::detect_dotprod;
pub use neon::neon;
#[cfg(target_feature = "dotprod")]
pub use neon::neon_dotprod;
pub use neon::neon_dotprod_unchecked;
