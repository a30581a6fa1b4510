//! A running attempt's output: standard output pumped line by line into
//! progress events and a log file; the tail of the standard error log.

use crate::{EventSink, ExecEvent};
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::mpsc;
use tessera_types::{parse_progress_line, AttemptNo, TaskRef};

/// Longer lines are cut into pieces of this size (so a program that never
/// writes a newline cannot make the pump hold all of its output).
const MAX_LINE: u64 = 1 << 20;

/// How much of the end of the standard error log is searched for its last line.
const TAIL_BYTES: u64 = 16 * 1024;

/// The longest stderr line quoted in a failure message, in characters.
const MAX_QUOTED: usize = 300;

/// Starts a thread that drains `stdout` until end of file. The returned
/// receiver disconnects when the pump is done (or could not start).
pub(super) fn spawn_pump(
    stdout: File,
    log: File,
    task: TaskRef,
    attempt: AttemptNo,
    sink: EventSink,
) -> mpsc::Receiver<()> {
    let (done, drained) = mpsc::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name(format!("tessera-out-{task}.{attempt}"))
        .spawn(move || {
            let _done = done;
            pump(stdout, log, |progress| {
                sink(ExecEvent::Progress {
                    task,
                    attempt,
                    progress,
                })
            });
        });
    // If no thread could be had, the pipe closes with `stdout` and the
    // program gets SIGPIPE when it writes: a failure it will report.
    drop(spawned);
    drained
}

fn pump(stdout: impl Read, log: File, mut on_progress: impl FnMut(tessera_types::Progress)) {
    let mut reader = BufReader::with_capacity(64 * 1024, stdout);
    let mut log = BufWriter::new(log);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        }
        match std::str::from_utf8(&line)
            .ok()
            .and_then(parse_progress_line)
        {
            Some(p) => on_progress(p),
            // A full disk must not stop the draining, or the program would block.
            None => drop(log.write_all(&line)),
        }
        // Flush whenever the program has paused, so the log can be followed live.
        if reader.buffer().is_empty() {
            drop(log.flush());
        }
    }
    drop(log.flush());
}

/// The last non-empty line of a log file (lines end at `\n` or `\r`, as
/// progress meters overwrite themselves), trimmed and shortened for a
/// message; `None` if there is none.
pub fn last_line(path: &Path) -> Option<String> {
    let mut file = File::open(path).ok()?;
    let len = file.metadata().ok()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(TAIL_BYTES)))
        .ok()?;
    let mut tail = Vec::new();
    file.read_to_end(&mut tail).ok()?;
    let text = String::from_utf8_lossy(&tail);
    let line = text
        .split(['\n', '\r'])
        .map(str::trim)
        .rfind(|l| !l.is_empty())?;
    Some(if line.chars().count() > MAX_QUOTED {
        format!("{}...", line.chars().take(MAX_QUOTED).collect::<String>())
    } else {
        line.to_string()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tessera_types::Progress;

    #[test]
    fn pump_separates_progress_from_log_lines_and_keeps_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.log");
        let input: &[u8] = b"a\n#tessera-progress 3 9\r\n\xffraw\n#tessera-progress x\nno newline";
        let mut seen = Vec::new();
        pump(input, File::create(&path).unwrap(), |p| seen.push(p));
        assert_eq!(seen, [Progress { done: 3, total: 9 }]);
        let log = std::fs::read(&path).unwrap();
        assert_eq!(log, b"a\n\xffraw\n#tessera-progress x\nno newline");
    }

    #[test]
    fn last_line_skips_blank_lines_and_carriage_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("err.log");
        std::fs::write(&path, "first\nframe=1\rframe=2\rreal error here \n\n  \n").unwrap();
        assert_eq!(last_line(&path).as_deref(), Some("real error here"));
        std::fs::write(&path, "\n\n").unwrap();
        assert_eq!(last_line(&path), None);
        std::fs::write(&path, "x".repeat(1000)).unwrap();
        assert_eq!(last_line(&path).unwrap().len(), MAX_QUOTED + 3);
    }
}
