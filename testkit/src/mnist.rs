//! MNIST-format digits: the IDX reader (gzip or raw) for the data sets in `<repo>/data/` and for
//! the small committed subsets in `runtime-mobile/tests/fixtures/digits/` (how those were made:
//! that folder's README), and the IDX writer that made them.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Pixels of one 28x28 image.
pub const PIXELS: usize = 28 * 28;
/// Images in a standard test split.
pub const TEST_IMAGES: usize = 10_000;
/// Images in each committed subset (the first ones of the test split).
pub const FIXTURE_DIGITS: usize = 100;

/// The data sets, by the folder names of `<repo>/data/` and the models' `dataset` metadata.
pub const DATASETS: [&str; 2] = ["mnist", "fashion-mnist"];

/// Images (row-major 28x28, 0 = background, 255 = ink) and their labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Digits {
    pub images: Vec<u8>,
    pub labels: Vec<u8>,
}

impl Digits {
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Image `i`.
    pub fn image(&self, i: usize) -> &[u8; PIXELS] {
        self.images[i * PIXELS..][..PIXELS].try_into().unwrap()
    }

    /// (image, label) in order.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8; PIXELS], u8)> + '_ {
        (0..self.len()).map(|i| (self.image(i), self.labels[i]))
    }

    /// The first `n`.
    pub fn first(&self, n: usize) -> Digits {
        Digits { images: self.images[..n * PIXELS].to_vec(), labels: self.labels[..n].to_vec() }
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `<repo>/data` (`.ci/run` links `../shared/data` there).
pub fn data_dir() -> PathBuf {
    repo_root().join("data")
}

/// `runtime-mobile/tests/fixtures/digits`: the committed subsets.
pub fn fixture_digits_dir() -> PathBuf {
    repo_root().join("runtime-mobile/tests/fixtures/digits")
}

/// The bytes of `dir/stem.gz`, else of `dir/stem`.
fn read_maybe_gz(dir: &Path, stem: &str) -> Vec<u8> {
    let gz = dir.join(format!("{stem}.gz"));
    let mut raw = Vec::new();
    if gz.is_file() {
        let file = std::fs::File::open(&gz).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
        flate2::read::GzDecoder::new(file).read_to_end(&mut raw).unwrap_or_else(|e| panic!("{}: {e}", gz.display()));
    } else {
        let plain = dir.join(stem);
        raw = std::fs::read(&plain).unwrap_or_else(|e| {
            panic!("{}: {e} (the data sets belong in <repo>/data: run .ci/run or link ../shared/data to data)", plain.display())
        });
    }
    raw
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Parses an IDX image file (magic 2051, n x 28 x 28) and label file (magic 2049, n).
pub fn parse_idx(images: &[u8], labels: &[u8]) -> Digits {
    assert_eq!(be32(images, 0), 2051, "not an IDX image file");
    assert_eq!(be32(labels, 0), 2049, "not an IDX label file");
    let n = be32(images, 4);
    assert_eq!((be32(images, 8), be32(images, 12)), (28, 28), "not 28x28 images");
    assert_eq!(be32(labels, 4), n, "image and label counts differ");
    let (images, labels) = (images[16..].to_vec(), labels[8..].to_vec());
    assert_eq!((images.len(), labels.len()), (n * PIXELS, n), "IDX files shorter or longer than their headers say");
    assert!(labels.iter().all(|&l| l < 10), "a label outside 0..10");
    Digits { images, labels }
}

/// `prefix` + `t10k-{images-idx3,labels-idx1}-ubyte[.gz]` in `dir`.
fn read_test_files(dir: &Path, prefix: &str) -> Digits {
    let images = read_maybe_gz(dir, &format!("{prefix}t10k-images-idx3-ubyte"));
    let labels = read_maybe_gz(dir, &format!("{prefix}t10k-labels-idx1-ubyte"));
    parse_idx(&images, &labels)
}

/// The whole test split of `dataset` (`mnist` or `fashion-mnist`) from `<repo>/data/`.
pub fn test_split(dataset: &str) -> Digits {
    let d = read_test_files(&data_dir().join(dataset), "");
    assert_eq!(d.len(), TEST_IMAGES, "{dataset}: not the standard test split");
    d
}

/// The committed subset of `dataset`: its test split's first [`FIXTURE_DIGITS`] images.
pub fn fixture_digits(dataset: &str) -> Digits {
    let d = read_test_files(&fixture_digits_dir(), &format!("{dataset}-first100-"));
    assert_eq!(d.len(), FIXTURE_DIGITS, "{dataset}: committed subset");
    d
}

/// Writes `digits` as gzip IDX files `dir/{prefix}t10k-{images-idx3,labels-idx1}-ubyte.gz`
/// (deterministic bytes: no file name or time in the gzip header).
pub fn write_idx_gz(dir: &Path, prefix: &str, digits: &Digits) {
    let n = (digits.len() as u32).to_be_bytes();
    let mut images = [2051u32.to_be_bytes(), n, 28u32.to_be_bytes(), 28u32.to_be_bytes()].concat();
    images.extend_from_slice(&digits.images);
    let mut labels = [2049u32.to_be_bytes(), n].concat();
    labels.extend_from_slice(&digits.labels);
    for (stem, bytes) in [("images-idx3", images), ("labels-idx1", labels)] {
        let path = dir.join(format!("{prefix}t10k-{stem}-ubyte.gz"));
        let mut gz = flate2::GzBuilder::new().mtime(0).write(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).unwrap();
        std::fs::write(&path, gz.finish().unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
}
