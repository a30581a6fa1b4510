//! Makespan of the encode DAG (probe, plan, 1,000 chunks, concat, verify)
//! on 100 workers, against its lower bound and against greedy list
//! scheduling computed here on its own.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use tessera_testkit::makespan::{
    chunks, follow_on_tasks, simulate, Chunk, Durations, Order, SERIAL_MS,
};
use tessera_types::Millis;

const WORKERS: u32 = 100;
const CHUNKS: usize = 1_000;
const SEED: u64 = 1;

/// Measured at this seed: 1.022 (uniform), 1.014 (log-normal), 1.030 (1% of
/// chunks 5x longer); first come, first served gets 1.081, 1.143 and 1.554.
#[test]
fn longest_first_chunks_end_within_5_percent_of_the_lower_bound() {
    for durations in [
        Durations::Uniform,
        Durations::Skewed,
        Durations::HeavyFrames,
    ] {
        let run = simulate(&chunks(durations, CHUNKS, SEED), WORKERS, Order::Planner);
        assert!(
            run.ratio() <= 1.05,
            "{}: makespan {} ms is {:.3}x the lower bound {} ms",
            durations.name(),
            run.makespan,
            run.ratio(),
            run.lower_bound()
        );
    }
}

/// Greedy list scheduling: chunks in `order` (priority, then chunk number),
/// each to the worker free first. Returns the end of the last chunk,
/// counted from the start of the chunk phase.
fn list_schedule(work: &[Chunk], order: Order) -> Millis {
    let tasks = follow_on_tasks(work, order);
    let mut queue: Vec<usize> = (0..work.len()).collect();
    queue.sort_by_key(|&i| (Reverse(tasks[i].priority), i));
    let mut free: BinaryHeap<Reverse<Millis>> = (0..WORKERS).map(|_| Reverse(0)).collect();
    for i in queue {
        let Reverse(at) = free.pop().expect("a worker");
        free.push(Reverse(at + work[i].actual));
    }
    free.into_iter().map(|Reverse(at)| at).max().unwrap_or(0)
}

/// The scheduler leaves no slot idle while a chunk is ready and starts
/// chunks in priority order: its makespan is exactly that of greedy list
/// scheduling, to the millisecond.
#[test]
fn dispatch_is_greedy_list_scheduling_to_the_millisecond() {
    let serial: Millis = SERIAL_MS.iter().map(|(_, ms)| ms).sum();
    for durations in [Durations::Uniform, Durations::HeavyFrames] {
        let work = chunks(durations, CHUNKS, SEED);
        for order in [Order::Fifo, Order::Planner] {
            let run = simulate(&work, WORKERS, order);
            assert_eq!(
                run.makespan,
                serial + list_schedule(&work, order),
                "{} {order:?}",
                durations.name()
            );
        }
    }
}
