//! Progress a person can read. On a terminal: an overall bar (frames, fps,
//! speed as x realtime, ETA) and one line per running task, redrawn in
//! place. Otherwise: a plain line every few seconds and one per finished chunk.
//!
//! It only observes: the driver calls it with committed changes and with the
//! progress lines tasks print; it never drives anything.

use crate::fail::Result;
use std::collections::{BTreeMap, HashMap};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tessera_driver::Observer;
use tessera_media::{Plan, ProbeResult, PLAN_FILE, PROBE_FILE};
use tessera_store::Store;
use tessera_types::{AttemptNo, Change, JobId, Progress, TaskRef, TaskState};

pub struct ProgressView {
    job: JobId,
    workdir: PathBuf,
    tty: bool,
    names: HashMap<u32, String>,
    /// Frames per chunk task (by task index), known once the plan is.
    chunk_frames: HashMap<u32, u64>,
    total_frames: u64,
    /// Frames of chunks that have finished.
    finished_frames: u64,
    /// Frames finished before this run (resume), excluded from fps.
    frames_at_start: u64,
    source_fps: f64,
    running: BTreeMap<u32, Running>,
    started: Instant,
    last_draw: Option<Instant>,
    drawn_lines: usize,
    /// `--chunk-seconds` and the slots, to explain a plan that differs.
    asked: Option<(f64, u32)>,
    /// A line to print once, above the progress.
    note: Option<String>,
}

struct Running {
    attempt: AttemptNo,
    done: u64,
    total: u64,
    since: Instant,
}

impl ProgressView {
    pub fn new(job: JobId, workdir: &Path, plain: bool) -> Self {
        Self {
            job,
            workdir: workdir.to_path_buf(),
            tty: !plain && std::io::stderr().is_terminal(),
            names: HashMap::new(),
            chunk_frames: HashMap::new(),
            total_frames: 0,
            finished_frames: 0,
            frames_at_start: 0,
            source_fps: 0.0,
            running: BTreeMap::new(),
            started: Instant::now(),
            last_draw: None,
            drawn_lines: 0,
            asked: None,
            note: None,
        }
    }

    /// Says once why the plan's chunks are not `chunk_seconds` long, when
    /// they are not.
    pub fn explain_plan(mut self, chunk_seconds: f64, slots: u32) -> Self {
        self.asked = Some((chunk_seconds, slots));
        self
    }

    /// Picks up what the store already knows (names, finished chunks).
    pub fn load(&mut self, store: &dyn Store) -> Result<()> {
        let tasks = store.tasks(self.job)?;
        for t in &tasks {
            self.names.insert(t.task.index, t.name.clone());
        }
        self.read_plan();
        for t in &tasks {
            if t.state == TaskState::Succeeded {
                self.finished_frames += self.chunk_frames.get(&t.task.index).copied().unwrap_or(0);
            }
        }
        self.frames_at_start = self.finished_frames;
        Ok(())
    }

    fn read_plan(&mut self) {
        if self.source_fps == 0.0 {
            if let Ok(bytes) = std::fs::read(self.workdir.join(PROBE_FILE)) {
                if let Ok(p) = serde_json::from_slice::<ProbeResult>(&bytes) {
                    self.source_fps = fps_of(&p);
                }
            }
        }
        let Ok(bytes) = std::fs::read(self.workdir.join(PLAN_FILE)) else {
            return;
        };
        let Ok(plan) = serde_json::from_slice::<Plan>(&bytes) else {
            return;
        };
        let by_name: HashMap<u32, u64> = plan
            .chunks
            .iter()
            .map(|c| (c.index, u64::from(c.count)))
            .collect();
        if self.total_frames == 0 {
            if let Some((secs, slots)) = self.asked.take() {
                self.note = crate::plan_note::explain(&plan, self.source_fps, secs, slots);
            }
        }
        // A ladder encodes every chunk once per rendition.
        let renditions = plan
            .ladder
            .as_ref()
            .map_or(1, |l| l.renditions.len().max(1)) as u64;
        self.total_frames = by_name.values().sum::<u64>() * renditions;
        for (index, name) in &self.names {
            if let Some(n) = tessera_media::chunk_of_task(name) {
                if let Some(&frames) = by_name.get(&n) {
                    self.chunk_frames.insert(*index, frames);
                }
            }
        }
    }

    fn done_frames(&self) -> u64 {
        let running: u64 = self
            .running
            .iter()
            .filter(|(i, _)| self.chunk_frames.contains_key(i))
            .map(|(_, r)| r.done)
            .sum();
        self.finished_frames + running
    }

