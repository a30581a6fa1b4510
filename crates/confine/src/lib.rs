//! `tessera-confine`: file access on behalf of an attempt, kept inside the
//! attempt's [`Reach`] even when the files' owners are hostile.
//!
//! The server (as root) and its workers read and write files for attempts
//! whose folders a task can change: a member's task may leave a symbolic
//! link where the server expects a file (`chunk.nut -> /etc/shadow`), a
//! link where it expects a folder (`tasks/x/out -> /etc/cron.d`), or a FIFO
//! that would make a read wait forever. Every function here takes the
//! attempt's reach and an absolute plain path, and:
//!
//! * refuses a path outside the reach (lexically, [`Reach::allows`]);
//! * starts from the grant that covers the path (opened normally: the
//!   operator's and the server's own directories are trusted) and walks
//!   the rest one component at a time with `openat(O_NOFOLLOW)`, so no
//!   symbolic link is ever followed below a grant and nothing can lead out
//!   of it, whatever is swapped in meanwhile;
//! * opens only regular files for reading (`O_NONBLOCK` while opening, so
//!   a FIFO cannot hold the caller), and creates files `0600` or as asked.
//!
//! ```
//! use tessera_types::{Grant, Reach};
//! let dir = tempfile::tempdir().unwrap();
//! let reach = Reach::new(vec![Grant::write(dir.path())]);
//! std::fs::write(dir.path().join("a"), b"hi").unwrap();
//! std::os::unix::fs::symlink("/etc/passwd", dir.path().join("b")).unwrap();
//! assert_eq!(tessera_confine::read(&reach, &dir.path().join("a")).unwrap(), b"hi");
//! assert!(tessera_confine::read(&reach, &dir.path().join("b")).is_err());
//! assert!(tessera_confine::read(&reach, std::path::Path::new("/etc/passwd")).is_err());
//! ```

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use tessera_types::{Grant, OutOfReach, Reach};

/// Why a confined operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum ConfineError {
    #[error(transparent)]
    OutOfReach(#[from] OutOfReach),
    #[error("{}: {what}", .path.display())]
    Refused { path: PathBuf, what: String },
    #[error("{}: {source}", .path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl ConfineError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        // A link where a component should be shows up as ELOOP (last
        // component) or ENOTDIR (a link opened as a directory): say so.
        match source.raw_os_error() {
            Some(libc::ELOOP) | Some(libc::ENOTDIR) => ConfineError::Refused {
                path: path.to_path_buf(),
                what: "a symbolic link (or something not a folder) is on its way; \
                       files are only opened through real folders"
                    .into(),
            },
            _ => ConfineError::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }

    /// Whether the file (or a folder on its way) does not exist.
    pub fn is_not_found(&self) -> bool {
        matches!(self, ConfineError::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound)
    }
}

pub type Result<T, E = ConfineError> = std::result::Result<T, E>;

/// The folder to start from and the components below it, for `path`
/// inside `reach`. A file grant starts from its folder with just its name.
fn split<'p>(reach: &Reach, path: &'p Path, write: bool) -> Result<(PathBuf, Vec<&'p OsStr>)> {
    reach.check(path, write)?;
    let grant: &Grant = reach.grant_of(path).expect("checked above");
    let start = if path == grant.path {
        grant.path.parent().unwrap_or(Path::new("/"))
    } else {
        grant.path.as_path()
    };
    let rest = path.strip_prefix(start).expect("a grant covers its path");
    let parts: Vec<&OsStr> = rest
        .components()
        .map(|c| match c {
            Component::Normal(n) => Ok(n),
            _ => Err(ConfineError::Refused {
                path: path.to_path_buf(),
                what: "give an absolute path without . or .. components".into(),
            }),
        })
        .collect::<Result<_>>()?;
    Ok((start.to_path_buf(), parts))
}

fn cstr(path: &Path, s: &OsStr) -> Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| ConfineError::Refused {
        path: path.to_path_buf(),
        what: "a NUL byte in the path".into(),
    })
}

/// `openat(dir, name, flags)`, an owned descriptor.
fn openat(
    dir: RawFd,
    name: &CString,
    flags: libc::c_int,
    mode: libc::mode_t,
) -> std::io::Result<OwnedFd> {
    // SAFETY: `name` is a NUL-terminated string that outlives the call; the
    // returned descriptor is new and owned here.
    let fd = unsafe {
        libc::openat(
            dir,
            name.as_ptr(),
            flags | libc::O_CLOEXEC,
            mode as libc::c_uint,
        )
    };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: just opened.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Who new folders and files belong to: `Some((uid, gid))` gives them
/// (and a folder asked for by [`create_dir_all`]) to that user, `None`
/// leaves them this process's.
pub type Owner = Option<(u32, u32)>;

fn give(fd: &impl std::os::fd::AsFd, path: &Path, owner: Owner) -> Result<()> {
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::fchown(fd, Some(uid), Some(gid))
            .map_err(|e| ConfineError::io(path, e))?;
    }
    Ok(())
}

