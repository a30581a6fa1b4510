//! `tessera job ...`: one job on the server — show it (every task, page by
//! page), read or follow a task's log, watch its events live, and control it.

use super::{when, Client};
use crate::fail::{Failure, Result};
use clap::Subcommand;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};

/// Tasks asked for per page (the server's largest page).
const PAGE: usize = 10_000;

#[derive(Subcommand)]
pub enum JobCmd {
    /// A job, its tasks (with why each waits) and their attempts.
    Show {
        /// The job's id (`tessera jobs` lists them).
        id: i64,
    },
    /// A task attempt's log.
    Logs {
        /// The job's id.
        id: i64,
        /// Task name or index.
        task: String,
        /// Which attempt (1 for the first) [default: the latest].
        #[arg(long)]
        attempt: Option<u32>,
        /// Show stderr instead of stdout.
        #[arg(long)]
        stderr: bool,
        /// Keep printing what the attempt writes until it ends (waits for a
        /// task that has not started yet).
        #[arg(long, short)]
        follow: bool,
    },
    /// Print the job's events as they happen, until it ends.
    Watch {
        /// The job's id.
        id: i64,
    },
    /// Cancel a job: queued tasks end, running ones are killed.
    Cancel {
        /// The job's id.
        id: i64,
    },
    /// Suspend a job: nothing of it starts, running attempts are stopped.
    Suspend {
        /// The job's id.
        id: i64,
    },
    /// Resume a suspended job.
    Resume {
        /// The job's id.
        id: i64,
    },
    /// Run again the failed, cancelled and skipped tasks of a job that ended
    /// badly (what succeeded is kept).
    Retry {
        /// The job's id.
        id: i64,
    },
    /// Set a job's priority (0 to 100), added to its tasks' own priorities.
    Priority {
        /// The job's id.
        id: i64,
        /// 0 (the default) to 100; higher starts first.
        priority: i32,
    },
}

pub fn job(cmd: JobCmd) -> Result<()> {
    let client = Client::from_login()?;
    match cmd {
        JobCmd::Show { id } => show(&client, id)?,
        JobCmd::Logs {
            id,
            task,
            attempt,
            stderr,
            follow,
        } => {
            let index = task_index(&client, id, &task)?;
            let stream = if stderr { "stderr" } else { "stdout" };
            let mut path = format!("/jobs/{id}/tasks/{index}/logs?stream={stream}");
            if let Some(a) = attempt {
                path.push_str(&format!("&attempt={a}"));
            }
            if follow {
                path.push_str("&follow=true");
                let mut body = client.open_stream(&path)?;
                copy_flushing(&mut body, &mut std::io::stdout().lock())
                    .map_err(|e| Failure::env(format!("reading the log: {e}")))?;
            } else {
                print!("{}", client.get_text(&path)?);
            }
        }
        JobCmd::Watch { id } => watch(&client, id)?,
        JobCmd::Cancel { id } => {
            client.post_json(&format!("/jobs/{id}/cancel"), &Value::Null)?;
            println!("cancelling job {id}");
        }
        JobCmd::Suspend { id } => {
            client.post_json(&format!("/jobs/{id}/suspend"), &Value::Null)?;
            println!("job {id} suspended");
        }
        JobCmd::Resume { id } => {
            client.post_json(&format!("/jobs/{id}/resume"), &Value::Null)?;
            println!("job {id} resumed");
        }
        JobCmd::Retry { id } => {
            let job = client.post_json(&format!("/jobs/{id}/retry"), &Value::Null)?;
            println!("job {id} retried: {}", job["state"].as_str().unwrap_or(""));
        }
        JobCmd::Priority { id, priority } => {
            let body = serde_json::json!({ "priority": priority });
            client.put_json(&format!("/jobs/{id}/priority"), &body)?;
            println!("job {id} priority {priority}");
        }
    }
    Ok(())
}

