//! Running attempts as another user: who that user is (resolved once, when
//! the executor is configured), whether this process may become it, and
//! handing it the directories it works in.

use crate::error::os_reason;
use crate::ExecError;
use std::ffi::{CStr, CString};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// The user a [`LocalExecutor`](crate::LocalExecutor) runs attempts as:
/// its ids and supplementary groups as the user database had them when it
/// was [`resolve`](RunAs::resolve)d. Each attempt's process calls
/// `setgroups`, `setgid` and `setuid` (in that order) before `exec`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunAs {
    /// The user's name, for messages.
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (the primary group among them).
    pub groups: Vec<u32>,
}

impl RunAs {
    /// A user by its numbers alone (a project's task user, which has no
    /// entry in the user database): group `gid`, no other groups.
    pub fn numeric(uid: u32, gid: u32) -> RunAs {
        RunAs {
            name: format!("uid {uid}"),
            uid,
            gid,
            groups: vec![gid],
        }
    }

    /// Looks up `user` (a name, or a numeric uid) in the user database and
    /// checks that this process can become it: it runs as root, or already
    /// as that user (then attempts need no switch). Either failure is one
    /// line naming the user and what to do.
    pub fn resolve(user: &str) -> Result<RunAs, ExecError> {
        let fail = |reason: String| ExecError::User {
            user: user.to_string(),
            reason,
        };
        let entry = lookup_name(user)
            .map_err(|e| fail(format!("looking it up failed: {}", os_reason(&e))))?;
        let entry = match (entry, user.parse::<u32>()) {
            (Some(e), _) => e,
            (None, Ok(uid)) => lookup_uid(uid)
                .map_err(|e| fail(format!("looking it up failed: {}", os_reason(&e))))?
                .ok_or_else(|| fail(format!("no user has uid {uid} on this machine")))?,
            (None, Err(_)) => {
                return Err(fail(
                    "no such user on this machine; name an existing user (or uid) in run_as".into(),
                ))
            }
        };
        let run_as = RunAs {
            groups: groups_of(&entry.0, entry.2)
                .map_err(|e| fail(format!("reading its groups failed: {}", os_reason(&e))))?,
            name: entry.0,
            uid: entry.1,
            gid: entry.2,
        };
        // SAFETY: geteuid has no preconditions and touches no memory.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 && euid != run_as.uid {
            return Err(fail(format!(
                "tessera runs as uid {euid}, not root, so it cannot switch to uid {}; \
                 start it as root or remove run_as",
                run_as.uid
            )));
        }
        Ok(run_as)
    }

    /// Whether attempts must switch users: this process is not already it.
    pub(crate) fn switches(&self) -> bool {
        // SAFETY: geteuid has no preconditions and touches no memory.
        unsafe { libc::geteuid() != self.uid }
    }

    /// Checks that the user can reach `dir` (search permission on it and
    /// every directory above it, by mode bits; ACLs are not consulted), so
    /// attempts can enter their working directories beneath it.
    pub fn check_reach(&self, dir: &Path) -> Result<(), ExecError> {
        for d in dir.ancestors().filter(|d| !d.as_os_str().is_empty()) {
            let Ok(meta) = std::fs::metadata(d) else {
                continue; // not made yet: made later, searchable (see `make_dirs`)
            };
            let bit = if meta.uid() == self.uid {
                0o100
            } else if self.groups.contains(&meta.gid()) || meta.gid() == self.gid {
                0o010
            } else {
                0o001
            };
            if self.uid != 0 && meta.mode() & bit == 0 {
                return Err(ExecError::User {
                    user: self.name.clone(),
                    reason: format!(
                        "it cannot reach {}: {} (mode {:o}) is closed to it; \
                         choose a directory it can reach, or open that one with chmod o+x",
                        dir.display(),
                        d.display(),
                        meta.mode() & 0o7777
                    ),
                });
            }
        }
        Ok(())
    }

    /// Makes `dir` the user's own (not following a symbolic link): for the
    /// directories its attempts write in. The executor does this for each
    /// attempt's working directory; whoever prepares others (an encode's
    /// directories) calls it too.
    pub fn give(&self, dir: &Path) -> std::io::Result<()> {
        std::os::unix::fs::lchown(dir, Some(self.uid), Some(self.gid))
    }
}

