//! One scheduler per database: an advisory `flock` on `<database>.lock`,
//! held for the store's life and released by the kernel when the process
//! ends, however it ends. The file holds the holder's pid, for the message
//! the next one gets.

use crate::StoreError;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

pub(super) struct LockFile {
    _file: File,
}

impl LockFile {
    pub(super) fn acquire(db: &Path) -> Result<Self, StoreError> {
        let mut lock_path = OsString::from(db.as_os_str());
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let open_err = |e: std::io::Error| StoreError::Open {
            path: db.to_path_buf(),
            source: format!("lock file {}: {e}", lock_path.display()).into(),
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(open_err)?;
        // SAFETY: flock on a descriptor this function owns; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::EWOULDBLOCK) {
                let mut text = String::new();
                let holder = file
                    .read_to_string(&mut text)
                    .ok()
                    .and_then(|_| text.trim().parse().ok());
                return Err(StoreError::Locked {
                    path: db.to_path_buf(),
                    holder,
                });
            }
            return Err(open_err(e));
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .map_err(open_err)?;
        write!(file, "{}", std::process::id()).map_err(open_err)?;
        Ok(Self { _file: file })
    }
}
