//! `tessera encode FILE -o OUT --server URL`: the same encode on a Tessera
//! server — the video uploaded with a progress line, the encode started,
//! followed live (frames of chunks, fps, x realtime, ETA) from the job's
//! event stream, and the verified output downloaded into place.

use super::upload::{fetch, mib, send};
use super::Client;
use crate::fail::{Failure, Result};
use crate::progress::fmt_secs;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, IsTerminal, Write};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What `tessera encode` hands over when it runs on a server.
pub struct RemoteEncode {
    pub server: String,
    pub project: Option<String>,
    pub input: PathBuf,
    pub output: PathBuf,
    pub codec: String,
    pub crf: Option<u32>,
    pub preset: Option<String>,
    pub chunk_seconds: f64,
    pub plain: bool,
    /// An ABR ladder into the `output` folder instead of one file.
    pub ladder: Option<tessera_media::ladder::LadderRequest>,
}

pub fn encode(r: RemoteEncode) -> Result<()> {
    let started = Instant::now();
    let container = match r.ladder {
        Some(_) => None,
        None => Some(container_of(&r.output)?),
    };
    let client = Client::for_server(&r.server)?;
    let project = super::project_id(&client, r.project.as_deref())?;
    let up = send(&client, project, &r.input)?;
    let body = match &r.ladder {
        Some(ladder) => json!({
            "upload": up["upload"], "preset": r.preset, "chunk_seconds": r.chunk_seconds,
            "ladder": ladder,
        }),
        None => json!({
            "upload": up["upload"], "codec": r.codec, "crf": r.crf, "preset": r.preset,
            "container": container, "chunk_seconds": r.chunk_seconds,
        }),
    };
    let job = client.post_json(&format!("/projects/{project}/encodes"), &body)?;
    let id = job["id"]
        .as_i64()
        .ok_or_else(|| Failure::internal(format!("the server started no job: {job}")))?;
    eprintln!(
        "encoding on {} as job {id} (`tessera job show {id}` there)",
        client.server
    );
    let mut view = View::new(&up, r.plain);
    let state = follow(&client, id, &mut view)?;
    view.finish();
    if state != "succeeded" {
        return Err(explain(&client, id, &state));
    }
    let bytes = if r.ladder.is_some() {
        super::ladder::download(&client, id, &r.output)?.1
    } else {
        fetch(&client, &format!("/jobs/{id}/output"), &r.output)?
    };
    summary(&client, id, &r, bytes, &view, started)
}

/// The output's container from its extension, as the server names them.
fn container_of(output: &std::path::Path) -> Result<&'static str> {
    let ext = output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("mp4") => Ok("mp4"),
        Some("mkv") => Ok("mkv"),
        Some("webm") => Ok("webm"),
        _ => Err(Failure::input(format!(
            "{}: a server encodes into .mp4, .mkv or .webm; name the output with one of them",
            output.display()
        ))),
    }
}

/// Follows the job's events until it ends; its final state.
fn follow(client: &Client, id: i64, view: &mut View) -> Result<String> {
    view.learn_names(client, id)?;
    let body = client.open_stream(&format!("/jobs/{id}/events"))?;
    let mut event = String::new();
    for line in BufReader::new(body).lines() {
        let line = line.map_err(|e| Failure::env(format!("reading the job's events: {e}")))?;
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
            continue;
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let d: Value = serde_json::from_str(data).unwrap_or(Value::Null);
        match event.as_str() {
            "tasks_added" | "lagged" => view.learn_names(client, id)?,
            "progress" => view.progress(&d),
            "task" => view.task(&d),
            "end" => return Ok(d["state"].as_str().unwrap_or("").to_string()),
            _ => {}
        }
        view.draw(false);
    }
    Err(Failure::env(format!(
        "the server closed the event stream before job {id} ended (is it restarting?); the \
         encode goes on there: `tessera job watch {id}`, then `tessera encode` again or download \
         it from /api/v1/jobs/{id}/output"
    )))
}

/// Why the job did not succeed, from its first failed task.
fn explain(client: &Client, id: i64, state: &str) -> Failure {
    let mut why = String::new();
    let _ = super::job::for_each_task(client, id, |t| {
        if why.is_empty() && t["state"] == "failed" {
            why = format!(
                ": task {} {}",
                t["name"].as_str().unwrap_or("?"),
                t["reason"].as_str().unwrap_or("failed")
            );
        }
    });
    Failure::internal(format!(
        "the encode {state} on the server (job {id}){why}; see `tessera job show {id}`"
    ))
}

