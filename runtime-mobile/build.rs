//! Tells the crate whether the target is ARMv7E-M (Cortex-M4/M7), whose DSP extension the `dsp`
//! feature's kernels need: stable Rust exposes no ARM target features to `cfg`, the triple does.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(armv7em_target)");
    println!("cargo::rerun-if-changed=build.rs");
    let target = std::env::var("TARGET").unwrap_or_default();
    if target.starts_with("thumbv7em-") {
        println!("cargo::rustc-cfg=armv7em_target");
    }
}
