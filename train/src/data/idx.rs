//! Reader for the IDX files MNIST and Fashion-MNIST ship in, gzip-compressed or raw.
//!
//! IDX is four bytes of magic (two zero bytes, a type code, the number of dimensions), one
//! big-endian u32 per dimension, then the data. We only accept unsigned bytes (type 0x08),
//! which is all these data sets use. No crate reads IDX with the checks we want (counts,
//! truncation, trailing bytes, label range) and the format is 20 lines, so it lives here.

use std::io::Read;
use std::path::{Path, PathBuf};

/// The gzip magic bytes; files starting with them are decompressed first.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
const TYPE_U8: u8 = 0x08;

#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    #[error("{path}: cannot read: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{path}: not an IDX file: {problem}")]
    BadHeader { path: PathBuf, problem: String },
    #[error("{path}: truncated: header promises {expected} data bytes, file holds {actual}")]
    Truncated { path: PathBuf, expected: usize, actual: usize },
    #[error("{path}: {extra} unexpected bytes after the data")]
    TrailingBytes { path: PathBuf, extra: usize },
    #[error("{path}: expected {expected}, found {found}")]
    WrongShape { path: PathBuf, expected: String, found: String },
    #[error("{path}: label {label} at index {index} is outside 0..{classes}")]
    LabelOutOfRange { path: PathBuf, index: usize, label: u8, classes: usize },
    #[error("{images} has {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch { images: PathBuf, n_images: usize, labels: PathBuf, n_labels: usize },
}

/// An IDX array of unsigned bytes: its dimensions and row-major data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    pub dims: Vec<usize>,
    pub data: Vec<u8>,
}

/// Reads a file's bytes, decompressing when it is gzip.
pub fn read_maybe_gzip(path: &Path) -> Result<Vec<u8>, IdxError> {
    let io = |source| IdxError::Io { path: path.to_owned(), source };
    let raw = std::fs::read(path).map_err(io)?;
    if raw.starts_with(&GZIP_MAGIC) {
        let mut out = Vec::with_capacity(raw.len() * 4);
        flate2::read::GzDecoder::new(raw.as_slice()).read_to_end(&mut out).map_err(io)?;
        Ok(out)
    } else {
        Ok(raw)
    }
}

/// Parses IDX bytes (already decompressed). `path` only names the source in errors.
pub fn parse_idx(bytes: &[u8], path: &Path) -> Result<IdxArray, IdxError> {
    let bad = |problem: String| IdxError::BadHeader { path: path.to_owned(), problem };
    if bytes.len() < 4 {
        return Err(bad(format!("{} bytes is shorter than the 4-byte magic", bytes.len())));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(bad(format!("magic starts {:02x} {:02x}, expected 00 00", bytes[0], bytes[1])));
    }
    if bytes[2] != TYPE_U8 {
        return Err(bad(format!("element type 0x{:02x}, only unsigned bytes (0x08) are supported", bytes[2])));
    }
    let ndim = bytes[3] as usize;
    if ndim == 0 {
        return Err(bad("zero dimensions".into()));
    }
    let header_len = 4 + 4 * ndim;
    if bytes.len() < header_len {
        return Err(bad(format!("{ndim} dimensions need a {header_len}-byte header, file has {} bytes", bytes.len())));
    }
    let dims: Vec<usize> = bytes[4..header_len].as_chunks::<4>().0.iter().map(|&c| u32::from_be_bytes(c) as usize).collect();
    let expected =
        dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)).ok_or_else(|| bad(format!("dimensions {dims:?} overflow")))?;
    let actual = bytes.len() - header_len;
    if actual < expected {
        return Err(IdxError::Truncated { path: path.to_owned(), expected, actual });
    }
    if actual > expected {
        return Err(IdxError::TrailingBytes { path: path.to_owned(), extra: actual - expected });
    }
    Ok(IdxArray { dims, data: bytes[header_len..].to_vec() })
}

/// Reads an IDX image file: `[count, rows, cols]`, checking the image size.
pub fn read_images(path: &Path, rows: usize, cols: usize) -> Result<IdxArray, IdxError> {
    let array = parse_idx(&read_maybe_gzip(path)?, path)?;
    if array.dims.len() != 3 || array.dims[1] != rows || array.dims[2] != cols {
        return Err(IdxError::WrongShape {
            path: path.to_owned(),
            expected: format!("images of shape [N, {rows}, {cols}]"),
            found: format!("shape {:?}", array.dims),
        });
    }
    Ok(array)
}

