use bollard::errors::Error as EngineError;

/// What went wrong talking to the Docker engine. The `Display` form is one
/// line a person can act on; for an attempt it becomes the message of its
/// [`ExecEvent::Exited`](tessera_exec::ExecEvent::Exited) error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    #[error("cannot reach the Docker engine at {host}: {reason}; start dockerd (and check this user may use its socket) or set DOCKER_HOST")]
    Unreachable { host: String, reason: String },
    #[error("image {image} is not on the Docker engine at {host}; build it with deploy/image/build-rootfs.sh (or docker load/pull it)")]
    NoImage { image: String, host: String },
    #[error("the Docker engine could not {what}: {reason}")]
    Engine { what: String, reason: String },
    #[error("killed by the kernel: out of memory (the task's limit is {limit_mb} MiB; raise resources.memory_mb)")]
    OutOfMemory { limit_mb: u64 },
    #[error("could not start the Docker executor's runtime: {reason}")]
    Runtime { reason: String },
}

impl DockerError {
    /// An engine error while doing `what` ("create container x").
    pub(crate) fn engine(what: impl Into<String>, e: &EngineError) -> Self {
        DockerError::Engine {
            what: what.into(),
            reason: reason(e),
        }
    }
}

/// The part of an engine error a person needs: the engine's own message for
/// refusals, else bollard's description followed by its root cause (the
/// operating system's word, such as "Connection refused").
pub(crate) fn reason(e: &EngineError) -> String {
    if let EngineError::DockerResponseServerError { message, .. } = e {
        if let Some(line) = message.lines().map(str::trim).find(|l| !l.is_empty()) {
            return line.to_string();
        }
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    let mut root = None;
    while let Some(s) = source {
        root = Some(s.to_string());
        source = s.source();
    }
    if let Some(root) = root.filter(|r| !text.contains(r.as_str())) {
        text = format!("{text}: {root}");
    }
    text.lines().next().unwrap_or_default().to_string()
}

/// The runtime's reason a container's program did not start, without the
/// layers around it: `... exec: "prog": executable file not found in
/// $PATH: unknown` becomes `executable file not found in $PATH`.
pub(crate) fn start_reason(message: &str) -> String {
    let Some((_, exec)) = message.rsplit_once("exec: ") else {
        return message.to_string();
    };
    let exec = exec.strip_suffix(": unknown").unwrap_or(exec);
    match exec
        .strip_prefix('"')
        .and_then(|rest| rest.split_once("\": "))
    {
        Some((_, why)) => why.to_string(),
        None => exec.to_string(),
    }
}

/// Whether an engine error says the thing asked about does not exist.
pub(crate) fn is_not_found(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// Whether an engine error is a refusal by a running engine (as opposed to
/// not getting an answer at all).
pub(crate) fn is_refusal(e: &EngineError) -> bool {
    matches!(
        e,
        EngineError::DockerResponseServerError { .. }
            | EngineError::DockerContainerWaitError { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_reasons_lose_the_runtime_layers() {
        let runc = "failed to create shim task: OCI runtime create failed: runc create failed: \
            unable to start container process: exec: \"no-such\": executable file not found \
            in $PATH: unknown";
        assert_eq!(start_reason(runc), "executable file not found in $PATH");
        assert_eq!(start_reason("something else"), "something else");
    }
}
