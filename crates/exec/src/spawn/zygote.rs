//! The spawner's process: a child forked from the executor's program
//! (early, while that is small) that only starts attempts and reaps them.
//!
//! It runs one loop on one thread: requests arrive on its socket, `SIGCHLD`
//! on a signalfd. For a spawn request it forks, and the child sets itself
//! up (its own process group, death with the spawner, standard streams from
//! the descriptors that came with the request, the user, the working
//! directory) and `exec`s; a close-on-exec pipe says whether the `exec`
//! happened. An attempt that exits is reported at once but reaped only when
//! the executor asks (after it has killed what the attempt left in its
//! group), so its pid cannot be reused in between. When the executor goes
//! away (end of file on the socket) it kills every attempt's group, reaps
//! them and exits.
//!
//! It was forked from a program that may have had other threads: it
//! allocates (glibc's `malloc` is safe after `fork`) but takes no lock the
//! Rust standard library shares between threads (no printing, no
//! `std::env`, no `std::process`), and never unwinds.

use super::child::{child, pointers, Request};
use super::wire::{self, In, Inbox, Out};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The socket's descriptor in the spawner.
const SOCK: RawFd = 3;

type Pid = libc::pid_t;

/// Becomes the spawner: never returns. `sock` is its end of the socket.
///
/// # Safety
/// Call only in the child of a `fork`, where nothing else runs.
pub(super) unsafe fn run(sock: RawFd) -> ! {
    // SAFETY: the caller's promise: this process is ours alone.
    let code = match unsafe { prepare(sock) } {
        Ok(sigfd) => match (Zygote {
            // SAFETY: SOCK was set up by `prepare` and is owned here.
            sock: unsafe { OwnedFd::from_raw_fd(SOCK) },
            sigfd,
            // SAFETY: getpid has no preconditions.
            me: unsafe { libc::getpid() },
            running: Vec::new(),
            ended: Vec::new(),
        })
        .serve()
        {
            Ok(()) => 0,
            Err(_) => 1,
        },
        Err(_) => 2,
    };
    // SAFETY: _exit ends the process without running the parent's atexit
    // handlers or destructors, which belong to the parent.
    unsafe { libc::_exit(code) }
}

/// Moves the socket to [`SOCK`], closes every other descriptor inherited
/// from the parent (a database lock among them) and points its standard
/// streams at `/dev/null`, resets signal handlers,
/// leaves the parent's process group (so a Ctrl-C at the terminal does not
/// reach it), and returns a signalfd for `SIGCHLD`.
unsafe fn prepare(sock: RawFd) -> std::io::Result<OwnedFd> {
    let check = |rc: libc::c_int| {
        if rc < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(rc)
        }
    };
    // SAFETY (whole block): plain system calls on descriptors and signal
    // state that this process alone owns.
    unsafe {
        if sock != SOCK {
            check(libc::dup2(sock, SOCK))?;
        }
        check(libc::fcntl(SOCK, libc::F_SETFD, libc::FD_CLOEXEC))?;
        close_from(SOCK + 1);
        // Nor the program's standard streams (a pipe someone reads to its end).
        let null = check(libc::open(c"/dev/null".as_ptr(), libc::O_RDWR))?;
        for fd in 0..3 {
            check(libc::dup2(null, fd))?;
        }
        if null > 2 {
            libc::close(null);
        }
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::signal(sig, libc::SIG_DFL);
            }
        }
        check(libc::setpgid(0, 0))?;
        libc::prctl(
            libc::PR_SET_NAME,
            c"tessera-spawn".as_ptr() as libc::c_ulong,
            0,
            0,
            0,
        );
        let mut mask: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut mask);
        libc::sigaddset(&mut mask, libc::SIGCHLD);
        check(libc::sigprocmask(
            libc::SIG_SETMASK,
            &mask,
            std::ptr::null_mut(),
        ))?;
        let fd = check(libc::signalfd(
            -1,
            &mask,
            libc::SFD_CLOEXEC | libc::SFD_NONBLOCK,
        ))?;
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Closes every descriptor from `first` up.
unsafe fn close_from(first: RawFd) {
    // SAFETY: closing descriptors this process owns.
    unsafe {
        if libc::close_range(first as libc::c_uint, libc::c_uint::MAX, 0) == 0 {
            return;
        }
        // Kernels before 5.9: close them one by one, up to the limit.
        let mut limit: libc::rlimit = std::mem::zeroed();
        let max = if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 {
            limit.rlim_cur.min(1 << 20) as RawFd
        } else {
            1024
        };
        for fd in first..max {
            libc::close(fd);
        }
    }
}

