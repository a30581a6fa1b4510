//! The harness of the Go-Docker tests (`godocker.rs`): godocker-cli's
//! programs run with a HOME of their own, what they print, their job tables.

use crate::server::Server;
use crate::support::{bootstrap, docker_engine_present, ffmpeg, run, tessera, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The folder holding godlogin, godjob..., if there is one.
pub(crate) fn client_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("TESSERA_GODOCKER_CLI").map(PathBuf::from);
    match dir {
        Some(d) if d.join("godjob").is_file() => Some(d),
        _ => {
            tessera_testkit::env::skip(
                "godocker-cli is not installed (TESSERA_GODOCKER_CLI names no folder with godjob)",
                "run .ci/run (it installs the client under Python 2.7 when there is one, in \
                 $CARGO_TARGET_DIR/godocker-py2-bin), and set TESSERA_GODOCKER_CLI to the folder \
                 it prints",
            );
            None
        }
    }
}

/// One Go-Docker user: the client's folder and a HOME of its own.
pub(crate) struct God {
    bin: PathBuf,
    pub(crate) home: PathBuf,
    /// Whether the client runs under Python 2, which it was written for
    /// (`.ci/run`'s wrappers); under Python 3 it crashes in `godjob show`
    /// and cannot send `--script FILE`.
    pub(crate) python2: bool,
}

impl God {
    pub(crate) fn new(bin: &Path, home: PathBuf) -> Self {
        std::fs::create_dir_all(&home).unwrap();
        let godjob = std::fs::read_to_string(bin.join("godjob")).unwrap_or_default();
        Self {
            bin: bin.to_path_buf(),
            home,
            python2: godjob.contains("python2"),
        }
    }

    /// The second cell of every row of the tables in `printed` whose first
    /// cell is `first`.
    pub(crate) fn rows(&self, printed: &str, first: &str) -> Vec<String> {
        printed
            .lines()
            .map(|l| {
                l.split("\x1b(0x\x1b(B")
                    .map(|c| c.trim().to_string())
                    .collect::<Vec<_>>()
            })
            .filter(|cells| cells.len() > 2 && cells[1] == first)
            .map(|cells| cells[2].clone())
            .collect()
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(self.bin.join(program));
        cmd.args(args)
            .env("HOME", &self.home)
            .env("LC_ALL", "C.UTF-8")
            .current_dir(&self.home);
        cmd
    }

    /// What `program ARGS` printed (stdout and stderr together).
    pub(crate) fn run(&self, program: &str, args: &[&str]) -> String {
        let out: Outcome = run(&mut self.cmd(program, args));
        format!("{}{}", out.stdout, out.stderr)
    }

    /// `godjob create ARGS`: the new job's id, from "... Job id is N".
    pub(crate) fn create(&self, args: &[&str], env: &[(&str, &str)]) -> String {
        let mut cmd = self.cmd("godjob", &[&["create"], args].concat());
        cmd.envs(env.iter().copied());
        let out = run(&mut cmd);
        let text = format!("{}{}", out.stdout, out.stderr);
        let id = text
            .split("Job id is ")
            .nth(1)
            .map(|rest| rest.trim().to_string())
            .unwrap_or_else(|| panic!("godjob create {args:?} printed no id: {text}"));
        assert!(text.contains("Job submitted"), "{text}");
        id
    }

    /// The cells of job `id`'s row in `godjob list over` (or `active`):
    /// id, name, description, user, image, event, status, ...
    pub(crate) fn row(&self, over: bool, id: &str) -> Option<Vec<String>> {
        let listed = self.run("godjob", &["list", if over { "over" } else { "active" }]);
        listed.lines().find_map(|line| {
            // Off a terminal the table's rules are DEC line drawing.
            let cells: Vec<String> = line
                .split("\x1b(0x\x1b(B")
                .map(|c| c.trim().to_string())
                .collect();
            (cells.get(1).map(String::as_str) == Some(id)).then(|| cells[1..].to_vec())
        })
    }