/// Opens the folder `parts` below `start`, never following a link; with
/// `make`, creates what is missing (mode 0755: the attempt's user must be
/// able to pass through folders made for it), given to `owner`.
fn walk(path: &Path, start: &Path, parts: &[&OsStr], make: bool, owner: Owner) -> Result<OwnedFd> {
    let root = CString::new(start.as_os_str().as_bytes()).map_err(|_| ConfineError::Refused {
        path: path.to_path_buf(),
        what: "a NUL byte in the path".into(),
    })?;
    let dir_flags = libc::O_RDONLY | libc::O_DIRECTORY;
    let mut dir = match openat(libc::AT_FDCWD, &root, dir_flags, 0) {
        // The grant's own folder (a job's, made on its first attempt) and
        // the folders above it are the server's: made plainly, 0755.
        Err(e) if make && e.kind() == std::io::ErrorKind::NotFound => {
            make_plain(start).map_err(|e| ConfineError::io(start, e))?;
            openat(libc::AT_FDCWD, &root, dir_flags, 0)
        }
        other => other,
    }
    .map_err(|e| ConfineError::io(start, e))?;
    for part in parts {
        let name = cstr(path, part)?;
        let next = match openat(dir.as_raw_fd(), &name, dir_flags | libc::O_NOFOLLOW, 0) {
            Err(e) if make && e.kind() == std::io::ErrorKind::NotFound => {
                // SAFETY: `name` outlives the call; `dir` is an open directory.
                let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), 0o755) };
                let made = rc == 0;
                if !made {
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::AlreadyExists {
                        return Err(ConfineError::io(path, e));
                    }
                }
                let opened = openat(dir.as_raw_fd(), &name, dir_flags | libc::O_NOFOLLOW, 0);
                if let (true, Ok(fd)) = (made, &opened) {
                    // 0755 whatever the umask (a server may run with 077).
                    std::fs::File::from(fd.try_clone().map_err(|e| ConfineError::io(path, e))?)
                        .set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
                        .map_err(|e| ConfineError::io(path, e))?;
                    give(fd, path, owner)?;
                }
                opened
            }
            other => other,
        };
        dir = next.map_err(|e| ConfineError::io(path, e))?;
    }
    Ok(dir)
}

/// Makes `dir` and the missing folders above it by their plain paths, each
/// 0755 whatever the umask (an attempt's user passes through them): for
/// folders no task can change (a grant's own folder and those above it).
pub fn make_plain(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
    for d in missing.into_iter().rev() {
        match std::fs::create_dir(d) {
            Ok(()) => std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755))?,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The folder holding `path` (opened confined) and the file's name in it.
fn parent_of(
    reach: &Reach,
    path: &Path,
    write: bool,
    make: Option<Owner>,
) -> Result<(OwnedFd, CString)> {
    let (start, parts) = split(reach, path, write)?;
    let Some((last, folders)) = parts.split_last() else {
        return Err(ConfineError::Refused {
            path: path.to_path_buf(),
            what: "a granted folder itself is not a file".into(),
        });
    };
    let dir = walk(path, &start, folders, make.is_some(), make.flatten())?;
    Ok((dir, cstr(path, last)?))
}

/// `fd` as a file if it is a regular one (opened `O_NONBLOCK`, so a FIFO
/// did not wait for a peer), with `O_NONBLOCK` cleared for its readers
/// and writers (other flags, `O_APPEND`, kept).
fn regular(fd: OwnedFd, path: &Path) -> Result<File> {
    let file = File::from(fd);
    let meta = file.metadata().map_err(|e| ConfineError::io(path, e))?;
    if !meta.is_file() {
        return Err(ConfineError::Refused {
            path: path.to_path_buf(),
            what: "not a regular file".into(),
        });
    }
    // SAFETY: fcntl on a descriptor owned by `file`.
    unsafe {
        let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
    Ok(file)
}

/// Opens a regular file for reading. A link, a FIFO, a device or a folder
/// is refused (a FIFO without waiting for a writer).
pub fn open(reach: &Reach, path: &Path) -> Result<File> {
    let (dir, name) = parent_of(reach, path, false, None)?;
    let fd = openat(
        dir.as_raw_fd(),
        &name,
        libc::O_RDONLY | libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )
    .map_err(|e| ConfineError::io(path, e))?;
    regular(fd, path)
}

/// Reads a whole regular file (at most `MAX_READ` bytes: for small state
/// files such as `request.json`).
pub fn read(reach: &Reach, path: &Path) -> Result<Vec<u8>> {
    /// The largest state file read whole: plans of very long videos stay
    /// well under it, and a hostile file cannot make the reader allocate more.
    const MAX_READ: u64 = 64 << 20;
    let file = open(reach, path)?;
    let mut bytes = Vec::new();
    file.take(MAX_READ + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| ConfineError::io(path, e))?;
    if bytes.len() as u64 > MAX_READ {
        return Err(ConfineError::Refused {
            path: path.to_path_buf(),
            what: format!("larger than {MAX_READ} bytes; not a state file"),
        });
    }
    Ok(bytes)
}

/// How [`create`] opens a file for writing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Created if missing, emptied if there.
    Truncate,
    /// Created if missing, written at its end.
    Append,
}

/// How [`create`] makes a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Make {
    pub how: Write,
    /// Permission bits of a new file (before the umask).
    pub mode: u32,
    /// Who the file, and the folders made on its way, belong to.
    pub owner: Owner,
}

