//! The careful file writer every output (reports, mappings, certificates, caches, plots) goes
//! through, and the check of output paths before any work starts.

/// Writes `text` to `path` as a careful Unix tool does:
/// - a regular file (or a new one) is written to a temporary file in the same directory and
///   renamed over it (readers never see a half-written file), keeping the existing file's
///   permissions; on an error the temporary file is removed and `path` is untouched;
/// - a symbolic link is written through: its target is replaced that way, the link stays;
/// - a FIFO, a device or `/dev/stdout` is written in place (it cannot be replaced);
/// - a directory is an error.
pub fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    write_output(path, text.as_bytes())
}

/// [`write_atomic`] for bytes.
pub fn write_output(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::metadata(path) {
        // metadata follows links: this is what the path (or its link's target) is.
        Ok(m) if m.is_dir() => Err(Error::new(ErrorKind::IsADirectory, "it is a directory")),
        Ok(m) if m.is_file() => {
            replace(&std::fs::canonicalize(path)?, bytes, Some(m.permissions()))
        }
        Ok(_) => {
            let mut f = std::fs::OpenOptions::new().write(true).open(path)?;
            std::io::Write::write_all(&mut f, bytes)?;
            std::io::Write::flush(&mut f)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => replace(&link_target(path)?, bytes, None),
        Err(e) => Err(e),
    }
}

/// Where a write to `path` lands when nothing is there: `path` itself, or the (relative or
/// absolute) target of a dangling symbolic link, followed through a chain of links.
fn link_target(path: &std::path::Path) -> std::io::Result<std::path::PathBuf> {
    let mut p = path.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let t = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if t.is_relative() => dir.join(t),
                    _ => t,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(std::io::Error::other("too many levels of symbolic links"))
}

/// Replaces the regular file `path` with `bytes` through a temporary file beside it (same
/// filesystem, so the rename is atomic), synced before the rename so that a full disk is an
/// error here and not a truncated file later; `perms` are the replaced file's.
fn replace(
    path: &std::path::Path,
    bytes: &[u8],
    perms: Option<std::fs::Permissions>,
) -> std::io::Result<()> {
    use std::io::Write;
    static COUNTER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path
        .file_name()
        .map_or("out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = path.with_file_name(format!(".{name}.qmap-{}-{n}.tmp", std::process::id()));
    let written = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(p) = perms {
            std::fs::set_permissions(&tmp, p)?;
        }
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Whether `path` can take an output before any work is done: an existing file or link target
/// is not a directory, and a new file's directory exists and takes a new file (a temporary
/// file is created and removed there). FIFOs and devices are taken as they are.
pub fn check_output(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::{Error, ErrorKind};
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(Error::new(ErrorKind::IsADirectory, "it is a directory")),
        Ok(m) if !m.is_file() => Ok(()),
        Ok(_) | Err(_) => {
            let target = match std::fs::metadata(path) {
                Ok(_) => std::fs::canonicalize(path)?,
                Err(e) if e.kind() == ErrorKind::NotFound => link_target(path)?,
                Err(e) => return Err(e),
            };
            let dir = match target.parent() {
                Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
                _ => std::path::PathBuf::from("."),
            };
            if !dir.is_dir() {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("its directory {} does not exist", dir.display()),
                ));
            }
            check_dir_writable(&dir)
        }
    }
}

/// Whether a new file can be created in `dir` (created and removed again).
pub fn check_dir_writable(dir: &std::path::Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".qmap-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}
