//! A container's output: standard output split into lines, progress lines
//! becoming events and the rest going to its log file; standard error
//! copied to its own log file.

use bollard::container::LogOutput;
use bollard::query_parameters::LogsOptionsBuilder;
use bollard::Docker;
use futures_util::StreamExt;
use std::fs::File;
use std::io::{BufWriter, Write};
use tessera_types::{parse_progress_line, Progress};

/// Longer lines are cut into pieces of this size (so a program that never
/// writes a newline cannot make the pump hold all of its output).
const MAX_LINE: usize = 1 << 20;

/// Standard output, line by line.
pub(crate) struct StdoutLines {
    pending: Vec<u8>,
    log: BufWriter<File>,
}

impl StdoutLines {
    pub(crate) fn new(log: File) -> Self {
        Self {
            pending: Vec::new(),
            log: BufWriter::new(log),
        }
    }

    /// Takes a chunk of output; each complete line is either a progress
    /// event or a line of the log.
    pub(crate) fn push(&mut self, chunk: &[u8], on_progress: &mut impl FnMut(Progress)) {
        let mut rest = chunk;
        while let Some(end) = rest.iter().position(|&b| b == b'\n') {
            let (line, after) = rest.split_at(end + 1);
            if self.pending.is_empty() {
                self.line(line, on_progress);
            } else {
                self.pending.extend_from_slice(line);
                let whole = std::mem::take(&mut self.pending);
                self.line(&whole, on_progress);
            }
            rest = after;
        }
        self.pending.extend_from_slice(rest);
        if self.pending.len() >= MAX_LINE {
            let piece = std::mem::take(&mut self.pending);
            self.write(&piece);
        }
        // Flushed per chunk, so the log can be followed live.
        drop(self.log.flush());
    }

    /// The output has ended: an unfinished last line is still a line.
    pub(crate) fn finish(mut self, on_progress: &mut impl FnMut(Progress)) {
        let last = std::mem::take(&mut self.pending);
        if !last.is_empty() {
            self.line(&last, on_progress);
        }
        drop(self.log.flush());
    }

    fn line(&mut self, line: &[u8], on_progress: &mut impl FnMut(Progress)) {
        match std::str::from_utf8(line).ok().and_then(parse_progress_line) {
            Some(p) => on_progress(p),
            None => self.write(line),
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        // A full disk must not stop the draining.
        drop(self.log.write_all(bytes));
    }
}

/// Follows the container's output until it ends (the container stopped).
pub(crate) async fn pump(
    docker: &Docker,
    container: &str,
    stdout: File,
    mut stderr: File,
    mut on_progress: impl FnMut(Progress),
) -> Result<(), bollard::errors::Error> {
    let options = LogsOptionsBuilder::new()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(container, Some(options));
    let mut out = StdoutLines::new(stdout);
    let mut result = Ok(());
    while let Some(item) = stream.next().await {
        match item {
            Ok(LogOutput::StdOut { message }) => out.push(&message, &mut on_progress),
            Ok(LogOutput::StdErr { message }) => drop(stderr.write_all(&message)),
            Ok(LogOutput::StdIn { .. } | LogOutput::Console { .. }) => {}
            Err(e) => {
                result = Err(e);
                break;
            }
        }
    }
    out.finish(&mut on_progress);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_split_across_chunks_are_joined_and_progress_is_taken_out() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut lines = StdoutLines::new(File::create(&path).unwrap());
        let mut seen = Vec::new();
        let mut on = |p| seen.push(p);
        lines.push(b"a\n#tessera-pro", &mut on);
        lines.push(b"gress 3 9\n\xffraw\n#tessera-progress x\nno", &mut on);
        lines.push(b" newline", &mut on);
        lines.finish(&mut on);
        assert_eq!(seen, [Progress { done: 3, total: 9 }]);
        let log = std::fs::read(&path).unwrap();
        assert_eq!(log, b"a\n\xffraw\n#tessera-progress x\nno newline");
    }

    #[test]
    fn a_last_line_without_newline_can_be_progress() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut lines = StdoutLines::new(File::create(&path).unwrap());
        let mut seen = Vec::new();
        let mut on = |p| seen.push(p);
        lines.push(b"#tessera-progress 1 1", &mut on);
        lines.finish(&mut on);
        assert_eq!(seen, [Progress { done: 1, total: 1 }]);
        assert_eq!(std::fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn endless_lines_are_written_in_pieces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let mut lines = StdoutLines::new(File::create(&path).unwrap());
        let mut on = |_| {};
        let chunk = vec![b'x'; MAX_LINE / 2 + 1];
        lines.push(&chunk, &mut on);
        lines.push(&chunk, &mut on);
        assert!(lines.pending.is_empty());
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            chunk.len() as u64 * 2
        );
        lines.finish(&mut on);
    }
}
