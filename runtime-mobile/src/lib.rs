//! `runtime-mobile`: integer-only inference of small sequential int8 CNNs on phones and
//! microcontrollers. `no_std`, no `alloc`: the model is parsed in place from the file bytes
//! ([`Model::parse`]) and run in a caller-provided arena ([`Model::run`]).
//!
//! The file format (a safetensors file) is specified in `FORMAT.md`; its names and constants are
//! the items of [`mod@format`], which the exporter uses directly.
//!
//! ```no_run
//! # fn demo(file: &[u8], pixels: &[i8]) -> Result<(), runtime_mobile::Error> {
//! let model = runtime_mobile::Model::parse(file)?;
//! let mut arena = [0u8; 8192];
//! let p = model.run(pixels, &mut arena[..model.arena_bytes()])?;
//! let _label = model.label(p.class);
//! # Ok(()) }
//! ```
// `std` (optional) only adds runtime CPU feature detection for the kernel choice.
#![cfg_attr(not(any(test, feature = "std")), no_std)]
#![deny(unsafe_op_in_unsafe_fn)]

// The `dsp` feature selects SMLAD/SXTB16 kernels, which only ARMv7E-M (Cortex-M4/M7) has;
// on other ARM targets it is an error rather than a silent scalar build. (Elsewhere, e.g. the
// host with `--all-features`, it has no effect.) build.rs sets `armv7em_target`.
#[cfg(all(feature = "dsp", target_arch = "arm", not(armv7em_target)))]
compile_error!(
    "runtime-mobile's `dsp` feature needs an ARMv7E-M target with the DSP extension \
     (thumbv7em-none-eabi or thumbv7em-none-eabihf: Cortex-M4/M7); this ARM target has none \
     (thumbv6m: Cortex-M0/M0+, thumbv7m: Cortex-M3): build without `dsp`"
);

mod bytes;
pub mod classifier;
pub mod confidence;
mod engine;
pub mod error;
pub mod format;
mod json;
pub mod kernels;
pub mod model;
pub mod plan;
pub mod preprocess;
pub mod requant;
mod safetensors;
pub mod session;
#[cfg(feature = "std")]
pub mod write;

pub use classifier::{Classification, Classifier, FrameOutcome, Ranked};
pub use confidence::Confidence;
pub use error::Error;
pub use format::{Activation, LayerSpec, Op, Pool, Quant, Shape, TensorKind};
pub use model::{Model, Prediction};
pub use session::Session;
