//! Files and folders the way WaddlePerf writes them: its data, configuration
//! and log folders for the user alone (0700 on Unix), the database and the
//! secrets file 0600, and whole-file writes that go through a temporary file
//! renamed into place, so a crash or a full disk never leaves half a file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Creates `dir` and any missing parents; the folders this creates are the
/// user's alone (0700 on Unix). Folders that exist are left as they are.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir)
}

/// Creates an empty file at `path`, readable and writable by the user alone
/// (0600 on Unix), unless it exists already (then it is left untouched).
pub fn create_private_file(path: &Path) -> std::io::Result<()> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(0o600);
    }
    match o.open(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(e),
    }
}

/// Who may read a file written by [`write_atomically`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The user alone (0600): configuration, secrets.
    Private,
    /// As the umask says: exports the user asked for.
    Default,
}

/// Writes a whole file: `f` writes into a temporary file beside `path`, which
/// is flushed to disk and renamed over `path`. On any failure the temporary
/// file is removed and `path` is as it was. Missing folders are created
/// private.
pub fn write_atomically(
    path: &Path,
    access: Access,
    f: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir)?;
    // Elsewhere than Unix the file inherits the folder's access list.
    #[cfg(not(unix))]
    let _ = access;
    let tmp = temp_beside(dir, path);
    let result = (|| -> std::io::Result<()> {
        let mut o = std::fs::OpenOptions::new();
        o.write(true).create(true).truncate(true);
        #[cfg(unix)]
        if access == Access::Private {
            use std::os::unix::fs::OpenOptionsExt;
            o.mode(0o600);
        }
        let mut file = std::io::BufWriter::new(o.open(&tmp)?);
        f(&mut file)?;
        file.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn temp_beside(dir: &Path, path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_private_modes() -> std::io::Result<()> {
        let tmp = tempfile::tempdir()?;
        let dir = tmp.path().join("a/b");
        let file = dir.join("x.toml");
        write_atomically(&file, Access::Private, |w| w.write_all(b"one"))?;
        assert_eq!(std::fs::read_to_string(&file)?, "one");
        // A failing writer leaves the old file and no temporary one.
        let err = write_atomically(&file, Access::Private, |w| {
            w.write_all(b"half")?;
            Err(std::io::Error::other("disk full"))
        });
        assert!(err.is_err());
        assert_eq!(std::fs::read_to_string(&file)?, "one");
        assert_eq!(std::fs::read_dir(&dir)?.count(), 1);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).map(|m| m.permissions().mode() & 0o777);
            assert_eq!(mode(&file)?, 0o600);
            assert_eq!(mode(&dir)?, 0o700);
            assert_eq!(mode(&tmp.path().join("a"))?, 0o700);
            let db = dir.join("new.db");
            create_private_file(&db)?;
            assert_eq!(mode(&db)?, 0o600);
            std::fs::write(&db, b"kept")?;
            create_private_file(&db)?;
            assert_eq!(std::fs::read(&db)?, b"kept");
        }
        Ok(())
    }
}
