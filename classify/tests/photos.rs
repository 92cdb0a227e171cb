//! The shipped model reads the committed photo-like test set (tests/photos/set/, made by
//! tests/photos/generate.py): every image goes through the `classify` binary, i.e. through
//! runtime-mobile's `Classifier` exactly as an app calls it, and at least 95% must be right.

use std::path::{Path, PathBuf};
use std::process::Command;

/// A regression floor, in percent: what the shipped model reads today (209 of 220, 95.0%). Issue
/// 16 asks for 98%, which is not reached yet (tests/photos/README.md lists the misses); raise
/// this when a model or preprocessing change earns it, never lower it to pass.
const MIN_PERCENT: usize = 95;
/// The set's size as generated (tests/photos/README.md); fewer means files went missing.
const MIN_IMAGES: usize = 200;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `NNNN-L-style.png` -> L.
fn label_of(path: &Path) -> String {
    let name = path.file_name().unwrap().to_string_lossy();
    name.split('-').nth(1).unwrap_or_else(|| panic!("{name}: not NNNN-LABEL-style.png")).to_owned()
}

#[test]
fn the_shipped_model_reads_at_least_95_percent_of_the_photo_set() {
    let set = root().join("tests/photos/set");
    let mut images: Vec<PathBuf> = std::fs::read_dir(&set)
        .unwrap_or_else(|e| panic!("{}: {e}", set.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "png"))
        .collect();
    images.sort();
    assert!(images.len() >= MIN_IMAGES, "{} images in {}, expected >= {MIN_IMAGES}", images.len(), set.display());

    let out = Command::new(env!("CARGO_BIN_EXE_classify"))
        .arg("--model")
        .arg(root().join("models/mnist.int8.safetensors"))
        .args(&images)
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    // One answer line per image, in order; a failed image (no digit found) counts as wrong.
    let answers: Vec<(&str, &str)> = stdout
        .lines()
        .filter(|l| !l.starts_with(' '))
        .filter_map(|l| l.rsplit_once(": "))
        .map(|(path, rest)| (path, rest.split_once(' ').map_or(rest, |(label, _)| label)))
        .collect();
    let mut misses = Vec::new();
    for image in &images {
        let shown = image.display().to_string();
        let got = answers.iter().find(|(p, _)| *p == shown).map_or("(no answer)", |(_, l)| l);
        if got != label_of(image) {
            misses.push(format!("{} read as {got}", image.file_name().unwrap().to_string_lossy()));
        }
    }
    let right = images.len() - misses.len();
    let percent = 100.0 * right as f64 / images.len() as f64;
    println!("photo set: {right}/{} right ({percent:.1}%)", images.len());
    assert!(
        right * 100 >= MIN_PERCENT * images.len(),
        "{percent:.1}% right, below {MIN_PERCENT}%; misses:\n{}\nstderr:\n{}",
        misses.join("\n"),
        String::from_utf8_lossy(&out.stderr)
    );
}
