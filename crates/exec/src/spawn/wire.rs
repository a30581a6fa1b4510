//! What travels between the executor and its spawner over their socket:
//! length-prefixed messages, with the descriptors a spawn request hands
//! over passed as `SCM_RIGHTS` beside its first bytes.

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// The longest message either side accepts (a task's script may be large,
/// its environment too).
pub(super) const MAX_MESSAGE: usize = 256 << 20;

/// How many descriptors one `recvmsg` can take (a spawn request has two).
const MAX_FDS: usize = 8;

/// Executor to spawner.
pub(super) const SPAWN: u8 = 1;
pub(super) const REAP: u8 = 2;
/// Spawner to executor.
pub(super) const STARTED: u8 = 1;
pub(super) const FAILED: u8 = 2;
pub(super) const EXITED: u8 = 3;
pub(super) const REAPED: u8 = 4;
/// Spawner to executor, once, first: it is set up and listening.
pub(super) const READY: u8 = 5;

/// Where in starting a process a failure happened (with `FAILED`).
pub(super) const STAGE_SETUP: u8 = 0;
pub(super) const STAGE_USER: u8 = 1;
pub(super) const STAGE_CHDIR: u8 = 2;
pub(super) const STAGE_EXEC: u8 = 3;

/// Builds one message.
pub(super) struct Out(Vec<u8>);

impl Out {
    pub(super) fn new(tag: u8) -> Self {
        Out(vec![0, 0, 0, 0, tag])
    }
    pub(super) fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub(super) fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn i32(self, v: i32) -> Self {
        self.u32(v as u32)
    }
    pub(super) fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub(super) fn bytes(self, v: &[u8]) -> Self {
        let mut s = self.u32(v.len() as u32);
        s.0.extend_from_slice(v);
        s
    }
    pub(super) fn list<'a>(self, items: impl ExactSizeIterator<Item = &'a [u8]>) -> Self {
        let mut s = self.u32(items.len() as u32);
        for item in items {
            s = s.bytes(item);
        }
        s
    }
    /// The finished message, its length in front.
    pub(super) fn finish(mut self) -> Vec<u8> {
        let len = (self.0.len() - 4) as u32;
        self.0[..4].copy_from_slice(&len.to_le_bytes());
        self.0
    }
}

/// Reads one message's fields; every getter fails (`None`) past its end.
pub(super) struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    pub(super) fn new(body: &'a [u8]) -> Self {
        In(body)
    }
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
    pub(super) fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    pub(super) fn u32(&mut self) -> Option<u32> {
        self.take(4)?.try_into().ok().map(u32::from_le_bytes)
    }
    pub(super) fn i32(&mut self) -> Option<i32> {
        self.u32().map(|v| v as i32)
    }
    pub(super) fn u64(&mut self) -> Option<u64> {
        self.take(8)?.try_into().ok().map(u64::from_le_bytes)
    }
    pub(super) fn bytes(&mut self) -> Option<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    pub(super) fn list(&mut self) -> Option<Vec<&'a [u8]>> {
        let n = self.u32()? as usize;
        // Each item takes at least its 4-byte length: a bad count fails here.
        if n > self.0.len() / 4 {
            return None;
        }
        (0..n).map(|_| self.bytes()).collect()
    }
}

