//! `metrics.json`: what each epoch measured. The PyTorch and TensorFlow scripts in `bench/`
//! write the same schema, so one driver compares all three.

use std::path::Path;

use crate::run::Recipe;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EpochMetrics {
    /// 1-based.
    pub epoch: usize,
    /// Training time of the epoch, evaluation excluded.
    pub wall_seconds: f64,
    pub train_loss: f64,
    pub train_accuracy: f64,
    pub test_loss: f64,
    pub test_accuracy: f64,
    /// Peak resident memory of the process so far; absent where the OS does not say.
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct MetricsFile {
    pub framework: String,
    pub framework_version: String,
    pub device: String,
    pub dataset: String,
    pub recipe: Recipe,
    pub epochs: Vec<EpochMetrics>,
    pub total_seconds: f64,
    pub final_test_accuracy: f64,
}

impl MetricsFile {
    pub fn new(recipe: &Recipe, device: &str, epochs: &[EpochMetrics]) -> MetricsFile {
        MetricsFile {
            framework: "candle".into(),
            framework_version: CANDLE_VERSION.into(),
            device: device.into(),
            dataset: recipe.dataset.name().into(),
            recipe: recipe.clone(),
            epochs: epochs.to_vec(),
            total_seconds: epochs.iter().map(|e| e.wall_seconds).sum(),
            final_test_accuracy: epochs.last().map_or(0.0, |e| e.test_accuracy),
        }
    }

    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let json = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::atomic::write_atomically(path, json.as_bytes())
    }
}

/// The candle release this crate is built against (kept in step with Cargo.toml by a test).
pub const CANDLE_VERSION: &str = "0.11.1";

/// The process's peak resident set size (VmHWM), on Linux.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    #[test]
    fn candle_version_matches_the_manifest() {
        let manifest = include_str!("../../Cargo.toml");
        assert!(manifest.contains(&format!("candle-core = \"{}\"", super::CANDLE_VERSION)));
    }

    #[test]
    fn peak_rss_is_read_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(super::peak_rss_bytes().unwrap() > 1 << 20);
        }
    }
}
