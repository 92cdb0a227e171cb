//! `export-report.json` and the table printed at the end of a run.

use std::fmt::Write as _;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct FileEntry {
    /// File name (all files sit beside the input model).
    pub name: String,
    pub bytes: u64,
    pub what: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct LayerQuant {
    pub layer: String,
    /// Calibrated float range of the layer's output.
    pub min: f32,
    pub max: f32,
    pub scale: f32,
    pub zero_point: i32,
}

#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    pub method: String,
    pub images: usize,
    pub layers: Vec<LayerQuant>,
}

/// An output that was not written, and why.
#[derive(Debug, Clone, Serialize)]
pub struct SkippedFile {
    pub name: String,
    pub why: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub producer: String,
    pub source: String,
    /// The network's line (`train`'s `architecture`), for networks other than the seed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub architecture: Option<String>,
    pub dataset: String,
    pub calibration: Calibration,
    /// Number of test images evaluated (the whole test split unless `--test-limit`).
    pub test_images: usize,
    pub f32_accuracy: f64,
    /// runtime-mobile running `model.int8.safetensors`.
    pub int8_accuracy: f64,
    /// `(f32_accuracy - int8_accuracy) * 100`.
    pub accuracy_drop_points: f64,
    /// Fraction of test images where the f32 and int8 models predict the same class.
    pub agreement: f64,
    /// From runtime-mobile's planner (`runtime_mobile::plan::arena_bytes`).
    pub arena_bytes: usize,
    pub files: Vec<FileEntry>,
    /// Outputs this network could not be written as (absent when every file was written).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped: Vec<SkippedFile>,
}

impl Report {
    /// A human-readable summary.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let w = self.files.iter().map(|f| f.name.len()).max().unwrap_or(0).max(24);
        let _ = writeln!(t, "{:<w$}  {:>10}", "file", "bytes");
        for f in &self.files {
            let _ = writeln!(t, "{:<w$}  {:>10}  {}", f.name, f.bytes, f.what);
        }
        for f in &self.skipped {
            let _ = writeln!(t, "{:<w$}  {:>10}  {}", f.name, "skipped", f.why);
        }
        let _ = writeln!(t);
        let pct = |a: f64| format!("{:.2}%", a * 100.0);
        let rows = [
            (format!("f32 test accuracy ({} images)", self.test_images), pct(self.f32_accuracy)),
            ("int8 test accuracy (runtime-mobile)".to_owned(), pct(self.int8_accuracy)),
            ("accuracy drop".to_owned(), format!("{:.2} points", self.accuracy_drop_points)),
            ("f32 / int8 agreement".to_owned(), pct(self.agreement)),
            ("runtime-mobile arena".to_owned(), format!("{} bytes", self.arena_bytes)),
            ("calibration".to_owned(), format!("{} training images, min/max", self.calibration.images)),
        ];
        let w = rows.iter().map(|r| r.0.len()).max().unwrap_or(0);
        for (k, v) in rows {
            let _ = writeln!(t, "{k:<w$}  {v}");
        }
        t
    }
}
