//! What stands in front of argon2: a per-prefix [`Throttle`] and the
//! [`Verifier`], a few dedicated threads that run every verification.
//!
//! An argon2 check of a secret (a user's API key, a worker's token) costs
//! about 19 MiB of memory and tens of milliseconds of a core. Unbounded,
//! 30 concurrent wrong secrets took a server from 11 MB to 580 MB: each
//! ran on its own blocking thread, and each thread's allocator kept its
//! 19 MiB afterwards. Now:
//!
//! - a wrong secret is counted *before* argon2 runs, under one lock, so at
//!   most [`FAILURE_LIMIT`] wrong secrets per prefix per [`FAILURE_WINDOW`]
//!   ever reach argon2, however many arrive at once (then `TooMany`, with
//!   the seconds until the window ends; a right secret gives its count
//!   back);
//! - requests that carry the same secret at the same time share one check
//!   (a client's burst with a key not cached yet runs argon2 once, and is
//!   not taken for a guessing flood);
//! - verifications run on [`VERIFY_THREADS`] threads, each with one argon2
//!   memory block it keeps and reuses, so argon2 never holds more than
//!   `VERIFY_THREADS` x 19 MiB; at most [`VERIFY_QUEUE`] checks wait for
//!   them, and one more is refused at once (`Busy`) instead of piling up.

use super::keys::{hash_key_with, verify_key_with};
use crate::error::ServiceError;
use crate::observe::{Observer, Secret};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Wrong secrets per prefix per [`FAILURE_WINDOW`] before checks wait.
pub const FAILURE_LIMIT: u32 = 5;
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Prefixes with recent failures remembered at most (then the expired go,
/// then all: a flood of made-up prefixes cannot grow the map).
const FAILURES_KEPT: usize = 10_000;
/// Threads that run argon2: the most cores and argon2 memory blocks that
/// secret checks ever take.
pub const VERIFY_THREADS: usize = 2;
/// Checks that may wait for a verifier thread; one more is refused. Each
/// waiting check is a small message (argon2's memory is the threads'),
/// so the bound is on latency: 64 checks of ~30 ms on 2 threads wait
/// about a second, room for a fleet of workers starting at once with
/// their own tokens.
pub const VERIFY_QUEUE: usize = 64;

/// Counts wrong secrets per prefix, attempts included while they run.
#[derive(Default)]
pub(crate) struct Throttle {
    /// Prefix -> (start of its window, attempts counted in it).
    counts: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Throttle {
    /// Counts an attempt for `prefix` before its secret is checked;
    /// `Err(wait)` when the prefix has used up its window.
    pub(crate) fn begin(&self, prefix: &str) -> Result<(), Duration> {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.len() >= FAILURES_KEPT && !counts.contains_key(prefix) {
            counts.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
            if counts.len() >= FAILURES_KEPT {
                counts.clear();
            }
        }
        let entry = counts
            .entry(prefix.to_string())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        if entry.1 >= FAILURE_LIMIT {
            return Err(FAILURE_WINDOW.saturating_sub(entry.0.elapsed()));
        }
        entry.1 += 1;
        Ok(())
    }

    /// Gives back an attempt that was not a wrong secret (it was right, or
    /// it never ran).
    pub(crate) fn refund(&self, prefix: &str) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = counts.get_mut(prefix) {
            entry.1 = entry.1.saturating_sub(1);
        }
    }
}

/// What a verifier thread is asked to do.
enum Work {
    /// Check `secret` against the PHC `hash`: true if it matches.
    Verify { secret: String, hash: String },
    /// Hash a new key's `secret`.
    Hash { secret: String },
}

/// What one check of a secret came to, shared by every request that
/// carried the same secret while it ran.
#[derive(Copy, Clone, Debug)]
enum Checked {
    Right,
    Wrong,
    /// The prefix had used up its window: wait this many seconds.
    Throttled(u64),
    /// The verifier's queue was full.
    Busy,
    Failed,
}

/// Stands in front of argon2 for one kind of secret: the throttle by
/// prefix, and the checks running now by secret.
#[derive(Default)]
pub struct Guard {
    throttle: Throttle,
    running: Mutex<HashMap<[u8; 32], Arc<tokio::sync::OnceCell<Checked>>>>,
}

impl Guard {
    /// Whether `secret` (whose prefix is `prefix`) matches `hash`:
    /// `TooMany` once the prefix had too many wrong secrets, `Busy` when
    /// the verifier is full. Concurrent checks of one secret run argon2 once.
    pub(crate) async fn check(
        &self,
        verifier: &Verifier,
        kind: Secret,
        prefix: &str,
        secret: &str,
        hash: &str,
    ) -> Result<bool, ServiceError> {
        let print: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let flight = {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            running.entry(print).or_default().clone()
        };
        let checked = *flight
            .get_or_init(|| self.run(verifier, kind, prefix, secret, hash))
            .await;
        {
            let mut running = self.running.lock().unwrap_or_else(PoisonError::into_inner);
            if running.get(&print).is_some_and(|f| Arc::ptr_eq(f, &flight)) {
                running.remove(&print);
            }
        }
        let what = match kind {
            Secret::WorkerToken => "worker tokens with this token's prefix",
            _ => "API keys with this key's prefix",
        };
        match checked {
            Checked::Right => Ok(true),
            Checked::Wrong => Ok(false),
            Checked::Throttled(wait) => {
                verifier.observer.throttled(kind);
                Err(ServiceError::TooMany {
                    message: format!("too many wrong {what}"),
                    retry_after: wait,
                })
            }
            Checked::Busy => {
                verifier.observer.verifier_busy(kind);
                Err(busy())
            }
            Checked::Failed => Err(ServiceError::internal("an argon2 thread dropped a check")),
        }
    }

    async fn run(
        &self,
        verifier: &Verifier,
        kind: Secret,
        prefix: &str,
        secret: &str,
        hash: &str,
    ) -> Checked {
        if let Err(wait) = self.throttle.begin(prefix) {
            return Checked::Throttled(wait.as_secs().max(1));
        }
        let verified = verifier
            .ask(
                kind,
                Work::Verify {
                    secret: secret.to_string(),
                    hash: hash.to_string(),
                },
            )
            .await;
        match verified {
            Ok(Ok(_)) => {
                self.throttle.refund(prefix);
                Checked::Right
            }
            Ok(Err(())) => Checked::Wrong,
            Err(busy) => {
                self.throttle.refund(prefix);
                match busy {
                    ServiceError::Busy { .. } => Checked::Busy,
                    _ => Checked::Failed,
                }
            }
        }
    }
}

fn busy() -> ServiceError {
    ServiceError::Busy {
        message: format!(
            "too many credential checks are waiting (at most {VERIFY_QUEUE}); try again in a \
             moment"
        ),
        retry_after: 1,
    }
}

struct Job {
    work: Work,
    kind: Secret,
    reply: tokio::sync::oneshot::Sender<Result<String, ()>>,
}

/// The argon2 threads and their bounded queue.
pub(crate) struct Verifier {
    queue: SyncSender<Job>,
    observer: Arc<dyn Observer>,
}

impl Verifier {
    /// Starts [`VERIFY_THREADS`] threads; they end when the verifier is
    /// dropped.
    pub(crate) fn start(observer: Arc<dyn Observer>) -> Self {
        let (queue, jobs) = sync_channel::<Job>(VERIFY_QUEUE);
        let jobs = Arc::new(Mutex::new(jobs));
        for i in 0..VERIFY_THREADS {
            let (jobs, observer) = (jobs.clone(), observer.clone());
            let started = std::thread::Builder::new()
                .name(format!("tessera-argon2-{i}"))
                .spawn(move || run(&jobs, observer.as_ref()));
            if let Err(e) = started {
                eprintln!("tessera-service: cannot start an argon2 thread: {e}");
            }
        }
        Self { queue, observer }
    }

    /// The argon2 PHC hash of a new key's `secret`, made on a verifier
    /// thread (so creating keys is bounded like checking them).
    pub(crate) async fn hash(&self, secret: String) -> Result<String, ServiceError> {
        let answer = self.ask(Secret::NewKey, Work::Hash { secret }).await?;
        answer.map_err(|()| ServiceError::internal("argon2 could not hash a new key"))
    }

    async fn ask(&self, kind: Secret, work: Work) -> Result<Result<String, ()>, ServiceError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Job { work, kind, reply };
        match self.queue.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                if matches!(kind, Secret::NewKey) {
                    self.observer.verifier_busy(kind);
                }
                return Err(busy());
            }
            Err(TrySendError::Disconnected(_)) => {
                return Err(ServiceError::internal("the argon2 threads are gone"))
            }
        }
        answer
            .await
            .map_err(|_| ServiceError::internal("an argon2 thread dropped a check"))
    }
}

