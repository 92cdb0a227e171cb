//! Everything about getting images and labels into memory: the IDX reader, the known data
//! sets, the download path and the in-memory data set.

pub mod augment;
pub mod download;
pub mod idx;
pub mod sets;

use std::path::{Path, PathBuf};

pub use sets::{DataFile, DatasetKind};

pub const IMAGE_SIDE: usize = 28;
pub const IMAGE_PIXELS: usize = IMAGE_SIDE * IMAGE_SIDE;
pub const CLASSES: usize = 10;

/// Images kept as raw bytes (a quarter of the memory of f32); batches are scaled to [0, 1]
/// when they are made.
#[derive(Debug, Clone)]
pub struct Split {
    /// `len() * IMAGE_PIXELS` bytes, row-major 28x28 images one after another.
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Split {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    pub fn image(&self, i: usize) -> &[u8] {
        &self.images[i * IMAGE_PIXELS..(i + 1) * IMAGE_PIXELS]
    }

    /// The first `n` examples (all of them when `n` is larger).
    pub fn truncated(mut self, n: usize) -> Split {
        let n = n.min(self.len());
        self.labels.truncate(n);
        self.images.truncate(n * IMAGE_PIXELS);
        self
    }
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub kind: DatasetKind,
    pub train: Split,
    pub test: Split,
}

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error(
        "the {kind} files were not found; looked for {file}[.gz] in {looked}.\n\
         Without --data-dir and --offline, `train` downloads them into data/ by itself; \
         otherwise get them with `--download`, or point `--data-dir` at a folder that holds the four IDX files \
         (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, gzip or raw), \
         either directly or in a `{kind}/` subfolder."
    )]
    Missing { kind: DatasetKind, file: &'static str, looked: String },
    #[error(transparent)]
    Idx(#[from] idx::IdxError),
}

/// Folders searched for a data set's files, in order: `<data_dir>/<name>/`, then `<data_dir>/`.
pub fn candidate_dirs(data_dir: &Path, kind: DatasetKind) -> [PathBuf; 2] {
    [data_dir.join(kind.name()), data_dir.to_owned()]
}

/// Finds `file` (gzip preferred, raw accepted) in the candidate folders.
fn locate(data_dir: &Path, kind: DatasetKind, file: &DataFile) -> Result<PathBuf, DataError> {
    let dirs = candidate_dirs(data_dir, kind);
    for dir in &dirs {
        for name in [format!("{}.gz", file.name), file.name.to_owned()] {
            let path = dir.join(name);
            if path.is_file() {
                return Ok(path);
            }
        }
    }
    let looked = dirs.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(" and ");
    Err(DataError::Missing { kind, file: file.name, looked })
}

/// Loads both splits of a data set from `data_dir`, checking every file.
pub fn load(data_dir: &Path, kind: DatasetKind) -> Result<Dataset, DataError> {
    let files = kind.files();
    let paths = files.iter().map(|f| locate(data_dir, kind, f)).collect::<Result<Vec<_>, _>>()?;
    let split = |images: &PathBuf, labels: &PathBuf| -> Result<Split, DataError> {
        let imgs = idx::read_images(images, IMAGE_SIDE, IMAGE_SIDE)?;
        let labs = idx::read_labels(labels, CLASSES)?;
        if imgs.dims[0] != labs.dims[0] {
            return Err(idx::IdxError::CountMismatch {
                images: images.clone(),
                n_images: imgs.dims[0],
                labels: labels.clone(),
                n_labels: labs.dims[0],
            }
            .into());
        }
        Ok(Split { images: imgs.data, labels: labs.data })
    };
    Ok(Dataset {
        kind,
        train: split(&paths[sets::TRAIN_IMAGES], &paths[sets::TRAIN_LABELS])?,
        test: split(&paths[sets::TEST_IMAGES], &paths[sets::TEST_LABELS])?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a tiny but valid data set with `n` images per split into `dir`.
    pub(crate) fn write_tiny_dataset(dir: &Path, n: u32) {
        let header = |ty_dims: &[u32]| {
            let mut h = vec![0u8, 0, 8, ty_dims.len() as u8];
            ty_dims.iter().for_each(|d| h.extend_from_slice(&d.to_be_bytes()));
            h
        };
        for prefix in ["train", "t10k"] {
            let mut images = header(&[n, 28, 28]);
            images.extend((0..n as usize * IMAGE_PIXELS).map(|i| (i % 251) as u8));
            std::fs::write(dir.join(format!("{prefix}-images-idx3-ubyte")), images).unwrap();
            let mut labels = header(&[n]);
            labels.extend((0..n).map(|i| (i % 10) as u8));
            std::fs::write(dir.join(format!("{prefix}-labels-idx1-ubyte")), labels).unwrap();
        }
    }

    #[test]
    fn loads_raw_files_from_the_data_dir_itself() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_dataset(dir.path(), 3);
        let ds = load(dir.path(), DatasetKind::Mnist).unwrap();
        assert_eq!(ds.train.len(), 3);
        assert_eq!(ds.test.labels, vec![0, 1, 2]);
        assert_eq!(ds.train.image(1)[0], (IMAGE_PIXELS % 251) as u8);
        assert_eq!(ds.train.truncated(2).len(), 2);
    }

    #[test]
    fn missing_files_say_where_we_looked_and_how_to_get_them() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path(), DatasetKind::FashionMnist).unwrap_err().to_string();
        assert!(err.contains(&dir.path().join("fashion-mnist").display().to_string()), "{err}");
        assert!(err.contains("--download") && err.contains("--data-dir"), "{err}");
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        write_tiny_dataset(dir.path(), 3);
        std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), [0, 0, 8, 1, 0, 0, 0, 2, 1, 1]).unwrap();
        let err = load(dir.path(), DatasetKind::Mnist).unwrap_err();
        assert!(matches!(err, DataError::Idx(idx::IdxError::CountMismatch { n_images: 3, n_labels: 2, .. })), "{err}");
    }

    #[test]
    fn loads_the_real_mnist_when_present() {
        // The shared copy is linked into data/ by .ci/run; this test insists on it there.
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data");
        let ds = load(&root, DatasetKind::Mnist).expect("real MNIST in data/mnist (run .ci/run or link ../shared/data to data)");
        assert_eq!((ds.train.len(), ds.test.len()), (60_000, 10_000));
        assert_eq!(ds.train.labels[..5], [5, 0, 4, 1, 9]);
    }
}
