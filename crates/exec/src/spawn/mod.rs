//! The spawner: a small helper process that starts attempts for a
//! [`LocalExecutor`](crate::LocalExecutor) and reaps them.
//!
//! Why: Linux folds the memory a process starts with into its peak
//! (`ru_maxrss`), and a child forked (or vforked, or posix_spawned) from a
//! big server starts with the server's. Children of a process that stayed
//! small report their own peak. So the program forks the spawner early
//! ([`Spawner::start`], first thing in `main`), and every attempt is forked
//! from it.
//!
//! ```text
//!  executor --spawn(argv, env, cwd, user, stdout+stderr fds)--> spawner --fork/exec--> attempt
//!           <--started(pid) / failed(stage, errno)--------------
//!           <--exited(pid)   (not reaped yet: the pid stays ours)
//!    kill the attempt's group, then --reap(pid)-->  wait4
//!           <--reaped(status, cpu, peak memory)------------------
//! ```
//!
//! The executor still signals attempts' process groups itself (kill,
//! suspend, resume). When the executor's last handle goes, the spawner sees
//! its socket close, kills every attempt and exits; when the spawner dies,
//! the executor fails the attempts it had and every later start with one
//! clear line.

mod child;
mod wire;
mod zygote;

use crate::error::os_reason;
use crate::{signal_name, ExecError, RunAs};
use std::collections::HashMap;
use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;
use wire::{In, Inbox, Out};

/// How long a start may take before the spawner is deemed stuck (and
/// killed, so that everything it holds fails instead of hanging).
const SPAWN_TIMEOUT: Duration = Duration::from_secs(60);

/// A handle to a running spawner process. Clones share it; the process
/// ends when the last clone is dropped (killing any attempt still running).
#[derive(Clone)]
pub struct Spawner {
    inner: Arc<Inner>,
}

struct Inner {
    pid: u32,
    /// Written under `sending` (one message at a time); read by the reader
    /// thread through a duplicate.
    sock: OwnedFd,
    sending: Mutex<()>,
    shared: Arc<Mutex<Shared>>,
    next_id: AtomicU64,
    /// The reader thread, which reaps the spawner once it has gone.
    reader: Option<std::thread::JoinHandle<()>>,
}

/// What the reader thread and the callers share.
#[derive(Default)]
struct Shared {
    /// Spawn requests waiting for their answer, by request id.
    pending: HashMap<u64, Sender<Answer>>,
    /// Attempts started and not yet reaped, by pid.
    children: HashMap<u32, Sender<ChildEvent>>,
    /// Why the spawner is gone, once it is.
    stopped: Option<String>,
}

/// The answer to a spawn request: the process, or the stage at which
/// starting it failed and the `errno`.
type Answer = Result<Child, (u8, i32)>;

/// An attempt's process, started by the spawner.
pub(crate) struct Child {
    pub(crate) pid: u32,
    /// `Exited`, then (after [`Spawner::reap`]) `Reaped`. Disconnects if
    /// the spawner dies first.
    pub(crate) events: Receiver<ChildEvent>,
}

#[derive(Debug)]
pub(crate) enum ChildEvent {
    /// It has exited; it stays a zombie (its pid and group id ours) until reaped.
    Exited,
    /// Reaped: `errno` 0 and its wait status and usage, or why `wait4` failed.
    Reaped {
        errno: i32,
        status: i32,
        cpu_us: u64,
        max_rss_kb: u64,
    },
}

/// One process to start.
pub(crate) struct SpawnRequest<'a> {
    /// `argv[0]` is the program, found like `execvp` does (on `PATH` from
    /// `env` when it has no slash).
    pub(crate) argv: Vec<OsString>,
    /// The whole environment.
    pub(crate) env: Vec<(OsString, OsString)>,
    pub(crate) cwd: &'a Path,
    pub(crate) user: Option<&'a RunAs>,
    pub(crate) stdout: RawFd,
    pub(crate) stderr: RawFd,
}

