//! `tessera encode`: the main job. Submits (or resumes) the encode DAG on an
//! embedded scheduler (SQLite state in `--state-dir`, local processes), shows
//! progress, and prints a summary.

use crate::fail::{Code, Failure, Result};
use crate::op::{check_parent_writable, VERIFY_REPORT};
use crate::progress::ProgressView;
use crate::report::Summary;
use clap::Args;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::time::Instant;
use tessera_driver::{Driver, DriverConfig, Exit};
use tessera_exec::{LocalConfig, LocalExecutor};
use tessera_media::{self as media, Codec, EncodeRequest, EncodeSettings};
use tessera_store::{SqliteStore, Store};
use tessera_types::{JobSpec, JobState, TaskState};

#[derive(Args)]
pub struct EncodeArgs {
    /// The video to encode.
    input: PathBuf,
    /// Where to write the result (.mp4, .mov, .mkv or .webm), or with
    /// --ladder the folder to write the ladder into.
    #[arg(short, long)]
    output: PathBuf,
    /// Encode an ABR ladder (HLS + DASH, CMAF) into the --output folder:
    /// `default` (H.264 rungs from 1080p to 240p, never above the source)
    /// or a ladder file (YAML or JSON: `rungs: [{name: 720p, height: 720,
    /// crf: 23, maxrate: 3M}, ...]`, optional `segment_seconds`, `audio_kbps`).
    #[arg(long, value_name = "default|FILE", conflicts_with_all = ["codec", "crf"])]
    ladder: Option<String>,
    /// A ladder's segment length in seconds [default: 4, or the ladder file's].
    #[arg(long, requires = "ladder")]
    segment_seconds: Option<f64>,
    /// Search each chunk's CRF (x264, x265) for this VMAF with probe
    /// encodes scored by tessera-vmaf; the chosen probe is the chunk.
    #[arg(long, value_name = "VMAF", conflicts_with_all = ["crf", "ladder", "server"])]
    target_vmaf: Option<f64>,
    /// Video encoder: x264, x265, svt-av1, vp9 or ffv1 (lossless).
    #[arg(long, default_value = "x264", value_parser = parse_codec)]
    codec: Codec,
    /// Constant rate factor (quality; lower is better). Default: the encoder's usual (x264 23).
    #[arg(long)]
    crf: Option<u32>,
    /// Encoder preset, passed to the encoder (e.g. medium, slow; svt-av1: 0-13).
    #[arg(long)]
    preset: Option<String>,
    /// Chunks encoded in parallel. Default: one per CPU core.
    #[arg(long, short = 'j')]
    jobs: Option<u32>,
    /// Target chunk length in seconds (cuts snap to keyframes where they can).
    #[arg(long, default_value_t = 10.0)]
    chunk_seconds: f64,
    /// Where Tessera keeps its database, chunks and logs.
    /// Default: $XDG_STATE_HOME/tessera or ~/.local/state/tessera.
    #[arg(long, env = "TESSERA_STATE_DIR")]
    state_dir: Option<PathBuf>,
    /// Replace the output if it exists.
    #[arg(short = 'y', long)]
    overwrite: bool,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    report_json: Option<PathBuf>,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    plain: bool,
    /// Encode on this Tessera server instead of this machine: the video is
    /// uploaded, the encode followed live, the verified output downloaded
    /// to --output. The key is TESSERA_KEY's, or the saved login's for
    /// that server (`tessera login`). Interrupted, the encode goes on there.
    #[arg(long, value_name = "URL", conflicts_with_all = ["jobs", "state_dir", "report_json"])]
    server: Option<String>,
    /// The project on the server (with --server) [default: your only one].
    #[arg(long, requires = "server")]
    project: Option<String>,
}