/// The uids projects' tasks run as when the server runs as root: project
/// `N` runs as uid `first + N` with group id `first + N` (no supplementary
/// groups), the jobs of no project as `first`. Each project is then its
/// own user: its folders are closed to every other project's tasks, and
/// none of them is root or the server's own user. The numbers need no
/// entry in the user database; a range that overlaps one is refused, so no
/// project ever shares an identity with a real account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TaskUids {
    pub first: u32,
    pub last: u32,
}

impl TaskUids {
    /// The default range: far above the ids distributions hand out
    /// (1000-60000, nobody at 65534) and below those of user namespaces'
    /// usual subordinate ranges (from 100000 in steps of 65536, so a
    /// conflict is possible there: check `/etc/subuid`).
    pub const DEFAULT: TaskUids = TaskUids {
        first: 200_000,
        last: 299_999,
    };
    /// The lowest uid a range may start at: below are system accounts.
    pub const LOWEST: u32 = 10_000;

    /// Reads `FIRST-LAST` and checks the range (see [`Self::check`]).
    pub fn parse(text: &str) -> Result<TaskUids, String> {
        let bad = || format!("task uids {text:?}: write them as FIRST-LAST, e.g. 200000-299999");
        let (a, b) = text.trim().split_once('-').ok_or_else(bad)?;
        let strict = |s: &str| {
            let s = s.trim();
            (!s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()))
                .then(|| s.parse::<u32>().ok())
                .flatten()
        };
        let uids = TaskUids {
            first: strict(a).ok_or_else(bad)?,
            last: strict(b).ok_or_else(bad)?,
        };
        uids.check()?;
        Ok(uids)
    }

    /// A range must start at [`Self::LOWEST`] or above, end after it
    /// starts, stay below 2^31 (some tools treat uids as signed), and not
    /// contain the uid of any account in the user database.
    pub fn check(&self) -> Result<(), String> {
        let range = format!("{}-{}", self.first, self.last);
        if self.first < Self::LOWEST {
            return Err(format!(
                "task uids {range}: start at {} or above; lower uids belong to system accounts",
                Self::LOWEST
            ));
        }
        if self.last < self.first || self.last >= 1 << 31 {
            return Err(format!(
                "task uids {range}: the range must end after it starts and below 2147483648"
            ));
        }
        if let Some((name, uid)) = accounts()
            .into_iter()
            .find(|(_, uid)| (self.first..=self.last).contains(uid))
        {
            return Err(format!(
                "task uids {range}: uid {uid} is the account {name}; choose a range no account uses"
            ));
        }
        Ok(())
    }

    /// The user a project's tasks run as, or why it has none (the range is
    /// too small for its id).
    pub fn user_of(&self, project: Option<i64>) -> Result<RunAs, String> {
        let offset = project.unwrap_or(0);
        let uid = u32::try_from(offset)
            .ok()
            .and_then(|o| self.first.checked_add(o))
            .filter(|uid| *uid <= self.last)
            .ok_or_else(|| {
                format!(
                    "project {offset} has no uid in the task uid range {}-{}; \
                     widen it (--task-uids) so it covers every project id",
                    self.first, self.last
                )
            })?;
        Ok(RunAs::numeric(uid, uid))
    }
}

/// Every account of the user database: name and uid.
fn accounts() -> Vec<(String, u32)> {
    let mut out = Vec::new();
    // SAFETY: setpwent/getpwent/endpwent walk the user database; each entry
    // is read (name copied) before the next call replaces it. Only called
    // at start-up, before threads that could walk it concurrently.
    unsafe {
        libc::setpwent();
        loop {
            let pw = libc::getpwent();
            if pw.is_null() {
                break;
            }
            let name = CStr::from_ptr((*pw).pw_name).to_string_lossy().into_owned();
            out.push((name, (*pw).pw_uid));
        }
        libc::endpwent();
    }
    out
}

