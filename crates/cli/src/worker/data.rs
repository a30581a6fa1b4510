//! `tessera worker --data http`: a worker with only its own disk. It keeps
//! its copies of the server's files at the same absolute paths, so the
//! attempts' arguments need no rewriting. Before an attempt runs, every
//! input in its file plan (sent with the lease) that is not here already
//! is fetched (resumed with `Range` after a break, sha256-checked, written
//! to a temporary name and renamed, its mtime set to the server's); after
//! it ends, the outputs it created or changed are sent back (resumed from
//! the server's count after a break) and declared outputs it removed are
//! removed there too. Fetched inputs stay as a cache (least recently used
//! ones are evicted when the disk runs low) and are reported as `holds`.

use super::Conn;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};
use tessera_media::{file_stamp, sha256_file};
use tessera_types::{AttemptNo, TaskRef};

/// Tries per file before the attempt is given up as lost.
const TRIES: u32 = 4;
/// Inputs at least this big are reported in `holds`.
const HOLD_MIN_BYTES: u64 = 1 << 20;
const MAX_HOLDS: usize = 1_000;

#[derive(Clone, Debug, Deserialize)]
pub(super) struct InputFile {
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    sha256: String,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "kind", content = "path", rename_all = "snake_case")]
pub(super) enum Output {
    File(PathBuf),
    Tree(PathBuf),
    Children(PathBuf),
}

/// An attempt's file plan, as the lease answer's `files`.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Plan {
    inputs: Vec<InputFile>,
    outputs: Vec<Output>,
    dirs: Vec<PathBuf>,
}

/// Why a transfer stopped.
#[derive(Debug)]
pub(super) enum Stop {
    /// The server no longer gives this worker the attempt (409).
    Fenced(String),
    /// The server, the network or this disk failed: the attempt is lost.
    Lost(String),
}

type Key = (TaskRef, AttemptNo);

/// Files present before the attempt ran: path -> (size, mtime).
pub(super) type Snapshot = HashMap<PathBuf, (u64, i64)>;

/// Time and bytes moved for one attempt.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Moved {
    pub ms: u64,
    pub bytes: u64,
}

struct Entry {
    size: u64,
    mtime_ns: i64,
    sha256: String,
    last_used: Instant,
    in_use: u32,
}

/// This worker's copies of the server's files.
pub(super) struct Cache {
    pub(super) data_dir: PathBuf,
    name: String,
    min_free_mb: u64,
    index: Mutex<HashMap<PathBuf, Entry>>,
    /// One fetch of a path at a time.
    fetching: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    low: AtomicBool,
}

