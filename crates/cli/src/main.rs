//! `tessera`: encode a video in parallel chunks, frame-exact, on a durable
//! scheduler. See `tessera --help`.
//!
//! Exit codes: 0 success; 1 internal failure (an encoder crashed, the
//! result failed verification); 2 bad usage; 3 a problem with your input
//! (missing, empty or unreadable file, unsupported codec for the container,
//! output exists or cannot be written); 4 the environment (ffmpeg missing,
//! state directory unusable); 130 interrupted (run the command again to resume).

mod admin;
mod client;
mod dirs;
mod docker_api;
mod encode;
mod fail;
mod godocker_labels;
mod http_limits;
mod op;
mod plan_note;
mod progress;
mod report;
mod server;
mod tenancy;
mod worker;

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
    /// Run the scheduler as a service: REST API, projects, keys, DAG jobs.
    Server(server::ServerArgs),
    /// Run a server's tasks on this machine (the server runs with --slots 0
    /// and shares its data directory at the same path).
    Worker(worker::WorkerArgs),
    /// List the server's workers: state, slots, running attempts (admin).
    Nodes,
    /// Administer a server's database directly (bootstrap the first admin).
    #[command(subcommand)]
    Admin(admin::AdminCmd),
    /// Save a server URL and API key for the client commands.
    Login(client::LoginArgs),
    /// Upload a video to the server (for encodes there); prints its upload id.
    Upload(client::upload::UploadArgs),
    /// Submit a job spec (YAML or JSON) to the server.
    Submit(client::SubmitArgs),
    /// List a project's jobs on the server.
    Jobs(client::JobsArgs),
    /// Show, follow the logs of, or cancel a job on the server.
    #[command(subcommand)]
    Job(client::JobCmd),
    /// List or create projects on the server.
    #[command(subcommand)]
    Project(client::ProjectCmd),
    /// List, create or revoke your API keys on the server.
    #[command(subcommand)]
    Key(client::KeyCmd),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Encode(args) => encode::run(args),
        Cmd::Verify(args) => op::verify(args),
        Cmd::Op(args) => op::run(args),
        Cmd::Sample(args) => op::sample(args),
        // Tasks are started by a helper process forked now, while this one
        // is small and has no threads: their peak memory is then their own.
        Cmd::Server(args) => server::run(args, tessera_exec::Spawner::start()),
        Cmd::Worker(args) => worker::run(args, tessera_exec::Spawner::start()),
        Cmd::Nodes => client::nodes(),
        Cmd::Admin(cmd) => admin::run(cmd),
        Cmd::Login(args) => client::login(args),
        Cmd::Upload(args) => client::upload::upload(args),
        Cmd::Submit(args) => client::submit(args),
        Cmd::Jobs(args) => client::jobs(args),
        Cmd::Job(cmd) => client::job(cmd),
        Cmd::Project(cmd) => client::project(cmd),
        Cmd::Key(cmd) => client::key(cmd),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(f) => {
            // Not eprintln!: a standard error that cannot be written (a
            // log file on a full disk) must not turn the exit code into a
            // panic's.
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "tessera: {}", f.message);
            ExitCode::from(f.code as u8)
        }
    }
}
