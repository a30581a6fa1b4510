//! The second figure: real `tessera worker` processes, each starting a real
//! `true` process per attempt (through its spawner), on this machine.

use super::{cpu, fan, median, start_server};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A release `tessera` binary, if there is one.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("TESSERA_BENCH_BIN") {
        return Some(PathBuf::from(p));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let bin = target.join("release/tessera");
    bin.is_file().then_some(bin)
}

/// Worker processes, stopped (SIGTERM, then SIGKILL after a bound) when
/// dropped, so a failed run leaves none behind.
struct Workers(Vec<Child>);

impl Workers {
    /// user + system seconds of the workers, their spawners and the
    /// attempts those reaped.
    fn cpu(&self) -> f64 {
        self.0
            .iter()
            .map(|c| {
                let pid = c.id();
                cpu::process_tree(pid)
                    + cpu::children(pid)
                        .into_iter()
                        .map(cpu::process_tree)
                        .sum::<f64>()
            })
            .sum()
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &self.0 {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
        }
        let until = Instant::now() + Duration::from_secs(10);
        for c in &mut self.0 {
            while Instant::now() < until && matches!(c.try_wait(), Ok(None)) {
                std::thread::sleep(Duration::from_millis(20));
            }
            if matches!(c.try_wait(), Ok(None)) {
                let _ = c.kill();
            }
            let _ = c.wait();
        }
    }
}

pub fn run(bin: &std::path::Path, n: usize, tasks: usize) {
    let runs = super::env_usize("BENCH_RUNS", 3).max(1);
    println!(
        "== {n} real `tessera worker` processes x 1 slot ({}), each attempt a real `true` process",
        bin.display()
    );
    let s = start_server();
    let logs = s.data.join("worker-logs");
    std::fs::create_dir_all(&logs).unwrap();
    let mut workers = Workers(Vec::new());
    for i in 0..n {
        let name = format!("rw-{i}");
        let token = tessera_api::create_worker_token(&s.data, &name).unwrap();
        let log = std::fs::File::create(logs.join(format!("{name}.log"))).unwrap();
        let child = Command::new(bin)
            .args(["worker", "--server", &s.root, "--name", &name])
            .args(["--slots", "1", "--grace", "0", "--data-dir"])
            .arg(&s.data)
            .env("TESSERA_WORKER_TOKEN", token)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        workers.0.push(child);
    }
    s.wait_ready(n, Duration::from_secs(120));
    let main = [cpu::tid()];
    let spec = fan(tasks);
    let total = tasks as f64 + 2.0;
    let mut rates = Vec::new();
    for _ in 0..runs {
        let (before, wbefore) = (cpu::Split::now(&main), workers.cpu());
        let took = s.run(&spec);
        let (used, wused) = (
            cpu::Split::now(&main).since(&before),
            workers.cpu() - wbefore,
        );
        let secs = took.as_secs_f64();
        rates.push(total / secs);
        println!(
            "   fan-out 1 -> {tasks} -> 1   {:>7.0} tasks/s  {secs:>6.2} s  server cpu {:>5.2} s ({:>3.0}%)  \
             workers + their processes cpu {wused:>6.2} s ({:>3.0}%)",
            total / secs,
            used.server,
            used.server / secs * 100.0,
            wused / secs * 100.0,
        );
    }
    println!(
        "   fan-out 1 -> {tasks} -> 1   median {:>7.0} tasks/s with real process starts \
         ({} cores here, shared by server, workers and attempts)",
        median(rates),
        std::thread::available_parallelism().map_or(1, |c| c.get())
    );
    drop(workers);
}
