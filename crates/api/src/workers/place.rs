//! Placement: which queued attempts a node takes when it asks for work.
//!
//! [`place`] is pure (the caller passes `now`): given the queue (in the
//! scheduler's priority order), every node and the one asking, it returns
//! the queue positions that node takes. The rules, in order:
//!
//! - **fit**: the attempt's cpu within the node's free slots; its memory
//!   (`memory_mb`, 0 = unstated) within the node's memory less what its
//!   leases reserve, when the node stated its memory;
//! - **labels**: every label the task names, carried by the node; and
//!   its hard rules kept (`resources.rules`: labels it must not carry, the
//!   node(s) other jobs ran on to join or to keep away from; see [`RanOn`]);
//! - **executor**: an attempt that names a container image only on a node
//!   whose executors include `docker`;
//! - **files**: a ladder's packaging and publishing ops (they write folders
//!   whose files are not known before they run; see
//!   [`tessera_media::ladder::WORKDIR_OPS`]) only on a node that sees the
//!   server's files: its own slots or a worker with `--data shared`, never
//!   one that gets its files over HTTP;
//! - **locality**: an attempt whose input another ready node with room for
//!   it holds, and this one does not, is left for that node, for at most
//!   [`LOCALITY_WAIT`] after it was queued;
//! - **spread**: a node that already runs more of a job's attempts than
//!   another ready node with room for the next one leaves it to that node,
//!   for at most [`SPREAD_WAIT`];
//! - **retry elsewhere**: a retry whose task's earlier attempt was lost or
//!   failed on this node (`Queued::avoid`) is left for any other ready node
//!   that could run it (even one busy now), for at most [`RETRY_WAIT`]; a
//!   node with nowhere else to send it takes it at once;
//! - **soft rules**: a node that keeps fewer of the attempt's soft rules
//!   than another ready node that could run it (even one busy now) leaves
//!   it to that node, for at most [`PREFER_WAIT`]; a soft rule no node
//!   keeps never holds anything back.
//!
//! Every wait is bounded, so nothing waits forever for a preference.
//! [`unplaceable`] says why no ready node could ever take an attempt.

use super::pool::{NodeState, Worker};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tessera_exec::StartRequest;
use tessera_types::{Action, JobId, Near, PlaceRule};

/// The executor a node offers when it runs attempts that name an image.
pub(crate) const DOCKER: &str = "docker";

/// The longest an attempt is kept for the node that holds its input.
pub(crate) const LOCALITY_WAIT: Duration = Duration::from_secs(2);
/// The longest an attempt is kept for a node that runs fewer of its job's.
pub(crate) const SPREAD_WAIT: Duration = Duration::from_secs(2);
/// The longest a retry is kept from the nodes its task's earlier attempts
/// ended badly on (long enough for a busy other node to finish a chunk).
pub(crate) const RETRY_WAIT: Duration = Duration::from_secs(5);
/// The longest an attempt is kept for a node that keeps more of its soft
/// placement rules.
pub(crate) const PREFER_WAIT: Duration = Duration::from_secs(5);

/// The names of the nodes each job's attempts were handed to (or, from
/// the store, ran on): what rules naming jobs are checked against.
pub(crate) type RanOn = HashMap<JobId, Vec<String>>;

/// An attempt waiting for a node.
pub(crate) struct Queued {
    pub req: StartRequest,
    /// When it was queued (the bounds of the waits count from here).
    pub since: Instant,
    /// The file it reads, for locality (see [`Pool::on_input`](super::Pool::on_input)).
    pub input: Option<PathBuf>,
    /// Why no ready node could ever take it, once found (logged once).
    pub unplaceable: Option<String>,
    /// Names of the nodes earlier attempts of its task were lost or failed
    /// on: others are preferred (see [`RETRY_WAIT`]).
    pub avoid: Vec<String>,
}

impl Queued {
    pub fn new(req: StartRequest, input: Option<PathBuf>, since: Instant) -> Self {
        Self {
            req,
            since,
            input,
            unplaceable: None,
            avoid: Vec::new(),
        }
    }

    /// The same, kept from the nodes named in `avoid` for a while.
    pub fn avoiding(mut self, avoid: Vec<String>) -> Self {
        self.avoid = avoid;
        self
    }
}

/// What a node has reserved for one attempt it holds.
#[derive(Copy, Clone, Debug)]
pub(crate) struct Lease {
    pub cpu: u32,
    pub memory_mb: u64,
    /// When it was handed over.
    pub since: Instant,
}