/// Sends a whole message, `fds` riding with its first bytes. Never raises
/// `SIGPIPE`: a closed peer is an `EPIPE` error.
pub(super) fn send(sock: RawFd, msg: &[u8], fds: &[RawFd]) -> std::io::Result<()> {
    let mut sent = 0;
    if !fds.is_empty() {
        let mut iov = libc::iovec {
            iov_base: msg.as_ptr() as *mut libc::c_void,
            iov_len: msg.len(),
        };
        let data_len = std::mem::size_of_val(fds) as u32;
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE(data_len) } as usize;
        let mut control = vec![0u8; space];
        // SAFETY: an all-zero msghdr is valid; the pointers set below stay
        // alive (iov, control) until sendmsg returns.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        hdr.msg_controllen = space as _;
        // SAFETY: `control` has room for one header with `fds` as its data
        // (CMSG_SPACE above), so CMSG_FIRSTHDR is non-null and CMSG_DATA
        // points at `data_len` writable bytes.
        unsafe {
            let cmsg = libc::CMSG_FIRSTHDR(&hdr);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(data_len) as _;
            std::ptr::copy_nonoverlapping(
                fds.as_ptr() as *const u8,
                libc::CMSG_DATA(cmsg),
                data_len as usize,
            );
        }
        sent = loop {
            // SAFETY: `hdr` describes valid buffers (see above).
            let n = unsafe { libc::sendmsg(sock, &hdr, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                break n as usize;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
    }
    while sent < msg.len() {
        let rest = &msg[sent..];
        // SAFETY: `rest` is a valid buffer of `rest.len()` bytes.
        let n = unsafe {
            libc::send(
                sock,
                rest.as_ptr() as *const libc::c_void,
                rest.len(),
                libc::MSG_NOSIGNAL,
            )
        };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        sent += n as usize;
    }
    Ok(())
}

/// The receiving end of a socket: bytes in, whole messages out, with the
/// descriptors that arrived (close-on-exec) queued in arrival order.
pub(super) struct Inbox {
    buf: Vec<u8>,
    start: usize,
    pub(super) fds: VecDeque<OwnedFd>,
}

impl Inbox {
    pub(super) fn new() -> Self {
        Inbox {
            buf: Vec::new(),
            start: 0,
            fds: VecDeque::new(),
        }
    }

    /// Reads what is there (blocking until something is); `Ok(false)` at
    /// end of file.
    pub(super) fn fill(&mut self, sock: &impl AsRawFd) -> std::io::Result<bool> {
        if self.start == self.buf.len() {
            self.buf.clear();
            if self.buf.capacity() > 1 << 20 {
                // A large request came and went: give its memory back, as
                // processes forked from here start with what is resident.
                self.buf = Vec::new();
            }
        } else {
            self.buf.drain(..self.start);
        }
        self.start = 0;
        let mut chunk = [0u8; 64 * 1024];
        let mut iov = libc::iovec {
            iov_base: chunk.as_mut_ptr() as *mut libc::c_void,
            iov_len: chunk.len(),
        };
        // SAFETY: CMSG_SPACE is a pure size computation.
        let space = unsafe { libc::CMSG_SPACE((MAX_FDS * 4) as u32) } as usize;
        let mut control = [0u8; 256];
        let space = space.min(control.len());
        // SAFETY: an all-zero msghdr is valid; its pointers stay alive below.
        let mut hdr: libc::msghdr = unsafe { std::mem::zeroed() };
        hdr.msg_iov = &mut iov;
        hdr.msg_iovlen = 1;
        hdr.msg_control = control.as_mut_ptr() as *mut libc::c_void;
        hdr.msg_controllen = space as _;
        let n = loop {
            // SAFETY: `hdr` describes valid, writable buffers.
            let n = unsafe { libc::recvmsg(sock.as_raw_fd(), &mut hdr, libc::MSG_CMSG_CLOEXEC) };
            if n >= 0 {
                break n as usize;
            }
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        };
        // SAFETY: the kernel filled `control` up to msg_controllen; the
        // CMSG_* macros walk only within it.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&hdr);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                    let data = libc::CMSG_DATA(cmsg);
                    let len = (*cmsg).cmsg_len as usize - libc::CMSG_LEN(0) as usize;
                    for i in 0..len / 4 {
                        let fd = std::ptr::read_unaligned((data as *const RawFd).add(i));
                        self.fds.push_back(OwnedFd::from_raw_fd(fd));
                    }
                }
                cmsg = libc::CMSG_NXTHDR(&hdr, cmsg);
            }
        }
        if n == 0 {
            return Ok(false);
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(true)
    }

    /// The next whole message's body (after its length), if it is all
    /// here. A length beyond [`MAX_MESSAGE`] is an error.
    pub(super) fn next(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        let have = &self.buf[self.start..];
        let Some(len) = have.get(..4) else {
            return Ok(None);
        };
        let len = u32::from_le_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len > MAX_MESSAGE {
            return Err(std::io::Error::other(format!(
                "a message of {len} bytes is too long"
            )));
        }
        if have.len() < 4 + len {
            return Ok(None);
        }
        let body = have[4..4 + len].to_vec();
        self.start += 4 + len;
        Ok(Some(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_and_reading_past_the_end_fails() {
        let msg = Out::new(SPAWN)
            .u8(7)
            .u32(70_000)
            .i32(-3)
            .u64(u64::MAX - 1)
            .bytes(b"cwd")
            .list([b"a".as_slice(), b"", b"ccc"].into_iter())
            .finish();
        assert_eq!(
            u32::from_le_bytes(msg[..4].try_into().unwrap()) as usize,
            msg.len() - 4
        );
        let mut r = In::new(&msg[4..]);
        assert_eq!(r.u8(), Some(SPAWN));
        assert_eq!(r.u8(), Some(7));
        assert_eq!(r.u32(), Some(70_000));
        assert_eq!(r.i32(), Some(-3));
        assert_eq!(r.u64(), Some(u64::MAX - 1));
        assert_eq!(r.bytes(), Some(b"cwd".as_slice()));
        assert_eq!(
            r.list(),
            Some(vec![b"a".as_slice(), b"".as_slice(), b"ccc".as_slice()])
        );
        assert_eq!(r.u8(), None);
        // A count larger than what follows fails instead of allocating.
        let bad = Out::new(REAP).u32(u32::MAX).finish();
        let mut r = In::new(&bad[4..]);
        assert_eq!(r.u8(), Some(REAP));
        assert_eq!(r.list(), None);
    }

    #[test]
    fn messages_and_descriptors_cross_a_socket_in_order() {
        use std::os::unix::net::UnixStream;
        let (a, b) = UnixStream::pair().unwrap();
        let file = tempfile::tempfile().unwrap();
        let big = vec![b'x'; 300_000]; // larger than one read and the socket buffer
        let first = Out::new(SPAWN).bytes(&big).finish();
        let second = Out::new(REAP).u32(42).finish();
        let writer = std::thread::spawn(move || {
            send(a.as_raw_fd(), &first, &[file.as_raw_fd(), file.as_raw_fd()]).unwrap();
            send(a.as_raw_fd(), &second, &[]).unwrap();
        });
        let mut inbox = Inbox::new();
        let mut got = Vec::new();
        while got.len() < 2 {
            while let Some(m) = inbox.next().unwrap() {
                got.push(m);
            }
            if got.len() < 2 {
                assert!(inbox.fill(&b).unwrap());
            }
        }
        writer.join().unwrap();
        assert_eq!(In::new(&got[0]).u8(), Some(SPAWN));
        assert_eq!(
            In::new(&got[0][1..]).bytes().map(<[u8]>::len),
            Some(300_000)
        );
        assert_eq!(got[1], Out::new(REAP).u32(42).finish()[4..]);
        assert_eq!(inbox.fds.len(), 2);
        let too_long = (MAX_MESSAGE as u32 + 1).to_le_bytes();
        let mut inbox = Inbox::new();
        inbox.buf.extend_from_slice(&too_long);
        assert!(inbox.next().is_err());
    }
}
