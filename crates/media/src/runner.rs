//! The one process runner: the only place that starts ffmpeg or ffprobe.
//!
//! It takes an argv (never a shell string), drains stderr on its own thread
//! so nothing deadlocks, parses ffmpeg's `-progress pipe:1` lines from
//! stdout, checks the exit status, and returns typed errors that carry the
//! tail of stderr. Children get `PR_SET_PDEATHSIG(SIGKILL)` so an encode
//! never outlives the op process that started it.

use crate::error::{MediaError, Result};
use std::ffi::{OsStr, OsString};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::thread::JoinHandle;

/// How many bytes of stderr an error keeps.
const STDERR_TAIL: usize = 2_000;

/// Which tool to run. `TESSERA_FFMPEG` / `TESSERA_FFPROBE` /
/// `TESSERA_VMAF` override the program found on `PATH`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Tool {
    Ffmpeg,
    Ffprobe,
    /// `tessera-vmaf` (crate `tessera-quality`): VMAF through libvmaf,
    /// whose Rust bindings are GPL-3.0, so it is a program of its own
    /// beside `tessera` (Apache-2.0), never linked into it. Found through
    /// `TESSERA_VMAF`, next to the running executable, or on `PATH`.
    Vmaf,
}

impl Tool {
    fn name(self) -> &'static str {
        match self {
            Tool::Ffmpeg => "ffmpeg",
            Tool::Ffprobe => "ffprobe",
            Tool::Vmaf => "tessera-vmaf",
        }
    }

    fn program(self) -> OsString {
        let var = match self {
            Tool::Ffmpeg => "TESSERA_FFMPEG",
            Tool::Ffprobe => "TESSERA_FFPROBE",
            Tool::Vmaf => "TESSERA_VMAF",
        };
        if let Some(p) = std::env::var_os(var) {
            return p;
        }
        if self == Tool::Vmaf {
            let beside = std::env::current_exe()
                .ok()
                .and_then(|e| e.parent().map(|d| d.join(self.name())))
                .filter(|p| p.is_file());
            if let Some(p) = beside {
                return p.into_os_string();
            }
        }
        self.name().into()
    }

    /// Whether the tool can be started: it is a file (named, or next to the
    /// executable) or on `PATH`.
    pub fn installed(self) -> bool {
        let program = std::path::PathBuf::from(self.program());
        if program.components().count() > 1 {
            return program.is_file();
        }
        std::env::var_os("PATH")
            .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(&program).is_file()))
    }
}

/// What a finished run printed.
#[derive(Debug, Default)]
pub struct RunOutput {
    pub stdout: String,
    pub stderr: String,
}

/// Runs `tool` with `args`; stdout is collected. Fails on a non-zero exit.
pub fn run(tool: Tool, args: &[OsString]) -> Result<RunOutput> {
    run_inner(tool, args, None)
}

/// Runs ffmpeg with `-progress pipe:1` appended to the global options, calling
/// `on_frame` with each reported `frame=` count. stdout is consumed by the
/// progress parser (the output must therefore not be `pipe:1`).
pub fn run_with_progress(args: &[OsString], on_frame: &mut dyn FnMut(u64)) -> Result<RunOutput> {
    let mut full: Vec<OsString> = vec!["-progress".into(), "pipe:1".into(), "-nostats".into()];
    full.extend_from_slice(args);
    run_inner(Tool::Ffmpeg, &full, Some(on_frame))
}

/// Parses one `-progress` line; returns the frame count of `frame=N` lines.
pub fn parse_progress_frame(line: &str) -> Option<u64> {
    line.trim().strip_prefix("frame=")?.trim().parse().ok()
}

fn run_inner(
    tool: Tool,
    args: &[OsString],
    on_frame: Option<&mut dyn FnMut(u64)>,
) -> Result<RunOutput> {
    check_inputs(tool, args)?;
    run_program(tool.program(), tool.name(), args, on_frame)
}