    fn draw(&mut self, force: bool) {
        let every = if self.tty {
            Duration::from_millis(150)
        } else {
            Duration::from_secs(5)
        };
        if !force && self.last_draw.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.last_draw = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let done = self.done_frames();
        let fps = done.saturating_sub(self.frames_at_start) as f64 / elapsed;
        let speed = if self.source_fps > 0.0 {
            fps / self.source_fps
        } else {
            0.0
        };
        let left = self.total_frames.saturating_sub(done);
        let eta = if fps > 0.0 && self.total_frames > 0 {
            fmt_secs(left as f64 / fps)
        } else {
            "--:--".into()
        };
        let overall = if self.total_frames == 0 {
            format!("preparing ({})", self.stage())
        } else {
            format!(
                "{} {:>3}%  {done}/{} frames  {fps:.1} fps  {speed:.2}x  ETA {eta}",
                bar(done, self.total_frames, 30),
                done * 100 / self.total_frames.max(1),
                self.total_frames
            )
        };
        let mut err = std::io::stderr().lock();
        if let Some(note) = self.note.take() {
            if self.tty {
                let _ = write!(err, "{}", "\x1b[1A\x1b[2K".repeat(self.drawn_lines));
                self.drawn_lines = 0;
            }
            let _ = writeln!(err, "{note}");
        }
        if self.tty {
            let mut lines = vec![overall];
            for (i, r) in &self.running {
                let name = self.names.get(i).map_or("?", String::as_str);
                let detail = if r.total > 0 {
                    format!("{} {}/{}", bar(r.done, r.total, 20), r.done, r.total)
                } else {
                    format!("running {}", fmt_secs(r.since.elapsed().as_secs_f64()))
                };
                let retry = if r.attempt > 1 {
                    format!(" (attempt {})", r.attempt)
                } else {
                    String::new()
                };
                lines.push(format!("  {name:<20} {detail}{retry}"));
            }
            let _ = write!(err, "{}", "\x1b[1A\x1b[2K".repeat(self.drawn_lines));
            for l in &lines {
                let _ = writeln!(err, "\r\x1b[2K{l}");
            }
            self.drawn_lines = lines.len();
        } else {
            let _ = writeln!(err, "progress: {overall}  [{} running]", self.running.len());
        }
    }

    fn stage(&self) -> String {
        let names: Vec<&str> = self
            .running
            .keys()
            .filter_map(|i| self.names.get(i).map(String::as_str))
            .collect();
        if names.is_empty() {
            "queued".into()
        } else {
            names.join(", ")
        }
    }

    /// Draws the final state once more.
    pub fn finish(&mut self) {
        self.running.clear();
        self.draw(true);
    }
}

impl Observer for ProgressView {
    fn changes(&mut self, changes: &[Change]) {
        for c in changes {
            match c {
                Change::TasksAdded {
                    job,
                    first_index,
                    tasks,
                } if *job == self.job => {
                    for (i, t) in (*first_index..).zip(tasks) {
                        self.names.insert(i, t.name.clone());
                    }
                    self.read_plan();
                }
                Change::Task {
                    task,
                    state,
                    attempt,
                    ..
                } if task.job == self.job => {
                    let i = task.index;
                    match state {
                        TaskState::Running => {
                            let total = self.chunk_frames.get(&i).copied().unwrap_or(0);
                            let r = Running {
                                attempt: *attempt,
                                done: 0,
                                total,
                                since: Instant::now(),
                            };
                            self.running.insert(i, r);
                        }
                        TaskState::Succeeded => {
                            self.running.remove(&i);
                            if let Some(&f) = self.chunk_frames.get(&i) {
                                self.finished_frames += f;
                                if !self.tty {
                                    let name = self.names.get(&i).map_or("?", String::as_str);
                                    eprintln!("done: {name} ({f} frames)");
                                }
                            }
                        }
                        _ => {
                            self.running.remove(&i);
                        }
                    }
                }
                _ => {}
            }
        }
        self.draw(false);
    }

    fn progress(&mut self, task: TaskRef, attempt: AttemptNo, p: Progress) {
        if let Some(r) = self.running.get_mut(&task.index) {
            if r.attempt == attempt && task.job == self.job {
                r.done = p.done.min(p.total.max(p.done));
                if p.total > 0 {
                    r.total = p.total;
                }
            }
        }
        self.draw(false);
    }
}

fn fps_of(p: &ProbeResult) -> f64 {
    let span = video_seconds(p);
    if span > 0.0 {
        p.index.pts.len() as f64 / span
    } else {
        0.0
    }
}

/// How long the source's video lasts, from its frame timestamps.
pub fn video_seconds(p: &ProbeResult) -> f64 {
    let idx = &p.index;
    let (num, den) = idx.time_base;
    let (Some(first), Some(last)) = (idx.pts.first(), idx.pts.last()) else {
        return 0.0;
    };
    (last - first + idx.last_duration.max(0)) as f64 * num as f64 / den.max(1) as f64
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        (done.min(total) as usize * width) / total as usize
    };
    format!("[{}{}]", "#".repeat(filled), "-".repeat(width - filled))
}

pub fn fmt_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
    } else {
        format!("{}:{:02}", s / 60, s % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_and_times_render_for_people() {
        assert_eq!(bar(5, 10, 10), "[#####-----]");
        assert_eq!(bar(0, 0, 4), "[----]");
        assert_eq!(bar(12, 10, 4), "[####]");
        assert_eq!(fmt_secs(75.4), "1:15");
        assert_eq!(fmt_secs(3725.0), "1:02:05");
    }
}
