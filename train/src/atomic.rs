//! Atomic file writes: every file `train` produces (data, checkpoints, metrics, plots) is
//! written through here so an interrupted run never leaves a half-written file.

use std::io::Write;
use std::path::Path;

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it over `path`, so
/// readers see either the old file or the whole new one.
///
/// The new file gets the permissions a plain `File::create` would give a new file (on Unix
/// `0o666` less the umask: 0644 under the usual umask 022), not the temporary file's private
/// 0600, which would survive the rename. Like any rename, it replaces an existing file's mode.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // The kernel applies the umask to this mode when it creates the file, as for File::create.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/out.bin");
        super::write_atomically(&path, b"first version, long").unwrap();
        super::write_atomically(&path, b"second").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    /// Whatever the process's umask, the written file has the mode a `File::create`d one gets.
    #[cfg(unix)]
    #[test]
    fn new_files_get_the_mode_file_create_gives() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("plain.bin");
        std::fs::File::create(&plain).unwrap();
        let atomic = dir.path().join("atomic.bin");
        super::write_atomically(&atomic, b"bytes").unwrap();
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&atomic), mode(&plain), "{:o} vs File::create's {:o}", mode(&atomic), mode(&plain));
    }
}
