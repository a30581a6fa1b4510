//! Chaos: a worker's disk fills mid-chunk. The chaos cluster (server and
//! three one-slot workers in containers on a private network) with every
//! worker in `--data http` mode (nothing of the host mounted: inputs come
//! over HTTP, outputs go back), `w1` with a 256 MiB tmpfs at the server's
//! data-directory path and `--min-free-mb 32` (more than the cached
//! source, so evicting it does not bring the disk back). While `w1` runs a
//! chunk its tmpfs is filled to the last byte (`cat /dev/zero > fill`).
//!
//! Expected, and checked: that attempt ends `lost` with a reason naming
//! `w1` and its full disk (whether the encoder or a transfer hit ENOSPC),
//! `w1` shows `disk_low` in `GET /api/v1/nodes`, the job succeeds, the
//! download matches the source frame for frame, every chunk has exactly
//! one succeeded attempt; once the fill file is removed `w1` is no longer
//! low and runs a chunk of the next job. Every wait is bounded.

use crate::chaos::{clip, s, Cluster, Data};
use crate::support::{docker, docker_engine_present};
use std::process::Command;
use std::time::{Duration, Instant};

/// The tmpfs of the worker whose disk fills, and its `--min-free-mb`.
const TMPFS_MB: u32 = 256;
const MIN_FREE_MB: u32 = 32;

/// Waits (bounded) until `node` runs a chunk attempt of `job`; `(index, attempt)`.
fn chunk_on(c: &Cluster, job: i64, node: &str, limit: u64) -> (u64, u64) {
    let start = Instant::now();
    loop {
        let chunks = c.chunk_indexes(job);
        for n in c.nodes().iter().filter(|n| n["name"] == node) {
            for r in n["running"].as_array().into_iter().flatten() {
                let at = (r["index"].as_u64().unwrap(), r["attempt"].as_u64().unwrap());
                if r["job"] == job && chunks.contains(&at.0) {
                    return at;
                }
            }
        }
        c.check(start, limit, &format!("{node} ran no chunk of job {job}"));
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits (bounded) until `node`'s `disk_low` in `GET /nodes` is `low`.
fn wait_disk_low(c: &Cluster, node: &str, low: bool) {
    let start = Instant::now();
    while !c
        .nodes()
        .iter()
        .any(|n| n["name"] == node && n["state"] == "ready" && n["disk_low"] == low)
    {
        c.check(start, 30, &format!("{node} did not show disk_low {low}"));
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_worker_whose_disk_fills_mid_chunk_loses_the_attempt_and_the_encode_stays_exact() {
    if !docker_engine_present() {
        return;
    }
    let c = Cluster::start_with(&|name, data| {
        let mut opts = Vec::new();
        let mut min_free = "1".to_string();
        if name == "w1" {
            // At the server's data-directory path, where an http worker
            // keeps its copies.
            opts = vec![
                "--mount".to_string(),
                format!(
                    "type=tmpfs,destination={},tmpfs-size={TMPFS_MB}m",
                    data.display()
                ),
            ];
            min_free = MIN_FREE_MB.to_string();
        }
        Data::Http {
            opts,
            args: vec!["--min-free-mb".into(), min_free],
        }
    });
    let clip = clip(c.dir.path());
    let job = c.encode(&clip);
    let at = chunk_on(&c, job, "w1", 30);
    let data = c.data.to_str().unwrap().to_string();
    let fill = format!("{data}/fill");
    // Fails with ENOSPC once the tmpfs is full, as intended.
    let filled = Command::new("docker")
        .args(["exec", &c.container("w1"), "sh", "-c"])
        .arg(format!("cat /dev/zero > {fill}"))
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&filled.stderr).contains("No space left"),
        "the fill did not fill: {}",
        String::from_utf8_lossy(&filled.stderr)
    );
    let df = docker(&["exec", &c.container("w1"), "ls", "-la", &data]);
    eprintln!("w1's full disk holds:\n{df}");

    // The attempt running there is lost to the full disk, not failed.
    let start = Instant::now();
    let lost = loop {
        let a = c.attempt(job, at);
        if !a["outcome"].is_null() {
            break a;
        }
        c.check(start, 30, &format!("w1's attempt {at:?} did not end"));
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(lost["outcome"], "lost", "{lost}");
    let why = s(&lost["message"]);
    assert!(why.contains("worker w1 "), "{why}");
    assert!(why.contains("disk is full"), "{why}");
    eprintln!("w1's attempt {at:?}: lost: {why}");
    wait_disk_low(&c, "w1", true);

    c.wait_succeeded(job);
    c.check_result(job, &clip);
    // Nothing else was lost or failed but on w1, and only for its disk.
    for a in c.attempts(job) {
        if a["outcome"] != "succeeded" {
            let why = s(&a["message"]);
            assert!(
                a["outcome"] == "lost" && why.contains("worker w1 ") && why.contains("disk"),
                "{a}"
            );
        }
    }

    // Room again: w1 takes work.
    docker(&["exec", &c.container("w1"), "rm", &fill]);
    wait_disk_low(&c, "w1", false);
    let next = c.encode(&clip);
    chunk_on(&c, next, "w1", 60);
    c.wait_succeeded(next);
}
