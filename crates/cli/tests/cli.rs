//! The `tessera` binary end to end: the real executable, real ffmpeg, small
//! generated clips, and a fresh `--state-dir` in a temporary directory for
//! every run.
//!
//! - `remote`: `tessera upload` and `tessera encode --server` against a real
//!   server, the output verified here; refusals before any upload.
//! - `client_texts`: what the client commands print for people (empty lists,
//!   times, a user of no project, `submit --dry-run`, URLs, help, TLS).
//! - `bad_input`: every way the input or the output can be wrong gets its
//!   exit code, one `tessera: ` line on stderr, and leaves nothing behind
//!   (an unwritable output folder too: run as root, the encode runs as
//!   `nobody`, for whom the folder is read-only).
//! - `chaos`: the server and three workers as Docker containers on a
//!   private network encoding a real clip: a worker SIGKILLed mid-chunk,
//!   one cut off the network past its lease (fenced, then back), the server
//!   SIGKILLed and restarted, random kills (a printed seed;
//!   `TESSERA_CHAOS_SEED=N` replays it): always frame-exact, each chunk
//!   succeeding once.
//! - `chaos_disk`: the same with `--data http` workers, one on a tmpfs
//!   filled mid-chunk: its attempt is lost to the full disk, it shows
//!   `disk_low`, the encode stays exact, and it takes work again once
//!   there is room.
//! - `docker`: `tessera server --docker` runs a task that names an image in
//!   a container that shares the job's folder with host tasks; without the
//!   flag the spec is refused.
//! - `dockerapi`: the real docker CLI against `tessera server --docker
//!   --docker-api`: the Swarm fork's flow (split; encodes waiting for
//!   split; merge waiting for `encode*`) in order by `docker inspect`
//!   times, across a SIGKILL of the server; a waiter on a failed container
//!   never runs; attached run, kill, rm, and the refusals the CLI prints
//!   (no key, a bind mount outside the volumes, --privileged, a waitfor
//!   matching nothing, pull without a registry); on docker workers (no
//!   engine on the server), `constraint:zone==eu` places containers on
//!   the worker labelled so. `dockerapi_bench`
//!   (ignored): `docker run -d` against Tessera and the engine, and the
//!   hop of a waitfor chain.
//! - `docker_workers`: `tessera worker --docker` runs a task that names an
//!   image in a container (server --slots 0, no engine of its own); the
//!   task is listed unplaceable while only a worker without docker is
//!   there; `--docker` with no engine stops the worker with one line.
//! - `doors`: a real server under floods of wrong secrets (at most 5
//!   argon2 runs per prefix, memory bounded), of connections that say
//!   nothing or stall (64 per address, all closed after their timeouts),
//!   of specs nested 40,000 deep (refused, `/healthz` quick), with the
//!   server's memory, descriptors and `/healthz` latency printed.
//! - `encode_bench` (ignored): issue 12's speed figures, alternating runs
//!   against one ffmpeg: a short clip, the default ladder, resume after a
//!   SIGKILL at 60 %.
//! - `encode`: lossless proof through the whole scheduler (framemd5), the
//!   default x264 path on NTSC, variable frame rate kept where plain ffmpeg
//!   loses it, and `tessera verify` catching a mismatch.
//! - `interrupt`: SIGKILL then resume (finished chunks reused, not re-run),
//!   Ctrl-C (exit 130, nothing running, nothing half-written), no process
//!   outliving the run.
//! - `godocker`: godocker-cli 1.0.25 from PyPI, unchanged, against `tessera
//!   server --docker`: a split -> encodes (`--parent`) -> merge ffmpeg flow in
//!   the local image over a project volume, frame-exact; an array job; show,
//!   list, suspend, resume, kill; and what it prints for a wrong key, an
//!   unknown parent, a missing image and a project the user is not in.
//!   `godocker_admin`: archive, project update/delete/quota_reset, user
//!   update/remove, and label constraints placing jobs on labelled workers.
//! - `isolation`: issue 9's attacks on a real server: playlist and list
//!   uploads refused (and `tessera encode` of one, exit 3); as root, each
//!   project's tasks run as its own uid and cannot read another project's
//!   upload, logs or output, the database, its WAL or the worker tokens; an
//!   op a member points at another project's upload is refused on the
//!   server's slot and by the file plan an http worker gets.
//! - `live`: `job logs --follow` and `job watch` against a running job;
//!   SIGTERM stops the server at once (open streams included) and a restart
//!   resumes the work it stopped.
//! - `server`: `tessera server` with the admin bootstrap and the client
//!   commands; a SIGKILL of the server mid-job and a restart that finishes it.
//! - `uploads`: the encode service over HTTP: upload, encode, download
//!   (whole and by range), frame-exact; bad and oversized uploads leave nothing.
//! - `workers`: `tessera worker` processes against `server --slots 0`:
//!   two workers share a DAG; a SIGKILLed, a SIGSTOPped (fenced) and a
//!   SIGTERMed (lease handed back) worker's attempt is retried elsewhere;
//!   a cancel kills the attempt on its worker; a revoked token is refused;
//!   a draining worker finishes what it holds and takes nothing new;
//!   `--map` rewrites the server's paths for a worker that mounts them
//!   elsewhere; a lease the worker never got is given up by its heartbeats;
//!   an admin drains a worker.
//! - `placement`: labels (a labelled task only on the worker that carries
//!   the label; one no node carries reported as unplaceable until such a
//!   worker registers), a job spread over two workers, and `server --slots 1
//!   --workers`: the server's own slot and a worker share a job, and a
//!   cancel kills an attempt running on the server's slot.
//! - `ui_encode`: the same through the web UI in headless Chromium (upload
//!   with a progress bar, the job page, the download link), with screenshots.
//! - `ladder_play`: a `--ladder` folder served over loopback HTTP
//!   (`static_http`) and played to the end by headless Chromium: natively
//!   (`master.m3u8`) and through video.js 7.5.5 / VHS (PyPI's
//!   `js.videojs`, unpacked by `.ci/run`) from `master.m3u8` and
//!   `manifest.mpd` with a forced rendition switch; `browser` holds the
//!   Chromium helpers both use.
//! - `ui_ladder`: a ladder encode submitted over the API, its files read
//!   back through the API, and its job page playing the HLS ladder.