/// A regular file's size and mtime (ns), if it is one.
fn stat(path: &Path) -> Option<(u64, i64)> {
    file_stamp(path).ok()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cache {
    pub(super) fn new(data_dir: PathBuf, name: String, min_free_mb: u64) -> Self {
        Self {
            data_dir,
            name,
            min_free_mb,
            index: Mutex::default(),
            fetching: Mutex::default(),
            low: AtomicBool::new(false),
        }
    }

    fn index(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Entry>> {
        self.index.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `holds` for the lease and heartbeat bodies.
    pub(super) fn holds(&self) -> Value {
        let index = self.index();
        let held: Vec<&PathBuf> = index
            .iter()
            .filter(|(_, e)| e.size >= HOLD_MIN_BYTES)
            .map(|(p, _)| p)
            .take(MAX_HOLDS)
            .collect();
        json!(held)
    }

    pub(super) fn disk_low(&self) -> bool {
        self.low.load(Ordering::SeqCst)
    }

    /// Checks the free disk; below `--min-free-mb` evicts cached inputs no
    /// running attempt needs (least recently used first). Whether it is
    /// still low.
    pub(super) fn check_disk(&self) -> bool {
        let free = || super::host::disk_free_mb(&self.data_dir);
        if free() < self.min_free_mb {
            let mut index = self.index();
            let mut idle: Vec<(Instant, PathBuf)> = index
                .iter()
                .filter(|(_, e)| e.in_use == 0)
                .map(|(p, e)| (e.last_used, p.clone()))
                .collect();
            idle.sort();
            for (_, p) in idle {
                if free() >= self.min_free_mb {
                    break;
                }
                let _ = std::fs::remove_file(&p);
                index.remove(&p);
                eprintln!("tessera worker: low disk: evicted {}", p.display());
            }
        }
        let low = free() < self.min_free_mb;
        if low != self.low.swap(low, Ordering::SeqCst) {
            eprintln!(
                "tessera worker: {} MiB free in {} ({} the --min-free-mb of {})",
                free(),
                self.data_dir.display(),
                if low { "below" } else { "back above" },
                self.min_free_mb
            );
        }
        low
    }

    /// Why an attempt that failed with `error` counts as lost to a full
    /// disk rather than as a task failure: its error names ENOSPC, or the
    /// data directory has less than 1 MiB free (the encoder may not even
    /// have been able to write its log). `None` otherwise.
    pub(super) fn full_disk_failure(&self, error: &str) -> Option<String> {
        let free = super::host::disk_free_mb(&self.data_dir);
        let enospc = error.contains("No space left on device");
        (enospc || free == 0).then(|| {
            format!(
                "worker {} ran out of disk: its disk is full ({free} MiB free in {}); the \
                 attempt failed with: {error}",
                self.name,
                self.data_dir.display()
            )
        })
    }

    /// Marks the inputs of a plan no longer in use by one attempt.
    pub(super) fn release(&self, plan: &Plan) {
        let mut index = self.index();
        for f in &plan.inputs {
            if let Some(e) = index.get_mut(&f.path) {
                e.in_use = e.in_use.saturating_sub(1);
            }
        }
    }

    /// Whether the local copy of `f` is good (index or a hash of it).
    fn have(&self, f: &InputFile) -> bool {
        let Some(local) = stat(&f.path) else {
            return false;
        };
        if local != (f.size, f.mtime_ns) {
            return false;
        }
        if let Some(e) = self.index().get(&f.path) {
            if (e.size, e.mtime_ns) == local {
                return e.sha256 == f.sha256;
            }
        }
        // Present from before this process started: trust only its hash.
        sha256_file(&f.path).is_ok_and(|s| s == f.sha256)
    }

    fn remember(&self, path: &Path, sha256: String, in_use: bool) {
        if let Some((size, mtime_ns)) = stat(path) {
            let mut index = self.index();
            let before = index.get(path).map_or(0, |e| e.in_use);
            index.insert(
                path.to_path_buf(),
                Entry {
                    size,
                    mtime_ns,
                    sha256,
                    last_used: Instant::now(),
                    in_use: before + u32::from(in_use),
                },
            );
        }
    }

    fn io_stop(&self, what: &str, path: &Path, e: &std::io::Error) -> Stop {
        let cause = if e.raw_os_error() == Some(libc::ENOSPC) {
            "its disk is full".to_string()
        } else {
            e.to_string()
        };
        Stop::Lost(format!(
            "worker {} could not {what} {}: {cause}",
            self.name,
            path.display()
        ))
    }
}

/// Talks to the file routes of one attempt.
pub(super) struct Transfer<'a> {
    pub conn: &'a Conn,
    pub cache: &'a Cache,
    pub id: String,
    pub key: Key,
}

impl<'a> Transfer<'a> {
    pub(super) fn new(conn: &'a Conn, cache: &'a Cache, id: String, key: Key) -> Self {
        Transfer {
            conn,
            cache,
            id,
            key,
        }
    }

    fn url(&self, tail: &str) -> String {
        let ((task, attempt), id) = (self.key, &self.id);
        format!(
            "{}/api/v1/workers/{id}/attempts/{}/{}/{attempt}/{tail}",
            self.conn.server, task.job.0, task.index
        )
    }

    fn request(&self, method: &str, tail: &str, path: &Path) -> ureq::Request {
        self.conn
            .files
            .request(method, &self.url(tail))
            .set("Authorization", &format!("Bearer {}", self.conn.token))
            .query("path", &path.to_string_lossy())
    }

    fn lost(&self, what: &str, path: &Path, cause: impl std::fmt::Display) -> Stop {
        Stop::Lost(format!(
            "worker {} could not {what} {}: {cause}",
            self.cache.name,
            path.display()
        ))
    }

    /// A failed request as a [`Stop`], or `None` when worth another try.
    fn refused(&self, e: ureq::Error, what: &str, path: &Path) -> (Stop, bool) {
        match e {
            ureq::Error::Status(409, r) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                let m = v["error"]["message"]
                    .as_str()
                    .unwrap_or("fenced")
                    .to_string();
                (Stop::Fenced(m), false)
            }
            ureq::Error::Status(code, r) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                let m = v["error"]["message"].as_str().unwrap_or("").to_string();
                // 5xx may pass; a refusal (4xx) will not.
                let again = code >= 500 || code == 422;
                (self.lost(what, path, format!("{code} {m}")), again)
            }
            e => (self.lost(what, path, e), true),
        }
    }

    /// A failed request: `Err` to stop at once, or `Ok` (after a pause)
    /// to keep as the last failure and try again.
    fn try_again(&self, e: ureq::Error, what: &str, path: &Path) -> Result<Stop, Stop> {
        let (stop, again) = self.refused(e, what, path);
        if !again {
            return Err(stop);
        }
        std::thread::sleep(Duration::from_millis(300));
        Ok(stop)
    }

    /// Creates the plan's directories and fetches every input not here.
    pub(super) fn fetch(&self, plan: &Plan) -> Result<Moved, Stop> {
        let start = Instant::now();
        let mut bytes = 0;
        for d in &plan.dirs {
            std::fs::create_dir_all(d).map_err(|e| self.cache.io_stop("create", d, &e))?;
        }
        for f in &plan.inputs {
            let gate = {
                let mut g = self
                    .cache
                    .fetching
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                g.entry(f.path.clone()).or_default().clone()
            };
            let _one = gate.lock().unwrap_or_else(PoisonError::into_inner);
            if !self.cache.have(f) {
                bytes += self.download(f)?;
            }
            self.cache.remember(&f.path, f.sha256.clone(), true);
        }
        Ok(Moved {
            ms: start.elapsed().as_millis() as u64,
            bytes,
        })
    }

    /// Fetches one input to a temporary name (resuming it), checks it,
    /// renames it into place. The bytes moved.
    fn download(&self, f: &InputFile) -> Result<u64, Stop> {
        let name = f
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let ((task, attempt), io) = (self.key, |w: &str, e| self.cache.io_stop(w, &f.path, &e));
        let tmp = f.path.with_file_name(format!(
            ".{name}.dl-{}-{}-{attempt}",
            task.job.0, task.index
        ));
        if let Some(dir) = f.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| io("create the directory of", e))?;
        }
        let mut moved = 0;
        let mut last = None;
        for _ in 0..TRIES {
            let have = std::fs::metadata(&tmp).map_or(0, |m| m.len());
            let mut req = self.request("GET", "files", &f.path);
            if have > 0 && have < f.size {
                req = req.set("Range", &format!("bytes={have}-"));
            }
            let r = match req.call() {
                Ok(r) => r,
                Err(e) => {
                    last = Some(self.try_again(e, "fetch", &f.path)?);
                    continue;
                }
            };
            let resumed = r.status() == 206;
            let mut out = std::fs::OpenOptions::new()
                .create(true)
                .write(true)
                .truncate(!resumed)
                .append(resumed)
                .open(&tmp)
                .map_err(|e| io("write", e))?;
            let mut h = Sha256::new();
            if resumed {
                let mut prefix = std::fs::File::open(&tmp).map_err(|e| io("read", e))?;
                std::io::copy(&mut prefix, &mut HashWriter(&mut h)).map_err(|e| io("read", e))?;
            }
            let mut body = r.into_reader().take(f.size);
            let mut buf = vec![0u8; 256 << 10];
            let broke = loop {
                match body.read(&mut buf) {
                    Ok(0) => break None,
                    Ok(n) => {
                        h.update(&buf[..n]);
                        out.write_all(&buf[..n]).map_err(|e| io("write", e))?;
                        moved += n as u64;
                    }
                    Err(e) => break Some(e),
                }
            };
            out.flush().map_err(|e| io("write", e))?;
            drop(out);
            let got = std::fs::metadata(&tmp).map_or(0, |m| m.len());
            if let Some(e) = broke {
                last =
                    Some(self.lost("fetch", &f.path, format!("interrupted at {got} bytes: {e}")));
                continue;
            }
            if got < f.size {
                last = Some(self.lost(
                    "fetch",
                    &f.path,
                    format!("only {got} of {} bytes came", f.size),
                ));
                continue;
            }
            let sum = hex(&h.finalize());
            if sum != f.sha256 {
                let _ = std::fs::remove_file(&tmp);
                last = Some(self.lost(
                    "fetch",
                    &f.path,
                    format!("sha256 {sum}, the server said {}", f.sha256),
                ));
                continue;
            }
            if let Ok(t) = u64::try_from(f.mtime_ns) {
                let when = SystemTime::UNIX_EPOCH + Duration::from_nanos(t);
                let file = std::fs::File::options().write(true).open(&tmp);
                file.and_then(|file| file.set_modified(when))
                    .map_err(|e| io("set the time of", e))?;
            }
            std::fs::rename(&tmp, &f.path).map_err(|e| io("rename into", e))?;
            return Ok(moved);
        }
        let _ = std::fs::remove_file(&tmp);
        Err(last.unwrap_or_else(|| self.lost("fetch", &f.path, "no answer")))
    }

    /// Sends back every output created or changed since `before`, removes
    /// declared outputs that disappeared; only the logs when `logs_only`.
    pub(super) fn send_back(
        &self,
        plan: &Plan,
        before: &Snapshot,
        logs_only: bool,
    ) -> Result<Moved, Stop> {
        let start = Instant::now();
        let mut bytes = 0;
        for out in &plan.outputs {
            if logs_only && !is_log(out) {
                continue;
            }
            match out {
                Output::File(p) => match stat(p) {
                    Some(now) if before.get(p) != Some(&now) => bytes += self.upload(p)?,
                    Some(_) => {}
                    None if before.contains_key(p) => self.remove(p)?,
                    None => {}
                },
                Output::Tree(d) | Output::Children(d) => {
                    let mut files = Vec::new();
                    list(d, matches!(out, Output::Tree(_)), &mut files);
                    for p in files {
                        if stat(&p).is_some_and(|now| before.get(&p) != Some(&now)) {
                            bytes += self.upload(&p)?;
                        }
                    }
                }
            }
        }
        Ok(Moved {
            ms: start.elapsed().as_millis() as u64,
            bytes,
        })
    }

    /// Sends one file (resuming where the server's partial copy stops).
    fn upload(&self, path: &Path) -> Result<u64, Stop> {
        let io = |w: &str, e| self.cache.io_stop(w, path, &e);
        let sum = sha256_file(path).map_err(|e| io("read", e))?;
        let size = std::fs::metadata(path).map_err(|e| io("read", e))?.len();
        let mut last = None;
        let mut moved = 0;
        for _ in 0..TRIES {
            let offset = match self.request("GET", "files/status", path).call() {
                Ok(r) => r
                    .into_json::<Value>()
                    .ok()
                    .and_then(|v| v["received"].as_u64())
                    .filter(|&n| n < size)
                    .unwrap_or(0),
                Err(e) => {
                    last = Some(self.try_again(e, "send", path)?);
                    continue;
                }
            };
            let mut file = std::fs::File::open(path).map_err(|e| io("read", e))?;
            file.seek(std::io::SeekFrom::Start(offset))
                .map_err(|e| io("read", e))?;
            let sent = self
                .request("PUT", "files", path)
                .query("offset", &offset.to_string())
                .set("X-Tessera-Sha256", &sum)
                .set("X-Tessera-Size", &size.to_string())
                .send(file);
            match sent {
                Ok(r) => {
                    moved += size - offset;
                    let v: Value = r.into_json().unwrap_or(Value::Null);
                    if v["complete"] == true {
                        self.cache.remember(path, sum, false);
                        return Ok(moved);
                    }
                    last = Some(self.lost("send", path, "the server got only part of it"));
                }
                Err(e) => last = Some(self.try_again(e, "send", path)?),
            }
        }
        Err(last.unwrap_or_else(|| self.lost("send", path, "no answer")))
    }

    fn remove(&self, path: &Path) -> Result<(), Stop> {
        let mut last = None;
        for _ in 0..TRIES {
            match self.request("DELETE", "files", path).call() {
                Ok(_) => {
                    self.cache.index().remove(path);
                    return Ok(());
                }
                Err(e) => last = Some(self.try_again(e, "remove", path)?),
            }
        }
        Err(last.unwrap_or_else(|| self.lost("remove", path, "no answer")))
    }
}

fn is_log(out: &Output) -> bool {
    matches!(out, Output::File(p) if p.extension().is_some_and(|e| e == "log"))
}

/// Files under `dir` (all levels when `deep`), not temporary ones.
fn list(dir: &Path, deep: bool, into: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        let temp = e
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with('.') && (n.contains(".dl-") || n.contains(".part-")));
        match e.file_type() {
            Ok(t) if t.is_dir() && deep => list(&p, deep, into),
            Ok(t) if t.is_file() && !temp => into.push(p),
            _ => {}
        }
    }
}

/// What the outputs of `plan` look like now (before the attempt runs).
pub(super) fn snapshot(plan: &Plan) -> Snapshot {
    let mut files = Vec::new();
    for out in &plan.outputs {
        match out {
            Output::File(p) => files.push(p.clone()),
            Output::Tree(d) => list(d, true, &mut files),
            Output::Children(d) => list(d, false, &mut files),
        }
    }
    files
        .into_iter()
        .filter_map(|p| stat(&p).map(|s| (p, s)))
        .collect()
}

struct HashWriter<'a>(&'a mut Sha256);

impl Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
