//! The transfers of one attempt: its inputs fetched before it runs, its
//! outputs sent back after. Every local file is made, opened, renamed and
//! removed inside the attempt's reach and through no symbolic link
//! (`tessera_confine`): its task runs on this machine too, and may leave a
//! link where the worker (root) is about to write or read.

use super::*;

/// Talks to the file routes of one attempt.
pub(in crate::worker) struct Transfer<'a> {
    pub conn: &'a Conn,
    pub cache: &'a Cache,
    pub id: String,
    pub key: Key,
}

impl<'a> Transfer<'a> {
    pub(in crate::worker) fn new(conn: &'a Conn, cache: &'a Cache, id: String, key: Key) -> Self {
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
    pub(in crate::worker) fn fetch(&self, plan: &Plan) -> Result<Moved, Stop> {
        let start = Instant::now();
        let mut bytes = 0;
        for d in &plan.dirs {
            // Folders above the grants were made by `admit`.
            if plan.reach.allows(d, true) {
                confine::create_dir_all(&plan.reach, d, plan.owner_of(d))
                    .map_err(|e| self.cache.io_stop("create", d, &io_of(e)))?;
            }
        }
        let copies = plan.copies();
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
                bytes += self.download(f, &copies, plan.owner_of(&f.path))?;
            }
            self.cache.remember(&f.path, f.sha256.clone(), true);
        }
        Ok(Moved {
            ms: start.elapsed().as_millis() as u64,
            bytes,
        })
    }

    /// Fetches one input to a temporary name (resuming it), checks it,
    /// renames it into place, all inside `copies` and given to `owner`. The
    /// bytes moved.
    fn download(&self, f: &InputFile, copies: &Reach, owner: Owner) -> Result<u64, Stop> {
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
        // Beside the input: outside the grant when the input is a granted file.
        let copies = &copies.and(Grant::write(&tmp));
        let mut moved = 0;
        let mut last = None;
        for _ in 0..TRIES {
            let have = stat(copies, &tmp).map_or(0, |s| s.0);
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
            let how = if resumed {
                confine::Write::Append
            } else {
                confine::Write::Truncate
            };
            // Readable by the attempt's user: in a folder of its project's.
            let make = confine::Make {
                how,
                mode: 0o644,
                owner,
            };
            let mut out = confine::create(copies, &tmp, make).map_err(|e| io("write", io_of(e)))?;
            let mut h = Sha256::new();
            if resumed {
                out.rewind().map_err(|e| io("read", e))?;
                std::io::copy(&mut (&out).take(have), &mut HashWriter(&mut h))
                    .map_err(|e| io("read", e))?;
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
            let got = out.metadata().map_or(0, |m| m.len());
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
                let _ = confine::remove(copies, &tmp);
                last = Some(self.lost(
                    "fetch",
                    &f.path,
                    format!("sha256 {sum}, the server said {}", f.sha256),
                ));
                continue;
            }
            if let Ok(t) = u64::try_from(f.mtime_ns) {
                let when = SystemTime::UNIX_EPOCH + Duration::from_nanos(t);
                out.set_modified(when)
                    .map_err(|e| io("set the time of", e))?;
            }
            drop(out);
            confine::rename_in_place(copies, &tmp, &f.path)
                .map_err(|e| io("rename into", io_of(e)))?;
            return Ok(moved);
        }
        let _ = confine::remove(copies, &tmp);
        Err(last.unwrap_or_else(|| self.lost("fetch", &f.path, "no answer")))
    }

    /// Sends back every output created or changed since `before`, removes
    /// declared outputs that disappeared; only the logs when `logs_only`.
    pub(in crate::worker) fn send_back(
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
                Output::File(p) => match stat(&plan.reach, p) {
                    Some(now) if before.get(p) != Some(&now) => {
                        bytes += self.upload(&plan.reach, p)?
                    }
                    Some(_) => {}
                    None if before.contains_key(p) => self.remove(p)?,
                    None => {}
                },
                Output::Tree(d) | Output::Children(d) => {
                    let mut files = Vec::new();
                    list(d, matches!(out, Output::Tree(_)), &mut files);
                    for p in files {
                        if stat(&plan.reach, &p).is_some_and(|now| before.get(&p) != Some(&now)) {
                            bytes += self.upload(&plan.reach, &p)?;
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

    /// Sends one file (resuming where the server's partial copy stops),
    /// read inside the attempt's reach and through no link: a link its
    /// task left there would send the server what it points at.
    fn upload(&self, reach: &Reach, path: &Path) -> Result<u64, Stop> {
        let io = |w: &str, e| self.cache.io_stop(w, path, &e);
        let open = || confine::open(reach, path).map_err(|e| io("read", io_of(e)));
        let mut file = open()?;
        let sum = sha256_of(&mut file).map_err(|e| io("read", e))?;
        let size = file.metadata().map_err(|e| io("read", e))?.len();
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
            let mut file = open()?;
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

/// Files under `dir` (all levels when `deep`), not temporary ones; links
/// are left out (each file is opened confined later anyway).
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
pub(in crate::worker) fn snapshot(plan: &Plan) -> Snapshot {
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
        .filter_map(|p| stat(&plan.reach, &p).map(|s| (p, s)))
        .collect()
}

/// A confined operation's failure as an I/O error (for `io_stop`, which
/// names a full disk).
fn io_of(e: confine::ConfineError) -> std::io::Error {
    match e {
        confine::ConfineError::Io { source, .. } => source,
        other => std::io::Error::other(other.to_string()),
    }
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
