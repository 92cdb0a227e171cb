//! The shipped MNIST model reads every fixture image (MNIST digits re-photographed off-centre,
//! large, dim, on coloured paper, light on dark; font digits drawn dark on light) correctly,
//! through the same preprocessing and engine the apps use. The label is in each file's name.

use std::path::Path;
use std::process::Command;

#[test]
fn every_fixture_image_is_classified_as_its_label() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let images: Vec<_> = std::fs::read_dir(root.join("runtime-mobile/tests/images"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "png" || e == "jpg"))
        .collect();
    assert!(images.len() >= 20, "expected the 20 fixture images, found {}", images.len());
    let out = Command::new(env!("CARGO_BIN_EXE_classify"))
        .arg("--model")
        .arg(root.join("models/mnist.int8.safetensors"))
        .args(&images)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    for image in &images {
        let name = image.file_name().unwrap().to_str().unwrap();
        let expected = &name["digit".len().."digit".len() + 1];
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{}:", image.display())))
            .unwrap_or_else(|| panic!("no line for {name} in:\n{stdout}"));
        let got = line.rsplit_once(": ").unwrap().1.split(' ').next().unwrap();
        assert_eq!(got, expected, "{line}");
    }
}
