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
use tessera_confine::{self as confine, Owner};
use tessera_media::sha256_of;
use tessera_types::{AttemptNo, Grant, Reach, TaskRef};

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

impl Output {
    fn path(&self) -> &Path {
        match self {
            Output::File(p) | Output::Tree(p) | Output::Children(p) => p,
        }
    }
}

/// An attempt's file plan, as the lease answer's `files`.
#[derive(Clone, Debug, Deserialize)]
pub(super) struct Plan {
    inputs: Vec<InputFile>,
    outputs: Vec<Output>,
    dirs: Vec<PathBuf>,
    /// Why the server will not let it run (a file outside its reach).
    #[serde(default)]
    refused: Option<String>,
    /// The attempt's reach (from the lease answer, beside the plan).
    #[serde(skip)]
    pub(super) reach: Reach,
    /// Who the files made for the attempt inside its writable grants
    /// belong to (its project's user), when it switches users.
    #[serde(skip)]
    pub(super) owner: Owner,
}

impl Plan {
    /// Whether the attempt may run here: the server did not refuse it, and
    /// every file and folder of its plan lies within its reach (a server
    /// that sent more would make this worker write or read elsewhere).
    pub(super) fn admit(&self) -> Result<(), String> {
        if let Some(why) = &self.refused {
            return Err(why.clone());
        }
        let outside = |p: &Path, what: &str| {
            format!(
                "the server's file plan names {} ({what}), outside the attempt's reach; \
                 this worker refuses it",
                p.display()
            )
        };
        for f in &self.inputs {
            if !self.reach.allows(&f.path, false) {
                return Err(outside(&f.path, "an input"));
            }
        }
        for o in &self.outputs {
            if !self.reach.allows(o.path(), true) {
                return Err(outside(o.path(), "an output"));
            }
        }
        for d in &self.dirs {
            if !self.reach.allows_dir(d) {
                return Err(outside(d, "a folder"));
            }
        }
        Ok(())
    }

    /// The reach this worker writes its copies of inputs in: the
    /// attempt's, every grant writable (a copy of an input the attempt may
    /// only read is still written here, by the worker).
    fn copies(&self) -> Reach {
        Reach::new(
            self.reach
                .grants
                .iter()
                .map(|g| Grant {
                    write: true,
                    ..g.clone()
                })
                .collect(),
        )
    }

    /// Who a file made at `path` belongs to: the attempt's user inside its
    /// writable grants, this worker elsewhere (copies of read-only inputs).
    fn owner_of(&self, path: &Path) -> Owner {
        self.owner.filter(|_| self.reach.allows(path, true))
    }
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

mod transfer;
pub(super) use transfer::{snapshot, Transfer};

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
    /// The whole data directory as one writable grant: the cache looks at
    /// and evicts its copies through no link.
    all: Reach,
    /// One fetch of a path at a time.
    fetching: Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>,
    low: AtomicBool,
}

/// A regular file's size and mtime (ns), if it is one, reached through no
/// link below the grants of `reach`.
fn stat(reach: &Reach, path: &Path) -> Option<(u64, i64)> {
    confine::stamp(reach, path).ok()
}

/// The sha256 of a file inside `reach`.
fn sha256(reach: &Reach, path: &Path) -> std::io::Result<String> {
    let mut f = confine::open(reach, path).map_err(std::io::Error::other)?;
    sha256_of(&mut f)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Cache {
    pub(super) fn new(data_dir: PathBuf, name: String, min_free_mb: u64) -> Self {
        Self {
            all: Reach::new(vec![Grant::write(&data_dir).folder()]),
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
                let _ = confine::remove(&self.all, &p);
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
        let Some(local) = stat(&self.all, &f.path) else {
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
        sha256(&self.all, &f.path).is_ok_and(|s| s == f.sha256)
    }

    fn remember(&self, path: &Path, sha256: String, in_use: bool) {
        if let Some((size, mtime_ns)) = stat(&self.all, path) {
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

#[cfg(test)]
mod tests {
    use super::*;

    /// A server that sends a plan beyond the attempt's reach (a bug, or a
    /// server a member got to name anything) makes the worker refuse the
    /// attempt before fetching or writing anything.
    #[test]
    fn a_plan_outside_the_attempts_reach_is_refused_by_the_worker() {
        let plan = |v: Value| {
            let mut p: Plan = serde_json::from_value(v).unwrap();
            p.reach = Reach::new(vec![
                Grant::write("/d/jobs/5").folder(),
                Grant::read("/d/uploads/2").folder(),
            ]);
            p
        };
        let input = |path: &str| json!({"path": path, "size": 1, "mtime_ns": 0, "sha256": "x"});
        let ok = plan(json!({
            "inputs": [input("/d/uploads/2/u/clip.mp4"), input("/d/jobs/5/request.json")],
            "outputs": [{"kind": "file", "path": "/d/jobs/5/tasks/p/probe.json"}],
            "dirs": ["/d/jobs/5/logs", "/d"],
        }));
        ok.admit().unwrap();
        for bad in [
            json!({"inputs": [input("/etc/shadow")], "outputs": [], "dirs": []}),
            json!({"inputs": [input("/d/uploads/1/u/clip.mp4")], "outputs": [], "dirs": []}),
            json!({"inputs": [], "outputs": [{"kind": "tree", "path": "/etc/cron.d"}], "dirs": []}),
            json!({"inputs": [], "outputs": [{"kind": "file", "path": "/d/uploads/2/x"}], "dirs": []}),
            json!({"inputs": [], "outputs": [], "dirs": ["/etc/cron.d"]}),
        ] {
            let err = plan(bad.clone()).admit().unwrap_err();
            assert!(err.contains("outside the attempt's reach"), "{bad}: {err}");
        }
        let refused =
            plan(json!({"inputs": [], "outputs": [], "dirs": [], "refused": "op probe: no"}));
        assert_eq!(refused.admit().unwrap_err(), "op probe: no");
    }
}
