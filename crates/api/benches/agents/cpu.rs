//! CPU time from /proc: this process, its threads, other processes.
//! Linux reports it in clock ticks of 1/100 s (USER_HZ), so figures are
//! good to 10 ms per thread: fine over runs of seconds.

use std::path::Path;

const TICK_S: f64 = 0.01;

/// The calling thread's id (as /proc/self/task names it).
pub fn tid() -> u32 {
    std::fs::read_link("/proc/thread-self")
        .ok()
        .and_then(|p| p.file_name()?.to_str()?.parse().ok())
        .unwrap_or(0)
}

/// Fields 14..=17 of a stat file (utime, stime, cutime, cstime) in seconds;
/// zeros if it cannot be read (a thread or process that is gone).
pub fn stat_times(path: &Path) -> [f64; 4] {
    let Ok(text) = std::fs::read_to_string(path) else {
        return [0.0; 4];
    };
    // The command name (field 2) may hold spaces; fields resume after ')'.
    let Some(rest) = text.rsplit_once(')').map(|(_, r)| r) else {
        return [0.0; 4];
    };
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0) * TICK_S;
    // After ')': index 0 is field 3 (state), so field N is index N - 3.
    [num(11), num(12), num(13), num(14)]
}

/// user + system seconds of this process (all its threads, live or ended).
fn process() -> f64 {
    let t = stat_times(Path::new("/proc/self/stat"));
    t[0] + t[1]
}

/// user + system seconds of one thread of this process.
fn thread(tid: u32) -> f64 {
    let t = stat_times(Path::new(&format!("/proc/self/task/{tid}/stat")));
    t[0] + t[1]
}

/// user + system seconds of a process and of the children it has reaped.
pub fn process_tree(pid: u32) -> f64 {
    let t = stat_times(Path::new(&format!("/proc/{pid}/stat")));
    t.iter().sum()
}

/// The pids of a process's live children.
pub fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// This process's cpu, split into the client threads named and the rest
/// (the server: its runtime, the driver, the lease timer, blocking threads).
pub struct Split {
    pub server: f64,
    pub clients: f64,
}

impl Split {
    pub fn now(clients: &[u32]) -> Self {
        let clients: f64 = clients.iter().map(|t| thread(*t)).sum();
        Self {
            server: process() - clients,
            clients,
        }
    }

    pub fn since(&self, before: &Split) -> Split {
        Split {
            server: self.server - before.server,
            clients: self.clients - before.clients,
        }
    }
}