fn cpu(req: &StartRequest) -> u32 {
    req.cpu.max(1)
}

/// Whether the node offers the executor an attempt that names an image needs.
fn runs_images(node: &Worker) -> bool {
    node.info.executors.iter().any(|e| e == DOCKER)
}

/// Whether the node sees the files the attempt's op writes: a ladder's
/// packaging and publishing ops run only where the workdir is (see the
/// module doc).
fn sees_files(node: &Worker, req: &StartRequest) -> bool {
    match &req.action {
        Action::Op { op, .. } if tessera_media::ladder::needs_workdir(op) => {
            node.local || node.info.data != "http"
        }
        _ => true,
    }
}

/// Whether the node keeps a rule.
fn keeps(node: &Worker, rule: &PlaceRule, ran: &RanOn) -> bool {
    let near = match &rule.near {
        Near::Label { key, value } => node.info.labels.get(key) == Some(value),
        Near::Jobs(jobs) => jobs.iter().any(|j| {
            ran.get(j)
                .is_some_and(|names| names.contains(&node.info.name))
        }),
    };
    near != rule.not
}

/// How many of the attempt's soft rules the node keeps.
fn liking(node: &Worker, req: &StartRequest, ran: &RanOn) -> usize {
    let rules = &req.placement.rules;
    rules
        .iter()
        .filter(|r| r.soft && keeps(node, r, ran))
        .count()
}

/// Whether the node carries every label the attempt names, keeps its hard
/// rules and offers what it runs on (`docker` for an image).
fn labelled(node: &Worker, req: &StartRequest, ran: &RanOn) -> bool {
    (req.image.is_none() || runs_images(node))
        && sees_files(node, req)
        && req
            .labels
            .iter()
            .all(|(k, v)| node.info.labels.get(k) == Some(v))
        && req
            .placement
            .rules
            .iter()
            .all(|r| r.soft || keeps(node, r, ran))
}

/// Whether the node could run it when idle.
fn could(node: &Worker, req: &StartRequest, ran: &RanOn) -> bool {
    labelled(node, req, ran)
        && cpu(req) <= node.info.slots
        && (node.info.memory_mb == 0 || req.memory_mb <= node.info.memory_mb)
}

/// What a node has free now.
#[derive(Clone, Debug)]
struct Free {
    cpu: u32,
    /// `None`: the node did not state its memory (not checked).
    memory_mb: Option<u64>,
}

impl Free {
    fn of(node: &Worker) -> Self {
        let reserved: u64 = node.leases.values().map(|l| l.memory_mb).sum();
        Self {
            cpu: node.info.slots.saturating_sub(node.used()),
            memory_mb: (node.info.memory_mb > 0)
                .then(|| node.info.memory_mb.saturating_sub(reserved)),
        }
    }

    fn fits(&self, req: &StartRequest) -> bool {
        cpu(req) <= self.cpu && self.memory_mb.is_none_or(|m| req.memory_mb <= m)
    }

    fn take(&mut self, req: &StartRequest) {
        self.cpu -= cpu(req);
        if let Some(m) = &mut self.memory_mb {
            *m -= req.memory_mb;
        }
    }
}

/// Attempts of each job a node holds.
fn per_job(node: &Worker) -> HashMap<JobId, u32> {
    let mut jobs = HashMap::new();
    for (task, _) in node.leases.keys() {
        *jobs.entry(task.job).or_default() += 1;
    }
    jobs
}

