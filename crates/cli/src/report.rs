//! The end-of-encode summary: chunks, tasks and retries, wall time, speed, size,
//! verification, and how much of the run was spent outside encoding.

use crate::encode::verify_report;
use crate::fail::{Failure, Result};
use crate::progress::{fmt_secs, video_seconds};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_driver::SystemClock;
use tessera_media::{EncodeRequest, Plan, ProbeResult, PLAN_FILE, PROBE_FILE};
use tessera_store::Store;
use tessera_types::{JobId, TaskState};

#[derive(Serialize)]
pub struct Summary {
    pub job: i64,
    pub output: PathBuf,
    pub chunks: usize,
    pub chunks_done: usize,
    /// Chunks finished by an earlier, interrupted run.
    pub chunks_reused: usize,
    pub frames: u64,
    /// Every task of the encode (probe, plan, chunks, audio, join, verify).
    pub tasks: usize,
    pub attempts: usize,
    pub retries: usize,
    pub wall_ms: u64,
    pub source_seconds: f64,
    /// Source seconds encoded per wall second.
    pub speed: f64,
    pub fps: f64,
    pub output_bytes: u64,
    /// From the first chunk/audio encode's start to the last one's end, in this run.
    pub encode_span_ms: u64,
    /// Wall time outside that span: probe, plan, join, verify, scheduling.
    pub overhead_ms: u64,
    pub overhead_pct: f64,
    /// Wall time of each non-encode step (its last attempt), in ms.
    pub steps_ms: Vec<(String, u64)>,
    pub verified: bool,
    #[serde(skip)]
    pub verify_text: String,
    /// A ladder's renditions, bitrates and checks (`ladder.json` in its folder).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ladder: Option<tessera_media::ladder::LadderReport>,
    /// With `--target-vmaf`: each chunk's CRF search.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub target_chunks: Vec<tessera_media::target::ChunkTarget>,
}

impl Summary {
    pub fn collect(
        store: &dyn Store,
        job: JobId,
        workdir: &Path,
        req: &EncodeRequest,
        started: Instant,
        reused: usize,
    ) -> Result<Self> {
        let wall_ms = started.elapsed().as_millis() as u64;
        let run_start = SystemClock::now().saturating_sub(wall_ms);
        let tasks = store.tasks(job)?;
        let attempts = store.attempts(job)?;
        let is_encode = |name: &str| name.starts_with("encode-chunk-") || name == "encode-audio";
        let name_of = |i: u32| tasks.get(i as usize).map_or("", |t| t.name.as_str());
        let chunk_tasks: Vec<_> = tasks
            .iter()
            .filter(|t| t.name.starts_with("encode-chunk-"))
            .collect();
        let mut span: Option<(u64, u64)> = None;
        for a in attempts
            .iter()
            .filter(|a| is_encode(name_of(a.task.index)) && a.started_at >= run_start)
        {
            let end = a.ended_at.unwrap_or(a.started_at);
            span = Some(span.map_or((a.started_at, end), |(s, e)| {
                (s.min(a.started_at), e.max(end))
            }));
        }
        let encode_span_ms = span.map_or(0, |(s, e)| e - s);
        let overhead_ms = wall_ms.saturating_sub(encode_span_ms);
        let mut steps_ms = Vec::new();
        for t in tasks.iter().filter(|t| !is_encode(&t.name)) {
            if let Some(a) = attempts.iter().rev().find(|a| a.task.index == t.task.index) {
                steps_ms.push((t.name.clone(), a.usage.map_or(0, |u| u.wall_ms)));
            }
        }
        let plan: Option<Plan> = std::fs::read(workdir.join(PLAN_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let frames = plan
            .as_ref()
            .map_or(0, |p| p.chunks.iter().map(|c| u64::from(c.count)).sum());
        let probe: Option<ProbeResult> = std::fs::read(workdir.join(PROBE_FILE))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let source_seconds = probe.as_ref().map_or(0.0, video_seconds);
        let secs = (wall_ms as f64 / 1000.0).max(1e-3);
        let verified = tasks.iter().any(|t| {
            (t.name == "verify" || t.name == "publish") && t.state == TaskState::Succeeded
        });
        let ladder: Option<tessera_media::ladder::LadderReport> = req
            .ladder
            .as_ref()
            .and_then(|_| std::fs::read(req.output.join(tessera_media::ladder::LADDER_REPORT)).ok())
            .and_then(|b| serde_json::from_slice(&b).ok());
        Ok(Self {
            job: job.0,
            output: req.output.clone(),
            chunks: chunk_tasks.len(),
            chunks_done: chunk_tasks
                .iter()
                .filter(|t| t.state == TaskState::Succeeded)
                .count(),
            chunks_reused: reused,
            frames,
            tasks: tasks.len(),
            attempts: attempts.len(),
            retries: attempts
                .len()
                .saturating_sub(tasks.iter().filter(|t| t.attempt > 0).count()),
            wall_ms,
            source_seconds,
            speed: source_seconds / secs,
            fps: frames as f64 / secs,
            output_bytes: match &ladder {
                Some(_) => folder_bytes(&req.output),
                None => std::fs::metadata(&req.output).map_or(0, |m| m.len()),
            },
            encode_span_ms,
            overhead_ms,
            overhead_pct: overhead_ms as f64 * 100.0 / wall_ms.max(1) as f64,
            steps_ms,
            verified,
            verify_text: verify_report(workdir).unwrap_or_default(),
            target_chunks: plan.as_ref().map_or_else(Vec::new, |p| {
                p.chunks
                    .iter()
                    .filter_map(|c| {
                        let f = p.chunk_path(workdir, c).with_extension("target.json");
                        serde_json::from_slice(&std::fs::read(f).ok()?).ok()
                    })
                    .collect()
            }),
            ladder,
        })
    }

    pub fn write_json(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_vec_pretty(self).map_err(Failure::internal)?;
        std::fs::write(path, json).map_err(|e| {
            Failure::input(format!(
                "cannot write the report to {}: {e}",
                path.display()
            ))
        })
    }
}

/// Bytes of the files in a folder and the folders in it (two levels: a
/// ladder's renditions and their segments).
fn folder_bytes(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::read_dir(e.path()).map_or(0, |d| {
                d.flatten()
                    .filter_map(|f| f.metadata().ok())
                    .filter(|m| m.is_file())
                    .map(|m| m.len())
                    .sum()
            }),
            Ok(t) if t.is_file() => e.metadata().map_or(0, |m| m.len()),
            _ => 0,
        })
        .sum()
}

