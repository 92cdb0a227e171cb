//! train -> export -> every runtime, same answers: the model file written by `export` is read by
//! runtime-mobile with every kernel table of this CPU and on aarch64 (qemu-user, with and
//! without the dot-product extension), and the ONNX files by tract; all must agree with what
//! `export` measured.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use e2e::{Pipeline, TEST_IMAGES, repo_root};
use runtime_mobile::classifier::IMAGE_SCRATCH_BYTES;
use runtime_mobile::kernels::{self, Kernels};
use runtime_mobile::preprocess::OUT_PIXELS;
use runtime_mobile::{Classifier, Model};
use tract_onnx::prelude::*;

fn pipeline() -> &'static Pipeline {
    static P: OnceLock<Pipeline> = OnceLock::new();
    P.get_or_init(|| Pipeline::build().expect("training and exporting the pipeline's model"))
}

fn test_pixels() -> &'static [u8] {
    &pipeline().data.test.images[..TEST_IMAGES * OUT_PIXELS]
}

/// "class confidence s0 .. s9" per test image (confidence in Q15), as `score-images` prints it:
/// through runtime-mobile's `Classifier` in the minimal arena, or in a session's arena (the
/// packed conv path on tables that have it).
fn score_lines(table: &Kernels, session: bool) -> Vec<String> {
    let file = std::fs::read(pipeline().path(export::INT8_FILE)).unwrap();
    let model = Model::parse(&file).unwrap();
    let mut arena = vec![0u8; if session { model.session_arena_bytes() } else { model.arena_bytes() }];
    let mut scratch = vec![0u8; IMAGE_SCRATCH_BYTES];
    let mut classifier = Classifier::new(&model, table, &mut arena, &mut scratch).unwrap();
    assert_eq!(classifier.is_packed(), session && table.conv_packed);
    test_pixels()
        .chunks_exact(OUT_PIXELS)
        .map(|image| {
            let c = classifier.classify_image(image.try_into().unwrap()).unwrap();
            let scores: Vec<String> = c.scores.iter().map(|s| s.to_string()).collect();
            format!("{} {} {}", c.class, c.confidence.q15(), scores.join(" "))
        })
        .collect()
}

fn classes(lines: &[String]) -> Vec<u8> {
    lines.iter().map(|l| l.split(' ').next().unwrap().parse().unwrap()).collect()
}

#[test]
fn every_kernel_table_of_this_cpu_gives_the_scores_export_measured() {
    let p = pipeline();
    let reference = score_lines(&kernels::scalar::KERNELS, false);
    assert_eq!(classes(&reference), p.export.int8_predictions, "scalar kernels vs export's int8 evaluation");
    let tables: Vec<&Kernels> = kernels::available().into_iter().flatten().collect();
    assert!(!tables.is_empty());
    for table in tables {
        assert_eq!(score_lines(table, false), reference, "kernel table {} differs from scalar", table.name);
        assert_eq!(score_lines(table, true), reference, "kernel table {} in a session differs from scalar", table.name);
    }
    let correct = classes(&reference).iter().zip(&p.data.test.labels).filter(|(a, b)| a == b).count();
    let accuracy = correct as f64 / TEST_IMAGES as f64;
    assert!((accuracy - p.export.report.int8_accuracy).abs() < 1e-9, "{accuracy} vs export's {}", p.export.report.int8_accuracy);
    assert!(accuracy > 0.85, "the pipeline's model should be a real one, got {accuracy}");
}

