//! `tessera`: encode a video in parallel chunks, frame-exact, on a durable
//! scheduler. See `tessera --help`.
//!
//! Exit codes: 0 success; 1 internal failure (an encoder crashed, the
//! result failed verification); 2 bad usage; 3 a problem with your input
//! (missing, empty or unreadable file, unsupported codec for the container,
//! output exists or cannot be written); 4 the environment (ffmpeg missing,
//! state directory unusable); 130 interrupted (run the command again to resume).

mod encode;
mod fail;
mod op;
mod progress;
mod report;

use clap::{Parser, Subcommand};

use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "tessera",
    version,
    about = "Frame-exact parallel video encoding on a durable DAG scheduler"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Encode a video: split into exact frame ranges, encode chunks in parallel, join, verify.
    Encode(encode::EncodeArgs),
    /// Compare an encoded file with its source: frames, timing, streams, decode errors.
    Verify(op::VerifyArgs),
    /// Run one built-in media operation (the steps of an encode).
    Op(op::OpArgs),
    /// Write a short sample clip to encode (720p H.264 + AAC, made with ffmpeg).
    Sample(op::SampleArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Encode(args) => encode::run(args),
        Cmd::Verify(args) => op::verify(args),
        Cmd::Op(args) => op::run(args),
        Cmd::Sample(args) => op::sample(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            eprintln!("tessera: {}", f.message);
            ExitCode::from(f.code as u8)
        }
    }
}