impl RunAs {
    /// Makes `dir` (and what is missing above it) a directory the user may
    /// add files to but this process keeps: owned by this process, in the
    /// user's group, mode `1770`. The sticky bit means the user cannot
    /// rename or remove what this process made there (say, a `logs`
    /// directory it later writes into). For a job's directory, where its
    /// tasks leave files for each other.
    pub fn share(&self, dir: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::PermissionsExt;
        make_dirs(dir)?;
        std::os::unix::fs::lchown(dir, None, Some(self.gid))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o1770))
    }
}

/// Makes `dir` this process's alone (mode `0700`), creating it if it is
/// missing; something else in its place (a symbolic link a task left
/// there, a file) is refused rather than followed. For a job's `logs`.
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(std::io::Error::other(format!(
                "{} is not a directory (a link or a file is in its place)",
                dir.display()
            )))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => std::fs::create_dir(dir)?,
        Err(e) => return Err(e),
    }
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
}

/// Creates `dir` and the directories above it that are missing, each
/// searchable by everyone (`0755` whatever the umask), so a task running as
/// another user can reach its working directory.
pub(crate) fn make_dirs(dir: &Path) -> std::io::Result<()> {
    tessera_confine::make_plain(dir)?;
    if dir.is_dir() {
        Ok(())
    } else {
        std::fs::create_dir(dir) // says why (a file is in the way)
    }
}

/// A user database entry: name, uid, primary gid.
type Entry = (String, u32, u32);

fn lookup_name(name: &str) -> std::io::Result<Option<Entry>> {
    let Ok(cname) = CString::new(name) else {
        return Ok(None);
    };
    // SAFETY: getpwnam_r writes the entry into `pwd` and its strings into
    // `buf` (of `len` bytes); `lookup` keeps both alive while it reads them.
    lookup(|pwd, buf, len, out| unsafe { libc::getpwnam_r(cname.as_ptr(), pwd, buf, len, out) })
}

fn lookup_uid(uid: u32) -> std::io::Result<Option<Entry>> {
    // SAFETY: as in `lookup_name`.
    lookup(|pwd, buf, len, out| unsafe { libc::getpwuid_r(uid, pwd, buf, len, out) })
}

/// Calls a `getpw*_r` function with a buffer that grows until the entry fits.
fn lookup(
    call: impl Fn(
        *mut libc::passwd,
        *mut libc::c_char,
        libc::size_t,
        *mut *mut libc::passwd,
    ) -> libc::c_int,
) -> std::io::Result<Option<Entry>> {
    let mut len = 1024;
    loop {
        let mut buf = vec![0 as libc::c_char; len];
        // SAFETY: an all-zero passwd is a valid out-parameter.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = call(&mut pwd, buf.as_mut_ptr(), len, &mut out);
        if rc == libc::ERANGE && len < 1 << 20 {
            len *= 4;
            continue;
        }
        if out.is_null() {
            // Not found is rc 0 (or one of the "no entry" codes some libcs use).
            return match rc {
                0 | libc::ENOENT | libc::ESRCH | libc::EBADF | libc::EPERM => Ok(None),
                e => Err(std::io::Error::from_raw_os_error(e)),
            };
        }
        // SAFETY: on success pw_name points at a NUL-terminated string in `buf`.
        let name = unsafe { CStr::from_ptr(pwd.pw_name) }
            .to_string_lossy()
            .into_owned();
        return Ok(Some((name, pwd.pw_uid, pwd.pw_gid)));
    }
}

