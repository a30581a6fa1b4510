//! Prometheus metrics in the text exposition format, hand-rolled.
//!
//! Read from the store at scrape time, with three `GROUP BY` queries (never a
//! scan of every job into memory): `tessera_jobs` and `tessera_tasks` by
//! state, `tessera_project_jobs` by project and state. Asked of the driver
//! at scrape time: each project's usage (running cpu and memory, decayed
//! and in-window cpu seconds). Kept in this process: HTTP requests by route
//! and status, bytes of request and response bodies, the submission latency
//! histogram, build info and start time, and from the driver's feed
//! ([`flow`]) queue wait and dispatch latency histograms, attempts by
//! outcome, their cpu time and reported progress (encode frames).

mod doors;
mod flow;
mod histogram;

pub(crate) use doors::{Doors, Timeout};
pub(crate) use flow::follow;
use histogram::Histogram;

use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tessera_service::{Observer, Secret, Stats};
use tessera_types::{JobState, TaskState};

/// Upper bounds (seconds) of the submission histogram's buckets.
const SUBMIT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const JOB_STATES: [JobState; 5] = [
    JobState::Pending,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
];

pub(crate) struct Metrics {
    started: Instant,
    /// Seconds since the Unix epoch when `started` was taken.
    started_unix: f64,
    body_in: Arc<AtomicU64>,
    body_out: Arc<AtomicU64>,
    inner: Mutex<Inner>,
    /// What the driver's feed tells (see [`follow`]).
    pub(crate) flow: flow::Flow,
    /// Connections, timeouts and secret checks (see [`Doors`]).
    pub(crate) doors: Doors,
}

struct Inner {
    /// (method, route template, status) -> count.
    requests: BTreeMap<(String, String, u16), u64>,
    submit: Histogram,
}

impl Default for Inner {
    fn default() -> Self {
        Self {
            requests: BTreeMap::new(),
            submit: Histogram::new(SUBMIT_BUCKETS),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        let unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Self {
            started: Instant::now(),
            started_unix: unix.as_secs_f64(),
            body_in: Arc::default(),
            body_out: Arc::default(),
            inner: Mutex::default(),
            flow: flow::Flow::default(),
            doors: Doors::default(),
        }
    }
}

impl Metrics {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn count_request(&self, method: &str, route: &str, status: u16) {
        *self
            .lock()
            .requests
            .entry((method.to_string(), route.to_string(), status))
            .or_insert(0) += 1;
    }

    pub(crate) fn observe_submit(&self, took: Duration) {
        self.lock().submit.observe(took.as_secs_f64());
    }

    fn render_memory(&self, out: &mut String) {
        family(
            out,
            "tessera_build_info",
            "gauge",
            "Always 1; the version is a label.",
        );
        let version = escape(env!("CARGO_PKG_VERSION"));
        let _ = writeln!(out, "tessera_build_info{{version=\"{version}\"}} 1");
        family(
            out,
            "tessera_process_start_time_seconds",
            "gauge",
            "When this API process started, in seconds since the Unix epoch.",
        );
        let _ = writeln!(
            out,
            "tessera_process_start_time_seconds {}",
            self.started_unix
        );
        family(
            out,
            "tessera_uptime_seconds",
            "gauge",
            "Seconds since this API process started.",
        );
        let uptime = self.started.elapsed().as_secs_f64();
        let _ = writeln!(out, "tessera_uptime_seconds {uptime}");

        let inner = self.lock();
        family(
            out,
            "tessera_http_requests_total",
            "counter",
            "HTTP requests answered, by route template and status.",
        );
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{method=\"{}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(method),
                escape(route)
            );
        }
        for (name, n, what) in [
            ("request", &self.body_in, "read from requests"),
            ("response", &self.body_out, "sent in responses"),
        ] {
            let name = format!("tessera_http_{name}_body_bytes_total");
            family(
                out,
                &name,
                "counter",
                &format!("Bytes of HTTP bodies {what}."),
            );
            let _ = writeln!(out, "{name} {}", n.load(Ordering::Relaxed));
        }
        inner.submit.render(
            out,
            "tessera_submit_seconds",
            "Time to validate and commit a job submission.",
        );
        drop(inner);
        self.doors.render(out);
        self.flow.render(out);
    }
}

/// The `# HELP` and `# TYPE` lines of a family (`help` has no `\` or newline).
fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// A label value as the text format wants it.
fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every answered request by its route template (`unmatched` for
/// paths no route matched), and the bytes of both bodies as they stream.
pub(crate) async fn track(
    State(metrics): State<Arc<Metrics>>,
    req: Request,
    next: Next,
) -> Response {
    // hyper accepts any token as a method: one series per method a client
    // makes up would grow without end.
    let method = match req.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "DELETE" | "PATCH" | "OPTIONS") => m,
        _ => "OTHER",
    }
    .to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let req = req.map(|b| Body::new(Counted::new(b, &metrics.body_in)));
    let response = next.run(req).await;
    metrics.count_request(&method, &route, response.status().as_u16());
    response.map(|b| Body::new(Counted::new(b, &metrics.body_out)))
}

/// A body that adds the length of each data frame to a counter as it
/// passes: streamed bodies are counted as well as whole ones, and a body
/// nobody reads counts nothing.
struct Counted {
    inner: Body,
    bytes: Arc<AtomicU64>,
}

impl Counted {
    fn new(inner: Body, bytes: &Arc<AtomicU64>) -> Self {
        let bytes = Arc::clone(bytes);
        Self { inner, bytes }
    }
}