/// Demuxers that user media may be opened with: containers of audio and
/// video streams that read their one file and never open another file or
/// URL. Left out on purpose: playlists and manifests (`hls`, `dash`), lists
/// (`concat`), image sequences and patterns (`image2`), still images (the
/// `*_pipe` demuxers), filter graphs (`lavfi`: `movie=` reads any file),
/// `tee` and `subfile`-style indirections, raw elementary streams (no
/// timestamps to keep) and anything textual. mov's external data
/// references (`enable_drefs`) stay off, ffmpeg's default.
pub const MEDIA_DEMUXERS: &[&str] = &[
    "mov",
    "matroska",
    "avi",
    "flv",
    "mpegts",
    "mpeg",
    "nut",
    "ogg",
    "asf",
    "mxf",
    "ivf",
    "yuv4mpegpipe",
    "dv",
];

/// Opens `path` as exactly one media file: the `file` protocol only (no
/// network, no `concat:`/`subfile:` protocol tricks, nested opens included),
/// and only the demuxers in `formats` (ffmpeg refuses any other format,
/// whatever the file's name or content says). The path is given as a
/// `file:` URL, so a name like `rtmp:x` is never read as a protocol.
pub fn input_args(path: &Path, formats: &[&str]) -> Vec<OsString> {
    let mut url = OsString::from("file:");
    url.push(path.as_os_str());
    let mut a = argv([
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        &formats.join(","),
        "-i",
    ]);
    a.push(url);
    a
}

/// [`input_args`] with [`MEDIA_DEMUXERS`]: how every user-supplied video
/// is opened, by ffprobe and by ffmpeg.
pub fn media_input(path: &Path) -> Vec<OsString> {
    input_args(path, MEDIA_DEMUXERS)
}

/// A lavfi filter graph as an input (`testsrc2=...`, `sine=...`): for
/// Tessera's own generated clips, never for anything a user wrote (a
/// graph's `movie=` filter reads any file).
pub fn lavfi_input(graph: &str) -> Vec<OsString> {
    argv([
        "-protocol_whitelist",
        "file",
        "-format_whitelist",
        "lavfi",
        "-f",
        "lavfi",
        "-i",
        graph,
    ])
}

/// Refuses an argv that opens an input without both whitelists: every
/// `-i` must follow its own `-protocol_whitelist` and `-format_whitelist`
/// (ffmpeg input options apply to the next input only), so no builder can
/// forget them. `-i` is the only way inputs are named (ffprobe takes it too).
fn check_inputs(tool: Tool, args: &[OsString]) -> Result<()> {
    let (mut protocols, mut formats) = (false, false);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.to_str() {
            Some("-protocol_whitelist") => protocols = it.next().is_some(),
            Some("-format_whitelist") => formats = it.next().is_some(),
            Some("-i") => {
                let input = it.next().map(|i| i.to_string_lossy().into_owned());
                if !(protocols && formats) {
                    return Err(MediaError::Internal(format!(
                        "{} would open {} without a protocol and format whitelist; \
                         build its inputs with runner::input_args",
                        tool.name(),
                        input.as_deref().unwrap_or("an input")
                    )));
                }
                (protocols, formats) = (false, false);
            }
            _ => {}
        }
    }
    Ok(())
}

/// A started child with stdout piped to us and stderr drained on its own thread.
struct Started {
    child: Child,
    stdout: ChildStdout,
    stderr_thread: JoinHandle<String>,
}

fn start(program: OsString, name: &str, args: &[OsString]) -> Result<Started> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    set_parent_death_signal(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            MediaError::NotInstalled {
                program: name.to_string(),
            }
        } else {
            MediaError::io(format!("starting {name}"), e)
        }
    })?;
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr_thread = std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    });
    let stdout = child.stdout.take().expect("stdout is piped");
    Ok(Started {
        child,
        stdout,
        stderr_thread,
    })
}

