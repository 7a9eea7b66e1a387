//! Replacing a file atomically: a temporary file beside the target (created exclusively, never
//! through a symlink), written, given its mode, synced, then renamed over the target. Readers
//! see the old content or the new, never a part; a failure leaves no temporary file behind.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

/// Write `data` to `path` atomically. `mode` is set exactly (the umask does not narrow it);
/// `None` creates the file as the umask allows (`0666 & !umask`). The directory must exist.
pub fn write_atomic(path: &Path, data: &[u8], mode: Option<u32>) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    for i in 0..100u32 {
        let tmp = dir.join(format!(".{name}.op-session-{}-{i}", std::process::id()));
        let mut f = match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode.unwrap_or(0o666))
            .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        };
        let written = (|| {
            f.write_all(data)?;
            if let Some(mode) = mode {
                f.set_permissions(fs::Permissions::from_mode(mode))?;
            }
            f.sync_all()?;
            fs::rename(&tmp, path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        return written;
    }
    Err(io::Error::other("no free temporary name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_replaced_with_exactly_its_mode_and_no_temporary_is_left() {
        let d = tempfile::tempdir().expect("dir");
        let p = d.path().join("f");
        write_atomic(&p, b"one", Some(0o600)).expect("writes");
        write_atomic(&p, b"two", Some(0o640)).expect("replaces");
        assert_eq!(fs::read(&p).expect("read"), b"two");
        let mode = fs::metadata(&p).expect("meta").permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        assert_eq!(fs::read_dir(d.path()).expect("ls").count(), 1);
    }
}
