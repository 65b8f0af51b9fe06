//! Opening an input file: regular files only, without ever blocking in `open`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use crate::error::{Error, Result};

/// Opens `path` for reading. A FIFO, device, socket or directory is refused with
/// [`Error::NotRegular`] (the open is non-blocking, so a FIFO with no writer cannot hang
/// us); symlinks to regular files are followed.
pub fn open_input(path: &Path) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::EISDIR) | Some(libc::ENODEV) | Some(libc::ENXIO) => {
                match std::fs::metadata(path) {
                    Ok(m) => Error::NotRegular {
                        path: path.to_path_buf(),
                        kind: kind_of(&m.file_type()),
                    },
                    Err(_) => Error::io("opening", path, e),
                }
            }
            _ => Error::io("opening", path, e),
        })?;
    let meta = file
        .metadata()
        .map_err(|e| Error::io("reading the metadata of", path, e))?;
    if !meta.is_file() {
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&meta.file_type()),
        });
    }
    // Regular files ignore O_NONBLOCK, but clear it so nothing downstream is surprised.
    clear_nonblock(&file);
    Ok(file)
}

/// Opens `path`, a file saved beside `of` to spare work on it (never needed for a
/// result), when it can be trusted as much as `of`: a regular file reached without
/// following a symlink, owned by `of`'s owner and writable by no one who cannot write `of`.
/// `None` otherwise, or when it cannot be opened.
pub fn open_companion(path: &Path, of: &Path) -> Option<File> {
    use std::os::unix::fs::MetadataExt;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .ok()?;
    let (m, o) = (file.metadata().ok()?, std::fs::metadata(of).ok()?);
    let writable_by_others = m.mode() & 0o022 & !(o.mode() & 0o022) != 0;
    if !m.is_file() || m.uid() != o.uid() || writable_by_others {
        return None;
    }
    clear_nonblock(&file);
    Some(file)
}

/// The length of the regular file at `path` (following symlinks), or [`Error::NotRegular`].
pub fn regular_len(path: &Path) -> Result<u64> {
    let m = std::fs::metadata(path).map_err(|e| Error::io("reading the metadata of", path, e))?;
    if !m.is_file() {
        return Err(Error::NotRegular {
            path: path.to_path_buf(),
            kind: kind_of(&m.file_type()),
        });
    }
    Ok(m.len())
}

fn clear_nonblock(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl with F_GETFL/F_SETFL on a descriptor we own; no memory is involved.
    #[allow(unsafe_code)]
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
        }
    }
}

/// Words for a file type that is not a regular file.
pub(crate) fn kind_of(t: &std::fs::FileType) -> &'static str {
    if t.is_dir() {
        "a directory"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_symlink() {
        "a symlink"
    } else if t.is_file() {
        "a regular file"
    } else {
        "a special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        let d = tempfile::tempdir().expect("tempdir");
        let e = open_input(d.path()).expect_err("directory");
        assert!(
            e.to_string()
                .ends_with("is a directory, not a regular file"),
            "{e}"
        );
        let fifo = d.path().join("fifo");
        let c = std::ffi::CString::new(fifo.as_os_str().as_encoded_bytes()).expect("path");
        // SAFETY: mkfifo with a valid NUL-terminated path.
        #[allow(unsafe_code)]
        let rc = unsafe { libc::mkfifo(c.as_ptr(), 0o600) };
        assert_eq!(rc, 0);
        // Opening a FIFO with no writer would block without O_NONBLOCK.
        let e = open_input(&fifo).expect_err("fifo");
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        let e = open_input(Path::new("/dev/zero")).expect_err("device");
        assert!(e.to_string().contains("character device"), "{e}");
        let f = d.path().join("f");
        std::fs::write(&f, b"FS30").expect("write");
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&f, &link).expect("symlink");
        open_input(&link).expect("a symlink to a regular file is an input");
        assert_eq!(regular_len(&link).expect("len"), 4);
        assert!(regular_len(&fifo).is_err());
    }
}
