//! The data sets `train` knows: where their files live, what they must hash to, where to fetch them.

use std::fmt;

/// One of the four IDX files of a data set, with the SHA-256 of its *decompressed* bytes
/// (mirrors wrap the same content in different gzip streams).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DataFile {
    pub name: &'static str,
    pub sha256: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatasetKind {
    Mnist,
    FashionMnist,
}

pub const TRAIN_IMAGES: usize = 0;
pub const TRAIN_LABELS: usize = 1;
pub const TEST_IMAGES: usize = 2;
pub const TEST_LABELS: usize = 3;

impl DatasetKind {
    /// Folder name under the data directory, and the name used in metadata.
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Mnist => "mnist",
            DatasetKind::FashionMnist => "fashion-mnist",
        }
    }

    pub fn class_names(self) -> [&'static str; 10] {
        match self {
            DatasetKind::Mnist => ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"],
            DatasetKind::FashionMnist => {
                ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
            }
        }
    }

    /// The four files, indexed by `TRAIN_IMAGES` .. `TEST_LABELS`. Checksums from
    /// `shared/data/README.md` (the MNIST ones are the well-known values of the original files).
    pub fn files(self) -> [DataFile; 4] {
        let f = |name, sha256| DataFile { name, sha256 };
        match self {
            DatasetKind::Mnist => [
                f("train-images-idx3-ubyte", "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"),
                f("train-labels-idx1-ubyte", "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"),
                f("t10k-images-idx3-ubyte", "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"),
                f("t10k-labels-idx1-ubyte", "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"),
            ],
            DatasetKind::FashionMnist => [
                f("train-images-idx3-ubyte", "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
                f("train-labels-idx1-ubyte", "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
                f("t10k-images-idx3-ubyte", "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
                f("t10k-labels-idx1-ubyte", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
            ],
        }
    }

    /// Public mirrors serving `<mirror>/<file>.gz`, tried in this order by `--download`.
    pub fn mirrors(self) -> &'static [&'static str] {
        match self {
            DatasetKind::Mnist => &[
                "https://ossci-datasets.s3.amazonaws.com/mnist/",
                "https://storage.googleapis.com/cvdf-datasets/mnist/",
                "http://yann.lecun.com/exdb/mnist/",
            ],
            DatasetKind::FashionMnist => &[
                "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
                "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
            ],
        }
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