/// One verifier thread. Its argon2 memory block is allocated at its first
/// check and kept for the next: allocated and freed per check instead,
/// the allocator kept most of each (5 + 5 checks took a server from 22 to
/// 194 MiB), where a kept block costs 19 MiB per thread once.
fn run(jobs: &Mutex<Receiver<Job>>, observer: &dyn Observer) {
    let mut blocks = Vec::new();
    loop {
        let job = {
            let jobs = jobs.lock().unwrap_or_else(PoisonError::into_inner);
            match jobs.recv() {
                Ok(job) => job,
                Err(_) => return,
            }
        };
        observer.argon2_run(job.kind);
        let answer = match job.work {
            Work::Verify { secret, hash } => verify_key_with(&secret, &hash, &mut blocks)
                .then_some(hash)
                .ok_or(()),
            Work::Hash { secret } => Ok(hash_key_with(&secret, &mut blocks)),
        };
        let _ = job.reply.send(answer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_counted_before_they_run_and_right_ones_given_back() {
        let t = Throttle::default();
        for _ in 0..FAILURE_LIMIT {
            assert_eq!(t.begin("aaaa"), Ok(()));
        }
        let wait = t.begin("aaaa").unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= FAILURE_WINDOW,
            "{wait:?}"
        );
        assert_eq!(t.begin("bbbb"), Ok(()), "other prefixes are not held up");
        t.refund("aaaa");
        assert_eq!(
            t.begin("aaaa"),
            Ok(()),
            "a right secret gives its place back"
        );
        assert!(t.begin("aaaa").is_err());
    }
}