struct Zygote {
    sock: OwnedFd,
    sigfd: OwnedFd,
    me: Pid,
    /// Attempts still running.
    running: Vec<Pid>,
    /// Attempts reported as exited, not yet reaped.
    ended: Vec<Pid>,
}

impl Zygote {
    fn serve(mut self) -> std::io::Result<()> {
        self.send(Out::new(wire::READY))?;
        let mut inbox = Inbox::new();
        let result = self.serve_until_closed(&mut inbox);
        self.kill_all();
        result
    }

    fn serve_until_closed(&mut self, inbox: &mut Inbox) -> std::io::Result<()> {
        loop {
            let mut fds = [
                libc::pollfd {
                    fd: self.sock.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
                libc::pollfd {
                    fd: self.sigfd.as_raw_fd(),
                    events: libc::POLLIN,
                    revents: 0,
                },
            ];
            // SAFETY: `fds` is a valid array of two pollfds.
            if unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) } < 0 {
                let e = std::io::Error::last_os_error();
                if e.kind() == std::io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if fds[1].revents != 0 {
                self.drain_signals();
                self.report_exits()?;
            }
            if fds[0].revents != 0 {
                if !inbox.fill(&self.sock)? {
                    return Ok(()); // the executor is gone
                }
                while let Some(msg) = inbox.next()? {
                    self.handle(&msg, inbox)?;
                }
            }
        }
    }

    fn drain_signals(&self) {
        let mut buf = [0u8; 128 * 8];
        // SAFETY: reading into a local buffer from our non-blocking signalfd.
        while unsafe {
            libc::read(
                self.sigfd.as_raw_fd(),
                buf.as_mut_ptr() as *mut libc::c_void,
                buf.len(),
            )
        } > 0
        {}
    }

    fn send(&self, msg: Out) -> std::io::Result<()> {
        wire::send(self.sock.as_raw_fd(), &msg.finish(), &[])
    }