impl Make {
    /// An attempt's output: this process's, mode 0600.
    pub fn output(how: Write) -> Self {
        Make {
            how,
            mode: 0o600,
            owner: None,
        }
    }
}

/// Opens a file for writing (and reading back) inside the reach, creating
/// the folders on its way (never through a link) and the file if it is
/// missing, as `make` says. A link or anything but a regular file in its
/// place is refused.
pub fn create(reach: &Reach, path: &Path, make: Make) -> Result<File> {
    let (dir, name) = parent_of(reach, path, true, Some(make.owner))?;
    let flags = libc::O_RDWR
        | libc::O_CREAT
        | libc::O_NOFOLLOW
        | libc::O_NONBLOCK
        | libc::O_NOCTTY
        | match make.how {
            Write::Truncate => 0,
            Write::Append => libc::O_APPEND,
        };
    let fd =
        openat(dir.as_raw_fd(), &name, flags, make.mode).map_err(|e| ConfineError::io(path, e))?;
    let file = regular(fd, path)?;
    give(&file, path, make.owner)?;
    if make.how == Write::Truncate {
        file.set_len(0).map_err(|e| ConfineError::io(path, e))?;
    }
    Ok(file)
}

/// Renames `from` to `to`, two names in the same folder (a partial upload
/// into place). The target, if there, is replaced (a link there is
/// replaced, not followed).
pub fn rename_in_place(reach: &Reach, from: &Path, to: &Path) -> Result<()> {
    if from.parent() != to.parent() {
        return Err(ConfineError::Refused {
            path: to.to_path_buf(),
            what: "renames stay within one folder".into(),
        });
    }
    reach.check(from, true)?;
    let (dir, to_name) = parent_of(reach, to, true, None)?;
    let from_name = cstr(from, from.file_name().unwrap_or_default())?;
    // SAFETY: both names outlive the call; `dir` is an open directory.
    let rc = unsafe {
        libc::renameat(
            dir.as_raw_fd(),
            from_name.as_ptr(),
            dir.as_raw_fd(),
            to_name.as_ptr(),
        )
    };
    if rc != 0 {
        return Err(ConfineError::io(to, std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Removes a file (a link in its place is removed itself, never followed);
/// `false` if there was nothing to remove.
pub fn remove(reach: &Reach, path: &Path) -> Result<bool> {
    let (dir, name) = match parent_of(reach, path, true, None) {
        Ok(found) => found,
        Err(e) if e.is_not_found() => return Ok(false),
        Err(e) => return Err(e),
    };
    // SAFETY: `name` outlives the call; `dir` is an open directory.
    if unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), 0) } != 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::NotFound {
            return Ok(false);
        }
        return Err(ConfineError::io(path, e));
    }
    Ok(true)
}

/// Makes the folder `dir` and what is missing on its way inside the reach
/// (mode 0755), never through a link; with an `owner`, the folders it
/// makes are given to it. The folder, open (to give it with `fchown`).
pub fn create_dir_all(reach: &Reach, dir: &Path, owner: Owner) -> Result<File> {
    let (start, parts) = split(reach, dir, true)?;
    walk(dir, &start, &parts, true, owner).map(File::from)
}

/// Opens the folder `dir` inside the reach (for reading its entries
/// through `/proc/self/fd`, or as a base), never through a link.
pub fn open_dir(reach: &Reach, dir: &Path) -> Result<File> {
    let (start, parts) = split(reach, dir, false)?;
    walk(dir, &start, &parts, false, None).map(File::from)
}

/// The size and modification time (ns) of a regular file, as
/// `tessera_media::file_stamp` gives them, confined.
pub fn stamp(reach: &Reach, path: &Path) -> Result<(u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = open(reach, path)?
        .metadata()
        .map_err(|e| ConfineError::io(path, e))?;
    Ok((
        meta.len(),
        meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
    ))
}

#[cfg(test)]
mod tests;