impl Spawner {
    /// Forks the spawner process. Call it early, before the program grows
    /// (attempts' peak memory includes what the spawner had resident when
    /// it was forked) and preferably before it starts threads.
    pub fn start() -> Result<Spawner, ExecError> {
        let fail = |what: &str, e: std::io::Error| ExecError::SpawnerStopped {
            reason: format!("it could not be started ({what}: {})", os_reason(&e)),
        };
        let mut fds = [0 as RawFd; 2];
        // SAFETY: socketpair writes two descriptors into `fds`.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(fail("socketpair", std::io::Error::last_os_error()));
        }
        // SAFETY: both were just created and are owned here.
        let (ours, theirs) =
            unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        // SAFETY: fork; the child calls only `zygote::run`, which never
        // returns (see its notes on what it may touch).
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the child of the fork just made.
            unsafe { zygote::run(theirs.as_raw_fd()) }
        }
        if pid < 0 {
            return Err(fail("fork", std::io::Error::last_os_error()));
        }
        drop(theirs);
        let pid = pid as u32;
        // Its first word says it is set up (in its own process group, with
        // none of this program's descriptors).
        let mut ready = [0u8; 5];
        let mut first = std::fs::File::from(ours.try_clone().map_err(|e| fail("dup", e))?);
        let heard = first.read_exact(&mut ready).and_then(|()| {
            let want = Out::new(wire::READY).finish();
            (ready[..] == want[..])
                .then_some(())
                .ok_or_else(|| std::io::Error::other("a wrong first word"))
        });
        if let Err(e) = heard {
            // SAFETY: signals and reaps our own child.
            unsafe {
                libc::kill(pid as libc::pid_t, libc::SIGKILL);
                libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
            }
            return Err(fail("setting up", e));
        }
        let shared = Arc::new(Mutex::new(Shared::default()));
        let reader = ours.try_clone().map_err(|e| fail("dup", e))?;
        let theirs = shared.clone();
        let spawned = std::thread::Builder::new()
            .name("tessera-spawner".into())
            .spawn(move || read_replies(reader, pid, theirs));
        let reader = match spawned {
            Ok(thread) => thread,
            Err(e) => {
                // Without a reader nothing can be started: stop it again.
                // SAFETY: signals and reaps our own child.
                unsafe {
                    libc::kill(pid as libc::pid_t, libc::SIGKILL);
                    libc::waitpid(pid as libc::pid_t, std::ptr::null_mut(), 0);
                }
                return Err(fail("thread", e));
            }
        };
        Ok(Spawner {
            inner: Arc::new(Inner {
                pid,
                sock: ours,
                sending: Mutex::new(()),
                shared,
                next_id: AtomicU64::new(1),
                reader: Some(reader),
            }),
        })
    }

    /// The spawner's process id.
    pub fn pid(&self) -> u32 {
        self.inner.pid
    }

    /// Why the spawner is gone, if it is.
    pub fn stopped(&self) -> Option<String> {
        lock(&self.inner.shared).stopped.clone()
    }

    /// Starts a process and waits until it has exec'd (or failed to).
    pub(crate) fn spawn(&self, req: &SpawnRequest<'_>) -> Result<Child, ExecError> {
        let program = req.argv.first().ok_or(ExecError::EmptyCommand)?;
        let refuse = |reason: String| ExecError::Spawn {
            program: program.to_string_lossy().into_owned(),
            reason,
        };
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let msg = encode(req, id).map_err(refuse)?;
        let (tx, rx) = mpsc::channel();
        {
            let mut shared = lock(&self.inner.shared);
            if let Some(reason) = &shared.stopped {
                return Err(ExecError::SpawnerStopped {
                    reason: reason.clone(),
                });
            }
            shared.pending.insert(id, tx);
        }
        if let Err(e) = self.send(&msg, &[req.stdout, req.stderr]) {
            lock(&self.inner.shared).pending.remove(&id);
            return Err(self.gone(format!("it could not be reached: {}", os_reason(&e))));
        }
        match rx.recv_timeout(SPAWN_TIMEOUT) {
            Ok(Ok(child)) => Ok(child),
            Ok(Err((stage, errno))) => Err(refuse(failure(stage, errno, req))),
            Err(RecvTimeoutError::Disconnected) => Err(self.gone("it stopped".into())),
            Err(RecvTimeoutError::Timeout) => {
                // Stuck: kill it, so what it holds fails rather than hangs.
                // SAFETY: signals our own child; the reader thread reaps it.
                unsafe { libc::kill(self.inner.pid as libc::pid_t, libc::SIGKILL) };
                Err(self.gone(format!(
                    "it did not answer within {} s and was killed",
                    SPAWN_TIMEOUT.as_secs()
                )))
            }
        }
    }

    /// Asks the spawner to reap an attempt that has exited (after its
    /// group has been dealt with). Its `Reaped` event follows, or its
    /// channel disconnects if the spawner is gone.
    pub(crate) fn reap(&self, pid: u32) {
        let _ = self.send(&Out::new(wire::REAP).u32(pid).finish(), &[]);
    }

    fn send(&self, msg: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
        let _one_at_a_time = self
            .inner
            .sending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        wire::send(self.inner.sock.as_raw_fd(), msg, fds)
    }

    /// The error for a spawner that is gone: its recorded end if the
    /// reader has seen it, else `fallback`.
    fn gone(&self, fallback: String) -> ExecError {
        ExecError::SpawnerStopped {
            reason: self.stopped().unwrap_or(fallback),
        }
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The spawner sees end of file, kills what runs, and exits; the
        // reader thread then sees end of file too and reaps it.
        // SAFETY: shutdown on a socket we own; no memory is involved.
        unsafe { libc::shutdown(self.sock.as_raw_fd(), libc::SHUT_RDWR) };
        // Wait for that reaping, so the spawner (and through it every
        // attempt) is counted in this program's children's cpu time
        // (`time`, getrusage) before it exits.
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

fn lock(shared: &Mutex<Shared>) -> MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A spawn request as bytes (the spawner's `Request::read` takes them apart).
fn encode(req: &SpawnRequest<'_>, id: u64) -> Result<Vec<u8>, String> {
    let nul = |what: &str| format!("its {what} holds a NUL byte");
    let has_nul = |s: &OsStr| s.as_bytes().contains(&0);
    if req.argv.iter().any(|a| has_nul(a)) {
        return Err(nul("command line"));
    }
    if req.cwd.as_os_str().as_bytes().contains(&0) {
        return Err(nul("working directory"));
    }
    let env: Vec<Vec<u8>> = req
        .env
        .iter()
        .filter(|(k, _)| !k.is_empty() && !k.as_bytes().contains(&b'='))
        .map(|(k, v)| [k.as_bytes(), b"=", v.as_bytes()].concat())
        .collect();
    if env.iter().any(|kv| kv.contains(&0)) {
        return Err(nul("environment"));
    }
    let programs = candidates(&req.argv[0], &req.env);
    let mut out = Out::new(wire::SPAWN)
        .u64(id)
        .bytes(req.cwd.as_os_str().as_bytes())
        .list(programs.iter().map(|p| p.as_os_str().as_bytes()))
        .list(req.argv.iter().map(|a| a.as_bytes()))
        .list(env.iter().map(Vec::as_slice));
    out = match req.user {
        Some(u) => {
            let groups: Vec<u8> = u.groups.iter().flat_map(|g| g.to_le_bytes()).collect();
            out.u8(1).u32(u.uid).u32(u.gid).bytes(&groups)
        }
        None => out.u8(0),
    };
    let msg = out.finish();
    if msg.len() > wire::MAX_MESSAGE {
        return Err(format!(
            "its command line and environment take {} MiB, more than the {} MiB allowed",
            msg.len() >> 20,
            wire::MAX_MESSAGE >> 20
        ));
    }
    Ok(msg)
}

/// Where `program` may be: itself if it holds a slash, else each directory
/// of `PATH` (from `env`, or the usual default) in turn.
fn candidates(program: &OsStr, env: &[(OsString, OsString)]) -> Vec<PathBuf> {
    if program.as_bytes().contains(&b'/') {
        return vec![PathBuf::from(program)];
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"), |(_, v)| {
            v.as_os_str()
        });
    path.as_bytes()
        .split(|&b| b == b':')
        .map(|dir| match dir {
            b"" => Path::new(".").join(program),
            dir => Path::new(OsStr::from_bytes(dir)).join(program),
        })
        .collect()
}

/// Why a start failed, from the stage and `errno` the spawner reported.
fn failure(stage: u8, errno: i32, req: &SpawnRequest<'_>) -> String {
    let reason = os_reason(&std::io::Error::from_raw_os_error(errno));
    match stage {
        wire::STAGE_CHDIR => format!(
            "cannot enter its working directory {}: {reason}",
            req.cwd.display()
        ),
        wire::STAGE_USER => {
            let user = req.user.map_or("?", |u| u.name.as_str());
            format!("cannot switch to user {user}: {reason}")
        }
        _ => reason,
    }
}

/// The reader thread: answers to callers, exits to waiters, until the
/// spawner's end; then records why, fails whoever waits, and reaps it.
fn read_replies(sock: OwnedFd, pid: u32, shared: Arc<Mutex<Shared>>) {
    let mut inbox = Inbox::new();
    let trouble = loop {
        match inbox.next() {
            Ok(Some(msg)) => match dispatch(&msg, &shared) {
                Some(()) => continue,
                None => break Some("it sent a malformed message".to_string()),
            },
            Ok(None) => {}
            Err(e) => break Some(e.to_string()),
        }
        match inbox.fill(&sock) {
            Ok(true) => {}
            Ok(false) => break None,
            Err(e) => break Some(format!("reading from it failed: {}", os_reason(&e))),
        }
    };
    if trouble.is_some() {
        // SAFETY: signals our own child, which is not reaped yet.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGKILL) };
    }
    let mut status = 0;
    // SAFETY: waitpid on our own child, writing only `status`.
    let reaped = loop {
        let rc = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, 0) };
        if rc >= 0 || std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            break rc == pid as libc::pid_t;
        }
    };
    let how = if !reaped {
        "it ended".to_string()
    } else if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        format!("it was killed by signal {sig} ({})", signal_name(sig))
    } else {
        format!("it exited with status {}", libc::WEXITSTATUS(status))
    };
    let reason = match trouble {
        Some(t) => format!("process {pid}: {t}"),
        None => format!("process {pid}: {how}"),
    };
    let mut shared = lock(&shared);
    shared.stopped = Some(reason);
    // Dropping the senders wakes every caller and waiter.
    shared.pending.clear();
    shared.children.clear();
}

