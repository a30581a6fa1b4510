//! One attempt's process between `fork` and `exec` (in the spawner), and
//! the request it is made from.

use super::wire::{self, In};
use super::zygote::errno;
use std::ffi::CString;
use std::os::fd::RawFd;

/// Sets the child up and execs; on failure writes the stage and `errno`
/// to the report pipe and exits.
///
/// # Safety
/// Call only in the child of a fork: it uses nothing but system calls.
pub(super) unsafe fn child(
    req: &Request,
    argv: &[*const libc::c_char],
    envp: &[*const libc::c_char],
    (stdout, stderr, report): (RawFd, RawFd, RawFd),
    spawner: libc::pid_t,
) -> ! {
    // SAFETY (whole function): async-signal-safe system calls on memory
    // built before the fork; the process ends in execve or _exit.
    unsafe {
        let fail = |stage: u8| -> ! {
            let e = errno().to_le_bytes();
            let msg = [stage, e[0], e[1], e[2], e[3]];
            libc::write(report, msg.as_ptr() as *const libc::c_void, msg.len());
            libc::_exit(127)
        };
        if libc::setpgid(0, 0) != 0 {
            fail(wire::STAGE_SETUP);
        }
        // Die with the spawner (it kills attempts when the executor goes).
        if libc::prctl(
            libc::PR_SET_PDEATHSIG,
            libc::SIGKILL as libc::c_ulong,
            0,
            0,
            0,
        ) != 0
        {
            fail(wire::STAGE_SETUP);
        }
        if libc::getppid() != spawner {
            libc::_exit(127);
        }
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0
            || libc::dup2(null, 0) < 0
            || libc::dup2(stdout, 1) < 0
            || libc::dup2(stderr, 2) < 0
        {
            fail(wire::STAGE_SETUP);
        }
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        if let Some((uid, gid, groups)) = &req.user {
            // Groups first: only root may set them, and only until setuid.
            if libc::setgroups(groups.len(), groups.as_ptr()) != 0
                || libc::setgid(*gid) != 0
                || libc::setuid(*uid) != 0
            {
                fail(wire::STAGE_USER);
            }
        }
        if libc::chdir(req.cwd.as_ptr()) != 0 {
            fail(wire::STAGE_CHDIR);
        }
        // Like execvp: try each place the program may be; a permission
        // error anywhere is what is reported if none runs.
        let mut denied = false;
        for program in &req.programs {
            libc::execve(program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            match errno() {
                libc::ENOENT | libc::ENOTDIR => {}
                libc::EACCES => denied = true,
                _ => fail(wire::STAGE_EXEC),
            }
        }
        if denied {
            *libc::__errno_location() = libc::EACCES;
        }
        fail(wire::STAGE_EXEC)
    }
}

/// A null-terminated array of pointers into `strings`.
pub(super) fn pointers(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}

/// A spawn request as the spawner holds it: C strings, ready for `exec`.
pub(super) struct Request {
    pub(super) id: u64,
    cwd: CString,
    /// Where the program may be, in order (one entry for a path).
    programs: Vec<CString>,
    pub(super) argv: Vec<CString>,
    /// `NAME=value` entries.
    pub(super) env: Vec<CString>,
    /// uid, gid and groups to switch to.
    user: Option<(libc::uid_t, libc::gid_t, Vec<libc::gid_t>)>,
}

impl Request {
    /// The fields after the tag (see `Spawner::spawn` for their order).
    /// `None` if malformed, or if a string holds a NUL byte.
    pub(super) fn read(r: &mut In<'_>) -> Option<Request> {
        let c = |b: &[u8]| CString::new(b).ok();
        let all = |items: Vec<&[u8]>| items.into_iter().map(c).collect::<Option<Vec<_>>>();
        let id = r.u64()?;
        let cwd = c(r.bytes()?)?;
        let programs = all(r.list()?)?;
        let argv = all(r.list()?)?;
        let env = all(r.list()?)?;
        let user = match r.u8()? {
            0 => None,
            _ => {
                let (uid, gid) = (r.u32()?, r.u32()?);
                let groups = r
                    .bytes()?
                    .chunks_exact(4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Some((uid, gid, groups))
            }
        };
        Some(Request {
            id,
            cwd,
            programs,
            argv,
            env,
            user,
        })
    }
}
