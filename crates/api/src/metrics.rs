//! Prometheus metrics in the text exposition format, hand-rolled: job and
//! task gauges read from the store at scrape time, an HTTP request counter
//! and a submission latency histogram kept in memory.

use crate::{ApiError, AppState};
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tessera_types::{JobState, TaskState};

/// Upper bounds (seconds) of the submission histogram's buckets.
const SUBMIT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const JOB_STATES: [JobState; 5] = [
    JobState::Pending,
    JobState::Running,
    JobState::Succeeded,
    JobState::Failed,
    JobState::Cancelled,
];

#[derive(Default)]
pub(crate) struct Metrics {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// (method, route template, status) -> count.
    requests: BTreeMap<(String, String, u16), u64>,
    submit_buckets: [u64; SUBMIT_BUCKETS.len()],
    submit_count: u64,
    submit_sum: f64,
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
        let secs = took.as_secs_f64();
        let mut inner = self.lock();
        for (i, bound) in SUBMIT_BUCKETS.iter().enumerate() {
            if secs <= *bound {
                inner.submit_buckets[i] += 1;
            }
        }
        inner.submit_count += 1;
        inner.submit_sum += secs;
    }

    fn render_memory(&self, out: &mut String) {
        let inner = self.lock();
        out.push_str("# HELP tessera_http_requests_total HTTP requests answered, by route template and status.\n");
        out.push_str("# TYPE tessera_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "tessera_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP tessera_submit_seconds Time to validate and commit a job submission.\n",
        );
        out.push_str("# TYPE tessera_submit_seconds histogram\n");
        for (bound, n) in SUBMIT_BUCKETS.iter().zip(inner.submit_buckets) {
            let _ = writeln!(out, "tessera_submit_seconds_bucket{{le=\"{bound}\"}} {n}");
        }
        let _ = writeln!(
            out,
            "tessera_submit_seconds_bucket{{le=\"+Inf\"}} {}",
            inner.submit_count
        );
        let _ = writeln!(out, "tessera_submit_seconds_sum {}", inner.submit_sum);
        let _ = writeln!(out, "tessera_submit_seconds_count {}", inner.submit_count);
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Counts every answered request by its route template (`unmatched` for
/// paths no route matched).
pub(crate) async fn track(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let method = req.method().as_str().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |m| m.as_str().to_string());
    let response = next.run(req).await;
    state
        .metrics
        .count_request(&method, &route, response.status().as_u16());
    response
}

/// The whole exposition: store gauges, then the in-memory series.
pub(crate) async fn render(state: &AppState) -> Result<String, ApiError> {
    let (jobs, tasks) = state
        .db(|db| {
            let mut jobs: HashMap<JobState, u64> = HashMap::new();
            for job in db.recent_jobs(u32::MAX)? {
                *jobs.entry(job.state).or_insert(0) += 1;
            }
            let mut tasks: HashMap<TaskState, u64> = HashMap::new();
            for snap in db.load_unfinished()? {
                for t in snap.tasks {
                    *tasks.entry(t.state).or_insert(0) += 1;
                }
            }
            Ok((jobs, tasks))
        })
        .await?;
    let mut out = String::new();
    out.push_str("# HELP tessera_jobs Jobs in the store, by state.\n");
    out.push_str("# TYPE tessera_jobs gauge\n");
    for s in JOB_STATES {
        let n = jobs.get(&s).copied().unwrap_or(0);
        let _ = writeln!(out, "tessera_jobs{{state=\"{s}\"}} {n}");
    }
    out.push_str("# HELP tessera_tasks Tasks of unfinished jobs, by state.\n");
    out.push_str("# TYPE tessera_tasks gauge\n");
    for s in TaskState::ALL {
        let n = tasks.get(&s).copied().unwrap_or(0);
        let _ = writeln!(out, "tessera_tasks{{state=\"{s}\"}} {n}");
    }
    state.metrics.render_memory(&mut out);
    Ok(out)
}