/// Routes one message from the spawner; `None` if it is malformed.
fn dispatch(msg: &[u8], shared: &Mutex<Shared>) -> Option<()> {
    let mut r = In::new(msg);
    let mut shared = lock(shared);
    match r.u8()? {
        wire::STARTED => {
            let (id, pid) = (r.u64()?, r.u32()?);
            let (tx, events) = mpsc::channel();
            shared.children.insert(pid, tx);
            if let Some(caller) = shared.pending.remove(&id) {
                let _ = caller.send(Ok(Child { pid, events }));
            }
        }
        wire::FAILED => {
            let (id, stage, errno) = (r.u64()?, r.u8()?, r.i32()?);
            if let Some(caller) = shared.pending.remove(&id) {
                let _ = caller.send(Err((stage, errno)));
            }
        }
        wire::EXITED => {
            let pid = r.u32()?;
            if let Some(waiter) = shared.children.get(&pid) {
                let _ = waiter.send(ChildEvent::Exited);
            }
        }
        wire::REAPED => {
            let pid = r.u32()?;
            let event = ChildEvent::Reaped {
                errno: r.i32()?,
                status: r.i32()?,
                cpu_us: r.u64()?,
                max_rss_kb: r.u64()?,
            };
            if let Some(waiter) = shared.children.remove(&pid) {
                let _ = waiter.send(event);
            }
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_are_looked_up_on_the_path_of_their_environment() {
        let env = |path: &str| vec![(OsString::from("PATH"), OsString::from(path))];
        assert_eq!(
            candidates(OsStr::new("sh"), &env("/a:/b::/c")),
            ["/a/sh", "/b/sh", "./sh", "/c/sh"].map(PathBuf::from)
        );
        assert_eq!(
            candidates(OsStr::new("./x"), &env("/a")),
            [PathBuf::from("./x")]
        );
        assert_eq!(candidates(OsStr::new("sh"), &[]).len(), 3);
    }
}
