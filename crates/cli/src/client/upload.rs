//! `tessera upload FILE`: a video streamed to the server (never read whole
//! into memory) with a progress line, and a file streamed back (an encode's
//! output) the same way, written under a temporary name and renamed.

use super::Client;
use crate::fail::{Failure, Result};
use crate::progress::fmt_secs;
use clap::Args;
use serde_json::Value;
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

#[derive(Args)]
pub struct UploadArgs {
    /// The video to upload (the server probes it: a file that is not a
    /// video is refused).
    file: PathBuf,
    /// The project (id or name); default: your only project.
    #[arg(long, short)]
    project: Option<String>,
}

pub fn upload(args: UploadArgs) -> Result<()> {
    let client = Client::from_login()?;
    let project = super::project_id(&client, args.project.as_deref())?;
    let up = send(&client, project, &args.file)?;
    // The id on stdout alone, for scripts; the rest for people.
    println!("{}", up["upload"].as_str().unwrap_or(""));
    Ok(())
}

/// Streams `file` into the project's uploads; the server's upload record.
pub fn send(client: &Client, project: i64, file: &Path) -> Result<Value> {
    let f = std::fs::File::open(file)
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?;
    let bytes = f
        .metadata()
        .map_err(|e| Failure::input(format!("{}: {e}", file.display())))?
        .len();
    if bytes == 0 {
        return Err(Failure::input(format!(
            "{}: is empty; there is nothing to upload",
            file.display()
        )));
    }
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("video")
        .to_string();
    let query: String = url_encode(&name);
    let mut meter = Meter::new(format!("uploading {name}"), bytes);
    let body = Counted {
        inner: f,
        meter: &mut meter,
    };
    let url = format!(
        "{}/api/v1/projects/{project}/uploads?name={query}",
        client.server
    );
    let resp = streaming_agent()
        .post(&url)
        .set("Authorization", &format!("Bearer {}", client.key))
        .set("Content-Type", "application/octet-stream")
        .set("Content-Length", &bytes.to_string())
        .send(body);
    let up: Value = match resp {
        Ok(r) => r
            .into_json()
            .map_err(|e| Failure::env(format!("reading the server's reply: {e}")))?,
        Err(e) => {
            meter.abandon();
            return Err(client.failure(e));
        }
    };
    meter.done();
    eprintln!(
        "uploaded {name} ({}{}) as upload {}",
        mib(bytes),
        describe_video(&up),
        up["upload"].as_str().unwrap_or("?")
    );
    Ok(up)
}

/// Downloads `path` of the API into `to`, through `to.part`, with a
/// progress line; nothing is left at `to` unless the whole file came.
pub fn fetch(client: &Client, path: &str, to: &Path) -> Result<u64> {
    let url = format!("{}/api/v1{path}", client.server);
    let resp = streaming_agent()
        .get(&url)
        .set("Authorization", &format!("Bearer {}", client.key))
        .call()
        .map_err(|e| client.failure(e))?;
    let total: u64 = resp
        .header("Content-Length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let part = part_path(to);
    let mut out = std::fs::File::create(&part)
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", part.display())))?;
    let name = to
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into());
    let mut meter = Meter::new(format!("downloading {name}"), total);
    let mut reader = resp.into_reader();
    let mut buf = vec![0u8; 256 << 10];
    let mut got = 0u64;
    let copied: std::io::Result<()> = loop {
        match reader.read(&mut buf) {
            Ok(0) => break Ok(()),
            Ok(n) => {
                if let Err(e) = out.write_all(&buf[..n]) {
                    break Err(e);
                }
                got += n as u64;
                meter.add(n as u64);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => break Err(e),
        }
    };
    let complete = copied.and_then(|()| out.sync_all()).and_then(|()| {
        if total > 0 && got != total {
            Err(std::io::Error::other(format!(
                "the server sent {got} of {total} bytes"
            )))
        } else {
            Ok(())
        }
    });
    if let Err(e) = complete.and_then(|()| std::fs::rename(&part, to)) {
        meter.abandon();
        let _ = std::fs::remove_file(&part);
        return Err(Failure::env(format!(
            "downloading into {}: {e}; nothing was kept, run the command again",
            to.display()
        )));
    }
    meter.done();
    Ok(got)
}

fn part_path(to: &Path) -> PathBuf {
    let mut name = to.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    to.with_file_name(name)
}

/// An agent for bodies that take as long as they take: bounded while
/// connecting and between reads or writes, not overall.
fn streaming_agent() -> ureq::Agent {
    ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout_read(Duration::from_secs(120))
        .timeout_write(Duration::from_secs(120))
        .build()
}

/// ` h264 1280x720, 10.0 s` from an upload record.
fn describe_video(up: &Value) -> String {
    let video = up["streams"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["kind"] == "video");
    let mut out = String::new();
    if let Some(v) = video {
        out.push_str(&format!(
            ", {} {}x{}",
            v["codec_name"].as_str().unwrap_or("video"),
            v["width"],
            v["height"]
        ));
    }
    if let Some(d) = up["duration"].as_f64() {
        out.push_str(&format!(", {d:.1} s"));
    }
    out
}

pub fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A progress line on standard error: redrawn in place on a terminal
/// (`tty`), one line each time otherwise.
pub fn status_line(tty: bool, line: &str) {
    let mut err = std::io::stderr().lock();
    if tty {
        let _ = write!(err, "\r\x1b[2K{line}");
    } else {
        let _ = writeln!(err, "{line}");
    }
    let _ = err.flush();
}

/// A reader that tells a [`Meter`] what passed through it.
struct Counted<'a, R> {
    inner: R,
    meter: &'a mut Meter,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.add(n as u64);
        Ok(n)
    }
}

/// A byte count drawn on standard error: redrawn in place on a terminal,
/// a line every few seconds otherwise.
pub struct Meter {
    what: String,
    total: u64,
    done: u64,
    started: Instant,
    drawn: Option<Instant>,
    /// Whether a line is on the terminal.
    shown: bool,
    tty: bool,
}

impl Meter {
    pub fn new(what: String, total: u64) -> Self {
        let now = Instant::now();
        Self {
            what,
            total,
            done: 0,
            started: now,
            // The first line once there is a rate to show.
            drawn: Some(now),
            shown: false,
            tty: std::io::stderr().is_terminal(),
        }
    }

    fn add(&mut self, n: u64) {
        self.done += n;
        let every = if self.tty {
            Duration::from_millis(150)
        } else {
            Duration::from_secs(5)
        };
        if self.drawn.is_none_or(|t| t.elapsed() >= every) {
            self.draw();
        }
    }

    fn draw(&mut self) {
        self.drawn = Some(Instant::now());
        self.shown = true;
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let mut line = format!("{}  {}", self.what, mib(self.done));
        if self.total > 0 {
            let pct = self.done as f64 * 100.0 / self.total as f64;
            line.push_str(&format!(" of {} ({pct:.0}%)", mib(self.total)));
            if rate > 0.0 && self.done < self.total {
                let left = (self.total - self.done) as f64 / rate;
                line.push_str(&format!(", {} left", fmt_secs(left)));
            }
        }
        line.push_str(&format!(", {:.1} MiB/s", rate / (1024.0 * 1024.0)));
        status_line(self.tty, &line);
    }

    /// The last line, complete.
    fn done(&mut self) {
        self.draw();
        if self.tty {
            let _ = writeln!(std::io::stderr());
        }
    }

    /// Leaves the line as it is for a message to follow.
    fn abandon(&mut self) {
        if self.tty && self.shown {
            let _ = writeln!(std::io::stderr());
        }
    }
}
