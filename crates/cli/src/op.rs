//! `tessera op ...`, `tessera verify`, `tessera sample`: the built-in media
//! operations, each runnable alone. The encode pipeline runs the same ops as
//! child processes (`tessera op encode-chunk --workdir W --chunk N`).

use crate::fail::{Failure, Result};
use clap::{Args, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};
use tessera_media::{self as media, VerifyOptions};
use tessera_types::{progress_line, Progress};

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

pub fn run(args: OpArgs) -> Result<()> {
    if let (OpName::Probe, Some(file)) = (args.op, &args.file) {
        let info = media::probe(file)?;
        let json = serde_json::to_string_pretty(&info).map_err(Failure::internal)?;
        say!("{json}");
        return Ok(());
    }
    let workdir = args.workdir.ok_or_else(|| {
        Failure::input("this op needs --workdir DIR (a directory holding request.json)")
    })?;
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
            let path = media::encode_chunk(&workdir, n, &mut report)?;
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
            let result = media::verify_op(&workdir, VerifyOptions { decode: false });
            match result {
                Ok(report) => {
                    let _ = std::fs::write(workdir.join(VERIFY_REPORT), report.to_string());
                    say!("{report}");
                }
                Err(e) => return Err(e.into()),
            }
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
    if report.passed() {
        Ok(())
    } else {
        Err(Failure::internal(format!(
            "{} does not match {}: {}",
            args.encoded.display(),
            args.source.display(),
            report.failures()
        )))
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
