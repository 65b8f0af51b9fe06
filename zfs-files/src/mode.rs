//! File modes: a copy of a database is never more open than the database.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result};

/// The permission bits (`0o777`, without set-id and sticky bits) of the file at `path`,
/// following symlinks.
pub fn mode_of(path: &Path) -> Result<u32> {
    let m = std::fs::metadata(path).map_err(|e| Error::io("reading the mode of", path, e))?;
    Ok(permissions_of(&m))
}

/// The permission bits of `m`, without set-id and sticky bits.
pub fn permissions_of(m: &std::fs::Metadata) -> u32 {
    m.permissions().mode() & 0o777
}

/// The process's umask, read without changing it (from `/proc/self/status` where the kernel
/// shows it; otherwise set and restored at once).
pub fn current_umask() -> u32 {
    if let Ok(s) = std::fs::read_to_string("/proc/self/status") {
        if let Some(v) = s
            .lines()
            .find_map(|l| l.strip_prefix("Umask:"))
            .and_then(|v| u32::from_str_radix(v.trim(), 8).ok())
        {
            return v;
        }
    }
    // SAFETY: umask only swaps the process's mask; it is restored immediately.
    #[allow(unsafe_code)]
    unsafe {
        let old = libc::umask(0o022);
        libc::umask(old);
        old
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mode_is_read_and_umask_is_sane() {
        let d = tempfile::tempdir().expect("tempdir");
        let f = d.path().join("f");
        std::fs::write(&f, b"").expect("write");
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o4640)).expect("chmod");
        assert_eq!(mode_of(&f).expect("mode"), 0o640);
        assert!(current_umask() <= 0o777);
    }
}
