//! Benchmarks of the Docker API (ignored; figures printed):
//!
//! ```text
//! cargo test -p tessera-cli --test cli dockerapi_bench -- --ignored --nocapture
//! ```
//!
//! - `docker run -d` until the container runs, against Tessera (`docker
//!   run -d` returns, then `docker inspect` polled until `Running`) and
//!   against the engine directly (running when `run -d` returns),
//!   alternating, medians and their ratio.
//! - The hop of a `waitfor` chain: container N+1's start minus container
//!   N's end, from `docker inspect`, p50 and p99.

use crate::dockerapi::Setup;
use crate::support::docker_engine_present;
use std::process::Command;
use std::time::{Duration, Instant};

const RUNS: usize = 10;
const CHAIN: usize = 30;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Milliseconds since the epoch of an RFC 3339 time with 9 decimals.
fn millis(t: &str) -> f64 {
    let date: Vec<i64> = t[..10].split('-').map(|x| x.parse().unwrap()).collect();
    let (y, m, d) = (date[0], date[1], date[2]);
    let (y2, m2) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y2.div_euclid(400);
    let yoe = y2 - era * 400;
    let doy = (153 * m2 + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let clock: Vec<f64> = t[11..t.len() - 1]
        .split(':')
        .map(|x| x.parse().unwrap())
        .collect();
    (days as f64 * 86_400.0 + clock[0] * 3600.0 + clock[1] * 60.0 + clock[2]) * 1000.0
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn docker_run_until_running_and_waitfor_hops() {
    if !docker_engine_present() {
        return;
    }
    let s = Setup::new();
    let _server = s.server();
    let (mut tessera, mut engine) = (Vec::new(), Vec::new());
    for i in 0..RUNS {
        let name = format!("bench{i}");
        let start = Instant::now();
        s.run_d(&name, &[], "sleep 30").expect_code(0);
        loop {
            let running = s.ok(&["inspect", "-f", "{{.State.Running}}", &name]);
            if running == "true" {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(30));
            std::thread::sleep(Duration::from_millis(5));
        }
        tessera.push(start.elapsed().as_secs_f64() * 1000.0);
        s.ok(&["rm", "-f", &name]);

        let direct = format!("tessera-bench-direct-{}-{i}", std::process::id());
        let start = Instant::now();
        let out = Command::new("docker")
            .args([
                "run", "-d", "--name", &direct, s.image, "sh", "-c", "sleep 30",
            ])
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        engine.push(start.elapsed().as_secs_f64() * 1000.0);
        let _ = Command::new("docker").args(["rm", "-f", &direct]).output();
    }
    let (t, e) = (median(&mut tessera), median(&mut engine));
    println!(
        "docker run -d until running, median of {RUNS}: tessera {t:.0} ms, engine {e:.0} ms, \
         ratio {:.2}",
        t / e
    );

    // A chain: c0 sleeps while the rest are created, each waiting for the
    // one before; each notes the kernel's uptime (10 ms steps, the same
    // clock in every container) when it starts and when it ends.
    let note = |i: usize| {
        format!(
            "read up rest < /proc/uptime; echo $up > /uploads/c{i}.start; \
             read up rest < /proc/uptime; echo $up > /uploads/c{i}.end"
        )
    };
    let vol = ["--volume", "storage:/uploads"];
    s.run_d("c0", &vol, &format!("sleep 8; {}", note(0)))
        .expect_code(0);
    for i in 1..CHAIN {
        let wait = format!("waitfor:container==c{}", i - 1);
        let extra = [&vol[..], &["-e", &wait]].concat();
        s.run_d(&format!("c{i}"), &extra, &note(i)).expect_code(0);
    }
    let last = format!("c{}", CHAIN - 1);
    let start = Instant::now();
    let waited = s.docker(&["wait", &last]);
    assert_eq!(waited.stdout.trim(), "0", "{waited:?}");
    let uptime = |f: String| -> f64 {
        let text = std::fs::read_to_string(s.storage.join(f)).unwrap();
        text.trim().parse::<f64>().unwrap() * 1000.0
    };
    let (mut hops, mut dispatch) = (Vec::new(), Vec::new());
    let mut prev_end = s.times("c0").1;
    for i in 1..CHAIN {
        let (start, end, code, _) = s.times(&format!("c{i}"));
        assert_eq!(code, 0);
        dispatch.push(millis(&start) - millis(&prev_end));
        prev_end = end;
        hops.push(uptime(format!("c{i}.start")) - uptime(format!("c{}.end", i - 1)));
    }
    println!(
        "waitfor hop, the previous container's last instruction -> the next one's first (the \
         exit noticed, the job ended, the next dispatched, its container created and started; \
         {} hops, chain done {:.1} s after its creation): p50 {:.0} ms, p99 {:.0} ms",
        hops.len(),
        start.elapsed().as_secs_f64(),
        percentile(&mut hops, 0.5),
        percentile(&mut hops, 0.99)
    );
    println!(
        "of which the scheduler's part (previous attempt's end -> next attempt's dispatch, as \
         stored): p50 {:.0} ms, p99 {:.0} ms",
        percentile(&mut dispatch, 0.5),
        percentile(&mut dispatch, 0.99)
    );
}

#[test]
fn rfc3339_times_read_back_as_milliseconds() {
    assert_eq!(millis("1970-01-01T00:00:01.500000000Z"), 1500.0);
    assert_eq!(millis("2000-02-29T00:00:00.000000000Z"), 951_782_400_000.0);
}
