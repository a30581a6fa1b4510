//! Makespan of the encode DAG against its lower bound, in simulated time.
//!
//! `cargo bench -p tessera-testkit --bench makespan`
//!
//! probe -> plan -> 10,000 chunks (1 cpu each) -> concat -> verify on 1,000
//! workers (one node, 1,000 slots), through the simulation harness with every
//! invariant checked. For each duration distribution and seed it prints the
//! lower bound (max of serial steps + work / workers and the critical path)
//! and makespan / lower bound for three dispatch orders: FIFO (one priority
//! for every chunk), the planner's longest-expected-first priorities (as
//! `tessera-media` sets them, from a frame-count estimate off by up to 20%),
//! and an oracle that knows each chunk's real time. `whole` is the ratio for
//! the whole job, `chunks` the ratio of the chunk phase alone (serial steps
//! taken out of both sides). `sched ms` is the real time spent inside the
//! scheduler for the whole simulation, `sim ms` that of the whole run.

use tessera_testkit::makespan::{chunks, simulate, Durations, Order};

const WORKERS: u32 = 1_000;
const CHUNKS: usize = 10_000;
const SEEDS: [u64; 3] = [1, 2, 3];
const ORDERS: [Order; 3] = [Order::Fifo, Order::Planner, Order::Oracle];

fn main() {
    println!("{CHUNKS} chunks on {WORKERS} workers; ratios are makespan / lower bound (whole job | chunk phase)");
    println!(
        "{:<16} {:>4} {:>8} {:>8} {:>8} | {:>15} | {:>15} | {:>15} | {:>8} {:>8}",
        "durations",
        "seed",
        "work s",
        "crit s",
        "bound s",
        "FIFO",
        "planner",
        "oracle",
        "sched ms",
        "sim ms"
    );
    let mut worst = [0f64; 3];
    for durations in Durations::ALL {
        for seed in SEEDS {
            let work = chunks(durations, CHUNKS, seed);
            let runs: Vec<_> = ORDERS
                .iter()
                .map(|&order| simulate(&work, WORKERS, order))
                .collect();
            let first = &runs[0];
            let cells: Vec<String> = runs
                .iter()
                .map(|r| format!("{:.3} | {:.3}", r.ratio(), r.chunk_ratio()))
                .collect();
            for (w, r) in worst.iter_mut().zip(&runs) {
                *w = w.max(r.ratio());
            }
            let sched_ms = runs.iter().map(|r| r.sched_time.as_secs_f64()).sum::<f64>() * 1e3
                / runs.len() as f64;
            let sim_ms =
                runs.iter().map(|r| r.wall.as_secs_f64()).sum::<f64>() * 1e3 / runs.len() as f64;
            println!(
                "{:<16} {:>4} {:>8.1} {:>8.1} {:>8.1} | {:>15} | {:>15} | {:>15} | {:>8.1} {:>8.1}",
                durations.name(),
                seed,
                first.work_bound() as f64 / 1e3,
                first.critical_path() as f64 / 1e3,
                first.lower_bound() as f64 / 1e3,
                cells[0],
                cells[1],
                cells[2],
                sched_ms,
                sim_ms,
            );
        }
    }
    println!(
        "worst whole-job ratio: FIFO {:.3}, planner {:.3}, oracle {:.3} (target: 1.050)",
        worst[0], worst[1], worst[2]
    );
}
