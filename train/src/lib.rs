//! Trains the seed MNIST CNN with candle and writes what `export` and the reports need.
//!
//! The modules, in the order data flows through them: [`data`] (IDX files, download),
//! [`model`] (the network), [`ops`] (its fast CPU kernels), `cuda` (the GPU step, feature `cuda`), [`optim`] (Adam), [`run`] (the
//! epoch loop), [`checkpoint`] (safetensors files), [`metrics`] and [`plots`] (reports).

pub mod atomic;
pub mod checkpoint;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod data;
pub mod metrics;
pub mod model;
pub mod ops;
pub mod optim;
pub mod plots;
pub mod run;