/// The encode on a server: what is checked here first (the input, the
/// output's place), then the rest there.
fn remote(args: EncodeArgs, server: String) -> Result<()> {
    let output = output_path(&args)?;
    if !args.input.is_file() {
        return Err(Failure::input(format!(
            "{}: no such file",
            args.input.display()
        )));
    }
    let mut settings = EncodeSettings::new(args.codec);
    settings.crf = args.crf;
    settings.preset = args.preset.clone();
    // What the server would refuse (a codec the container cannot hold, a
    // crf out of range), refused before the upload.
    if args.ladder.is_none() {
        EncodeRequest {
            input: absolute(&args.input)?,
            output: output.clone(),
            settings,
            chunk_seconds: args.chunk_seconds,
            slots: 1,
            ladder: None,
            target_vmaf: None,
        }
        .validate()?;
    }
    let ladder = ladder_request(&args)?;
    if ladder.is_some() {
        check_ladder_folder(&output)?;
    }
    crate::client::remote::encode(crate::client::remote::RemoteEncode {
        server,
        project: args.project,
        input: args.input,
        output,
        codec: args.codec.to_string(),
        crf: args.crf,
        preset: args.preset,
        chunk_seconds: args.chunk_seconds,
        plain: args.plain,
        ladder,
    })
}

/// A ladder's output folder before a remote encode: absent, empty, or a
/// ladder (replaced only with --overwrite, which [`output_path`] checked).
fn check_ladder_folder(output: &Path) -> Result<()> {
    if output.is_file() {
        return Err(Failure::input(format!(
            "{}: is a file, and a ladder is written into a folder; choose a folder name",
            output.display()
        )));
    }
    let holds = std::fs::read_dir(output).is_ok_and(|mut d| d.next().is_some());
    if holds && !output.join(media::ladder::LADDER_REPORT).is_file() {
        return Err(Failure::input(format!(
            "{}: it holds files that are not a Tessera ladder; choose an empty or new folder",
            output.display()
        )));
    }
    Ok(())
}

fn parse_codec(s: &str) -> std::result::Result<Codec, String> {
    s.parse::<Codec>().map_err(|e| e.to_string())
}

pub fn run(args: EncodeArgs) -> Result<()> {
    if let Some(server) = args.server.clone() {
        return remote(args, server);
    }
    let started = Instant::now();
    let req = build_request(&args)?;
    let key = job_key(&req)?;
    let state_dir = state_dir(args.state_dir.as_deref())?;
    let store = SqliteStore::open(state_dir.join("tessera.db"))?;
    let workdir = state_dir.join("encodes").join(&key);
    std::fs::create_dir_all(&workdir)
        .map_err(|e| Failure::env(format!("cannot create {}: {e}", workdir.display())))?;
    media::write_request(&workdir, &req)?;

    let op_program = std::env::current_exe()
        .map_err(|e| Failure::env(format!("cannot find the tessera executable: {e}")))?;
    let config = DriverConfig::new(req.slots, &state_dir);
    let mut driver = Driver::new(
        store,
        |sink| LocalExecutor::new(LocalConfig { op_program, sink }),
        config,
    );

    let previous = driver.store().find_job_by_key(&key)?;
    let (job, resumed) = match previous {
        Some(j) if !j.state.is_terminal() => {
            driver.recover(Some(j.id))?;
            (j.id, true)
        }
        _ => {
            let name = format!("encode {}", file_name(&req.input));
            let mut spec = JobSpec::new(name, media::initial_tasks(&workdir));
            spec.grants = media::encode_grants(&workdir, &req);
            (driver.submit(&spec, Some(&key))?, false)
        }
    };
    let reused = if resumed {
        finished_chunks(driver.store(), job)?
    } else {
        0
    };
    if resumed {
        eprintln!("resuming job {job}: {reused} chunks already encoded");
    }
    install_signal_handler(driver.handle())?;

    let mut view =
        ProgressView::new(job, &workdir, args.plain).explain_plan(args.chunk_seconds, req.slots);
    view.load(driver.store())?;
    let exit = driver.run_job(job, &mut view)?;
    view.finish();

    let summary = Summary::collect(driver.store(), job, &workdir, &req, started, reused)?;
    match exit {
        Exit::Interrupted => {
            remove_temp_output(&req.output);
            Err(Failure::interrupted(format!(
                "interrupted; {} of {} chunks are done and kept; run the same command again to resume",
                summary.chunks_done, summary.chunks
            )))
        }
        Exit::Finished(JobState::Succeeded) => {
            print!("{summary}");
            if let Some(path) = &args.report_json {
                summary.write_json(path)?;
            }
            // The output is in place and verified; chunks are no longer needed.
            let _ = std::fs::remove_dir_all(&workdir);
            Ok(())
        }
        Exit::Finished(state) => {
            remove_temp_output(&req.output);
            Err(explain_failure(driver.store(), job, state)?)
        }
    }
}

