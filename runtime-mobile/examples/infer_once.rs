//! Runs single-image inference, for instruction counting and for proving which kernel table a
//! build/CPU uses (CI prints its first line).
//!
//! `infer_once [--kernels scalar|best|NAME] [--run|--session] [--runs N] [MODEL.safetensors]`
//! (NAME: a table this CPU has, e.g. `avx2` or `scalar-packed`, from `kernels::available()`): runs
//! through `Model::run_with` in the minimal `Model::arena_bytes` (default) or through a
//! `Session` in `Model::session_arena_bytes`; without a model file it
//! builds an MNIST-shaped model with random weights (the test fixture builder); the arithmetic
//! cost does not depend on the weight values. Count instructions per inference with
//! `valgrind --tool=callgrind --toggle-collect='*Model*run_with*' target/release/examples/infer_once`
//! (with `--session`: `--toggle-collect='*Session*run*'`), or under QEMU with the TCG plugin
//! `firmware/tools/insn-count` and `symbol=insn_count_mark`, a function called before the first
//! run and after every run (scripts/ci-arm-insn).

use std::hint::black_box;

use runtime_mobile::kernels::{self, scalar};
use runtime_mobile::{Model, Shape};
use testkit::Build;
use testkit::{MNIST, Rng, random_desc};

/// Marks inference boundaries for the instruction-counting QEMU plugin (found by symbol name).
#[unsafe(no_mangle)]
#[inline(never)]
pub extern "C" fn insn_count_mark() {
    black_box(());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut table, mut runs, mut path, mut fast) = (kernels::best(), 1usize, None, false);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--kernels" => match args.next().as_deref() {
                Some("scalar") => table = &scalar::KERNELS,
                Some("best") => table = kernels::best(),
                Some(name) => {
                    table = kernels::available()
                        .into_iter()
                        .flatten()
                        .find(|k| k.name == name)
                        .unwrap_or_else(|| panic!("--kernels {name}: not a table this CPU has"))
                }
                None => panic!("--kernels scalar|best|NAME"),
            },
            "--session" => fast = true,
            "--run" => fast = false,
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).expect("--runs N"),
            _ => path = Some(a),
        }
    }
    let mut rng = Rng(42);
    let file = match &path {
        Some(p) => std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}")),
        None => random_desc(&mut rng, Shape::Chw(1, 28, 28), &MNIST, false).build(),
    };
    let model = Model::parse(&file).expect("model");
    let arena_len = if fast { model.session_arena_bytes() } else { model.arena_bytes() };
    println!(
        "kernels: {} (detected: {}), {}, arena {arena_len} bytes",
        table.name,
        kernels::detect().name,
        if fast { "session" } else { "Model::run_with" }
    );
    let input: Vec<i8> = (0..model.input_len()).map(|_| rng.i8()).collect();
    let mut arena = vec![0u8; arena_len];
    let mut class = 0;
    if fast {
        let mut session = model.session(table, &mut arena).expect("session");
        insn_count_mark();
        for _ in 0..runs {
            class = session.run(black_box(&input)).expect("run").class;
            insn_count_mark();
        }
    } else {
        insn_count_mark();
        for _ in 0..runs {
            class = model.run_with(table, black_box(&input), &mut arena).expect("run").class;
            insn_count_mark();
        }
    }
    println!("class {class} after {runs} run(s)");
}