impl HttpBody for Counted {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled {
            if let Some(data) = frame.data_ref() {
                self.bytes.fetch_add(data.len() as u64, Ordering::Relaxed);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// The whole exposition: store gauges, then the in-memory series.
pub(crate) fn render(counts: &Stats, metrics: &Metrics) -> String {
    let mut out = String::new();
    render_counts(&mut out, counts);
    metrics.render_memory(&mut out);
    out
}

/// The service's submissions and secret checks are counted here.
impl Observer for Metrics {
    fn submitted(&self, took: Duration) {
        self.observe_submit(took);
    }

    fn argon2_run(&self, kind: Secret) {
        self.doors.argon2_run(kind);
    }

    fn throttled(&self, kind: Secret) {
        self.doors.throttled(kind);
    }

    fn verifier_busy(&self, kind: Secret) {
        self.doors.verifier_busy(kind);
    }
}

/// Every state is written, zeros too, so a series never vanishes when its
/// state empties.
fn render_counts(out: &mut String, c: &Stats) {
    family(out, "tessera_jobs", "gauge", "Jobs in the store, by state.");
    for s in JOB_STATES {
        let n = c.jobs.get(&s).copied().unwrap_or(0);
        let _ = writeln!(out, "tessera_jobs{{state=\"{s}\"}} {n}");
    }
    family(
        out,
        "tessera_tasks",
        "gauge",
        "Tasks of every job in the store, by state.",
    );
    for s in TaskState::ALL {
        let n = c.tasks.get(&s).copied().unwrap_or(0);
        let _ = writeln!(out, "tessera_tasks{{state=\"{s}\"}} {n}");
    }
    family(
        out,
        "tessera_project_jobs",
        "gauge",
        "Jobs of each project, by state (jobs without a project are left out).",
    );
    for (name, jobs) in &c.projects {
        let name = escape(name);
        for s in JOB_STATES {
            let n = jobs.get(&s).copied().unwrap_or(0);
            let _ = writeln!(
                out,
                "tessera_project_jobs{{project=\"{name}\",state=\"{s}\"}} {n}"
            );
        }
    }
    type Get = fn(&tessera_core::ProjectUsage) -> f64;
    let usage: [(&str, &str, Get); 4] = [
        (
            "tessera_project_running_cpu",
            "Cpu slots each project's running tasks hold.",
            |u| f64::from(u.running_cpu),
        ),
        (
            "tessera_project_running_memory_bytes",
            "Memory each project's running tasks reserve.",
            |u| u.running_memory_mb as f64 * 1048576.0,
        ),
        (
            "tessera_project_recent_cpu_seconds",
            "Each project's recent cpu seconds, decayed (what fair share compares).",
            |u| u.decayed_cpu_ms / 1000.0,
        ),
        (
            "tessera_project_window_cpu_seconds",
            "Cpu seconds each project was charged in the current quota window.",
            |u| u.window_cpu_ms as f64 / 1000.0,
        ),
    ];
    for (metric, help, get) in usage {
        family(out, metric, "gauge", help);
        for (name, u) in &c.usage {
            let _ = writeln!(out, "{metric}{{project=\"{}\"}} {}", escape(name), get(u));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn label_values_are_escaped() {
        assert_eq!(escape("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
    }

    #[test]
    fn every_family_rendered_is_listed_and_has_help_and_type() {
        let counts = Stats {
            jobs: HashMap::from([(JobState::Running, 2)]),
            tasks: HashMap::new(),
            projects: vec![("we \"quote\"".into(), HashMap::new())],
            usage: vec![("p".into(), tessera_core::ProjectUsage::default())],
        };
        let mut out = String::new();
        render_counts(&mut out, &counts);
        let metrics = Metrics::default();
        metrics.observe_submit(Duration::from_millis(30));
        metrics.count_request("GET", "/x", 200);
        metrics.render_memory(&mut out);

        assert!(out.contains("tessera_jobs{state=\"running\"} 2\n"), "{out}");
        assert!(
            out.contains("tessera_project_jobs{project=\"we \\\"quote\\\"\",state=\"failed\"} 0\n")
        );
        assert!(out.contains("tessera_submit_seconds_bucket{le=\"0.05\"} 1\n"));
        let mut typed = Vec::new();
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                typed.push(rest.split(' ').next().expect("name").to_string());
            } else if !line.starts_with('#') {
                let name = line.split(['{', ' ']).next().expect("name");
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .filter(|b| typed.iter().any(|t| t == b))
                    .unwrap_or(name);
                assert_eq!(typed.last().map(String::as_str), Some(base), "{line}");
            }
        }
        assert_eq!(typed, FAMILIES_IN_ORDER);
    }

    /// The order families are written in (render_counts, then memory).
    const FAMILIES_IN_ORDER: [&str; 29] = [
        "tessera_jobs",
        "tessera_tasks",
        "tessera_project_jobs",
        "tessera_project_running_cpu",
        "tessera_project_running_memory_bytes",
        "tessera_project_recent_cpu_seconds",
        "tessera_project_window_cpu_seconds",
        "tessera_build_info",
        "tessera_process_start_time_seconds",
        "tessera_uptime_seconds",
        "tessera_http_requests_total",
        "tessera_http_request_body_bytes_total",
        "tessera_http_response_body_bytes_total",
        "tessera_submit_seconds",
        "tessera_http_connections_open",
        "tessera_http_connections_refused_total",
        "tessera_http_timeouts_total",
        "tessera_auth_argon2_total",
        "tessera_auth_throttled_total",
        "tessera_auth_busy_total",
        "tessera_spec_parse_busy_total",
        "tessera_task_queue_wait_seconds",
        "tessera_task_dispatch_seconds",
        "tessera_attempts_total",
        "tessera_attempt_cpu_seconds_total",
        "tessera_attempt_transfer_seconds_total",
        "tessera_attempt_transfer_bytes_total",
        "tessera_progress_units_total",
        "tessera_feed_lagged_total",
    ];
}
