//! Makespan of the encode DAG in simulated time, against its lower bound.
//!
//! The job has the shape `tessera-media` builds: `probe -> plan`, and `plan`
//! expands into one `encode-chunk-NNNN` task per chunk (1 cpu each),
//! `concat` after all of them and `verify` after `concat`. The serial steps
//! take fixed times ([`SERIAL_MS`]); each chunk takes the time a seeded
//! [`Durations`] draw gives it. One node with one slot per worker runs it.
//!
//! No schedule can end before the serial steps plus an even share of the
//! chunk work (total work / workers), nor before the serial steps plus the
//! longest chunk (the critical path): the larger of the two is the
//! [`Run::lower_bound`].
//!
//! ```
//! use tessera_testkit::makespan::{chunks, simulate, Durations, Order};
//! let work = chunks(Durations::Uniform, 200, 7);
//! let run = simulate(&work, 20, Order::Planner);
//! assert!(run.makespan >= run.lower_bound());
//! ```

use crate::sim::{Behaviour, Outcome, Sim};
use std::time::{Duration, Instant};
use tessera_types::{Action, JobSpec, JobState, Millis, TaskSpec};

/// `probe`, `plan`, `concat` and `verify`, in virtual ms.
pub const SERIAL_MS: [(&str, Millis); 4] = [
    ("probe", 1_000),
    ("plan", 3_000),
    ("concat", 4_000),
    ("verify", 2_000),
];

const CHUNK_PREFIX: &str = "encode-chunk-";

/// How chunk durations are drawn (all in virtual ms, all seeded).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durations {
    /// Uniform between 5 and 15 s.
    Uniform,
    /// Log-normal, median 10 s, sigma 0.5 (a few chunks run 3-6x the
    /// median, as scene-cut chunks of uneven length do).
    Skewed,
    /// Uniform 5-15 s, except about 1% of chunks take 5x as long because
    /// they hold 5x the frames: the planner sees it in the frame count.
    HeavyFrames,
    /// As `HeavyFrames`, but the 1% are slow because their content is
    /// hard: the frame count, and so the planner's estimate, is ordinary.
    HeavyContent,
}

impl Durations {
    pub const ALL: [Durations; 4] = [
        Durations::Uniform,
        Durations::Skewed,
        Durations::HeavyFrames,
        Durations::HeavyContent,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Durations::Uniform => "uniform 5-15s",
            Durations::Skewed => "lognormal s=0.5",
            Durations::HeavyFrames => "1% x5 (frames)",
            Durations::HeavyContent => "1% x5 (content)",
        }
    }
}

/// One chunk: what it really takes, and what the planner expects from its
/// frame count (off by up to 20% either way: per-frame cost varies).
#[derive(Clone, Copy, Debug)]
pub struct Chunk {
    pub actual: Millis,
    pub estimate: Millis,
}

/// The order in which ready chunks take free slots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    /// All chunks at one priority: first come, first served, in chunk order.
    Fifo,
    /// Longest expected first, as `tessera-media` sets it: priority
    /// `10 + 80 * estimate / longest estimate` (81 levels, ties in chunk order).
    Planner,
    /// Longest actual first, one priority level per ms: what perfect
    /// knowledge of each chunk's time could do (a reference, not a policy).
    Oracle,
}

/// `n` chunks drawn from `durations` with `seed`.
pub fn chunks(durations: Durations, n: usize, seed: u64) -> Vec<Chunk> {
    let mut rng = SplitMix(seed);
    (0..n)
        .map(|_| {
            let base = 5_000.0 + 10_000.0 * rng.unit();
            let heavy = rng.unit() < 0.01;
            let (actual, estimate) = match durations {
                Durations::Uniform => (base, base),
                Durations::Skewed => {
                    let ms = 10_000.0 * (0.5 * rng.normal()).exp();
                    (ms, ms)
                }
                Durations::HeavyFrames if heavy => (5.0 * base, 5.0 * base),
                Durations::HeavyContent if heavy => (5.0 * base, base),
                Durations::HeavyFrames | Durations::HeavyContent => (base, base),
            };
            let error = 0.8 + 0.4 * rng.unit();
            Chunk {
                actual: (actual.round() as Millis).max(1),
                estimate: ((estimate * error).round() as Millis).max(1),
            }
        })
        .collect()
}

