//! Picks the board's memory map (`boards/*.x` -> `memory.x` in OUT_DIR): STACK_USAGE_BOARD, else
//! the target's default board, and links with cortex-m-rt's `link.x`. The digits, the model and
//! the host's answers come from firmware-common.

use std::fs;
use std::path::PathBuf;

fn fail(msg: &str) -> ! {
    eprintln!("error: stack-usage build script: {msg}");
    std::process::exit(1);
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| fail("CARGO_MANIFEST_DIR unset")));
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_else(|_| fail("OUT_DIR unset")));
    let target = std::env::var("TARGET").unwrap_or_default();
    for p in ["build.rs", "boards"] {
        println!("cargo:rerun-if-changed={p}");
    }
    // thumbv7em runs runtime-mobile's DSP table (firmware-common turns it on), whose stack
    // differs: main.rs's classification budget depends on it.
    println!("cargo::rustc-check-cfg=cfg(dsp_kernels)");
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=dsp_kernels");
    }

    // The board (QEMU machine) whose memory map to link for: STACK_USAGE_BOARD, else the
    // target's default. Its runner must match (.cargo/config.toml, or scripts/ci-firmware's
    // CARGO_TARGET_<TRIPLE>_RUNNER). A `memory.x` in the crate root would shadow the one written
    // here (cortex-m-rt's search order), hence the boards/ folder.
    println!("cargo:rerun-if-env-changed=STACK_USAGE_BOARD");
    let board = std::env::var("STACK_USAGE_BOARD").unwrap_or_else(|_| {
        match target.as_str() {
            "thumbv7em-none-eabihf" => "mps2-an386",
            // QEMU's only Cortex-M0 machine, 16 KiB of RAM: the small part the engine targets.
            "thumbv6m-none-eabi" => "microbit",
            other => fail(&format!(
                "unsupported target '{other}': build with --target thumbv7em-none-eabihf or \
                 --target thumbv6m-none-eabi"
            )),
        }
        .to_string()
    });
    let memory_file = match board.as_str() {
        "mps2-an385" | "mps2-an386" => "mps2.x",
        "microbit" => "microbit.x",
        other => fail(&format!("STACK_USAGE_BOARD={other}: expected mps2-an385, mps2-an386 or microbit")),
    };
    if board == "microbit" && target != "thumbv6m-none-eabi" {
        fail("the micro:bit is a Cortex-M0: build it with --target thumbv6m-none-eabi");
    }
    let memory =
        fs::read(manifest.join("boards").join(memory_file)).unwrap_or_else(|e| fail(&format!("boards/{memory_file}: {e}")));
    fs::write(out.join("memory.x"), memory).unwrap_or_else(|e| fail(&format!("memory.x: {e}")));
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rustc-link-arg-bins=-Tlink.x");
    fs::write(out.join("board.rs"), format!("pub const TARGET: &str = {target:?};\npub const BOARD: &str = {board:?};\n"))
        .unwrap_or_else(|e| fail(&format!("board.rs: {e}")));
}
