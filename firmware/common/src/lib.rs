//! What every board of the firmware shares (see `firmware/README.md`):
//!
//! - [`MODEL`]: the shipped MNIST model, embedded with `include_bytes!` (flash);
//! - [`Buffers`]: the classifier's arena and scratch, sized from the model at build time, for a
//!   `static`;
//! - [`digits`]: the stored test digits and the host's answers for them;
//! - [`classifier`]: the one way a board builds its `runtime_mobile::Classifier`, and
//!   [`kernels`], the one place the kernel table is chosen;
//! - [`check`]: a board's answer against the host's, bit for bit;
//! - [`screen`]: the 320x240 result screen, drawn with embedded-graphics on any `DrawTarget`;
//! - `semihosting` (feature): exit status and files to the host under QEMU;
//! - `stack` (feature `cortex-m`): stack high-water marks.
#![no_std]

pub mod check;
pub mod digits;
pub mod screen;
#[cfg(feature = "semihosting")]
pub mod semihosting;
#[cfg(feature = "cortex-m")]
pub mod stack;

use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::kernels::Kernels;
use runtime_mobile::{Classifier, Error, Model};

pub use digits::{ARENA_BYTES, N_CLASSES, N_DIGITS};

/// The shipped model file (`models/mnist.int8.safetensors`), parsed in place from flash.
pub static MODEL: &[u8] = include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/mnist.int8.safetensors"));

/// The kernel table every board runs: the one place to choose it. `kernels::best()` is the
/// ARMv7E-M DSP table on thumbv7em (this crate turns on runtime-mobile's `dsp` feature for that
/// target: stable Rust sets no `dsp` target feature) and the scalar table on the Cortex-M0.
pub fn kernels() -> &'static Kernels {
    runtime_mobile::kernels::best()
}

/// The classifier's memory, for one `static` (`.bss`): the arena the model plans
/// ([`ARENA_BYTES`], the least it runs in: a microcontroller's choice) and the scratch:
/// `IMAGE_SCRATCH_BYTES` (the default) for 28x28 images, `FRAME_SCRATCH_BYTES` to classify
/// pictures too (`Classifier::classify_frame`, e.g. a digit drawn on a touch screen).
pub struct Buffers<const SCRATCH: usize = IMAGE_SCRATCH_BYTES> {
    pub arena: [u8; ARENA_BYTES],
    pub scratch: [u8; SCRATCH],
}

impl<const SCRATCH: usize> Buffers<SCRATCH> {
    pub const fn new() -> Self {
        Buffers { arena: [0; ARENA_BYTES], scratch: [0; SCRATCH] }
    }
}

impl<const SCRATCH: usize> Default for Buffers<SCRATCH> {
    fn default() -> Self {
        Self::new()
    }
}

/// The board's classifier over `model` (parsed from [`MODEL`]) in `buffers`, with [`kernels`].
/// Fails (`ArenaTooSmall`) if the model on the board plans more arena than the host did.
pub fn classifier<'s, 'a, const SCRATCH: usize>(
    model: &'s Model<'a>,
    buffers: &'s mut Buffers<SCRATCH>,
) -> Result<Classifier<'s, 'a>, Error> {
    Classifier::new(model, kernels(), &mut buffers.arena, &mut buffers.scratch)
}
