//! `--download`: fetches a data set's four files from public mirrors, verifies them, and only
//! then writes them, atomically, so a failed or corrupted download leaves nothing on disk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};

use super::sets::{DataFile, DatasetKind};
use crate::atomic::write_atomically;

/// Mirror files are ~10 MB; anything far larger is not what we asked for.
const MAX_DOWNLOAD_BYTES: u64 = 64 << 20;
const TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    #[error("could not fetch a valid {file}; every mirror failed:\n{attempts}")]
    AllMirrorsFailed { file: &'static str, attempts: String },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// SHA-256 of `bytes` as lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks fetched bytes (gzip or raw) against the decompressed checksum.
fn verify(file: &DataFile, fetched: &[u8]) -> Result<(), String> {
    let mut decompressed = Vec::new();
    let content = if fetched.starts_with(&[0x1f, 0x8b]) {
        flate2::read::GzDecoder::new(fetched).read_to_end(&mut decompressed).map_err(|e| format!("not valid gzip: {e}"))?;
        &decompressed[..]
    } else {
        fetched
    };
    let actual = sha256_hex(content);
    if actual == file.sha256 { Ok(()) } else { Err(format!("checksum mismatch: sha256 {actual}, expected {}", file.sha256)) }
}

/// What a download reports while it runs, for a progress bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress<'a> {
    /// A fetch of `url` began; `total` is its length when the server says it.
    Started { url: &'a str, total: Option<u64> },
    /// `done` bytes of the current fetch have arrived.
    Received { done: u64 },
    /// The current fetch ended (well or not).
    Finished,
}

/// Fetches `url` into memory in chunks, telling `progress` as bytes arrive.
fn fetch(agent: &ureq::Agent, url: &str, progress: &mut dyn FnMut(Progress<'_>)) -> Result<Vec<u8>, String> {
    let mut response = agent.get(url).call().map_err(|e| e.to_string())?;
    let total = response.body().content_length();
    progress(Progress::Started { url, total });
    let mut reader = response.body_mut().with_config().limit(MAX_DOWNLOAD_BYTES).reader();
    let mut bytes = Vec::with_capacity(total.unwrap_or(0).min(MAX_DOWNLOAD_BYTES) as usize);
    let mut chunk = vec![0u8; 64 << 10];
    let result = loop {
        match reader.read(&mut chunk) {
            Ok(0) => break Ok(bytes),
            Ok(n) => {
                bytes.extend_from_slice(&chunk[..n]);
                progress(Progress::Received { done: bytes.len() as u64 });
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e.to_string()),
        }
    };
    progress(Progress::Finished);
    result
}

/// Where a verified file is stored: `<dir>/<name>.gz` when it came gzip-compressed.
fn destination(dir: &Path, file: &DataFile, bytes: &[u8]) -> PathBuf {
    if bytes.starts_with(&[0x1f, 0x8b]) { dir.join(format!("{}.gz", file.name)) } else { dir.join(file.name) }
}

/// Downloads `kind` into `<data_dir>/<name>/`, trying `mirrors` (or the data set's public
/// mirrors when empty) in turn for each file. Files already there with the right checksum are
/// kept. All four files are verified before any is written; each is written to a temporary
/// file in the destination folder and renamed into place. `log` receives one line per event.
pub fn download(
    kind: DatasetKind,
    data_dir: &Path,
    mirrors: &[String],
    log: impl FnMut(&str),
) -> Result<Vec<PathBuf>, DownloadError> {
    download_with_progress(kind, data_dir, mirrors, log, |_| {})
}

/// [`download`], also telling `progress` how each fetch advances (for a progress bar).
pub fn download_with_progress(
    kind: DatasetKind,
    data_dir: &Path,
    mirrors: &[String],
    mut log: impl FnMut(&str),
    mut progress: impl FnMut(Progress<'_>),
) -> Result<Vec<PathBuf>, DownloadError> {
    let mirrors: Vec<String> =
        if mirrors.is_empty() { kind.mirrors().iter().map(|m| m.to_string()).collect() } else { mirrors.to_vec() };
    let dir = data_dir.join(kind.name());
    let agent: ureq::Agent = ureq::Agent::config_builder().timeout_global(Some(TIMEOUT)).build().into();

    let mut verified: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    for file in kind.files() {
        if let Some(existing) = already_valid(&dir, &file) {
            log(&format!("{}: already present and verified", existing.display()));
            continue;
        }
        let mut attempts = String::new();
        let mut found = None;
        for mirror in &mirrors {
            let url = format!("{}/{}.gz", mirror.trim_end_matches('/'), file.name);
            log(&format!("fetching {url}"));
            match fetch(&agent, &url, &mut progress).and_then(|bytes| verify(&file, &bytes).map(|()| bytes)) {
                Ok(bytes) => {
                    found = Some(bytes);
                    break;
                }
                Err(problem) => {
                    log(&format!("  {problem}"));
                    attempts.push_str(&format!("  {url}: {problem}\n"));
                }
            }
        }
        match found {
            Some(bytes) => verified.push((destination(&dir, &file, &bytes), bytes)),
            None => return Err(DownloadError::AllMirrorsFailed { file: file.name, attempts }),
        }
    }

    let mut written = Vec::new();
    for (path, bytes) in verified {
        write_atomically(&path, &bytes).map_err(|source| DownloadError::Write { path: path.clone(), source })?;
        log(&format!("wrote {} ({} bytes)", path.display(), bytes.len()));
        written.push(path);
    }
    Ok(written)
}

fn already_valid(dir: &Path, file: &DataFile) -> Option<PathBuf> {
    [dir.join(format!("{}.gz", file.name)), dir.join(file.name)]
        .into_iter()
        .find(|p| std::fs::read(p).is_ok_and(|bytes| verify(file, &bytes).is_ok()))
}