/// The user's groups (its primary group included), by `getgrouplist`.
fn groups_of(name: &str, gid: u32) -> std::io::Result<Vec<u32>> {
    let cname = CString::new(name).map_err(|_| std::io::ErrorKind::InvalidInput)?;
    let mut n: libc::c_int = 16;
    loop {
        let mut groups = vec![0 as libc::gid_t; n as usize];
        let asked = n;
        // SAFETY: `groups` has room for `n` entries; getgrouplist writes at
        // most that many and sets `n` to how many there are.
        let rc = unsafe { libc::getgrouplist(cname.as_ptr(), gid, groups.as_mut_ptr(), &mut n) };
        if rc >= 0 {
            groups.truncate(n.max(0) as usize);
            return Ok(groups);
        }
        if n <= asked {
            n = asked.saturating_mul(2); // some libcs do not say how many
        }
        if n > 65_536 {
            return Err(std::io::Error::other("more than 65536 groups"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_by_name_and_by_uid_with_its_groups() {
        let by_name = RunAs::resolve("root");
        let by_uid = RunAs::resolve("0");
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            let err = by_name.unwrap_err().to_string();
            assert!(err.contains("not root"), "{err}");
            return;
        }
        let root = by_name.unwrap();
        assert_eq!((root.uid, root.gid), (0, 0));
        assert!(root.groups.contains(&0), "{root:?}");
        assert_eq!(by_uid.unwrap(), root);
        assert!(!root.switches());
    }

    #[test]
    fn unknown_users_are_refused_in_one_line() {
        let err = RunAs::resolve("no-such-user-tessera").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot run tasks as \"no-such-user-tessera\": no such user on this machine; \
             name an existing user (or uid) in run_as"
        );
        let err = RunAs::resolve("4000000000").unwrap_err();
        assert_eq!(
            err.to_string(),
            "cannot run tasks as \"4000000000\": no user has uid 4000000000 on this machine"
        );
        assert!(RunAs::resolve("a\0b").is_err());
    }

    #[test]
    fn task_uids_give_each_project_its_own_user_and_refuse_bad_ranges() {
        let uids = TaskUids::parse("200000-200010").unwrap();
        let p3 = uids.user_of(Some(3)).unwrap();
        assert_eq!(
            (p3.uid, p3.gid, p3.groups.as_slice()),
            (200_003, 200_003, &[200_003][..])
        );
        assert_eq!(uids.user_of(None).unwrap().uid, 200_000);
        let err = uids.user_of(Some(11)).unwrap_err();
        assert!(err.contains("project 11 has no uid"), "{err}");
        assert!(uids.user_of(Some(-1)).is_err());
        for bad in [
            "",
            "200000",
            "+200000-200010",
            "200010-200000",
            "0-100",
            "999-2000",
            "200000-4294967295",
        ] {
            assert!(TaskUids::parse(bad).is_err(), "{bad:?} was accepted");
        }
        // root (0) is an account, so is nobody (65534): a range over them is refused.
        let err = TaskUids {
            first: 60_000,
            last: 70_000,
        }
        .check()
        .unwrap_err();
        assert!(err.contains("nobody") || err.contains("65534"), "{err}");
        TaskUids::DEFAULT.check().unwrap();
    }

    #[test]
    fn made_directories_are_searchable_whatever_the_umask() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a/b/c");
        // A strict umask would leave them closed to other users. (It is
        // process-wide; the other tests here do not mind it.)
        // SAFETY: umask only swaps the process's file mode mask.
        let old = unsafe { libc::umask(0o077) };
        let made = make_dirs(&deep);
        // SAFETY: as above.
        unsafe { libc::umask(old) };
        made.unwrap();
        for d in ["a", "a/b", "a/b/c"] {
            let mode = std::fs::metadata(dir.path().join(d))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o755, "{d}");
        }
        make_dirs(&deep).unwrap(); // already there: fine
        std::fs::write(dir.path().join("file"), "").unwrap();
        assert!(make_dirs(&dir.path().join("file")).is_err());
    }
}