fn show(client: &Client, id: i64) -> Result<()> {
    let job = client.get(&format!("/jobs/{id}"))?;
    let suspended = if job["suspended"] == Value::Bool(true) {
        " (suspended)"
    } else {
        ""
    };
    let now = tessera_driver::SystemClock::now();
    let created = job["created_at"].as_u64().unwrap_or(0);
    let finished = job["finished_at"].as_u64();
    let took = match finished {
        Some(_) => format!("took {}", when::span(created, finished, now)),
        None => format!("{} so far", when::span(created, None, now)),
    };
    println!(
        "job {id}: {} — {}{suspended}, priority {}; created {}, {took}",
        job["name"].as_str().unwrap_or(""),
        job["state"].as_str().unwrap_or(""),
        job["priority"].as_i64().unwrap_or(0),
        when::ago(created, now),
    );
    // The jobs it waits on, and while they hold it back, what for.
    for d in job["after"].as_array().into_iter().flatten() {
        let selector = d["job"]
            .as_str()
            .map_or_else(|| d["job"].to_string(), str::to_string);
        let ids: Vec<String> = d["jobs"]
            .as_array()
            .into_iter()
            .flatten()
            .map(Value::to_string)
            .collect();
        let s = if ids.len() == 1 { "" } else { "s" };
        println!(
            "after {selector} ({}): job{s} {}",
            d["condition"].as_str().unwrap_or(""),
            ids.join(", ")
        );
    }
    if let Some(waiting) = job["waiting"].as_str() {
        println!("{waiting}");
    }
    println!(
        "{:>5}  {:<10}  {:>7}  {:<24}  REASON (waiting: why it has not started)",
        "#", "STATE", "ATTEMPT", "TASK"
    );
    let mut out = std::io::stdout().lock();
    for_each_task(client, id, |t| {
        let reason = t["waiting"]
            .as_str()
            .or_else(|| t["reason"].as_str())
            .unwrap_or("");
        // A closed stdout (`| head`) is not an error worth a message.
        let _ = writeln!(
            out,
            "{:>5}  {:<10}  {:>7}  {:<24}  {reason}",
            t["index"].to_string(),
            t["state"].as_str().unwrap_or(""),
            t["attempt"].to_string(),
            t["name"].as_str().unwrap_or(""),
        );
    })?;
    // Each attempt, with where it ran: the node's name as `tessera nodes`
    // lists it (the server's own node included).
    // START is from the job's creation, so a job's attempts read in order.
    let mut offset = 0;
    let mut any = false;
    loop {
        let page = client.get(&format!("/jobs/{id}/attempts?offset={offset}&limit={PAGE}"))?;
        let attempts = page.as_array().cloned().unwrap_or_default();
        if !any && !attempts.is_empty() {
            let _ = writeln!(
                out,
                "\n{:>5}  {:>7}  {:<20}  {:>8}  {:>8}  OUTCOME",
                "TASK", "ATTEMPT", "NODE", "START", "TOOK"
            );
        }
        any |= !attempts.is_empty();
        for a in &attempts {
            let started = a["started_at"].as_u64().unwrap_or(created);
            let _ = writeln!(
                out,
                "{:>5}  {:>7}  {:<20}  {:>8}  {:>8}  {}",
                a["task"].to_string(),
                a["attempt"].to_string(),
                a["node"].as_str().unwrap_or("-"),
                format!("+{}", when::took(started.saturating_sub(created))),
                when::span(started, a["ended_at"].as_u64(), now),
                a["message"]
                    .as_str()
                    .or_else(|| a["outcome"].as_str())
                    .unwrap_or("running"),
            );
        }
        if attempts.len() < PAGE {
            break;
        }
        offset += PAGE;
    }
    if !any {
        let _ = writeln!(out, "\nno attempts yet: no task of it has started");
    }
    Ok(())
}

/// Calls `f` on every task of a job, in index order, a page at a time.
pub(super) fn for_each_task(client: &Client, id: i64, mut f: impl FnMut(&Value)) -> Result<()> {
    let mut offset = 0;
    loop {
        let page = client.get(&format!("/jobs/{id}/tasks?offset={offset}&limit={PAGE}"))?;
        let tasks = page.as_array().cloned().unwrap_or_default();
        tasks.iter().for_each(&mut f);
        if tasks.len() < PAGE {
            return Ok(());
        }
        offset += PAGE;
    }
}