/// Waits for a started child, joins its stderr and fails on a non-zero exit.
fn finish(mut child: Child, stderr_thread: JoinHandle<String>, name: &str) -> Result<String> {
    let status = child
        .wait()
        .map_err(|e| MediaError::io(format!("waiting for {name}"), e))?;
    let stderr = stderr_thread.join().unwrap_or_default();
    if !status.success() {
        return Err(MediaError::ToolFailed {
            program: name.to_string(),
            status: status.to_string(),
            stderr_tail: tail(&stderr),
        });
    }
    Ok(stderr)
}

/// A running tool whose stdout the caller reads as a byte stream (raw
/// frames over a pipe: `-f rawvideo pipe:1`), so a whole video is never
/// held in memory. Read it, then call [`OutputStream::finish`] to check the
/// exit status. Dropping it unfinished kills the child (a reader that stops
/// early never leaves a decoder running).
pub struct OutputStream {
    name: &'static str,
    child: Option<(Child, JoinHandle<String>)>,
    stdout: ChildStdout,
}

/// Starts `tool` with `args` (inputs checked as by [`run`]) and hands back
/// its stdout to read as it is produced.
pub fn spawn_output_stream(tool: Tool, args: &[OsString]) -> Result<OutputStream> {
    check_inputs(tool, args)?;
    let s = start(tool.program(), tool.name(), args)?;
    Ok(OutputStream {
        name: tool.name(),
        child: Some((s.child, s.stderr_thread)),
        stdout: s.stdout,
    })
}

impl OutputStream {
    /// Waits for the tool to exit (after stdout was read to its end) and
    /// fails with its stderr tail on a non-zero exit.
    pub fn finish(mut self) -> Result<RunOutput> {
        let (child, stderr_thread) = self.child.take().expect("finished once");
        let stderr = finish(child, stderr_thread, self.name)?;
        Ok(RunOutput {
            stdout: String::new(),
            stderr,
        })
    }
}

impl Read for OutputStream {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.stdout.read(buf)
    }
}