/// The queue positions (ascending) node `who` takes now.
pub(crate) fn place(
    queue: &VecDeque<Queued>,
    nodes: &[Worker],
    who: usize,
    now: Instant,
    ran: &RanOn,
) -> Vec<usize> {
    let Some(me) = nodes.get(who).filter(|n| n.takes_work()) else {
        return Vec::new();
    };
    let mut free = Free::of(me);
    let mut mine = per_job(me);
    let others: Vec<(&Worker, Free, HashMap<JobId, u32>)> = nodes
        .iter()
        .enumerate()
        .filter(|(i, n)| *i != who && n.takes_work())
        .map(|(_, n)| (n, Free::of(n), per_job(n)))
        .collect();
    let mut picked = Vec::new();
    for (i, q) in queue.iter().enumerate() {
        if free.cpu == 0 {
            break;
        }
        let req = &q.req;
        if !could(me, req, ran) || !free.fits(req) {
            continue;
        }
        let waited = now.saturating_duration_since(q.since);
        if waited < RETRY_WAIT
            && q.avoid.contains(&me.info.name)
            && others
                .iter()
                .any(|(n, _, _)| could(n, req, ran) && !q.avoid.contains(&n.info.name))
        {
            continue;
        }
        if waited < PREFER_WAIT && req.placement.rules.iter().any(|r| r.soft) {
            let mine = liking(me, req, ran);
            if others
                .iter()
                .any(|(n, _, _)| could(n, req, ran) && liking(n, req, ran) > mine)
            {
                continue;
            }
        }
        let local_input = q
            .input
            .as_ref()
            .filter(|_| waited < LOCALITY_WAIT)
            .map(|input| (input, me.holds.contains(input)));
        // Other nodes that could take it now (and that locality allows).
        let takers = || {
            others.iter().filter(|(n, f, _)| {
                labelled(n, req, ran)
                    && f.fits(req)
                    && match local_input {
                        Some((input, true)) => n.holds.contains(input),
                        _ => true,
                    }
            })
        };
        if let Some((input, false)) = local_input {
            if takers().any(|(n, _, _)| n.holds.contains(input)) {
                continue;
            }
        }
        let job = req.task.job;
        let ours = mine.get(&job).copied().unwrap_or(0);
        if waited < SPREAD_WAIT
            && ours > 0
            && takers().any(|(_, _, jobs)| jobs.get(&job).copied().unwrap_or(0) < ours)
        {
            continue;
        }
        free.take(req);
        *mine.entry(job).or_default() += 1;
        picked.push(i);
    }
    picked
}

/// Why no ready node could ever take `req` (`None` if one could).
pub(crate) fn unplaceable(req: &StartRequest, nodes: &[Worker], ran: &RanOn) -> Option<String> {
    let ready: Vec<&Worker> = nodes
        .iter()
        .filter(|n| n.state == NodeState::Ready)
        .collect();
    if ready.is_empty() {
        return Some("no node is ready (no worker registered, or all are draining or lost)".into());
    }
    if ready.iter().any(|n| could(n, req, ran)) {
        return None;
    }
    if let Some(image) = &req.image {
        if !ready.iter().any(|n| runs_images(n)) {
            return Some(format!(
                "it runs in the container image {image}, and no ready node offers docker; \
                 start a worker with --docker"
            ));
        }
    }
    if !ready.iter().any(|n| sees_files(n, req)) {
        return Some(
            "it writes an ABR ladder's folders in the job's workdir, and every ready node gets \
             its files over HTTP; give the server local slots (--slots) or start a worker with \
             --data shared on the server's filesystem"
                .into(),
        );
    }
    let labelled: Vec<&Worker> = ready
        .iter()
        .copied()
        .filter(|n| labelled(n, req, ran))
        .collect();
    let hard: Vec<&PlaceRule> = req.placement.rules.iter().filter(|r| !r.soft).collect();
    if labelled.is_empty() && !hard.is_empty() {
        let mut wanted: Vec<String> = req.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        wanted.extend(hard.iter().map(|r| r.describe()));
        let docker = if req.image.is_some() {
            " offering docker"
        } else {
            ""
        };
        return Some(format!(
            "its placement rules ({}) leave no ready node{docker}; start a worker that keeps \
             them, or wait for the jobs they name to run",
            wanted.join("; ")
        ));
    }
    if labelled.is_empty() {
        let docker = if req.image.is_some() {
            " that offers docker"
        } else {
            ""
        };
        let wanted: Vec<String> = req.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
        return Some(format!(
            "it needs the labels {}, which no ready node{docker} carries; start a worker with \
             --labels {}",
            wanted.join(","),
            wanted.join(",")
        ));
    }
    let big: Vec<&Worker> = labelled
        .iter()
        .copied()
        .filter(|n| cpu(req) <= n.info.slots)
        .collect();
    if big.is_empty() {
        let most = labelled.iter().map(|n| n.info.slots).max().unwrap_or(0);
        return Some(format!(
            "it needs {} cpu slots; the largest ready node it may run on has {most}",
            cpu(req)
        ));
    }
    let most = big.iter().map(|n| n.info.memory_mb).max().unwrap_or(0);
    Some(format!(
        "it needs {} MiB of memory; the largest ready node it may run on has {most} MiB",
        req.memory_mb
    ))
}

#[cfg(test)]
mod tests;

#[cfg(test)]
#[path = "place/rules_tests.rs"]
mod rules_tests;