/// A task's index from its index (canonical decimal: `+2` or `02` is a
/// name, as the server reads path segments) or its name.
fn task_index(client: &Client, id: i64, task: &str) -> Result<u32> {
    let canonical =
        task.bytes().all(|b| b.is_ascii_digit()) && (task == "0" || !task.starts_with('0'));
    if let Some(i) = canonical.then(|| task.parse::<u32>().ok()).flatten() {
        return Ok(i);
    }
    let mut found = None;
    for_each_task(client, id, |t| {
        if found.is_none() && t["name"].as_str() == Some(task) {
            found = t["index"].as_u64();
        }
    })?;
    found
        .map(|i| i as u32)
        .ok_or_else(|| Failure::input(format!("job {id} has no task named {task:?}")))
}

/// Copies a stream to `out` as it arrives (each read flushed).
fn copy_flushing(from: &mut impl Read, out: &mut impl Write) -> std::io::Result<()> {
    let mut buf = [0u8; 16 << 10];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        out.write_all(&buf[..n])?;
        out.flush()?;
    }
}

/// Prints the job's events (Server-Sent Events) as lines until it ends.
fn watch(client: &Client, id: i64) -> Result<()> {
    let mut names = HashMap::new();
    for_each_task(client, id, |t| {
        if let (Some(i), Some(n)) = (t["index"].as_u64(), t["name"].as_str()) {
            names.insert(i, n.to_string());
        }
    })?;
    let body = client.open_stream(&format!("/jobs/{id}/events"))?;
    let started = std::time::Instant::now();
    let mut event = String::new();
    let mut ended = false;
    let mut out = std::io::stdout().lock();
    for line in BufReader::new(body).lines() {
        let line = line.map_err(|e| Failure::env(format!("reading the events: {e}")))?;
        if let Some(name) = line.strip_prefix("event: ") {
            event = name.to_string();
        } else if let Some(data) = line.strip_prefix("data: ") {
            let data: Value = serde_json::from_str(data).unwrap_or(Value::Null);
            if event == "tasks_added" {
                // An expansion: learn the new tasks' names.
                for_each_task(client, id, |t| {
                    if let (Some(i), Some(n)) = (t["index"].as_u64(), t["name"].as_str()) {
                        names.entry(i).or_insert_with(|| n.to_string());
                    }
                })?;
            }
            ended |= event == "end";
            if let Some(text) = describe(&event, &data, &names) {
                // When it happened, from the watch's start.
                let at = when::took(started.elapsed().as_millis() as u64);
                let _ = writeln!(out, "{text}  (+{at})");
                let _ = out.flush();
            }
        }
    }
    if !ended {
        return Err(Failure::env(
            "the server closed the event stream before the job ended (is it restarting?); run the command again",
        ));
    }
    Ok(())
}

/// One event as a line for people (`None`: not worth a line).
fn describe(event: &str, d: &Value, names: &HashMap<u64, String>) -> Option<String> {
    let task = || {
        let i = d["index"].as_u64().unwrap_or(0);
        match names.get(&i) {
            Some(n) => format!("task {i} ({n})"),
            None => format!("task {i}"),
        }
    };
    let s = |k: &str| d[k].as_str().unwrap_or("").to_string();
    Some(match event {
        "snapshot" => format!("job {}: {}", s("name"), s("state")),
        "job" => format!("job {}", s("state")),
        "task" => match d["reason"].as_str() {
            Some(r) => format!("{} {}: {r}", task(), s("state")),
            None => format!("{} {}", task(), s("state")),
        },
        "attempt_started" => format!("{} attempt {} started", task(), d["attempt"]),
        "attempt_ended" => format!(
            "{} attempt {} {} ({:.1} s, cpu {:.1} s)",
            task(),
            d["attempt"],
            s("message"),
            d["wall_ms"].as_f64().unwrap_or(0.0) / 1000.0,
            d["cpu_ms"].as_f64().unwrap_or(0.0) / 1000.0
        ),
        "tasks_added" => format!("{} tasks added", d["count"]),
        "suspended" if d["suspended"] == Value::Bool(true) => "job suspended".into(),
        "suspended" => "job resumed".into(),
        "priority" => format!("priority {}", d["priority"]),
        "lagged" => format!("(missed {} events; state re-read)", d["missed"]),
        "end" => format!("ended: {}", s("state")),
        _ => return None, // progress: too many lines to be useful here
    })
}