impl Drop for OutputStream {
    fn drop(&mut self) {
        if let Some((mut child, _stderr_thread)) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn run_program(
    program: OsString,
    name: &str,
    args: &[OsString],
    mut on_frame: Option<&mut dyn FnMut(u64)>,
) -> Result<RunOutput> {
    let Started {
        child,
        stdout: stdout_pipe,
        stderr_thread,
    } = start(program, name, args)?;
    let mut stdout = String::new();
    match on_frame.as_mut() {
        Some(cb) => {
            for line in BufReader::new(stdout_pipe).lines() {
                let Ok(line) = line else { break };
                if let Some(n) = parse_progress_frame(&line) {
                    cb(n);
                }
            }
        }
        None => {
            let mut bytes = Vec::new();
            let _ = BufReader::new(stdout_pipe).read_to_end(&mut bytes);
            stdout = String::from_utf8_lossy(&bytes).into_owned();
        }
    }
    let stderr = finish(child, stderr_thread, name)?;
    Ok(RunOutput { stdout, stderr })
}

/// The last lines of `s`, joined on one line, at most `STDERR_TAIL` bytes.
pub(crate) fn tail(s: &str) -> String {
    let joined: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let joined = joined.join(" | ");
    if joined.len() <= STDERR_TAIL {
        return joined;
    }
    let mut start = joined.len() - STDERR_TAIL;
    while !joined.is_char_boundary(start) {
        start += 1;
    }
    format!("...{}", &joined[start..])
}

#[cfg(target_os = "linux")]
fn set_parent_death_signal(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure only calls prctl, which is async-signal-safe, and
    // touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn set_parent_death_signal(_cmd: &mut Command) {}

/// Builds an argv from anything string-like.
pub fn argv<I, S>(items: I) -> Vec<OsString>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    items
        .into_iter()
        .map(|s| s.as_ref().to_os_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn progress_lines_parse_frames_only() {
        assert_eq!(parse_progress_frame("frame=42"), Some(42));
        assert_eq!(parse_progress_frame("fps=3.1"), None);
        assert_eq!(parse_progress_frame("frame=N/A"), None);
    }

    #[test]
    fn a_missing_program_is_not_installed_not_a_user_error() {
        let err = run_program("/nonexistent/ffmpeg".into(), "ffmpeg", &[], None).unwrap_err();
        assert!(
            matches!(&err, MediaError::NotInstalled { program } if program == "ffmpeg"),
            "{err:?}"
        );
        assert!(!err.is_user_error());
    }

    #[test]
    fn a_failing_run_carries_its_stderr_tail() {
        let mut a = argv(["-v", "error"]);
        a.extend(media_input(Path::new("/nonexistent/in.mkv")));
        let err = run(Tool::Ffmpeg, &a).unwrap_err();
        assert!(
            matches!(&err, MediaError::ToolFailed { stderr_tail, .. } if stderr_tail.contains("No such file")),
            "{err}"
        );
    }

    #[test]
    fn every_input_needs_its_own_whitelists() {
        let bare = argv(["-v", "error", "-i", "/tmp/x.mkv"]);
        let err = run(Tool::Ffprobe, &bare).unwrap_err();
        assert!(
            matches!(&err, MediaError::Internal(m) if m.contains("without a protocol and format whitelist")),
            "{err}"
        );
        // The first input's whitelists do not cover the second.
        let mut two = media_input(Path::new("/tmp/a.mkv"));
        two.extend(argv(["-i", "/tmp/b.mkv"]));
        assert!(check_inputs(Tool::Ffmpeg, &two).is_err());
        let mut ok = media_input(Path::new("/tmp/a.mkv"));
        ok.extend(input_args(Path::new("/tmp/list"), &["concat", "nut"]));
        check_inputs(Tool::Ffmpeg, &ok).unwrap();
        assert_eq!(
            media_input(Path::new("/v/a:b.mp4")),
            argv([
                "-protocol_whitelist",
                "file",
                "-format_whitelist",
                &MEDIA_DEMUXERS.join(","),
                "-i",
                "file:/v/a:b.mp4"
            ])
        );
    }

    #[test]
    fn an_output_stream_streams_raw_frames_and_checks_the_exit() {
        let mut a = argv(["-nostdin", "-v", "error"]);
        a.extend(lavfi_input("color=c=gray:size=16x8:rate=10:duration=1"));
        a.extend(argv(["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]));
        let mut s = spawn_output_stream(Tool::Ffmpeg, &a).unwrap();
        let mut frame = [0u8; 16 * 8];
        let mut frames = 0;
        while s.read_exact(&mut frame).is_ok() {
            frames += 1;
        }
        s.finish().unwrap();
        assert_eq!(frames, 10);
        // A failing tool is an error at finish, carrying its stderr.
        let mut bad = argv(["-v", "error"]);
        bad.extend(media_input(Path::new("/nonexistent/in.mkv")));
        bad.extend(argv(["-f", "rawvideo", "pipe:1"]));
        let mut s = spawn_output_stream(Tool::Ffmpeg, &bad).unwrap();
        let _ = s.read(&mut frame);
        let err = s.finish().unwrap_err();
        assert!(err.to_string().contains("No such file"), "{err}");
        // Dropping a stream unread kills its child instead of waiting on it.
        let mut endless = argv(["-nostdin", "-v", "error"]);
        endless.extend(lavfi_input("color=c=gray:size=16x8:rate=10"));
        endless.extend(argv(["-f", "rawvideo", "-pix_fmt", "gray", "pipe:1"]));
        drop(spawn_output_stream(Tool::Ffmpeg, &endless).unwrap());
    }

    #[test]
    fn tail_keeps_the_end_on_one_line() {
        let long = "x\n".repeat(5_000);
        let t = tail(&long);
        assert!(t.len() <= STDERR_TAIL + 3 && t.starts_with("..."));
        assert_eq!(tail("a\n\nb\n"), "a | b");
    }
}
