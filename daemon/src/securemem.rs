//! Memory for tokens: a page of its own, locked so it is never swapped, wiped on drop.
//!
//! `mlockall` would starve tokio of thread stacks under the usual 8 MiB memlock limit (see
//! docs/architecture.md, "Facts we verified"), so only the pages that hold tokens are locked.
//! Each token gets its own anonymous mapping: unlocking one token can then never unlock
//! another's page. If the memlock limit
//! refuses, the page is still used and still wiped, and `status` reports that locking did not
//! take hold. Wrapped in `secrecy::SecretBox`, so the only way in is `expose_secret()`.

use std::ffi::c_void;
use std::num::NonZeroUsize;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicBool, Ordering};

use secrecy::SecretBox;
use zeroize::Zeroize;

/// Whether every secret mapping made so far could be `mlock`ed (false from the first refusal
/// on; `status` reports it through [`locking_works`]).
static ALL_LOCKED: AtomicBool = AtomicBool::new(true);

/// Whether every secret mapping made so far could be `mlock`ed.
pub(crate) fn locking_works() -> bool {
    ALL_LOCKED.load(Ordering::Relaxed)
}

/// Bytes in an anonymous mapping of their own (whole pages; locked when the memlock limit
/// allows, kept out of forks and core dumps on Linux), wiped on drop. Reach them through
/// [`SecretBox`] only.
pub struct LockedBytes {
    ptr: NonNull<u8>,
    len: usize,
    cap: usize,
    locked: bool,
}

// SAFETY: the mapping is owned exclusively by this value; access is through &self/&mut self.
unsafe impl Send for LockedBytes {}
// SAFETY: shared access only reads.
unsafe impl Sync for LockedBytes {}

impl LockedBytes {
    /// Copy `data` into a fresh locked page. The caller wipes its own copy.
    pub fn new(data: &[u8]) -> std::io::Result<Self> {
        let page = nix::unistd::sysconf(nix::unistd::SysconfVar::PAGE_SIZE)
            .ok()
            .flatten()
            .map(|p| p as usize)
            .unwrap_or(4096);
        let cap = data.len().div_ceil(page).max(1) * page;
        let len_nz = NonZeroUsize::new(cap).ok_or_else(|| std::io::Error::other("zero size"))?;
        use nix::sys::mman::{MapFlags, ProtFlags, mmap_anonymous};
        // SAFETY: a fresh private anonymous mapping; no existing memory is affected.
        let base = unsafe {
            mmap_anonymous(
                None,
                len_nz,
                ProtFlags::PROT_READ | ProtFlags::PROT_WRITE,
                MapFlags::MAP_PRIVATE,
            )
        }
        .map_err(std::io::Error::from)?;
        // SAFETY: base..base+cap is our mapping.
        let locked = unsafe { nix::sys::mman::mlock(base, cap) }.is_ok();
        if !locked {
            ALL_LOCKED.store(false, Ordering::Relaxed);
        }
        #[cfg(any(target_os = "linux", target_os = "android"))]
        {
            // Keep the page out of a forked child's memory.
            // SAFETY: advising our own mapping.
            let _ = unsafe {
                nix::sys::mman::madvise(base, cap, nix::sys::mman::MmapAdvise::MADV_DONTFORK)
            };
            // SAFETY: as above; MADV_DONTDUMP keeps it out of core dumps too.
            let _ = unsafe {
                nix::sys::mman::madvise(base, cap, nix::sys::mman::MmapAdvise::MADV_DONTDUMP)
            };
        }
        let ptr = base.cast::<u8>();
        // SAFETY: the mapping is cap >= data.len() bytes, writable, and does not overlap data.
        unsafe { std::ptr::copy_nonoverlapping(data.as_ptr(), ptr.as_ptr(), data.len()) };
        Ok(LockedBytes {
            ptr,
            len: data.len(),
            cap,
            locked,
        })
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        // SAFETY: ptr..ptr+len was written in new() and lives until drop.
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// The bytes as text (tokens are ASCII; anything else yields "").
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self.as_bytes()).unwrap_or("")
    }
}

impl Zeroize for LockedBytes {
    fn zeroize(&mut self) {
        // SAFETY: the whole mapping is ours and writable.
        let all = unsafe { std::slice::from_raw_parts_mut(self.ptr.as_ptr(), self.cap) };
        all.zeroize();
        self.len = 0;
    }
}

impl Drop for LockedBytes {
    fn drop(&mut self) {
        self.zeroize();
        let base: NonNull<c_void> = self.ptr.cast();
        // SAFETY: unlocking and unmapping the mapping made in new(); nothing refers to it now.
        unsafe {
            if self.locked {
                let _ = nix::sys::mman::munlock(base, self.cap);
            }
            let _ = nix::sys::mman::munmap(base, self.cap);
        }
    }
}

impl std::fmt::Debug for LockedBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LockedBytes([REDACTED])")
    }
}

/// A token held in locked, wiped memory.
pub(crate) type SecretToken = SecretBox<LockedBytes>;

/// Move a token into locked memory.
pub(crate) fn secret_token(data: &[u8]) -> std::io::Result<SecretToken> {
    Ok(SecretBox::new(Box::new(LockedBytes::new(data)?)))
}

/// The token systemd passed as credential `name` (`LoadCredential=`/`SetCredentialEncrypted=`,
/// a file in `$CREDENTIALS_DIRECTORY`), trimmed, in locked memory; `None` when there is no such
/// directory or file, or it is empty or not UTF-8. The file's bytes are wiped once copied.
pub(crate) fn systemd_credential(name: &str) -> Option<SecretToken> {
    let dir = std::env::var_os("CREDENTIALS_DIRECTORY")?;
    let bytes = zeroize::Zeroizing::new(std::fs::read(std::path::Path::new(&dir).join(name)).ok()?);
    let trimmed = std::str::from_utf8(&bytes).ok()?.trim();
    if trimmed.is_empty() {
        return None;
    }
    secret_token(trimmed.as_bytes()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    #[test]
    fn holds_and_redacts() {
        let t = secret_token(b"gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s").expect("page");
        assert_eq!(
            t.expose_secret().as_str(),
            "gXKhaUdTwsmM1ESz4Q6cakpvtXMAEom7AAw04_xB39s"
        );
        assert!(!format!("{t:?}").contains("gXKh"));
    }
}
