//! The phone SDK over `runtime-mobile`'s [`runtime_mobile::Classifier`] (the one pipeline):
//!
//! - [`uniffi_api`]: the `digits` uniffi namespace (Kotlin `dev.cnntoolkit.digits`, Swift
//!   `Digits`, Python `digits`), records in, records out;
//! - `jni`: the Android camera path (`dev.cnntoolkit.digits.jni`, `android/classifier-jni/`): the Y
//!   plane read in place from a direct `ByteBuffer`, the answer written into the caller's
//!   preallocated `FrameResult`, nothing allocated per frame (not built for Apple targets).
//!
//! No inference logic lives here: [`Engine`] owns what the `no_std` core borrows (model bytes,
//! arena, scratch) behind a `Mutex`, times the calls and hands the borrowed answer to a closure;
//! [`convert`] turns it into each boundary's types. Every FFI entry point catches panics, so none
//! crosses the boundary. Errors carry `runtime-mobile`'s stable [`runtime_mobile::Error::code`]
//! (the bindings' own codes are listed at [`Failure::code`]).

pub mod classifier;
pub mod convert;
pub mod error;
#[cfg(not(target_vendor = "apple"))]
mod jni;
pub mod uniffi_api;

pub use classifier::{Answered, Bundled, Engine, FrameArgs, Timing};
pub use error::Failure;

uniffi::setup_scaffolding!("digits");