    /// Reports each running attempt that has exited (without reaping it).
    fn report_exits(&mut self) -> std::io::Result<()> {
        let mut i = 0;
        while i < self.running.len() {
            let pid = self.running[i];
            // SAFETY: an all-zero siginfo_t is a valid out-parameter.
            let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
            // SAFETY: waitid writes only into `info`.
            let rc = unsafe {
                libc::waitid(
                    libc::P_PID,
                    pid as libc::id_t,
                    &mut info,
                    libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
                )
            };
            // SAFETY: si_pid is valid to read after waitid (0 if none exited).
            let exited = rc != 0 || unsafe { info.si_pid() } != 0;
            if exited {
                self.running.swap_remove(i);
                self.ended.push(pid);
                self.send(Out::new(wire::EXITED).u32(pid as u32))?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn handle(&mut self, msg: &[u8], inbox: &mut Inbox) -> std::io::Result<()> {
        let bad = || std::io::Error::other("a malformed request");
        let mut r = In::new(msg);
        match r.u8().ok_or_else(bad)? {
            wire::SPAWN => {
                let req = Request::read(&mut r).ok_or_else(bad)?;
                let (Some(stdout), Some(stderr)) = (inbox.fds.pop_front(), inbox.fds.pop_front())
                else {
                    return Err(bad());
                };
                let reply = match self.spawn(&req, &stdout, &stderr) {
                    Ok(pid) => {
                        self.running.push(pid);
                        Out::new(wire::STARTED).u64(req.id).u32(pid as u32)
                    }
                    Err((stage, errno)) => Out::new(wire::FAILED).u64(req.id).u8(stage).i32(errno),
                };
                // The attempt holds its own copies now.
                drop((stdout, stderr));
                self.send(reply)
            }
            wire::REAP => {
                let pid = r.u32().ok_or_else(bad)? as Pid;
                let Some(i) = self.ended.iter().position(|&p| p == pid) else {
                    return Err(bad());
                };
                self.ended.swap_remove(i);
                let mut status: libc::c_int = 0;
                // SAFETY: a zeroed rusage is a valid out-parameter.
                let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
                let errno = loop {
                    // SAFETY: wait4 writes only into `status` and `ru`.
                    if unsafe { libc::wait4(pid, &mut status, 0, &mut ru) } == pid {
                        break 0;
                    }
                    let e = std::io::Error::last_os_error();
                    if e.kind() != std::io::ErrorKind::Interrupted {
                        break e.raw_os_error().unwrap_or(libc::ECHILD);
                    }
                };
                let us = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
                self.send(
                    Out::new(wire::REAPED)
                        .u32(pid as u32)
                        .i32(errno)
                        .i32(status)
                        .u64(us(ru.ru_utime) + us(ru.ru_stime))
                        .u64(ru.ru_maxrss.max(0) as u64),
                )
            }
            _ => Err(bad()),
        }
    }

    /// Forks and execs one attempt; its pid, or where it failed and why.
    fn spawn(&self, req: &Request, stdout: &OwnedFd, stderr: &OwnedFd) -> Result<Pid, (u8, i32)> {
        let mut pipe = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two descriptors into `pipe`.
        if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
            return Err((wire::STAGE_SETUP, errno()));
        }
        // SAFETY: both were just created and are owned here.
        let (report_rx, report_tx) =
            unsafe { (OwnedFd::from_raw_fd(pipe[0]), OwnedFd::from_raw_fd(pipe[1])) };
        // Everything the child needs is built before the fork.
        let argv = pointers(&req.argv);
        let envp = pointers(&req.env);
        let fds = (
            stdout.as_raw_fd(),
            stderr.as_raw_fd(),
            report_tx.as_raw_fd(),
        );
        // SAFETY: this process has one thread; the child only makes system
        // calls on memory prepared above, then execs or exits.
        let pid = unsafe { libc::fork() };
        if pid == 0 {
            // SAFETY: in the child of the fork above.
            unsafe { child(req, &argv, &envp, fds, self.me) }
        }
        if pid < 0 {
            return Err((wire::STAGE_SETUP, errno()));
        }
        drop(report_tx);
        let mut report = [0u8; 5];
        let n = loop {
            // SAFETY: reading into a local buffer.
            let n = unsafe {
                libc::read(
                    report_rx.as_raw_fd(),
                    report.as_mut_ptr() as *mut libc::c_void,
                    5,
                )
            };
            if n >= 0 || errno() != libc::EINTR {
                break n;
            }
        };
        if n == 0 {
            return Ok(pid); // the pipe closed at exec
        }
        // It failed before exec and exited: reap it.
        // SAFETY: waitpid on our own child.
        while unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) } < 0 && errno() == libc::EINTR {
        }
        if n == 5 {
            Err((
                report[0],
                i32::from_le_bytes([report[1], report[2], report[3], report[4]]),
            ))
        } else {
            Err((wire::STAGE_SETUP, libc::EIO))
        }
    }

    /// Kills every attempt's group and reaps what it started.
    fn kill_all(&mut self) {
        for &pid in self.running.iter().chain(&self.ended) {
            // SAFETY: signals a process group we started; no memory involved.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
        }
        for pid in self.running.drain(..).chain(self.ended.drain(..)) {
            // SAFETY: waitpid on our own child.
            while unsafe { libc::waitpid(pid, std::ptr::null_mut(), 0) } < 0
                && errno() == libc::EINTR
            {}
        }
    }
}

pub(super) fn errno() -> i32 {
    std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
}
