//! Input and output problems: exit 3 (the user's input) or 4 (the
//! environment), exactly one `tessera: ` line naming the problem, no panic,
//! and nothing written at or beside the output path. Encoder settings a
//! codec does not take (`--preset '-i /etc/passwd'`) are input problems
//! too, in `tessera encode` and in each op that reads a request.json.

use crate::support::{exists, listing, run, tessera, tessera_run, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use tempfile::TempDir;
use tessera_media::testclips;

const INPUT: i32 = 3;
const ENVIRONMENT: i32 = 4;

/// A scratch directory with `out/` for outputs and `state/` for the database.
struct Scratch {
    dir: TempDir,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("out")).unwrap();
        Self { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn out(&self, name: &str) -> PathBuf {
        self.path("out").join(name)
    }

    fn state(&self) -> PathBuf {
        self.path("state")
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    fn clip(&self) -> PathBuf {
        testclips::cfr_25(self.dir.path()).unwrap()
    }
}

/// `tessera encode INPUT -o OUTPUT --state-dir STATE EXTRA...`
fn encode_cmd(s: &Scratch, input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut cmd = tessera();
    cmd.arg("encode")
        .arg(input)
        .arg("-o")
        .arg(output)
        .arg("--state-dir")
        .arg(s.state())
        .args(extra);
    cmd
}

/// The same encode with only the programs in `bin` on PATH.
fn encode_with_path(s: &Scratch, input: &Path, output: &Path, bin: &Path) -> Outcome {
    let mut cmd = encode_cmd(s, input, output, &["--plain"]);
    cmd.env("PATH", bin)
        .env_remove("TESSERA_FFMPEG")
        .env_remove("TESSERA_FFPROBE");
    run(&mut cmd)
}

/// Runs the encode and checks everything a refused run must get right.
/// Returns the one error line.
fn refused(
    s: &Scratch,
    input: &Path,
    output: &Path,
    extra: &[&str],
    code: i32,
    names: &[&str],
) -> String {
    refused_by(encode_cmd(s, input, output, extra), output, code, names)
}

/// [`refused`] for the encode `cmd` writing `output`.
fn refused_by(mut cmd: Command, output: &Path, code: i32, names: &[&str]) -> String {
    let dir = output.parent().unwrap();
    let before = listing(dir);
    let existed = exists(output);
    let out = run(&mut cmd);
    out.expect_code(code);
    let lines = out.stderr_lines();
    assert_eq!(
        lines.len(),
        1,
        "stderr must be exactly one line, got:\n{}",
        out.stderr
    );
    let line = lines[0].to_string();
    assert!(line.starts_with("tessera: "), "{line}");
    let lower = line.to_lowercase();
    for n in names {
        assert!(
            lower.contains(&n.to_lowercase()),
            "the message should mention {n:?}: {line}"
        );
    }
    for text in [&out.stdout, &out.stderr] {
        assert!(!text.contains("panicked"), "{text}");
    }
    if !existed {
        assert!(!exists(output), "{} was written", output.display());
    }
    assert_eq!(
        listing(dir),
        before,
        "the output directory changed (a temporary file left behind?)"
    );
    line
}

#[test]
fn a_missing_input_is_named_and_exits_3() {
    let s = Scratch::new();
    let input = s.path("nope.mp4");
    refused(
        &s,
        &input,
        &s.out("o.mp4"),
        &[],
        INPUT,
        &["nope.mp4", "no such file"],
    );
}

#[test]
fn an_empty_input_is_named_and_exits_3() {
    let s = Scratch::new();
    let input = s.write("empty.mp4", b"");
    refused(
        &s,
        &input,
        &s.out("o.mp4"),
        &[],
        INPUT,
        &["empty.mp4", "empty"],
    );
}

#[test]
fn a_text_file_is_not_media_and_exits_3() {
    let s = Scratch::new();
    let input = s.write("notes.txt", b"this is not a video\nat all\n");
    refused(
        &s,
        &input,
        &s.out("o.mp4"),
        &[],
        INPUT,
        &["notes.txt", "not a media file"],
    );
}

#[test]
fn random_bytes_are_not_media_and_exit_3() {
    let s = Scratch::new();
    // Deterministic noise (xorshift), no media signature anywhere.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let bytes: Vec<u8> = (0..64 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    let input = s.write("noise.mp4", &bytes);
    let line = refused(&s, &input, &s.out("o.mp4"), &[], INPUT, &["noise.mp4"]);
    // Garbage named .mp4 is indistinguishable from a damaged mp4 (no moov atom).
    assert!(
        line.contains("not a media file") || line.contains("truncated or damaged"),
        "{line}"
    );
}

#[test]
fn a_truncated_file_is_reported_as_damaged_and_exits_3() {
    let s = Scratch::new();
    let input = testclips::truncated(s.dir.path()).unwrap();
    refused(
        &s,
        &input,
        &s.out("o.mp4"),
        &[],
        INPUT,
        &["truncated.mp4", "truncated"],
    );
}

#[test]
fn an_audio_only_file_is_not_a_video_and_exits_3() {
    let s = Scratch::new();
    let input = testclips::audio_only(s.dir.path()).unwrap();
    refused(
        &s,
        &input,
        &s.out("o.mp4"),
        &[],
        INPUT,
        &["audio.m4a", "no video stream"],
    );
}

#[test]
fn a_missing_output_directory_is_not_created_and_exits_3() {
    let s = Scratch::new();
    let input = s.clip();
    let dir = s.path("absent");
    refused(
        &s,
        &input,
        &dir.join("o.mp4"),
        &[],
        INPUT,
        &["absent", "does not exist"],
    );
    assert!(
        !exists(&dir),
        "tessera created the missing output directory"
    );
}

/// `nobody`'s uid and gid.
fn nobody() -> (u32, u32) {
    let name = std::ffi::CString::new("nobody").unwrap();
    // SAFETY: getpwnam with a valid C string; the record is read at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no user nobody on this machine");
    // SAFETY: non-null, just returned by getpwnam.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

#[test]
fn an_unwritable_output_directory_exits_3_and_leaves_nothing_behind() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let s = Scratch::new();
    let input = s.clip();
    let locked = s.path("locked");
    std::fs::create_dir(&locked).unwrap();
    std::fs::write(locked.join("kept.txt"), b"was here before").unwrap();
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o555)).unwrap();
    let output = locked.join("o.mp4");
    let mut cmd = encode_cmd(&s, &input, &output, &[]);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        // Root writes through mode 555, so the encode runs as `nobody`, to
        // whom the folder is what it is to any user who may not write it.
        let (uid, gid) = nobody();
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(s.dir.path(), open).unwrap();
        std::fs::create_dir(s.state()).unwrap();
        std::os::unix::fs::chown(s.state(), Some(uid), Some(gid)).unwrap();
        cmd.uid(uid).gid(gid).env("HOME", s.state());
        // The premise: nobody may read the input but not write the folder.
        let touch = Command::new("sh")
            .arg("-c")
            .arg("test -r \"$1\" && ! touch \"$2/probe\" 2>/dev/null")
            .arg("sh")
            .arg(&input)
            .arg(&locked)
            .uid(uid)
            .gid(gid)
            .status()
            .unwrap();
        assert!(
            touch.success(),
            "nobody cannot read the input or can write {locked:?}"
        );
    } else if std::fs::write(locked.join("probe"), b"").is_ok() {
        tessera_testkit::env::skip(
            "this user writes through mode 555 (CAP_DAC_OVERRIDE without being root)",
            "run the tests as root (the encode then runs as nobody) or as a plain user",
        );
        return;
    }
    let line = refused_by(
        cmd,
        &output,
        INPUT,
        &["output directory is not usable", "permission denied"],
    );
    assert!(line.contains(&locked.display().to_string()), "{line}");
    assert!(!exists(&tessera_media::temp_output(&output)));
    assert_eq!(listing(&locked), ["kept.txt"], "a file was left behind");
    std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn an_existing_output_is_left_untouched_without_overwrite() {
    let s = Scratch::new();
    let input = s.clip();
    let output = s.out("taken.mp4");
    std::fs::write(&output, b"precious").unwrap();
    let mtime = std::fs::metadata(&output).unwrap().modified().unwrap();
    refused(
        &s,
        &input,
        &output,
        &[],
        INPUT,
        &["taken.mp4", "already exists", "--overwrite"],
    );
    assert_eq!(std::fs::read(&output).unwrap(), b"precious");
    assert_eq!(
        std::fs::metadata(&output).unwrap().modified().unwrap(),
        mtime
    );
}

