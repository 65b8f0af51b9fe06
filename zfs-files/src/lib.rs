//! How the toolkit creates, replaces, locks and maps files, in one place.
//!
//! Every file any crate writes goes through [`Output`]: a new temporary file beside the
//! target (`O_CREAT|O_EXCL|O_NOFOLLOW`, mode 0600 while it is written, locked by its writer),
//! fsynced, given its final mode, renamed over the target and made durable by an fsync of
//! the directory. Nothing is ever written through a symlink, into a file someone else
//! created, into a device or FIFO, or into one of the command's inputs ([`FileId`] compares
//! files by device and inode, so hard links and symlinks are seen through). A temporary
//! whose writer died is recognised by the next run and removed ([`remove_stale_temps`]).
//!
//! Inputs are opened with [`open_input`] (non-blocking, regular files only: a FIFO cannot
//! hang us) and mapped with [`Map`], whose pages are guarded: if the file shrinks while it
//! is mapped, reading a lost page yields zeros instead of SIGBUS and [`Map::check_intact`]
//! reports the shrink, so every reader can fail with a message instead of crashing.
//!
//! Directory trees are built the same way by [`NewDir`] (private, synced, renamed whole),
//! and symlinks are switched atomically by [`replace_symlink`].
//!
//! Records read at scattered positions are asked for together, ahead of the reads that
//! need them ([`will_read`]); a large output is written behind ([`Output::write_behind`]):
//! handed to the disk as it comes, and out of the page cache once written.
//!
//! [`Lock`] takes `flock` locks with a bounded wait and names the holder recorded in the
//! lock file; lock files are opened without following symlinks.

mod advice;
mod dir;
mod error;
mod identity;
mod input;
mod lock;
mod map;
mod mode;
mod output;
mod paths;
mod sigbus;
mod stream;
mod temp;

pub use advice::will_read;
pub use dir::{exchange, remove_stale_temp_dirs, replace_symlink, NewDir};
pub use error::{Error, Result};
pub use identity::FileId;
pub use input::{open_companion, open_input, regular_len};
pub use lock::{is_held, Lock, LockOptions};
pub use map::{
    cached_pages, prefetch_mapped, random_access_mapped, release_mapped, shrunk_files, Map,
};
pub use mode::{current_umask, mode_of, permissions_of};
pub use output::{write_file, write_synced, Output, OutputSpec};
pub use paths::{parent_dir, save_free_trn, sync_dir, with_suffix};
pub use stream::{memory_limit, Stream};
pub use temp::{is_temp_of, remove_stale_temps, temp_name};
