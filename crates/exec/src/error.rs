use std::path::PathBuf;

/// Why an attempt failed, or why an executor could not do what it was asked.
/// The `Display` form is one line a person can read; it becomes the message
/// of an [`ExecEvent::Exited`](crate::ExecEvent::Exited) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExecError {
    /// The program exited with a non-zero status. `stderr` is its last
    /// non-empty line of standard error, if it wrote one.
    #[error("exited with status {code}{}", stderr.as_ref().map(|s| format!(": {s}")).unwrap_or_default())]
    Status { code: i32, stderr: Option<String> },
    #[error("killed by signal {signal} ({})", signal_name(*signal))]
    Signal { signal: i32 },
    #[error("could not start `{program}`: {reason}")]
    Spawn { program: String, reason: String },
    #[error("empty command: nothing to run")]
    EmptyCommand,
    #[error("could not create {what} {}: {reason}", path.display())]
    Prepare {
        what: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("could not wait for process {pid}: {reason}")]
    Wait { pid: u32, reason: String },
    #[error("in-process executor runs only no-op tasks")]
    NotNoop,
    #[error("could not kill process {pid}: {reason}")]
    Kill { pid: u32, reason: String },
    /// The process spawner ([`Spawner`](crate::Spawner)) is gone, or could
    /// not be started; nothing more can start until the program restarts.
    #[error("the process spawner stopped ({reason}); restart tessera to run tasks again")]
    SpawnerStopped { reason: String },
    /// The user attempts should run as (`run_as`) cannot be used.
    #[error("cannot run tasks as {user:?}: {reason}")]
    User { user: String, reason: String },
}

/// An OS error's text without Rust's " (os error N)" suffix, e.g.
/// "No such file or directory".
pub(crate) fn os_reason(e: &std::io::Error) -> String {
    let text = e.to_string();
    match e.raw_os_error() {
        Some(code) => text
            .strip_suffix(&format!(" (os error {code})"))
            .unwrap_or(&text)
            .to_string(),
        None => text,
    }
}

/// The conventional name of a signal number ("SIGKILL"), or "unknown signal".
pub fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGHUP => "SIGHUP",
        libc::SIGINT => "SIGINT",
        libc::SIGQUIT => "SIGQUIT",
        libc::SIGILL => "SIGILL",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGUSR1 => "SIGUSR1",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGUSR2 => "SIGUSR2",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGALRM => "SIGALRM",
        libc::SIGTERM => "SIGTERM",
        libc::SIGXCPU => "SIGXCPU",
        libc::SIGXFSZ => "SIGXFSZ",
        _ => "unknown signal",
    }
}