#[test]
fn ffv1_in_mp4_is_refused_with_the_container_that_fits() {
    let s = Scratch::new();
    let input = s.clip();
    refused(
        &s,
        &input,
        &s.out("x.mp4"),
        &["--codec", "ffv1"],
        INPUT,
        &["unsupported", "ffv1", "mp4", "mkv"],
    );
}

#[test]
fn ffmpeg_missing_from_path_exits_4() {
    let s = Scratch::new();
    let input = s.clip();
    let empty_bin = s.path("bin");
    std::fs::create_dir(&empty_bin).unwrap();
    let output = s.out("o.mp4");
    let out = encode_with_path(&s, &input, &output, &empty_bin);
    out.expect_code(ENVIRONMENT);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].starts_with("tessera: "), "{}", lines[0]);
    assert!(
        lines[0].contains("ffprobe") || lines[0].contains("ffmpeg"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("not installed"), "{}", lines[0]);
    assert!(!out.stderr.contains("panicked"));
    assert!(!exists(&output));
    assert!(listing(&s.path("out")).is_empty());
}

#[test]
fn verify_of_a_missing_file_exits_3() {
    let s = Scratch::new();
    let input = s.clip();
    let out = tessera_run([
        "verify".as_ref(),
        input.as_os_str(),
        s.path("gone.mkv").as_os_str(),
    ]);
    out.expect_code(INPUT);
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    assert!(lines[0].starts_with("tessera: ") && lines[0].contains("gone.mkv"));
}