#[path = "cli/bad_input.rs"]
mod bad_input;
#[path = "cli/browser.rs"]
mod browser;
#[path = "cli/chaos.rs"]
mod chaos;
#[path = "cli/chaos_disk.rs"]
mod chaos_disk;
#[path = "cli/client_texts.rs"]
mod client_texts;
#[path = "cli/docker.rs"]
mod docker;
#[path = "cli/docker_workers.rs"]
mod docker_workers;
#[path = "cli/dockerapi.rs"]
mod dockerapi;
#[path = "cli/dockerapi_bench.rs"]
mod dockerapi_bench;
#[path = "cli/doors.rs"]
mod doors;
#[path = "cli/encode.rs"]
mod encode;
#[path = "cli/encode_bench.rs"]
mod encode_bench;
#[path = "cli/godocker.rs"]
mod godocker;
#[path = "cli/godocker_admin.rs"]
mod godocker_admin;
#[path = "cli/godocker_client.rs"]
mod godocker_client;
#[path = "cli/interrupt.rs"]
mod interrupt;
#[path = "cli/isolation.rs"]
mod isolation;
#[path = "cli/ladder.rs"]
mod ladder;
#[path = "cli/ladder_play.rs"]
mod ladder_play;
#[path = "cli/live.rs"]
mod live;
#[path = "cli/placement.rs"]
mod placement;
#[path = "cli/remote.rs"]
mod remote;
#[path = "cli/remote_ladder.rs"]
mod remote_ladder;
#[path = "cli/server.rs"]
mod server;
#[path = "cli/static_http.rs"]
mod static_http;
#[path = "cli/support.rs"]
mod support;
#[path = "cli/target_vmaf.rs"]
mod target_vmaf;
#[path = "cli/ui_encode.rs"]
mod ui_encode;
#[path = "cli/ui_ladder.rs"]
mod ui_ladder;
#[path = "cli/uploads.rs"]
mod uploads;
#[path = "cli/workers.rs"]
mod workers;
#[path = "cli/workers_http.rs"]
mod workers_http;
