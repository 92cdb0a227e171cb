//! The download path against HTTP servers on loopback: one serving the real shared files, one
//! serving a corrupted file. Never touches the web.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;

use train::data::{self, DatasetKind, download};

fn shared_mnist() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/mnist");
    assert!(dir.is_dir(), "{} missing: link ../shared/data to data/ (as .ci/run does)", dir.display());
    dir
}

/// Serves `files` (name -> bytes) on a loopback port until the test process ends; any other
/// path is a 404. Returns the base URL.
fn serve(files: Vec<(String, Vec<u8>)>) -> String {
    let server = Arc::new(tiny_http::Server::http("127.0.0.1:0").unwrap());
    let url = format!("http://{}/", server.server_addr().to_ip().unwrap());
    thread::spawn(move || {
        for request in server.incoming_requests() {
            let name = request.url().trim_start_matches('/').to_owned();
            let response = match files.iter().find(|(n, _)| *n == name) {
                Some((_, bytes)) => tiny_http::Response::from_data(bytes.clone()),
                None => tiny_http::Response::from_data(b"not here".to_vec()).with_status_code(404),
            };
            let _ = request.respond(response);
        }
    });
    url
}

fn mnist_files() -> Vec<(String, Vec<u8>)> {
    DatasetKind::Mnist
        .files()
        .iter()
        .map(|f| {
            let name = format!("{}.gz", f.name);
            let bytes = std::fs::read(shared_mnist().join(&name)).unwrap();
            (name, bytes)
        })
        .collect()
}

#[test]
fn downloads_verifies_and_loads_falling_back_past_a_dead_mirror() {
    let good = serve(mnist_files());
    let empty = serve(Vec::new());
    let out = tempfile::tempdir().unwrap();
    let mut log = Vec::new();
    let written = download::download(DatasetKind::Mnist, out.path(), &[empty.clone(), good], |l| log.push(l.to_owned())).unwrap();
    assert_eq!(written.len(), 4);
    assert!(log.iter().any(|l| l.contains("404")), "the dead mirror's failure is reported: {log:?}");
    let ds = data::load(out.path(), DatasetKind::Mnist).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (60_000, 10_000));

    // A second run finds the files valid and fetches nothing.
    let mut log = Vec::new();
    download::download(DatasetKind::Mnist, out.path(), &[empty], |l| log.push(l.to_owned())).unwrap();
    assert!(log.iter().all(|l| !l.starts_with("fetching")), "{log:?}");
}

#[test]
fn a_corrupted_file_is_rejected_and_nothing_is_written() {
    let mut files = mnist_files();
    // Flip one byte of the decompressed test labels and re-compress: still valid gzip and IDX,
    // only the checksum can tell.
    let labels = files.iter_mut().find(|(n, _)| n.starts_with("t10k-labels")).unwrap();
    let mut raw = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&labels.1[..]), &mut raw).unwrap();
    raw[100] = (raw[100] + 1) % 10;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut enc, &raw).unwrap();
    labels.1 = enc.finish().unwrap();

    let bad = serve(files);
    let out = tempfile::tempdir().unwrap();
    let err = download::download(DatasetKind::Mnist, out.path(), &[bad], |_| {}).unwrap_err().to_string();
    assert!(err.contains("t10k-labels-idx1-ubyte") && err.contains("checksum mismatch"), "{err}");
    let left: Vec<_> = walk(out.path());
    assert!(left.is_empty(), "nothing may be left on disk, found {left:?}");
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(walk(&path));
        } else {
            found.push(path);
        }
    }
    found
}

fn train_in(cwd: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_train")).current_dir(cwd).args(args).output().unwrap()
}

const QUICK_RUN: [&str; 4] = ["--limit", "64", "--epochs", "1"];

#[test]
fn a_first_run_without_data_downloads_it_into_data_and_says_so() {
    let mirror = serve(mnist_files());
    let cwd = tempfile::tempdir().unwrap();
    let out = train_in(cwd.path(), &[&QUICK_RUN[..], &["--mirror", &mirror]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("downloading it there") && err.contains("--offline"), "says it downloads and how not to: {err}");
    let ds = data::load(&cwd.path().join("data"), DatasetKind::Mnist).unwrap();
    assert_eq!((ds.train.len(), ds.test.len()), (60_000, 10_000));
    assert!(cwd.path().join("artifacts/mnist/model.safetensors").is_file());

    // Now present: the next run fetches nothing (the mirror is gone: a dead port would fail).
    let again = train_in(cwd.path(), &[&QUICK_RUN[..], &["--overwrite", "--mirror", "http://127.0.0.1:9/"]].concat());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(again.status.success() && !err.contains("fetching"), "{err}");
}

#[test]
fn offline_or_an_explicit_data_dir_never_downloads() {
    let mirror = serve(mnist_files());
    let cwd = tempfile::tempdir().unwrap();
    for args in [vec!["--offline"], vec!["--data-dir", "elsewhere", "--mirror", &mirror]] {
        let out = train_in(cwd.path(), &[&QUICK_RUN[..], &args].concat());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains("were not found") && !err.contains("fetching"), "{args:?}: {err}");
    }
    assert!(walk(cwd.path()).is_empty(), "nothing written: {:?}", walk(cwd.path()));
}

#[test]
fn without_network_the_error_says_what_to_do_and_nothing_is_written() {
    let cwd = tempfile::tempdir().unwrap();
    // Port 9 (discard) on loopback: connection refused, as on a machine without network.
    let out = train_in(cwd.path(), &[&QUICK_RUN[..], &["--mirror", "http://127.0.0.1:9/"]].concat());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    for hint in ["every mirror failed", "Without network", "data/mnist", "--data-dir", "--offline"] {
        assert!(err.contains(hint), "missing {hint:?}: {err}");
    }
    let left: Vec<_> = walk(cwd.path()).into_iter().filter(|p| !p.is_dir()).collect();
    assert!(left.is_empty(), "nothing half-written: {left:?}");
}