/// `name` as found on this process's PATH.
fn on_path(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not on PATH"))
}

/// ffprobe alone passes the up-front checks; the chunk ops then fail to
/// start ffmpeg. That is still the environment's fault, not an internal one.
#[test]
fn ffmpeg_missing_with_ffprobe_present_exits_4() {
    let s = Scratch::new();
    let input = s.clip();
    let bin = s.path("bin");
    std::fs::create_dir(&bin).unwrap();
    std::os::unix::fs::symlink(on_path("ffprobe"), bin.join("ffprobe")).unwrap();
    let output = s.out("o.mp4");
    let out = encode_with_path(&s, &input, &output, &bin);
    out.expect_code(ENVIRONMENT);
    let errors: Vec<&str> = out
        .stderr_lines()
        .into_iter()
        .filter(|l| l.contains("tessera: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", out.stderr);
    let line = errors[0];
    assert!(line.starts_with("tessera: "), "{line}");
    assert!(line.contains("ffmpeg is not installed"), "{line}");
    assert!(!out.stderr.contains("panicked"));
    assert!(!exists(&output));
    assert!(listing(&s.path("out")).is_empty());
}

#[test]
fn encoder_settings_the_codec_does_not_take_and_numeric_names_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let clip = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    let out = dir.path().join("out.mp4");
    for (extra, want) in [
        (
            &["--preset=-i /etc/passwd"][..],
            "is not a x264 preset; use one of ultrafast",
        ),
        (
            &["--codec", "svt-av1", "--preset", "14"][..],
            "from 0 (slowest) to 13",
        ),
        (
            &["--crf", "60"][..],
            "crf 60 is out of range for x264; use 0 to 51",
        ),
    ] {
        let mut cmd = tessera();
        cmd.arg("encode")
            .arg(&clip)
            .arg("-o")
            .arg(&out)
            .arg("--state-dir");
        cmd.arg(dir.path().join("state")).args(extra);
        let done = run(&mut cmd);
        done.expect_code(3);
        let lines = done.stderr_lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with("tessera: ") && lines[0].contains(want),
            "{lines:?}"
        );
        assert!(!out.exists());
    }
    // A task may write its own request.json: the op checks it too.
    let workdir = dir.path().join("work");
    std::fs::create_dir_all(&workdir).unwrap();
    let request = serde_json::json!({
        "input": clip, "output": out, "chunk_seconds": 1.0, "slots": 1,
        "settings": {"codec": "vp9", "preset": "--cpu-used 99"},
    });
    std::fs::write(workdir.join("request.json"), request.to_string()).unwrap();
    for op in ["probe", "plan"] {
        let mut cmd = tessera();
        cmd.args(["op", op, "--workdir"]).arg(&workdir);
        let done = run(&mut cmd);
        done.expect_code(3);
        assert!(
            done.stderr.contains("is not a vp9 preset"),
            "{op}: {}",
            done.stderr
        );
    }
    let data = dir.path().join("data");
    let mut admin = tessera();
    admin.args([
        "admin",
        "create-user",
        "ana",
        "--project",
        "+2",
        "--data-dir",
    ]);
    let done = run(admin.arg(&data));
    done.expect_code(3);
    assert!(
        done.stderr
            .contains("project name \"+2\" reads as a number"),
        "{}",
        done.stderr
    );
    assert!(!data.join("tessera.db").exists(), "nothing was created");
}
