//! The route table: every route once, with its summary and who may call it.
//! The router ([`crate::router`]), the OpenAPI document and the tests are
//! all built from it.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use tessera_types::Role;

/// Who may call a route. Project routes take the project (id or name) from
/// the `{project}` path segment, job routes the job from `{id}`; an admin
/// route with a `{project}` checks the caller before the project exists.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Auth {
    /// No key needed.
    None,
    /// Any valid key.
    User,
    /// An admin's key.
    Admin,
    /// At least this role in the project (or an admin).
    Project(Role),
    /// At least this role in the job's project (or an admin).
    Job(Role),
    /// A worker token (`twk_...`); anything else (users' API keys too) gets 401.
    Worker,
}

/// `(method, path, summary, auth)` for every route.
#[rustfmt::skip]
pub const ROUTES: &[(Method, &str, &str, Auth)] = &[
    (Method::GET, "/healthz", "Liveness: the process answers", Auth::None),
    (Method::GET, "/readyz", "Readiness: the store answers", Auth::None),
    (Method::GET, "/metrics", "Prometheus metrics (text format); they name every project, so an admin's key is needed", Auth::Admin),
    (Method::GET, "/api/v1/openapi.json", "This API's OpenAPI 3.0 document", Auth::None),
    (Method::GET, "/api/v1/me", "The caller, its admin flag and its projects with roles", Auth::User),
    (Method::GET, "/api/v1/users", "All users", Auth::Admin),
    (Method::POST, "/api/v1/users", "Create a user {name, admin}; returns its first key, shown once", Auth::Admin),
    (Method::GET, "/api/v1/projects", "The caller's projects (an admin: all)", Auth::User),
    (Method::POST, "/api/v1/projects", "Create a project {name}; the caller becomes its owner", Auth::User),
    (Method::GET, "/api/v1/projects/{project}", "A project and the caller's role in it", Auth::Project(Role::Viewer)),
    (Method::GET, "/api/v1/projects/{project}/members", "A project's members and their roles", Auth::Project(Role::Viewer)),
    (Method::PUT, "/api/v1/projects/{project}/members/{user}", "Add a member or change its role {role}", Auth::Project(Role::Owner)),
    (Method::DELETE, "/api/v1/projects/{project}/members/{user}", "Remove a member", Auth::Project(Role::Owner)),
    (Method::GET, "/api/v1/keys", "The caller's API keys (never their secrets)", Auth::User),
    (Method::POST, "/api/v1/keys", "Create an API key {name}; the key is shown once", Auth::User),
    (Method::DELETE, "/api/v1/keys/{id}", "Revoke one of the caller's keys (an admin: anyone's)", Auth::User),
    (Method::GET, "/api/v1/projects/{project}/quota", "A project's quota {max_cpu, max_memory_mb, cpu_ms_per_window} (null: unlimited)", Auth::Project(Role::Viewer)),
    (Method::PUT, "/api/v1/projects/{project}/quota", "Replace a project's quota {max_cpu, max_memory_mb, cpu_ms_per_window} (null or absent: unlimited)", Auth::Admin),
    (Method::GET, "/api/v1/projects/{project}/usage", "What a project uses now: running cpu and memory, decayed and in-window cpu-seconds, its quota", Auth::Project(Role::Viewer)),
    (Method::GET, "/api/v1/projects/{project}/jobs", "A project's jobs, newest first (?limit=N)", Auth::Project(Role::Viewer)),
    (Method::POST, "/api/v1/projects/{project}/jobs", "Submit a job spec (application/json or application/yaml)", Auth::Project(Role::Member)),
    (Method::GET, "/api/v1/jobs/{id}", "A job, its task counts by state, the jobs it waits on (after) and what it waits for (waiting)", Auth::Job(Role::Viewer)),
    (Method::GET, "/api/v1/jobs/{id}/tasks", "A page of a job's tasks in index order (?offset=0&limit=1000, limit at most 10000): a JSON array; a Link rel=\"next\" header (and X-Next-Offset) when more follow", Auth::Job(Role::Viewer)),
    (Method::GET, "/api/v1/jobs/{id}/attempts", "A page of a job's attempts with the node that ran each (null: the server's machine), outcome and resource use (transfer_ms and transfer_bytes when a worker moved files), by task then attempt (?offset=0&limit=1000, limit at most 10000): a JSON array; a Link rel=\"next\" header (and X-Next-Offset) when more follow", Auth::Job(Role::Viewer)),
    (Method::POST, "/api/v1/jobs/{id}/cancel", "Cancel a job", Auth::Job(Role::Member)),
    (Method::POST, "/api/v1/jobs/{id}/suspend", "Suspend a job: nothing of it starts, its running attempts are stopped (SIGSTOP) and their time limits pause (409 if it ended or is suspended)", Auth::Job(Role::Member)),
    (Method::POST, "/api/v1/jobs/{id}/resume", "Resume a suspended job (409 if it is not suspended)", Auth::Job(Role::Member)),
    (Method::POST, "/api/v1/jobs/{id}/retry", "Run again the failed, cancelled and skipped tasks of a failed or cancelled job, keeping what succeeded (409 otherwise)", Auth::Job(Role::Member)),
    (Method::PUT, "/api/v1/jobs/{id}/priority", "Set a job's priority {priority: 0..100}, added to its tasks' own priorities in the queue (409 if it ended)", Auth::Job(Role::Member)),
    (Method::GET, "/api/v1/jobs/{id}/tasks/{index}/logs", "A task attempt's log (?attempt=N&stream=stdout|stderr; &follow=true keeps the response open, sending what the attempt writes until it ends, and waits for a task that has not started)", Auth::Job(Role::Viewer)),
    (Method::GET, "/api/v1/jobs/{id}/events", "The job's events as Server-Sent Events until it ends: snapshot, job, task, attempt_started, attempt_ended, progress, tasks_added, suspended, priority, lagged, end", Auth::Job(Role::Viewer)),
    (Method::GET, "/api/v1/projects/{project}/uploads", "A project's uploads, newest first: [{upload, name, bytes, created, duration}]", Auth::Project(Role::Viewer)),
    (Method::POST, "/api/v1/projects/{project}/uploads", "Upload a video as the raw body (?name=clip.mkv) or as the part named file of a multipart/form-data body, streamed to disk up to the server's max_upload_bytes (413 beyond); ffprobe must find a video in it (422 otherwise). Returns {upload, name, bytes, created, duration, streams}", Auth::Project(Role::Member)),
    (Method::DELETE, "/api/v1/projects/{project}/uploads/{upload}", "Delete an upload (409 while an encode reading it has not ended)", Auth::Project(Role::Member)),
    (Method::GET, "/api/v1/volumes", "The names of the server's volumes (directories encodes may read from)", Auth::User),
    (Method::POST, "/api/v1/projects/{project}/encodes", "Encode an upload or a volume's file {upload | volume + path, codec?, crf?, preset?, container? (mp4|mkv|webm), chunk_seconds?, ladder? (\"default\" or {rungs: [{name, height, width?, codec?, crf?, preset?, maxrate?, bufsize?}], segment_seconds?, audio_kbps?}: an ABR ladder, HLS and DASH over CMAF, instead of one file)}: the split -> parallel encode -> join -> verify job", Auth::Project(Role::Member)),
    (Method::GET, "/api/v1/jobs/{id}/output", "A succeeded encode job's output (single-range requests: Range: bytes=a-b, a-, -n)", Auth::Job(Role::Viewer)),
    (Method::GET, "/api/v1/jobs/{id}/ladder/{*path}", "A file of a succeeded ladder encode's published folder, for players (single-range requests): master.m3u8 (HLS), manifest.mpd (DASH), ladder.json (renditions, sizes, bitrates, checks), RENDITION/init.mp4, RENDITION/seg-NNNNN.m4s, RENDITION/index.m3u8, subs/*.vtt, thumbs/poster.jpg...; 422 for a path that is not a plain relative name (.., hidden, unknown kind), 404 for a file that is not there or not a regular file", Auth::Job(Role::Viewer)),
    (Method::DELETE, "/api/v1/jobs/{id}/output", "Delete an ended encode job's output and work files", Auth::Job(Role::Member)),
    (Method::GET, "/api/v1/nodes", "{nodes, unplaceable}: each worker (and the server's own slots with --workers, local: true): state (ready, draining, lost), slots used and total, labels, last heartbeat, running attempts, recent {window_ms, attempts, cpu_ms, transfer_ms, transfer_bytes}: what it ended in the last 10 minutes; queued attempts no ready node could ever take, with the reason", Auth::Admin),
    (Method::POST, "/api/v1/nodes/{node}/drain", "Drain a worker (by name): it takes nothing new and finishes what it holds (409 if no live worker has that name)", Auth::Admin),
    (Method::POST, "/api/v1/nodes/{node}/undrain", "Undrain a worker an admin drained (by name): it takes work again (409 if no draining worker has that name)", Auth::Admin),
    (Method::POST, "/api/v1/workers", "Register a worker {name, slots, cpus, memory_mb, gpus, disk_free_mb, labels, executors, data?: shared|http}; returns {id, lease_ms, data_dir}", Auth::Worker),
    (Method::POST, "/api/v1/workers/{worker}/lease", "Wait (up to {wait_ms}, at most 30000) for attempts placement gives the worker (fit, labels, executor: an image only to a worker offering docker, locality by {holds?: [paths]}, spread) and for orders: {attempts, orders}; 409 fenced if the worker was lost", Auth::Worker),
    (Method::POST, "/api/v1/workers/{worker}/heartbeat", "Renew all the worker's leases {draining?: true takes nothing new, holds?: [paths], disk_low?: bool}: {orders}; 409 fenced if the worker was lost", Auth::Worker),
    (Method::POST, "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/events", "Report an attempt's events {events: [started {pid} | progress {done, total} | exited {error?, usage} | lost {reason}]}; 409 fenced if the worker no longer holds it", Auth::Worker),
    (Method::GET, "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files", "An input of the attempt (?path=ABS, one in its file plan; http-data workers): streamed, with Range, and X-Tessera-Sha256; 409 fenced, 403 outside the plan", Auth::Worker),
    (Method::PUT, "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files", "Send (a piece of) an output of the attempt (?path=ABS&offset=N, headers X-Tessera-Size and X-Tessera-Sha256 of the whole file): appended to a partial file, checked and renamed into place when complete (422 on a checksum mismatch); 409 fenced, 403 outside the plan", Auth::Worker),
    (Method::DELETE, "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files", "Remove an output the attempt removed (?path=ABS); 409 fenced, 403 outside the plan", Auth::Worker),
    (Method::GET, "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files/status", "How many bytes of an output's upload arrived (?path=ABS): {received}; resume from there", Auth::Worker),
    (Method::POST, "/api/v1/workers/{worker}/release", "Hand every lease back (the attempts are retried elsewhere at once) and leave", Auth::Worker),
];

/// The routes whose body is streamed to disk as it arrives (uploads, up to
/// `max_upload_bytes`): no body-size limit and no request deadline, only
/// the body-idle timeout. Every one of them authenticates before it reads
/// a byte of the body.
const STREAMED_BODIES: &[(Method, &str)] = &[
    (Method::POST, "/api/v1/projects/{project}/uploads"),
    (
        Method::PUT,
        "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files",
    ),
    (Method::POST, "/ui/projects/{project}/encode"),
    (Method::POST, "/ui/projects/{project}/uploads"),
];

/// Whether `req` is for one of the [`STREAMED_BODIES`] routes.
pub(crate) fn streams_body(req: &Request) -> bool {
    let Some(path) = req.extensions().get::<MatchedPath>() else {
        return false;
    };
    STREAMED_BODIES
        .iter()
        .any(|(m, p)| m == req.method() && *p == path.as_str())
}
