//! wasm32 tables: `simd128` (WebAssembly SIMD, in every browser since 2021–23 and in Node).
//!
//! A wasm module is validated as a whole before it runs: a module holding SIMD instructions
//! fails to compile on an engine without SIMD instead of misbehaving, so unlike the x86 and
//! aarch64 tables this one needs no run-time check and may be handed out whenever it is
//! compiled in. The kernels enable `simd128` per function, so a build without
//! `-C target-feature=+simd128` still contains them (the web page's one-command build).

mod simd128;

pub use simd128::simd128;
