//! Test helpers shared by the crates' tests (runtime-mobile's tests, benches and examples,
//! `classify`'s CLI tests, the end-to-end tests). Not published.
//!
//! - [`rng`]: the one deterministic random number generator.
//! - [`models`]: random models from layer templates, written by runtime-mobile's own writer.
//! - [`mod@reference`]: an independent naive implementation of the format's arithmetic.
//! - [`corrupt`]: header surgery, for tests that feed the parser broken files.
//! - [`mnist`]: MNIST-format digits, the data sets' test splits and the committed subsets.

pub mod corrupt;
pub mod mnist;
pub mod models;
pub mod reference;
pub mod rng;

pub use corrupt::{assemble, assemble_raw, metadata, split, with_meta};
pub use models::{Build, Desc, MNIST, T, Tensors, prefixes, random_desc};
pub use reference::{ref_requant, reference};
pub use rng::Rng;