/// Reads an IDX label file: `[count]`, checking every label is below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<IdxArray, IdxError> {
    let array = parse_idx(&read_maybe_gzip(path)?, path)?;
    if array.dims.len() != 1 {
        return Err(IdxError::WrongShape {
            path: path.to_owned(),
            expected: "labels of shape [N]".into(),
            found: format!("shape {:?}", array.dims),
        });
    }
    if let Some((index, &label)) = array.data.iter().enumerate().find(|(_, l)| **l as usize >= classes) {
        return Err(IdxError::LabelOutOfRange { path: path.to_owned(), index, label, classes });
    }
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn idx(dims: &[u32], data: &[u8]) -> Vec<u8> {
        let mut out = vec![0, 0, TYPE_U8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out.extend_from_slice(data);
        out
    }

    fn p() -> &'static Path {
        Path::new("test.idx")
    }

    #[test]
    fn parses_a_small_array() {
        let a = parse_idx(&idx(&[2, 3], &[1, 2, 3, 4, 5, 6]), p()).unwrap();
        assert_eq!(a.dims, vec![2, 3]);
        assert_eq!(a.data, vec![1, 2, 3, 4, 5, 6]);
    }

    #[test]
    fn rejects_bad_magic_type_and_dims() {
        let mut b = idx(&[1], &[0]);
        b[0] = 1;
        assert!(matches!(parse_idx(&b, p()), Err(IdxError::BadHeader { .. })));
        let mut b = idx(&[1], &[0]);
        b[2] = 0x0D; // float
        let err = parse_idx(&b, p()).unwrap_err().to_string();
        assert!(err.contains("0x0d") && err.contains("test.idx"), "{err}");
        assert!(matches!(parse_idx(&[0, 0, 8], p()), Err(IdxError::BadHeader { .. })));
        assert!(matches!(parse_idx(&[0, 0, 8, 0], p()), Err(IdxError::BadHeader { .. })));
        assert!(matches!(parse_idx(&[0, 0, 8, 2, 0, 0, 0, 1], p()), Err(IdxError::BadHeader { .. })));
        let huge = idx(&[u32::MAX, u32::MAX, u32::MAX], &[]);
        assert!(matches!(parse_idx(&huge, p()), Err(IdxError::BadHeader { .. })));
    }

    #[test]
    fn rejects_truncated_and_trailing_data() {
        assert!(matches!(parse_idx(&idx(&[2, 2], &[1, 2, 3]), p()), Err(IdxError::Truncated { expected: 4, actual: 3, .. })));
        assert!(matches!(parse_idx(&idx(&[2, 2], &[1, 2, 3, 4, 5]), p()), Err(IdxError::TrailingBytes { extra: 1, .. })));
    }

    #[test]
    fn reads_gzip_and_raw_files_and_checks_shapes_and_labels() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let raw = dir.path().join("labels");
        std::fs::write(&raw, idx(&[3], &[0, 9, 4])).unwrap();
        assert_eq!(read_labels(&raw, 10).unwrap().data, vec![0, 9, 4]);
        let err = read_labels(&raw, 5).unwrap_err();
        assert!(matches!(err, IdxError::LabelOutOfRange { index: 1, label: 9, .. }), "{err}");

        let gz = dir.path().join("images.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(&idx(&[1, 2, 2], &[7, 7, 7, 7])).unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_images(&gz, 2, 2).unwrap().dims, vec![1, 2, 2]);
        assert!(matches!(read_images(&gz, 28, 28), Err(IdxError::WrongShape { .. })));
        assert!(matches!(read_labels(&gz, 10), Err(IdxError::WrongShape { .. })));

        let broken = dir.path().join("broken.gz");
        std::fs::write(&broken, [0x1f, 0x8b, 1, 2, 3]).unwrap();
        assert!(matches!(read_images(&broken, 2, 2), Err(IdxError::Io { .. })));
        let missing = dir.path().join("missing");
        let err = read_images(&missing, 2, 2).unwrap_err().to_string();
        assert!(err.contains("missing"), "{err}");
    }
}
