//! The real docker CLI against `tessera server --docker --docker-api`:
//! the temporal-scheduling Swarm fork's flow, its mistakes checked one by
//! one, and the refusals the CLI prints.

use crate::server::Server;
use crate::support::{bootstrap, docker_engine_present, local_image, run, Outcome};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// A server with the Docker API on a fixed port (so a restart keeps it),
/// a writable volume `storage`, and a docker CLI config carrying the key.
pub(crate) struct Setup {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) data: PathBuf,
    pub(crate) storage: PathBuf,
    pub(crate) port: u16,
    pub(crate) config: PathBuf,
    pub(crate) image: &'static str,
    pub(crate) key: String,
}

impl Setup {
    pub(crate) fn new() -> Setup {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let data = dir.path().join("data");
        let storage = dir.path().join("storage");
        std::fs::create_dir_all(&storage).unwrap();
        std::fs::set_permissions(&storage, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let key = bootstrap(&data);
        let config = dir.path().join("docker-config");
        write_config(&config, Some(&key));
        let port = free_port();
        Setup {
            dir,
            data,
            storage,
            port,
            config,
            image: local_image(),
            key,
        }
    }

    /// Starts the server and waits for its Docker API to answer.
    pub(crate) fn server(&self) -> Server {
        let api = format!("127.0.0.1:{}", self.port);
        let storage = format!("storage={}", self.storage.display());
        let server = Server::start_with(
            &self.data,
            &[
                "--docker",
                "--docker-api",
                &api,
                "--writable-volume",
                &storage,
            ],
        );
        let start = Instant::now();
        loop {
            if self.docker(&["version"]).code == Some(0) {
                return server;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "docker API silent: {}",
                server.stderr()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub(crate) fn docker_with(&self, config: &Path, args: &[&str]) -> Outcome {
        docker_at(self.port, config, args)
    }

    /// `docker ARGS` against Tessera, with the key.
    pub(crate) fn docker(&self, args: &[&str]) -> Outcome {
        self.docker_with(&self.config, args)
    }

    /// `docker ARGS`, which must succeed: its stdout, trimmed.
    pub(crate) fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        out.expect_code(0);
        out.stdout.trim().to_string()
    }

    /// `docker run -d --name NAME [extra] IMAGE sh -c SCRIPT`.
    pub(crate) fn run_d(&self, name: &str, extra: &[&str], script: &str) -> Outcome {
        let mut args = vec!["run", "-d", "--name", name];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[self.image, "sh", "-c", script]);
        self.docker(&args)
    }

    /// (StartedAt, FinishedAt, ExitCode, Error) of a container.
    pub(crate) fn times(&self, name: &str) -> (String, String, i64, String) {
        let line = self.ok(&[
            "inspect",
            "-f",
            "{{.State.StartedAt}}|{{.State.FinishedAt}}|{{.State.ExitCode}}|{{.State.Error}}",
            name,
        ]);
        let parts: Vec<&str> = line.splitn(4, '|').collect();
        (
            parts[0].to_string(),
            parts[1].to_string(),
            parts[2].parse().unwrap(),
            parts[3].to_string(),
        )
    }
}

/// `docker --config CONFIG -H tcp://127.0.0.1:PORT ARGS`.
fn docker_at(port: u16, config: &Path, args: &[&str]) -> Outcome {
    let mut cmd = Command::new("docker");
    cmd.arg("--config")
        .arg(config)
        .args(["-H", &format!("tcp://127.0.0.1:{port}")])
        .args(args)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT");
    run(&mut cmd)
}

/// A free loopback port.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A docker CLI config dir whose `config.json` sends the key (or none).
pub(crate) fn write_config(dir: &Path, key: Option<&str>) {
    write_headers(dir, key, Some("video"));
}

/// A docker CLI config dir whose `config.json` sends the key and the
/// project header, each when given.
pub(crate) fn write_headers(dir: &Path, key: Option<&str>, project: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    let mut headers = serde_json::Map::new();
    if let Some(k) = key {
        headers.insert("Authorization".into(), format!("Bearer {k}").into());
    }
    if let Some(p) = project {
        headers.insert("X-Tessera-Project".into(), p.into());
    }
    let config = serde_json::json!({ "HttpHeaders": headers });
    std::fs::write(dir.join("config.json"), config.to_string()).unwrap();
}

/// The fork's flow: split; three encodes waiting for split; merge waiting
/// for `encode*`. `docker run -d` succeeds at once for the held ones, `ps`
/// says what they wait for, the server is SIGKILLed mid-flow and
/// restarted, `docker wait merge` gives 0, the times say split < encodes <
/// merge, and nothing leaked `waitfor` into a container.
#[test]
fn the_forks_flow_runs_in_order_across_a_server_kill() {
    if !docker_engine_present() {
        return;
    }
    let s = Setup::new();
    let server = s.server();
    let vol = ["--volume", "storage:/uploads"];
    // split holds until the test says go (after the restart), so the kill
    // falls mid-flow whatever the machine's speed.
    let split = "while [ ! -e /uploads/go ]; do sleep 1; done; echo piece > /uploads/split.txt";
    s.run_d("split", &vol, split).expect_code(0);
    for n in 1..=3 {
        let name = format!("encode{n}");
        let script = format!(
            "env > /uploads/env{n}; cat /uploads/split.txt > /uploads/enc{n}.txt; echo encoded {n}"
        );
        let extra = [
            &vol[..],
            &["-e", "waitfor:container==split", "-e", "LEVEL=3"],
        ]
        .concat();
        s.run_d(&name, &extra, &script).expect_code(0);
    }
    // merge binds the volume's folder by its host path (allowed: inside a volume).
    let bind = format!("{}:/uploads", s.storage.display());
    let extra = ["-v", &bind, "-e", "waitfor:container==encode*"];
    s.run_d(
        "merge",
        &extra,
        "cat /uploads/enc1.txt /uploads/enc2.txt /uploads/enc3.txt > /uploads/merged.txt",
    )
    .expect_code(0);
    let ps = s.ok(&["ps", "--format", "{{.Names}}|{{.Status}}"]);
    let merge_line = ps
        .lines()
        .find(|l| l.starts_with("merge|"))
        .unwrap_or_default();
    assert!(merge_line.contains("Waiting"), "{ps}");
    assert!(
        merge_line.contains("encode1"),
        "merge names what it waits for: {ps}"
    );

    // SIGKILL mid-flow (split still holding), then the same server again.
    // SAFETY: kill(2) of our own child.
    unsafe { libc::kill(server.pid() as i32, libc::SIGKILL) };
    drop(server);
    let server = s.server();
    std::fs::write(s.storage.join("go"), b"").unwrap();
    let waited = s.docker(&["wait", "merge"]);
    assert_eq!(waited.stdout.trim(), "0", "{waited:?}\n{}", server.stderr());

    let (_, split_end, split_code, _) = s.times("split");
    assert_eq!(split_code, 0);
    let mut last_encode_end = String::new();
    for n in 1..=3 {
        let (start, end, code, _) = s.times(&format!("encode{n}"));
        assert_eq!(code, 0);
        assert!(
            start >= split_end,
            "encode{n} started {start} before split ended {split_end}"
        );
        last_encode_end = last_encode_end.max(end);
        let env = std::fs::read_to_string(s.storage.join(format!("env{n}"))).unwrap();
        assert!(
            !env.contains("waitfor"),
            "waitfor leaked into the container: {env}"
        );
        assert!(env.contains("LEVEL=3"), "{env}");
    }
    let (merge_start, _, _, _) = s.times("merge");
    assert!(
        merge_start >= last_encode_end,
        "merge {merge_start} before {last_encode_end}"
    );
    let merged = std::fs::read_to_string(s.storage.join("merged.txt")).unwrap();
    assert_eq!(merged, "piece\npiece\npiece\n");
    assert_eq!(s.ok(&["logs", "encode2"]), "encoded 2");
    let all = s.ok(&["ps", "-a", "--format", "{{.Names}} {{.Status}}"]);
    assert!(all.contains("merge Exited (0)"), "{all}");
    assert!(s.ok(&["ps", "--format", "{{.Names}}"]).is_empty());
    drop(s.dir);
}

/// A waiter on a failed container never runs and ends 125 naming it; an
/// attached run streams both outputs and returns the exit code; logs -f,
/// kill, stop, rm, info; and the refusals the CLI prints: no key (401), a bind mount
/// outside the volumes, --privileged, a waitfor matching nothing, a pull
/// with no registry.
#[test]
fn failures_refusals_and_attached_runs_read_as_docker_users_expect() {
    if !docker_engine_present() {
        return;
    }
    let s = Setup::new();
    let _server = s.server();
    let vol = ["--volume", "storage:/uploads"];
    s.run_d("bad", &[], "sleep 1; exit 3").expect_code(0);
    let after = [&vol[..], &["-e", "waitfor:container==/^ba.$/"]].concat();
    s.run_d("after-bad", &after, "touch /uploads/ran")
        .expect_code(0);
    assert_eq!(s.ok(&["wait", "bad"]), "3");
    assert_eq!(s.ok(&["wait", "after-bad"]), "125");
    let (started, _, code, error) = s.times("after-bad");
    assert_eq!((started.as_str(), code), ("0001-01-01T00:00:00Z", 125));
    assert!(
        error.contains("bad") && error.contains("never started"),
        "{error}"
    );
    assert!(!s.storage.join("ran").exists(), "the waiter ran");

    let attached = s.docker(&[
        "run",
        "--name",
        "hello",
        s.image,
        "sh",
        "-c",
        "echo out; echo err >&2; exit 4",
    ]);
    assert_eq!(attached.code, Some(4), "{attached:?}");
    assert_eq!(attached.stdout, "out\n");
    assert!(attached.stderr.contains("err"), "{attached:?}");

    s.run_d("talker", &[], "echo a; sleep 1; echo b >&2; echo c")
        .expect_code(0);
    let followed = s.docker(&["logs", "-f", "talker"]);
    assert_eq!(
        (followed.stdout.as_str(), followed.stderr.as_str()),
        ("a\nc\n", "b\n")
    );
    // A waiting container goes without -f (it is only created); its
    // waiter is then skipped: what it waited for will never succeed.
    s.run_d("blocker", &[], "sleep 60").expect_code(0);
    s.run_d("held", &["-e", "waitfor:container==blocker"], "true")
        .expect_code(0);
    s.run_d("held-too", &["-e", "waitfor:container==held"], "true")
        .expect_code(0);
    s.ok(&["rm", "held"]);
    assert_eq!(s.ok(&["wait", "held-too"]), "125");
    let start = Instant::now();
    while s.ok(&["inspect", "-f", "{{.State.Running}}", "blocker"]) != "true" {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "blocker never ran"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let running = s.docker(&["rm", "blocker"]);
    assert!(
        running
            .stderr
            .contains("You cannot remove a running container"),
        "{running:?}"
    );
    s.ok(&["rm", "-f", "blocker"]);
    for (name, how) in [("sleeper", "kill"), ("sleeper2", "stop")] {
        s.run_d(name, &[], "sleep 60").expect_code(0);
        s.ok(&[how, name]);
        assert_eq!(s.ok(&["wait", name]), "137", "{how}");
    }
    let exited = s.ok(&[
        "ps",
        "-f",
        "status=exited",
        "-f",
        "name=bad",
        "--format",
        "{{.Names}}",
    ]);
    assert_eq!(exited, "after-bad\nbad");
    s.ok(&["rm", "bad"]);
    let listed = s.ok(&["ps", "-a", "--format", "{{.Names}}"]);
    assert!(
        !listed.lines().any(|l| l == "bad") && listed.lines().any(|l| l == "after-bad"),
        "{listed}"
    );

    let info = s.ok(&["info"]);
    assert!(
        info.contains("Is Manager: true") && info.contains("Nodes: 1"),
        "{info}"
    );

    let refused = |args: &[&str], words: &str| {
        let out = s.docker(args);
        assert_ne!(out.code, Some(0), "{out:?}");
        assert!(out.stderr.contains(words), "{words:?} not in {out:?}");
    };
    refused(
        &["run", "-d", "-v", "/etc:/host", s.image, "true"],
        "bind mount /etc is refused: it is not inside a volume",
    );
    refused(
        &["run", "-d", "--privileged", s.image, "true"],
        "--privileged is refused",
    );
    refused(
        &[
            "run",
            "-d",
            "-e",
            "waitfor:container==nothing*",
            s.image,
            "true",
        ],
        "waitfor:container==nothing* matches no container",
    );
    refused(&["pull", "tessera-no-such/image:1"], "could not pull");
    // `--rm`: gone from `ps -a` once it ended; its name free again.
    let rm = s.docker(&[
        "run", "--rm", "--name", "brief", s.image, "sh", "-c", "echo bye",
    ]);
    assert_eq!((rm.code, rm.stdout.as_str()), (Some(0), "bye\n"), "{rm:?}");
    assert!(!s
        .ok(&["ps", "-a", "--format", "{{.Names}}"])
        .contains("brief"));
    s.run_d("brief", &[], "true").expect_code(0);
    assert_eq!(s.ok(&["wait", "brief"]), "0", "the name is free again");
    // Without the project header: the caller's only project.
    let own = s.dir.path().join("own-config");
    write_headers(&own, Some(&s.key), None);
    let mine = s.docker_with(&own, &["ps", "-a", "--format", "{{.Names}}"]);
    assert!(mine.stdout.contains("after-bad"), "{mine:?}");
    let elsewhere = s.dir.path().join("elsewhere-config");
    write_headers(&elsewhere, Some(&s.key), Some("elsewhere"));
    let out = s.docker_with(&elsewhere, &["ps"]);
    assert!(out.stderr.contains("elsewhere"), "{out:?}");
    assert_ne!(out.code, Some(0));
    let bare = s.dir.path().join("bare-config");
    write_config(&bare, None);
    let out = s.docker_with(&bare, &["ps"]);
    assert_ne!(out.code, Some(0));
    assert!(out.stderr.contains("no Tessera API key"), "{out:?}");
}

/// Without an engine of its own (`--slots 0`, workers only), containers
/// run on the workers that offer docker; `-e constraint:zone==eu` places
/// one on the worker labelled so, `!=` and container affinities (hard and
/// soft) are placement rules, and `docker info` counts those workers.
#[test]
fn constraints_place_containers_on_labelled_docker_workers() {
    if !docker_engine_present() {
        return;
    }
    let image = local_image();
    let port = free_port();
    let api = format!("127.0.0.1:{port}");
    let c = crate::workers::Cluster::start_with(2000, &["--slots", "0", "--docker-api", &api]);
    let config = c.data.with_file_name("docker-config");
    write_config(&config, Some(&c.key));
    let _eu = c.worker_with(
        "eu",
        1,
        &["--grace", "0", "--docker", "--labels", "zone=eu"],
    );
    let _us = c.worker_with(
        "us",
        1,
        &["--grace", "0", "--docker", "--labels", "zone=us"],
    );
    let start = Instant::now();
    let info = loop {
        let info = docker_at(port, &config, &["info"]);
        if info.stdout.contains("Nodes: 2") {
            break info.stdout;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{info:?}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(info.contains("Is Manager: true"), "{info}");
    for name in ["one", "two", "three"] {
        let args = [
            "run",
            "-d",
            "--name",
            name,
            "-e",
            "constraint:zone==eu",
            image,
            "sh",
            "-c",
            "echo $TESSERA_NODE",
        ];
        docker_at(port, &config, &args).expect_code(0);
    }
    for name in ["one", "two", "three"] {
        let waited = docker_at(port, &config, &["wait", name]);
        assert_eq!(waited.stdout.trim(), "0", "{waited:?}");
        let logs = docker_at(port, &config, &["logs", name]);
        assert_eq!(
            logs.stdout, "eu\n",
            "{name} ran on the worker labelled zone=eu"
        );
    }
    // `!=` and affinities are placement rules: where each one ran.
    let placed = [
        ("elsewhere", "constraint:zone!=eu", "us"),
        ("beside", "affinity:container==one", "eu"),
        ("apart", "affinity:container!=one", "us"),
        ("soft", "constraint:zone==~mars", ""),
        ("soft2", "affinity:container==~no-such-container", ""),
    ];
    for (name, rule, _) in placed {
        let args = [
            "run",
            "-d",
            "--name",
            name,
            "-e",
            rule,
            image,
            "sh",
            "-c",
            "echo $TESSERA_NODE",
        ];
        docker_at(port, &config, &args).expect_code(0);
    }
    for (name, rule, node) in placed {
        let waited = docker_at(port, &config, &["wait", name]);
        assert_eq!(waited.stdout.trim(), "0", "{name}: {waited:?}");
        let logs = docker_at(port, &config, &["logs", name]).stdout;
        if node.is_empty() {
            // A soft rule no node keeps holds nothing back.
            assert!(
                logs == "eu\n" || logs == "us\n",
                "{name} ({rule}): {logs:?}"
            );
        } else {
            assert_eq!(logs, format!("{node}\n"), "{name} ({rule})");
        }
    }
    // Hard rules no node keeps together (not eu, yet beside `one`, which
    // ran on eu): created, never placed, and reported with the rules in
    // words, by `GET /nodes` and by `docker ps`. (The docker CLI keeps
    // one `-e` per name before the `=`: two `constraint:zone!=...` entries
    // would be one.)
    let args = [
        "run",
        "-d",
        "--name",
        "nowhere",
        "-e",
        "constraint:zone!=eu",
        "-e",
        "affinity:container==one",
        image,
        "true",
    ];
    docker_at(port, &config, &args).expect_code(0);
    let (u, _) = c.wait_unplaceable();
    let reason = u["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("a node without zone=eu; the node job ") && reason.contains(" ran on"),
        "{u}"
    );
    let ps = docker_at(port, &config, &["ps", "--filter", "name=nowhere"]);
    // Handed to placement, taken by no node: `docker ps` says why.
    assert!(
        ps.stdout
            .contains("Waiting for a node: its placement rules (a node without zone=eu;"),
        "{ps:?}"
    );
    docker_at(port, &config, &["rm", "-f", "nowhere"]).expect_code(0);
    // An affinity to no container is refused: there is no node to join.
    let args = [
        "run",
        "-d",
        "-e",
        "affinity:container==ghost",
        image,
        "true",
    ];
    let refused = docker_at(port, &config, &args);
    assert!(refused.stderr.contains("no node to join"), "{refused:?}");
}

/// With `--docker` and workers, `docker info` counts every node: this
/// machine and each worker, as a Swarm manager counts its nodes.
#[test]
fn info_counts_the_server_and_its_workers_with_docker() {
    if !docker_engine_present() {
        return;
    }
    let port = free_port();
    let api = format!("127.0.0.1:{port}");
    let c =
        crate::workers::Cluster::start_with(2000, &["--workers", "--docker", "--docker-api", &api]);
    let config = c.data.with_file_name("docker-config");
    write_config(&config, Some(&c.key));
    let _w = c.worker_with("w1", 1, &["--grace", "0"]);
    let start = Instant::now();
    loop {
        let info = docker_at(port, &config, &["info"]);
        if info.stdout.contains("Nodes: 2") {
            assert!(info.stdout.contains("w1"), "{info:?}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{info:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
