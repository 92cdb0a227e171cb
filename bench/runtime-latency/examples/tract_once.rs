//! tract-onnx on one ONNX file, for instruction counting under QEMU (`bench/arm_insn_count`):
//! `tract_once MODEL.onnx [RUNS]` prepares [`runtime_latency::Tract`] (the optimised plan and
//! state `bench/runtime_compare` times) on one synthetic 28x28 image, then runs it `RUNS` times
//! (default 5), calling `insn_count_mark` before the first run and after each one, so the TCG
//! plugin `firmware/tools/insn-count` counts each inference alone.

use std::hint::black_box;
use std::path::PathBuf;

use anyhow::{Context, Result};
use runtime_latency::Tract;

/// Marks inference boundaries for the instruction-counting QEMU plugin (found by symbol name).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn insn_count_mark() {
    black_box(());
}

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().context("usage: tract_once MODEL.onnx [RUNS]")?);
    let runs: usize = args.next().map(|r| r.parse()).transpose().context("RUNS")?.unwrap_or(5);
    // A digit-like stroke: the instruction count does not depend on the pixel values.
    let image: [u8; 784] = std::array::from_fn(|i| if (i % 28).abs_diff(i / 28) < 3 { 255 } else { 0 });
    let mut tract = Tract::new(&path, &[image])?;
    let mut class = 0;
    insn_count_mark();
    for _ in 0..runs {
        class = tract.classify(black_box(0));
        insn_count_mark();
    }
    println!("tract {}: class {class} after {runs} run(s)", path.display());
    Ok(())
}