/// tract's predictions for the test images through an ONNX file.
fn tract_classes(name: &str) -> Vec<u8> {
    let p = pipeline();
    let model = tract_onnx::onnx()
        .model_for_path(p.path(name))
        .unwrap()
        .with_input_fact(0, f32::fact([TEST_IMAGES, 1, 28, 28]).into())
        .unwrap()
        .into_optimized()
        .unwrap()
        .into_runnable()
        .unwrap();
    let x: Vec<f32> = test_pixels().iter().map(|&v| v as f32 / 255.0).collect();
    let input = Tensor::from_shape(&[TEST_IMAGES, 1, 28, 28], &x).unwrap();
    let out = model.run(tvec!(input.into_tvalue())).unwrap();
    let logits: Vec<f32> = out[0].to_plain_array_view::<f32>().unwrap().iter().copied().collect();
    logits
        .chunks_exact(10)
        .map(|row| row.iter().enumerate().fold((0, f32::MIN), |b, (i, &v)| if v > b.1 { (i, v) } else { b }).0 as u8)
        .collect()
}

#[test]
fn tract_reads_both_onnx_files_with_the_answers_export_measured() {
    let p = pipeline();
    assert_eq!(tract_classes(export::ONNX_F32_FILE), p.export.f32_predictions, "f32 ONNX in tract vs candle");
    let int8 = tract_classes(export::ONNX_INT8_FILE);
    let agree = int8.iter().zip(&p.export.int8_predictions).filter(|(a, b)| a == b).count();
    assert!(agree as f64 >= 0.995 * TEST_IMAGES as f64, "int8 ONNX in tract agrees with runtime-mobile on {agree}/{TEST_IMAGES}");
}

/// Cross-builds `score-images` (tests/score-images: the engine and nothing else) for aarch64
/// Linux, in its own target folder: the outer `cargo test` holds the workspace's.
fn aarch64_score_images() -> PathBuf {
    let target_dir = repo_root().join("target/e2e-aarch64");
    let hint = "needs `rustup target add aarch64-unknown-linux-gnu` and Debian's qemu-user \
                gcc-aarch64-linux-gnu libc6-dev-arm64-cross (scripts/ci-runtime-targets installs them)";
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "-p", "score-images", "--target", "aarch64-unknown-linux-gnu"])
        .env("CARGO_TARGET_DIR", &target_dir)
        .current_dir(repo_root())
        .status()
        .unwrap_or_else(|e| panic!("running cargo: {e}"));
    assert!(status.success(), "cross-building score-images for aarch64 failed; {hint}");
    target_dir.join("aarch64-unknown-linux-gnu/release/score-images")
}

fn run_under_qemu(bin: &Path, cpu: Option<&str>, images: &Path) -> (Vec<String>, String) {
    let mut cmd = Command::new("qemu-aarch64");
    cmd.args(["-L", "/usr/aarch64-linux-gnu"]).arg(bin).arg(pipeline().path(export::INT8_FILE)).arg(images);
    if let Some(cpu) = cpu {
        cmd.env("QEMU_CPU", cpu);
    }
    let out = cmd.output().unwrap_or_else(|e| panic!("qemu-aarch64 not runnable ({e}): apt-get install qemu-user"));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "score-images under qemu ({cpu:?}) failed: {stderr}");
    (String::from_utf8(out.stdout).unwrap().lines().map(str::to_owned).collect(), stderr)
}

#[test]
fn phones_aarch64_cpus_give_bit_identical_scores() {
    let bin = aarch64_score_images();
    let images = pipeline().path("test-images.u8");
    std::fs::write(&images, test_pixels()).unwrap();
    let reference = score_lines(&kernels::scalar::KERNELS, false);
    // QEMU's default CPU has dotprod (the SDOT kernels); a Cortex-A53 has plain NEON only.
    for (cpu, want_kernels) in [(None, "neon-dotprod"), (Some("cortex-a53"), "neon")] {
        let (lines, stderr) = run_under_qemu(&bin, cpu, &images);
        assert!(
            stderr.contains(&format!("kernels: {want_kernels}\n")),
            "expected the {want_kernels} kernels on {cpu:?}: {stderr}"
        );
        assert_eq!(lines.len(), TEST_IMAGES);
        assert_eq!(lines, reference, "aarch64 ({cpu:?}) scores differ from the host's");
    }
}