fn summary(
    client: &Client,
    id: i64,
    r: &RemoteEncode,
    bytes: u64,
    view: &View,
    started: Instant,
) -> Result<()> {
    let (mut tasks, mut chunks, mut verified) = (0, 0, false);
    super::job::for_each_task(client, id, |t| {
        tasks += 1;
        let name = t["name"].as_str().unwrap_or("");
        chunks += usize::from(tessera_media::chunk_of_task(name).is_some());
        verified |= matches!(name, "verify" | "publish") && t["state"] == "succeeded";
    })?;
    let attempts = client.get(&format!("/jobs/{id}/attempts?limit=10000"))?;
    let attempts = attempts.as_array().map_or(0, Vec::len);
    let retries = attempts.saturating_sub(tasks);
    let wall = started.elapsed().as_secs_f64();
    println!(
        "encoded {} -> {} ({}) on {} as job {id}",
        r.input.display(),
        r.output.display(),
        mib(bytes),
        client.server
    );
    println!(
        "  chunks     {chunks} ({tasks} tasks, {retries} {})",
        if retries == 1 { "retry" } else { "retries" }
    );
    let frames = view.frames_done();
    println!(
        "  time       {} wall (upload and download included), {frames} frames, {:.1} fps",
        fmt_secs(wall),
        frames as f64 / wall.max(1e-3)
    );
    let verdict = if verified {
        "passed (on the server: frames, timing and streams against the source)"
    } else {
        "NOT verified"
    };
    println!("  verified   {verdict}");
    Ok(())
}

/// The encode's progress as one line: frames of the chunks, fps, speed and
/// time left.
struct View {
    /// Chunk tasks by index: (frames done, frames in the chunk).
    chunks: HashMap<u64, (u64, u64)>,
    names: HashMap<u64, String>,
    /// Frames the source has, estimated from the upload's probe.
    estimate: u64,
    source_fps: f64,
    started: Instant,
    drawn: Option<Instant>,
    tty: bool,
}

impl View {
    fn new(upload: &Value, plain: bool) -> Self {
        let video = upload["streams"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|s| s["kind"] == "video");
        let source_fps = video
            .and_then(|v| v["avg_frame_rate"].as_str())
            .and_then(|r| {
                let (n, d) = r.split_once('/')?;
                let (n, d): (f64, f64) = (n.parse().ok()?, d.parse().ok()?);
                (d > 0.0).then_some(n / d)
            })
            .unwrap_or(0.0);
        let duration = upload["duration"].as_f64().unwrap_or(0.0);
        Self {
            chunks: HashMap::new(),
            names: HashMap::new(),
            estimate: (duration * source_fps).round() as u64,
            source_fps,
            started: Instant::now(),
            drawn: None,
            tty: !plain && std::io::stderr().is_terminal(),
        }
    }

    fn learn_names(&mut self, client: &Client, id: i64) -> Result<()> {
        super::job::for_each_task(client, id, |t| {
            if let (Some(i), Some(n)) = (t["index"].as_u64(), t["name"].as_str()) {
                self.names.insert(i, n.to_string());
            }
        })
    }

    fn is_chunk(&self, index: u64) -> bool {
        self.names
            .get(&index)
            .is_some_and(|n| tessera_media::chunk_of_task(n).is_some())
    }

    fn progress(&mut self, d: &Value) {
        let index = d["index"].as_u64().unwrap_or(u64::MAX);
        if self.is_chunk(index) {
            let (done, total) = (d["done"].as_u64(), d["total"].as_u64());
            self.chunks
                .insert(index, (done.unwrap_or(0), total.unwrap_or(0)));
        }
    }

    fn task(&mut self, d: &Value) {
        let index = d["index"].as_u64().unwrap_or(u64::MAX);
        if d["state"] == "succeeded" && self.is_chunk(index) {
            if let Some(c) = self.chunks.get_mut(&index) {
                c.0 = c.1;
            }
        }
    }

    fn frames_done(&self) -> u64 {
        self.chunks.values().map(|c| c.0).sum()
    }

    fn draw(&mut self, force: bool) {
        let every = if self.tty {
            Duration::from_millis(150)
        } else {
            Duration::from_secs(5)
        };
        if !force && self.drawn.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        self.drawn = Some(Instant::now());
        let done = self.frames_done();
        let total = self.estimate.max(self.chunks.values().map(|c| c.1).sum());
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let fps = done as f64 / secs;
        let mut line = format!("encoding  {done}/{total} frames, {fps:.1} fps");
        if self.source_fps > 0.0 {
            line.push_str(&format!(", {:.2}x realtime", fps / self.source_fps));
        }
        if fps > 0.0 && total > done {
            line.push_str(&format!(", {} left", fmt_secs((total - done) as f64 / fps)));
        }
        let running = self.chunks.values().filter(|c| c.0 < c.1).count();
        let s = if running == 1 { "" } else { "s" };
        line.push_str(&format!(" ({running} chunk{s} encoding)"));
        super::upload::status_line(self.tty, &line);
    }

    fn finish(&mut self) {
        self.draw(true);
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }
}