/// The output's absolute path, once it is known to be writable and free
/// (or `--overwrite` given).
fn output_path(args: &EncodeArgs) -> Result<PathBuf> {
    let output = absolute(&args.output)?;
    check_parent_writable(&output)?;
    if args.ladder.is_some() {
        let published = output.join(media::ladder::LADDER_REPORT).is_file();
        if published && !args.overwrite {
            return Err(Failure::input(format!(
                "{} already holds a ladder; pass --overwrite (-y) to replace it",
                output.display()
            )));
        }
        // Anything else there is judged by the request's own check.
        return Ok(output);
    }
    if output.is_dir() {
        return Err(Failure::input(format!(
            "{}: is a directory; name an output file",
            output.display()
        )));
    }
    if output.exists() && !args.overwrite {
        return Err(Failure::input(format!(
            "{} already exists; pass --overwrite (-y) to replace it",
            output.display()
        )));
    }
    Ok(output)
}

fn build_request(args: &EncodeArgs) -> Result<EncodeRequest> {
    if !(args.chunk_seconds.is_finite() && args.chunk_seconds > 0.0) {
        return Err(Failure::input(
            "--chunk-seconds must be a positive number of seconds",
        ));
    }
    if args.jobs == Some(0) {
        return Err(Failure::input("--jobs must be at least 1"));
    }
    let input = absolute(&args.input)?;
    let output = output_path(args)?;
    if output == input {
        return Err(Failure::input(
            "the output would overwrite the input; choose another output path",
        ));
    }
    let slots = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
    let mut settings = EncodeSettings::new(args.codec);
    settings.crf = args.crf;
    settings.preset = args.preset.clone();
    settings.threads_per_chunk = 1;
    let req = EncodeRequest {
        input,
        output,
        settings,
        chunk_seconds: args.chunk_seconds,
        slots,
        ladder: ladder_request(args)?,
        target_vmaf: args.target_vmaf,
    };
    req.validate()?;
    // Fail fast, in this process, on anything wrong with the input or the
    // tools (a missing ffmpeg would otherwise fail every chunk, with retries).
    let (info, ffmpeg) = std::thread::scope(|s| {
        let ffmpeg = s.spawn(|| {
            media::runner::run(
                media::runner::Tool::Ffmpeg,
                &media::runner::argv(["-version"]),
            )
        });
        (media::probe(&req.input), ffmpeg.join())
    });
    let info = info?;
    ffmpeg.map_err(|_| Failure::internal("the ffmpeg check panicked"))??;
    if info.video().is_none() {
        return Err(media::MediaError::NoVideo {
            path: req.input.clone(),
        }
        .into());
    }
    if req.ladder.is_some() {
        media::ladder::ops::check_ladder(&req, &info)?;
    } else {
        media::check_streams(&req, &info)?;
    }
    Ok(req)
}

/// `--ladder default|FILE` and `--segment-seconds`, read and checked.
fn ladder_request(args: &EncodeArgs) -> Result<Option<media::ladder::LadderRequest>> {
    let Some(which) = args.ladder.as_deref() else {
        return Ok(None);
    };
    let mut ladder = if which == "default" {
        media::ladder::LadderRequest::default_ladder()
    } else {
        let path = Path::new(which);
        let meta = std::fs::metadata(path).map_err(|e| {
            Failure::input(format!(
                "--ladder {which}: {e}; name a ladder file or use --ladder default"
            ))
        })?;
        if !meta.is_file() || meta.len() > 64 * 1024 {
            return Err(Failure::input(format!(
                "--ladder {which}: not a ladder file (a YAML or JSON file of at most 64 KiB)"
            )));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| Failure::input(format!("--ladder {which}: {e}")))?;
        media::ladder::parse_ladder_file(&text)
            .map_err(|e| Failure::input(format!("--ladder {which}: {e}")))?
    };
    if let Some(s) = args.segment_seconds {
        ladder.segment_seconds = s;
    }
    ladder.validate()?;
    Ok(Some(ladder))
}

