//! `tessera op ...`, `tessera verify`, `tessera sample`: the built-in media
//! operations, each runnable alone. The encode pipeline runs the same ops as
//! child processes (`tessera op encode-chunk --workdir W --chunk N`).

use crate::fail::{Failure, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_media::{self as media, VerifyOptions};
use tessera_types::{progress_line, Progress, Reach, REACH_ENV};

/// The report the verify op leaves in the workdir for the encode summary.
pub const VERIFY_REPORT: &str = "verify-report.txt";

#[derive(Copy, Clone, Debug, ValueEnum)]
pub enum OpName {
    /// Probe a file (prints JSON) or an encode's input (writes probe.json).
    Probe,
    /// Cut the input into exact frame ranges; adds the chunk tasks.
    Plan,
    /// Encode one chunk (--chunk N) and check its frame count.
    EncodeChunk,
    /// Encode or copy all audio tracks, once, whole.
    EncodeAudio,
    /// Join chunks, audio, subtitles, chapters and metadata into a temporary output.
    Concat,
    /// Verify the temporary output against the source, then move it into place.
    Verify,
    /// Ladder: cut one rendition (--rendition NAME) into CMAF segments and check it.
    Package,
    /// Ladder: encode every audio track once and cut it into segments.
    PackageAudio,
    /// Ladder: every subtitle track as WebVTT.
    PackageSubtitles,
    /// Ladder: poster, sprite sheets and a WebVTT thumbnail track.
    PackageThumbnails,
    /// Ladder: VMAF, PSNR and SSIM of one rendition (--rendition NAME) against the source.
    Quality,
    /// Ladder: check alignment, write the HLS and DASH manifests, move the folder into place.
    Publish,
}

#[derive(Args)]
pub struct OpArgs {
    op: OpName,
    /// The encode's work directory (holds request.json).
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Chunk number, for encode-chunk.
    #[arg(long)]
    chunk: Option<u32>,
    /// A ladder's rendition, for encode-chunk and package.
    #[arg(long)]
    rendition: Option<String>,
    /// A media file, for `probe` on its own.
    file: Option<PathBuf>,
}

/// `println!` that ignores a standard output it cannot write (an attempt's
/// log on a full disk): the op's own result decides its exit code.
macro_rules! say {
    ($($arg:tt)*) => {{
        let _ = writeln!(std::io::stdout(), $($arg)*);
    }};
}

/// The reach the attempt's process was given ([`REACH_ENV`]), if any: a
/// scheduler always sets it; by hand the op is not confined.
fn reach() -> Result<Option<Reach>> {
    match std::env::var(REACH_ENV) {
        Ok(v) => Reach::from_env(&v).map(Some).map_err(Failure::input),
        Err(_) => Ok(None),
    }
}

/// Refuses an op whose files (from its workdir's state files) leave the
/// reach, by their names and by where their links really lead: a member
/// may have written request.json or plan.json, or left a link in the
/// job's folder.
fn check_files(reach: &Reach, op: &str, args: &[String]) -> Result<()> {
    let files = media::op_files(op, args, Some(reach))
        .map_err(|e| Failure::input(format!("op {op}: {e}")))?;
    // The same check on real paths: each grant and each file resolved.
    let real = |p: &Path| -> PathBuf {
        match std::fs::canonicalize(p) {
            Ok(c) => c,
            // Not there yet (an output): where its folder really is.
            Err(_) => match (p.parent().map(std::fs::canonicalize), p.file_name()) {
                (Some(Ok(dir)), Some(name)) => dir.join(name),
                _ => p.to_path_buf(),
            },
        }
    };
    let grants = reach
        .grants
        .iter()
        .map(|g| tessera_types::Grant {
            path: real(&g.path),
            ..g.clone()
        })
        .collect();
    let resolved = media::OpFiles {
        inputs: files.inputs.iter().map(|p| real(p)).collect(),
        outputs: files.outputs.iter().map(|p| real(p)).collect(),
        dirs: files.dirs.iter().map(|p| real(p)).collect(),
    };
    media::check_reach(&Reach::new(grants), &resolved)
        .map_err(|e| Failure::input(format!("op {op}: {e}; a symbolic link leads there")))
}

pub fn run(args: OpArgs) -> Result<()> {
    let reach = reach()?;
    if let (OpName::Probe, Some(file)) = (args.op, &args.file) {
        if let Some(reach) = &reach {
            let real = std::fs::canonicalize(file).unwrap_or_else(|_| file.clone());
            for p in [file, &real] {
                reach
                    .check(p, false)
                    .map_err(|e| Failure::input(format!("op probe: {e}")))?;
            }
        }
        let info = media::probe(file)?;
        let json = serde_json::to_string_pretty(&info).map_err(Failure::internal)?;
        say!("{json}");
        return Ok(());
    }
    let workdir = args.workdir.ok_or_else(|| {
        Failure::input("this op needs --workdir DIR (a directory holding request.json)")
    })?;
    if let Some(reach) = &reach {
        let mut a = vec!["--workdir".to_string(), workdir.display().to_string()];
        if let Some(n) = args.chunk {
            a.extend(["--chunk".to_string(), n.to_string()]);
        }
        if let Some(r) = &args.rendition {
            a.extend(["--rendition".to_string(), r.clone()]);
        }
        let name = args.op.to_possible_value().expect("ops have names");
        check_files(reach, name.get_name(), &a)?;
    }
    match args.op {
        OpName::Probe => {
            media::probe_op(&workdir)?;
        }
        OpName::Plan => {
            let tasks = media::plan_op(&workdir)?;
            write_expansion(&tasks)?;
            say!("planned {} follow-on tasks", tasks.len());
        }
        OpName::EncodeChunk => {
            let n = args
                .chunk
                .ok_or_else(|| Failure::input("encode-chunk needs --chunk N"))?;
            let mut out = std::io::stdout().lock();
            let mut report = |done: u64, total: u64| {
                let _ = writeln!(out, "{}", progress_line(Progress { done, total }));
                let _ = out.flush();
            };
            let path = media::encode_chunk_of(&workdir, n, args.rendition.as_deref(), &mut report)?;
            say!("chunk {n} written to {}", path.display());
        }
        OpName::EncodeAudio => match media::encode_audio(&workdir)? {
            Some(p) => say!("audio written to {}", p.display()),
            None => say!("the source has no audio"),
        },
        OpName::Concat => {
            let p = media::concat(&workdir)?;
            say!("joined into {}", p.display());
        }
        OpName::Verify => {
            // The whole output is decoded before it is published: a damaged
            // chunk can still count its frames (crates/media/tests/media/corrupt.rs).
            let result = media::verify_op(&workdir, VerifyOptions { decode: true });
            match result {
                Ok(report) => {
                    let _ = std::fs::write(workdir.join(VERIFY_REPORT), report.to_string());
                    say!("{report}");
                }
                Err(e) => return Err(e.into()),
            }
        }
        OpName::Package => {
            let name = args
                .rendition
                .as_deref()
                .ok_or_else(|| Failure::input("package needs --rendition NAME"))?;
            let p = media::ladder::package_rendition(&workdir, name)?;
            say!(
                "{name}: {} segments, {}; every check passed",
                p.track.segments.len(),
                p.track.codec
            );
        }
        OpName::PackageAudio => {
            for p in media::ladder::package_audio(&workdir)? {
                say!(
                    "{}: {} segments, {}",
                    p.name,
                    p.track.segments.len(),
                    p.track.codec
                );
            }
        }
        OpName::PackageSubtitles => {
            for f in media::ladder::ops::package_subtitles(&workdir)? {
                say!("subtitles written to {}", f.display());
            }
        }
        OpName::PackageThumbnails => {
            let t = media::ladder::ops::package_thumbnails(&workdir)?;
            say!(
                "{} thumbnails every {} s in {} sprite sheets, poster {}",
                t.count,
                t.interval_seconds,
                t.sprites.len(),
                t.poster
            );
        }
        OpName::Quality => {
            let name = args
                .rendition
                .as_deref()
                .ok_or_else(|| Failure::input("quality needs --rendition NAME"))?;
            let a: Vec<std::ffi::OsString> = vec![
                "ladder".into(),
                "--workdir".into(),
                workdir.clone().into(),
                "--rendition".into(),
                name.into(),
            ];
            let out = media::runner::run(media::runner::Tool::Vmaf, &a).map_err(vmaf_failure)?;
            say!("{}", out.stdout.trim_end());
        }
        OpName::Publish => {
            let report = media::ladder::publish(&workdir)?;
            say!(
                "published {} renditions, {} segments each",
                report.renditions.len(),
                report.segments
            );
        }
    }
    Ok(())
}

/// Hands the planned tasks to the scheduler through the file it named.
fn write_expansion(tasks: &[tessera_types::TaskSpec]) -> Result<()> {
    let Some(path) = std::env::var_os("TESSERA_EXPAND") else {
        // Run by hand: print them instead.
        let json = serde_json::to_string_pretty(tasks).map_err(Failure::internal)?;
        say!("{json}");
        return Ok(());
    };
    let path = PathBuf::from(path);
    let tmp = path.with_extension("json.tmp");
    let json = serde_json::to_vec(tasks).map_err(Failure::internal)?;
    std::fs::write(&tmp, json)
        .and_then(|()| std::fs::rename(&tmp, &path))
        .map_err(|e| Failure::internal(format!("could not write {}: {e}", path.display())))
}

#[derive(Args)]
pub struct VerifyArgs {
    /// The original.
    source: PathBuf,
    /// The encoded file to check against it.
    encoded: PathBuf,
    /// Skip the full decode of the encoded file (faster; no decode-error check).
    #[arg(long)]
    no_decode: bool,
    /// Also measure quality against the source once the checks pass: VMAF
    /// (model vmaf_v0.6.1), PSNR of the luma and SSIM, the encoded file
    /// scaled to the source's size.
    #[arg(long, alias = "vmaf")]
    quality: bool,
}

pub fn verify(args: VerifyArgs) -> Result<()> {
    let report = media::verify(
        &args.source,
        &args.encoded,
        VerifyOptions {
            decode: !args.no_decode,
        },
    )?;
    say!("{report}");
    if !report.passed() {
        return Err(Failure::internal(format!(
            "{} does not match {}: {}",
            args.encoded.display(),
            args.source.display(),
            report.failures()
        )));
    }
    if args.quality {
        // tessera-vmaf: a program of its own (see runner::Tool::Vmaf).
        let mut a: Vec<std::ffi::OsString> = vec!["measure".into()];
        a.push(args.source.clone().into());
        a.push(args.encoded.clone().into());
        let out = media::runner::run(media::runner::Tool::Vmaf, &a).map_err(vmaf_failure)?;
        say!("{}", out.stdout.trim_end());
    }
    Ok(())
}

/// What a failed `tessera-vmaf` means to the user: not installed (build it),
/// or its own one-line error.
pub fn vmaf_failure(e: media::MediaError) -> Failure {
    match e {
        media::MediaError::NotInstalled { .. } => Failure::env(
            "quality needs tessera-vmaf (VMAF through libvmaf; GPL-3.0, so a program of its own): \
             build it with `cargo build --release -p tessera-quality` and put it next to tessera \
             or on PATH, or set TESSERA_VMAF",
        ),
        media::MediaError::ToolFailed {
            stderr_tail,
            status,
            ..
        } => {
            let line = stderr_tail
                .trim()
                .trim_start_matches("tessera-vmaf: ")
                .to_string();
            if status.contains("status: 3") {
                Failure::input(line)
            } else {
                Failure::internal(line)
            }
        }
        e => e.into(),
    }
}

#[derive(Args)]
pub struct SampleArgs {
    /// Where to write the clip.
    #[arg(short, long, default_value = "sample.mp4")]
    output: PathBuf,
    /// Length in seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u32,
}

pub fn sample(args: SampleArgs) -> Result<()> {
    check_parent_writable(&args.output)?;
    media::testclips::sample_720p(&args.output, args.seconds)?;
    println!(
        "wrote {} ({} s of 720p30 H.264 + AAC)",
        args.output.display(),
        args.seconds
    );
    Ok(())
}

pub fn check_parent_writable(path: &Path) -> Result<()> {
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if !parent.is_dir() {
        return Err(Failure::input(format!(
            "{}: the directory does not exist",
            parent.display()
        )));
    }
    Ok(())
}