fn write_ladder(
    f: &mut fmt::Formatter<'_>,
    l: &tessera_media::ladder::LadderReport,
) -> fmt::Result {
    writeln!(
        f,
        "  ladder     {} renditions, {} segments of {} s, HLS master.m3u8 + DASH manifest.mpd",
        l.renditions.len(),
        l.segments,
        l.segment_seconds
    )?;
    for r in &l.renditions {
        let checks = if r.checks.iter().all(|c| c.ok) {
            "checks passed"
        } else {
            "CHECKS FAILED"
        };
        let vmaf = r.quality.as_ref().map_or(String::new(), |q| {
            format!(
                ", VMAF {:.1} (min {:.1}), PSNR {:.1} dB, SSIM {:.3}",
                q.vmaf_mean, q.vmaf_min, q.psnr_y_mean, q.ssim_mean
            )
        });
        writeln!(
            f,
            "    {:<8} {:>9}  {:<12} {:>6.0} kbit/s average, {:>6.0} peak, {} frames{vmaf}, {checks}",
            r.name,
            format!("{}x{}", r.width, r.height),
            r.codec,
            r.average_bandwidth as f64 / 1000.0,
            r.peak_bandwidth as f64 / 1000.0,
            r.frames
        )?;
    }
    if !l.audio.is_empty() || !l.subtitles.is_empty() {
        writeln!(
            f,
            "    audio    {}; subtitles {}",
            if l.audio.is_empty() {
                "none".into()
            } else {
                l.audio.join(", ")
            },
            if l.subtitles.is_empty() {
                "none".into()
            } else {
                l.subtitles.join(", ")
            }
        )?;
    }
    if let Some(note) = &l.quality_note {
        writeln!(f, "    quality  {note}")?;
    }
    if !l.skipped.is_empty() {
        writeln!(
            f,
            "    skipped  {} (taller than the source; Tessera does not upscale)",
            l.skipped.join(", ")
        )?;
    }
    Ok(())
}

fn write_target(
    f: &mut fmt::Formatter<'_>,
    chunks: &[tessera_media::target::ChunkTarget],
) -> fmt::Result {
    let Some(first) = chunks.first() else {
        return Ok(());
    };
    let n = chunks.len() as f64;
    let probes: usize = chunks.iter().map(|c| c.probes.len()).sum();
    let worst = chunks
        .iter()
        .map(|c| (c.measured - c.target).abs())
        .fold(0.0, f64::max);
    writeln!(
        f,
        "  target     VMAF {}: {} chunks, {:.1} probe encodes each (the kept encode is a probe: no probe-to-final gap); chunks {worst:.2} off the target at most",
        first.target,
        chunks.len(),
        probes as f64 / n,
    )?;
    for (i, c) in chunks.iter().enumerate() {
        writeln!(
            f,
            "    chunk {i:<4} crf {:>5.2}  VMAF {:>6.2}  ({} probes)",
            c.crf,
            c.measured,
            c.probes.len()
        )?;
    }
    Ok(())
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mib = self.output_bytes as f64 / (1024.0 * 1024.0);
        writeln!(f, "encoded {} -> {:.1} MiB", self.output.display(), mib)?;
        if let Some(l) = &self.ladder {
            write_ladder(f, l)?;
        }
        write_target(f, &self.target_chunks)?;
        let reused = if self.chunks_reused > 0 {
            format!(" ({} reused from an earlier run)", self.chunks_reused)
        } else {
            String::new()
        };
        // A ladder encodes each chunk once per rendition.
        let chunks = match self.ladder.as_ref().map(|l| l.renditions.len()) {
            Some(r) if r > 0 => format!(
                "{} chunk encodes ({} chunks x {r} renditions)",
                self.chunks,
                self.chunks / r
            ),
            _ => self.chunks.to_string(),
        };
        writeln!(
            f,
            "  chunks     {chunks}{reused} ({} tasks, {} {})",
            self.tasks,
            self.retries,
            if self.retries == 1 {
                "retry"
            } else {
                "retries"
            }
        )?;
        writeln!(
            f,
            "  time       {} wall, {} frames, {:.1} fps, {:.2}x realtime",
            fmt_secs(self.wall_ms as f64 / 1000.0),
            self.frames,
            self.fps,
            self.speed
        )?;
        let steps: Vec<String> = self
            .steps_ms
            .iter()
            .map(|(n, ms)| format!("{n} {ms} ms"))
            .collect();
        writeln!(
            f,
            "  overhead   {:.1}% outside encoding ({})",
            self.overhead_pct,
            steps.join(", ")
        )?;
        let verdict = if self.verified {
            "passed"
        } else {
            "NOT verified"
        };
        writeln!(f, "  verified   {verdict}")?;
        for line in self.verify_text.lines().filter(|l| !l.trim().is_empty()) {
            writeln!(f, "             {line}")?;
        }
        Ok(())
    }
}