/// Same input file (path, size, mtime), same output and settings: same job.
fn job_key(req: &EncodeRequest) -> Result<String> {
    let meta = std::fs::metadata(&req.input)
        .map_err(|e| Failure::input(format!("{}: {e}", req.input.display())))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok());
    // Parallelism is not part of the identity: rerunning with another --jobs
    // (or on a machine with another core count) resumes the same job.
    let identity = EncodeRequest {
        slots: 0,
        ..req.clone()
    };
    let mut h = Sha256::new();
    h.update(serde_json::to_vec(&identity).map_err(Failure::internal)?);
    h.update(meta.len().to_le_bytes());
    h.update(mtime.map_or(0, |d| d.as_nanos()).to_le_bytes());
    let digest = h.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

fn state_dir(flag: Option<&Path>) -> Result<PathBuf> {
    let dir = match flag {
        Some(d) => d.to_path_buf(),
        None => crate::dirs::state_home()
            .map(|d| d.join("tessera"))
            .ok_or_else(|| {
                Failure::env("cannot choose a state directory: set --state-dir or HOME")
            })?,
    };
    std::fs::create_dir_all(&dir)
        .map_err(|e| Failure::env(format!("cannot use state directory {}: {e}", dir.display())))?;
    absolute(&dir)
}

fn absolute(p: &Path) -> Result<PathBuf> {
    std::path::absolute(p).map_err(|e| Failure::input(format!("{}: {e}", p.display())))
}

fn file_name(p: &Path) -> String {
    p.file_name().map_or_else(
        || p.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn finished_chunks(store: &dyn Store, job: tessera_types::JobId) -> Result<usize> {
    Ok(store
        .tasks(job)?
        .iter()
        .filter(|t| t.name.starts_with("encode-chunk-") && t.state == TaskState::Succeeded)
        .count())
}

fn install_signal_handler(handle: tessera_driver::DriverHandle) -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| Failure::internal(format!("cannot install signal handlers: {e}")))?;
    std::thread::spawn(move || {
        if signals.forever().next().is_some() {
            eprintln!("\nstopping: killing running encodes (the finished chunks are kept)...");
            handle.interrupt();
        }
    });
    Ok(())
}

/// Nothing half-written stays beside the output (a ladder's is a folder).
fn remove_temp_output(output: &Path) {
    let temp = media::temp_output(output);
    if temp.is_dir() {
        let _ = std::fs::remove_dir_all(temp);
    } else {
        let _ = std::fs::remove_file(temp);
    }
}

/// Turns a failed job into one line naming the task and its last error.
fn explain_failure(
    store: &dyn Store,
    job: tessera_types::JobId,
    state: JobState,
) -> Result<Failure> {
    if state == JobState::Cancelled {
        return Ok(Failure::interrupted("the encode was cancelled"));
    }
    let tasks = store.tasks(job)?;
    let failed = tasks.iter().find(|t| t.state == TaskState::Failed);
    let Some(t) = failed else {
        return Ok(Failure::internal(format!(
            "the encode ended {state} without a failed task; see the logs"
        )));
    };
    let reason = t
        .reason
        .clone()
        .unwrap_or_else(|| "no reason recorded".into());
    // A task exits 3 when its input was at fault, 4 when the environment
    // was (ffmpeg missing), like this command (see fail::Code).
    let code = if reason.contains("exited with status 3") {
        Code::Input
    } else if reason.contains("exited with status 4") {
        Code::Environment
    } else {
        Code::Internal
    };
    let reason = reason
        .strip_prefix("failed: ")
        .unwrap_or(&reason)
        .replace("exited with status 3: ", "")
        .replace("exited with status 4: ", "")
        .replace("exited with status 1: ", "");
    // The op printed its error the way this command does; one prefix is enough.
    let reason = reason.strip_prefix("tessera: ").unwrap_or(&reason);
    let attempts = if t.attempt > 1 {
        format!(" after {} attempts", t.attempt)
    } else {
        String::new()
    };
    let message = format!(
        "encode failed: {} failed{attempts}: {}",
        t.name,
        crate::fail::one_line(reason)
    );
    Ok(Failure { code, message })
}

/// The verify op's report, if it left one.
pub fn verify_report(workdir: &Path) -> Option<String> {
    std::fs::read_to_string(workdir.join(VERIFY_REPORT)).ok()
}
