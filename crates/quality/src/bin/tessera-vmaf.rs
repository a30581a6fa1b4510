//! `tessera-vmaf`: VMAF, PSNR-Y and SSIM of an encode against its source.
//!
//! A program of its own because libvmaf's Rust bindings (`libvmaf-sys`)
//! are GPL-3.0: `tessera` (Apache-2.0) runs this program, as it runs
//! ffmpeg, and never links it. This crate is GPL-3.0-or-later for that
//! reason.
//!
//! ```text
//! tessera-vmaf measure SOURCE ENCODED [--first-frame N] [--frames N] [--subsample N] [--threads N] [--json]
//! tessera-vmaf ladder --workdir W --rendition NAME
//! ```
//! Exit codes as `tessera`'s: 0 done, 1 a failure of ours, 2 bad usage, 3
//! a problem with the input (missing, not a video, frame counts differ).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use tessera_quality::{measure, quality_lines, QualityError, QualityOptions};

#[derive(Parser)]
#[command(
    name = "tessera-vmaf",
    version,
    about = "VMAF, PSNR-Y and SSIM of an encode against its source"
)]
struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Score ENCODED against SOURCE (the encode scaled to the source's size).
    Measure {
        source: PathBuf,
        encoded: PathBuf,
        /// The source's first frame to compare (a chunk's slice of it).
        #[arg(long, default_value_t = 0)]
        first_frame: u32,
        /// How many source frames to compare [default: to the end].
        #[arg(long)]
        frames: Option<u32>,
        /// Score every Nth frame (every frame is still decoded).
        #[arg(long, default_value_t = 1)]
        subsample: u32,
        /// libvmaf threads; 0: one per core.
        #[arg(long, default_value_t = 0)]
        threads: u32,
        /// Print the scores as JSON (with each scored frame's VMAF).
        #[arg(long)]
        json: bool,
    },
    /// Score one rendition of a ladder encode (the `quality` task of its DAG).
    Ladder {
        #[arg(long)]
        workdir: PathBuf,
        #[arg(long)]
        rendition: String,
    },
}

fn run(args: Args) -> Result<String, QualityError> {
    match args.command {
        Command::Measure {
            source,
            encoded,
            first_frame,
            frames,
            subsample,
            threads,
            json,
        } => {
            let scores = measure(
                &source,
                &encoded,
                &QualityOptions {
                    first_frame,
                    frames,
                    subsample,
                    threads,
                },
            )?;
            if json {
                serde_json::to_string_pretty(&scores)
                    .map_err(|e| QualityError::BadOptions(e.to_string()))
            } else {
                Ok(quality_lines(&scores))
            }
        }
        Command::Ladder { workdir, rendition } => {
            let q = tessera_quality::ladder::rendition_quality(&workdir, &rendition)?;
            Ok(format!(
                "{rendition}: VMAF {:.2} (min {:.2}), PSNR-Y {:.2} dB, SSIM {:.4} over {} frames ({} scored) in {:.1} s",
                q.vmaf_mean, q.vmaf_min, q.psnr_y_mean, q.ssim_mean, q.frames, q.scored_frames, q.seconds
            ))
        }
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            let line: String = e.to_string().lines().collect::<Vec<_>>().join(" | ");
            eprintln!("tessera-vmaf: {line}");
            ExitCode::from(if e.is_user_error() { 3 } else { 1 })
        }
    }
}
