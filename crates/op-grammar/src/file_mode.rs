//! The value of `--file-mode` (`op read -o`, `op inject -o`, and op-session's own `read` and
//! `inject`): an octal permission mode, `0600` by default.
//!
//! Owns the parse (octal digits, an optional `0o` prefix, permission bits only: a secret file
//! has no use for setuid, setgid or sticky) and the display (`0600`), for the client and fake-op
//! alike.

use std::fmt;
use std::str::FromStr;

/// A file's permission bits, as `--file-mode` gives them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(u32);

impl FileMode {
    /// `0600`, the default: only the owner reads and writes.
    pub const PRIVATE: FileMode = FileMode(0o600);

    /// The bits, for `open(2)` and `chmod(2)`.
    #[must_use]
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl Default for FileMode {
    fn default() -> FileMode {
        FileMode::PRIVATE
    }
}

/// A `--file-mode` value that is not an octal permission mode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid file mode \"{0}\": expected an octal mode such as 0600")]
pub struct FileModeError(pub String);

impl FromStr for FileMode {
    type Err = FileModeError;

    fn from_str(s: &str) -> Result<FileMode, FileModeError> {
        let digits = s.strip_prefix("0o").unwrap_or(s);
        if digits.is_empty() || !digits.bytes().all(|b| matches!(b, b'0'..=b'7')) {
            return Err(FileModeError(s.to_string()));
        }
        u32::from_str_radix(digits, 8)
            .ok()
            .filter(|m| *m <= 0o777)
            .map(FileMode)
            .ok_or_else(|| FileModeError(s.to_string()))
    }
}

impl fmt::Display for FileMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn octal_modes_parse_and_print_back() {
        for (text, bits) in [("0600", 0o600), ("640", 0o640), ("0o644", 0o644), ("0", 0)] {
            let mode: FileMode = text.parse().expect(text);
            assert_eq!(mode.bits(), bits);
            assert_eq!(mode.to_string().parse::<FileMode>(), Ok(mode));
        }
        assert_eq!(FileMode::default().to_string(), "0600");
        for bad in ["", "0o", "rw", "0800", "+600", "4755", "-1"] {
            assert!(bad.parse::<FileMode>().is_err(), "{bad}");
        }
        assert_eq!(
            "x".parse::<FileMode>().unwrap_err().to_string(),
            "invalid file mode \"x\": expected an octal mode such as 0600"
        );
    }
}