/// What one simulated run measured.
#[derive(Clone, Debug)]
pub struct Run {
    pub workers: u32,
    /// Virtual time from submission until `verify` ended.
    pub makespan: Millis,
    /// The serial steps' time: `probe + plan + concat + verify`.
    pub serial: Millis,
    /// Sum of the chunks' durations.
    pub work: Millis,
    /// The longest chunk.
    pub longest: Millis,
    /// Real time spent inside the scheduler.
    pub sched_time: Duration,
    /// Real time the whole simulation took (harness checks included).
    pub wall: Duration,
}

impl Run {
    /// Serial steps plus total chunk work / workers (rounded up).
    pub fn work_bound(&self) -> Millis {
        self.serial + self.work.div_ceil(u64::from(self.workers.max(1)))
    }

    /// Serial steps plus the longest chunk.
    pub fn critical_path(&self) -> Millis {
        self.serial + self.longest
    }

    /// No schedule of this job on this many workers ends sooner.
    pub fn lower_bound(&self) -> Millis {
        self.work_bound().max(self.critical_path())
    }

    /// Makespan / lower bound.
    pub fn ratio(&self) -> f64 {
        self.makespan as f64 / self.lower_bound() as f64
    }

    /// The same ratio for the chunk phase alone (serial steps taken out of
    /// both sides), where the dispatch order matters.
    pub fn chunk_ratio(&self) -> f64 {
        let bound = self.lower_bound() - self.serial;
        (self.makespan - self.serial) as f64 / bound as f64
    }
}

/// The tasks `plan` adds for these chunks, ordered as `order` says.
pub fn follow_on_tasks(chunks: &[Chunk], order: Order) -> Vec<TaskSpec> {
    let longest = chunks.iter().map(|c| c.estimate).max().unwrap_or(1).max(1);
    let mut tasks: Vec<TaskSpec> = chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let priority = match order {
                Order::Fifo => 50,
                Order::Planner => 10 + (80 * c.estimate / longest) as i32,
                Order::Oracle => i32::try_from(c.actual).unwrap_or(i32::MAX),
            };
            TaskSpec::new(format!("{CHUNK_PREFIX}{i:04}"), Action::Noop).with_priority(priority)
        })
        .collect();
    tasks.push(
        TaskSpec::new("concat", Action::Noop)
            .after(&format!("{CHUNK_PREFIX}*"))
            .with_priority(95),
    );
    tasks.push(
        TaskSpec::new("verify", Action::Noop)
            .after("concat")
            .with_priority(95),
    );
    tasks
}

/// Runs the encode job for `chunks` on `workers` slots through the
/// simulation harness (every invariant checked) and measures it.
///
/// # Panics
/// If the job does not succeed: the harness's fake executor never fails an
/// attempt, so that would be a scheduler bug.
pub fn simulate(chunks: &[Chunk], workers: u32, order: Order) -> Run {
    let t0 = Instant::now();
    let durations: Vec<Millis> = chunks.iter().map(|c| c.actual).collect();
    let mut follow_on = Some(follow_on_tasks(chunks, order));
    let behaviour = Behaviour::custom(move |spec, _| {
        let duration = match spec.name.strip_prefix(CHUNK_PREFIX) {
            Some(n) => n
                .parse()
                .ok()
                .and_then(|i: usize| durations.get(i).copied()),
            None => SERIAL_MS
                .iter()
                .find(|(name, _)| *name == spec.name)
                .map(|&(_, ms)| ms),
        };
        Outcome {
            duration: duration.expect("a task of the encode job"),
            result: Ok(()),
            expansion: if spec.expands { follow_on.take() } else { None },
        }
    });
    let mut sim = Sim::new(workers, behaviour);
    let job = sim.submit(&JobSpec::new(
        "encode",
        vec![
            TaskSpec::new("probe", Action::Noop).with_priority(100),
            TaskSpec::new("plan", Action::Noop)
                .after("probe")
                .expanding()
                .with_priority(100),
        ],
    ));
    sim.run(usize::MAX);
    assert_eq!(sim.shadow.job_state(job), Some(JobState::Succeeded));
    Run {
        workers,
        makespan: sim.now,
        serial: SERIAL_MS.iter().map(|(_, ms)| ms).sum(),
        work: chunks.iter().map(|c| c.actual).sum(),
        longest: chunks.iter().map(|c| c.actual).max().unwrap_or(0),
        sched_time: sim.sched_time,
        wall: t0.elapsed(),
    }
}

/// SplitMix64: small, seeded, and the same on every platform.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn normal(&mut self) -> f64 {
        let u = 1.0 - self.unit(); // (0, 1]: ln is finite
        let v = self.unit();
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
    }
}