    /// `godjob list over` until job `id` is there; its row, joined.
    /// (Not `godjob show`: under Python 3 it crashes in the client.)
    pub(crate) fn wait_over(&self, id: &str, limit: Duration) -> String {
        let start = Instant::now();
        loop {
            if let Some(row) = self.row(true, id) {
                return row.join(" | ");
            }
            assert!(
                start.elapsed() < limit,
                "job {id} not over in {limit:?}: {}",
                self.run("godjob", &["list", "active"])
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

fn create_user(data: &Path, name: &str) -> String {
    let out = run(tessera()
        .args(["admin", "create-user", name, "--data-dir"])
        .arg(data));
    out.expect_code(0);
    out.stdout.trim().to_string()
}

/// A server with `--docker` and the writable volume `gdshare` (the folder
/// `share`, holding `src.mp4`: 150 frames), admin `ana` logged in with
/// godlogin and owner of project `video` (which mounts gdshare at /data,
/// rw), `bob` in no project and logged in too.
pub(crate) struct Session {
    pub(crate) server: Server,
    pub(crate) share: PathBuf,
    /// The server's data directory (its database: `tessera.db`).
    pub(crate) data: PathBuf,
    pub(crate) image: &'static str,
    pub(crate) ana: God,
    pub(crate) bob: God,
    _dir: tempfile::TempDir,
}

/// The [`Session`], or `None` (the test skips) without the client or docker.
pub(crate) fn session() -> Option<Session> {
    let bin = client_dir()?;
    if !docker_engine_present() {
        return None;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (data, share) = (dir.path().join("data"), dir.path().join("share"));
    std::fs::create_dir_all(&share).unwrap();
    std::fs::set_permissions(&share, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let src = share.join("src.mp4");
    ffmpeg([
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x120:rate=25",
        "-t",
        "6",
        "-c:v",
        "mpeg4",
        src.to_str().unwrap(),
    ]);
    let key = bootstrap(&data);
    let bob_key = create_user(&data, "bob");
    let server = Server::start_with(
        &data,
        &[
            "--docker",
            "--writable-volume",
            &format!("gdshare={}", share.display()),
        ],
    );
    let image = crate::support::local_image();
    let url = server.url.trim_end_matches('/').to_string();

    // A wrong key: refused, and no login is saved.
    let stranger = God::new(&bin, dir.path().join("stranger"));
    let said = stranger.run(
        "godlogin",
        &[
            "-a",
            "tsk_nope_nope",
            "-l",
            "ana",
            "-s",
            &url,
            "--no-certificate",
        ],
    );
    assert!(said.contains("Unauthorized"), "{said}");
    assert!(!stranger.home.join(".godocker_auth").exists());

    let ana = God::new(&bin, dir.path().join("ana"));
    let said = ana.run(
        "godlogin",
        &["-a", &key, "-l", "ana", "-s", &url, "--no-certificate"],
    );
    assert!(ana.home.join(".godocker_auth").exists(), "{said}");
    let said = ana.run(
        "godproject",
        &[
            "volume", "video", "--add", "-n", "gdshare", "-p", "/srv", "-c", "/data", "-m", "rw",
        ],
    );
    assert!(said.contains("project video was updated"), "{said}");
    let said = ana.run("godproject", &["show", "video"]);
    assert!(
        said.contains("gdshare") && said.contains("/data") && said.contains("ana"),
        "{said}"
    );
    assert!(ana.run("godproject", &["list"]).contains("video"));
    assert!(ana.run("goduser", &["show"]).contains("ana"));
    let bob = God::new(&bin, dir.path().join("bob"));
    bob.run(
        "godlogin",
        &["-a", &bob_key, "-l", "bob", "-s", &url, "--no-certificate"],
    );
    Some(Session {
        server,
        share,
        data,
        image,
        ana,
        bob,
        _dir: dir,
    })
}
