//! What the client commands print for a person: empty lists that say what
//! to do, times and durations in `jobs` and `job show`, a user in no
//! project told how to get one, `submit --dry-run` without a server, URLs
//! without a scheme, help that lists a command's own flags, and a server
//! behind TLS (a real TLS proxy in front of a real server).

use crate::server::Server;
use crate::support::{client_of, run, tessera, Outcome};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn as_client(server: &Server, key: &str, args: &[&str]) -> Outcome {
    run(&mut client_of(&server.url, key, args))
}

/// A user of no project, with its key.
fn loner(data: &Path, name: &str) -> String {
    let mut boot = tessera();
    boot.args(["admin", "create-user", name, "--data-dir"])
        .arg(data);
    let out = run(&mut boot);
    out.expect_code(0);
    out.stdout.trim().to_string()
}

#[test]
fn lists_say_what_to_do_when_empty_and_jobs_show_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = loner(&data, "newcomer");
    let server = Server::start(&data);

    let jobs = as_client(&server, &key, &["jobs"]);
    jobs.expect_code(3);
    assert!(
        jobs.stderr
            .contains("you are in no project yet: create one with `tessera project create NAME`"),
        "{}",
        jobs.stderr
    );
    let listed = as_client(&server, &key, &["project", "list"]);
    listed.expect_code(0);
    assert!(
        listed.stdout.starts_with("you are in no project yet"),
        "{}",
        listed.stdout
    );

    as_client(&server, &key, &["project", "create", "clips"]).expect_code(0);
    let none = as_client(&server, &key, &["jobs"]);
    none.expect_code(0);
    assert!(
        none.stdout
            .starts_with("no jobs in this project yet: submit one with"),
        "{}",
        none.stdout
    );

    let spec = dir.path().join("two.yaml");
    std::fs::write(
        &spec,
        "name: two\ntasks:\n  - {name: a, action: {kind: command, argv: [sh, -c, 'echo out; sleep 0.3']}}\n  - {name: b, action: {kind: noop}, deps: [{selector: a}]}\n",
    )
    .unwrap();
    as_client(&server, &key, &["submit", spec.to_str().unwrap()]).expect_code(0);
    let shown = wait_for(&server, &key, "the job to end", |s| {
        s.contains("— succeeded")
    });
    // The header says when it was made and how long it took; each attempt
    // when it started (from the job's creation) and how long it ran.
    let header = shown.lines().next().unwrap();
    assert!(
        header.contains("created ") && header.contains(", took "),
        "{shown}"
    );
    let attempts: Vec<&str> = shown.lines().skip_while(|l| !l.contains("START")).collect();
    assert!(attempts[0].contains("TOOK"), "{shown}");
    let a = attempts
        .iter()
        .find(|l| l.split_whitespace().next() == Some("0"))
        .unwrap_or_else(|| panic!("no attempt of task 0:\n{shown}"));
    let took: f64 = a
        .split_whitespace()
        .nth(4)
        .unwrap()
        .trim_end_matches('s')
        .parse()
        .unwrap();
    assert!(took >= 0.3, "task a slept 0.3 s, shown as {took}:\n{shown}");

    let listed = as_client(&server, &key, &["jobs"]);
    listed.expect_code(0);
    let head = listed.stdout.lines().next().unwrap();
    assert!(
        head.contains("CREATED") && head.contains("TOOK"),
        "{}",
        listed.stdout
    );
    let row = listed.stdout.lines().nth(1).unwrap();
    assert!(
        row.contains("succeeded")
            && (row.contains("just now") || row.contains(" ago"))
            && row.ends_with(" two"),
        "{}",
        listed.stdout
    );

    // An empty stderr prints nothing at all (never `null`).
    let err = as_client(&server, &key, &["job", "logs", "1", "a", "--stderr"]);
    err.expect_code(0);
    assert_eq!(err.stdout, "", "stderr of a task that wrote none");
    let out = as_client(&server, &key, &["job", "logs", "1", "a"]);
    assert_eq!(out.stdout, "out\n");
}

/// Polls `tessera job show 1` until `pred` holds (at most 30 s).
fn wait_for(server: &Server, key: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let start = Instant::now();
    loop {
        let out = as_client(server, key, &["job", "show", "1"]);
        if out.code == Some(0) && pred(&out.stdout) {
            return out.stdout;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}:\n{}{}",
            out.stdout,
            out.stderr
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn submit_dry_run_checks_a_spec_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let offline = |file: &Path| {
        let mut cmd = tessera();
        cmd.env_remove("TESSERA_SERVER")
            .env_remove("TESSERA_KEY")
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .args(["submit", "--dry-run"])
            .arg(file);
        run(&mut cmd)
    };
    let good = dir.path().join("good.yaml");
    std::fs::write(
        &good,
        "name: ladder\ntasks:\n  - {name: probe, action: {kind: noop}}\n  - name: enc\n    array: {count: 3}\n    action: {kind: noop}\n    deps: [{selector: probe}]\n  - {name: merge, action: {kind: noop}, deps: [{selector: enc}]}\n",
    )
    .unwrap();
    let out = offline(&good);
    out.expect_code(0);
    assert!(
        out.stdout
            .contains("a valid job \"ladder\" of 5 tasks (3 as written, 1 of them arrays)"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  enc-2  after probe"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("  merge  after enc-*"),
        "{}",
        out.stdout
    );

    let ring = dir.path().join("ring.yaml");
    std::fs::write(
        &ring,
        "name: ring\ntasks:\n  - {name: a, action: {kind: noop}, deps: [{selector: c}]}\n  - {name: b, action: {kind: noop}, deps: [{selector: a}]}\n  - {name: c, action: {kind: noop}, deps: [{selector: b}]}\n",
    )
    .unwrap();
    let out = offline(&ring);
    out.expect_code(3);
    assert!(
        out.stderr.contains("the dependencies form a cycle: ")
            && ["\"a\"", "\"b\"", "\"c\""]
                .iter()
                .all(|n| out.stderr.contains(n)),
        "the whole cycle is named: {}",
        out.stderr
    );

    let broken = dir.path().join("broken.yaml");
    std::fs::write(
        &broken,
        "name: x\ntasks:\n  - {name: a, action: {kind: teleport}}\n",
    )
    .unwrap();
    let out = offline(&broken);
    out.expect_code(3);
    assert!(
        out.stderr.contains("does not parse") && out.stderr.contains("line 3"),
        "{}",
        out.stderr
    );
}

#[test]
fn urls_without_a_scheme_and_help_texts_read_well() {
    let mut login = tessera();
    login.env("XDG_CONFIG_HOME", "/nonexistent").args([
        "login",
        "--server",
        "127.0.0.1:6543",
        "--key",
        "tsk_x_y",
    ]);
    let out = run(&mut login);
    out.expect_code(3);
    assert_eq!(
        out.stderr.trim(),
        "tessera: server URL \"127.0.0.1:6543\" has no scheme; write http://127.0.0.1:6543 (or \
         https://127.0.0.1:6543 for a server behind TLS)"
    );
    let out = run(client_of("ftp://box", "tsk_x_y", &["jobs"]).env("XDG_CONFIG_HOME", "/x"));
    out.expect_code(3);
    assert!(
        out.stderr.contains("http:// and https:// only"),
        "{}",
        out.stderr
    );

    // `admin create-user` lists its own flags, not every server flag.
    let mut help = tessera();
    help.args(["admin", "create-user", "--help"]);
    let out = run(&mut help);
    out.expect_code(0);
    assert!(out.stdout.contains("--data-dir"), "{}", out.stdout);
    for server_only in ["--slots", "--listen", "--task-uids", "--docker"] {
        assert!(
            !out.stdout.contains(server_only),
            "{server_only} in:\n{}",
            out.stdout
        );
    }
    // Every argument of `job logs` is described.
    let mut help = tessera();
    help.args(["job", "logs", "--help"]);
    let out = run(&mut help);
    out.expect_code(0);
    for line in out
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('<'))
    {
        assert!(line.split_whitespace().count() > 1, "undescribed: {line}");
    }
}

/// A TLS proxy (Python's ssl module) in front of `target`, with a
/// certificate of its own; stops when dropped.
struct TlsProxy {
    child: Child,
    url: String,
    /// The CA that signed its certificate (PEM).
    ca: std::path::PathBuf,
}

impl TlsProxy {
    fn start(dir: &Path, target: &str) -> Self {
        // A CA of the test's own, and the proxy's certificate signed by it.
        let (ca, cert, key) = (
            dir.join("ca.pem"),
            dir.join("cert.pem"),
            dir.join("key.pem"),
        );
        std::fs::write(
            dir.join("leaf.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\n",
        )
        .unwrap();
        let openssl = |args: &[&str]| {
            let made = Command::new("openssl")
                .args(args)
                .current_dir(dir)
                .stderr(Stdio::null())
                .status()
                .expect("openssl");
            assert!(made.success(), "openssl {args:?} failed");
        };
        openssl(
            &[
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            ]
            .into_iter()
            .chain([
                "-subj",
                "/CN=tessera test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
            ])
            .collect::<Vec<_>>(),
        );
        openssl(
            &[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
            ]
            .into_iter()
            .chain(["-keyout", "key.pem", "-out", "leaf.csr"])
            .collect::<Vec<_>>(),
        );
        openssl(
            &[
                "x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            ]
            .into_iter()
            .chain([
                "-CAcreateserial",
                "-days",
                "1",
                "-out",
                "cert.pem",
                "-extfile",
                "leaf.ext",
            ])
            .collect::<Vec<_>>(),
        );
        let port = target.rsplit(':').next().unwrap();
        let mut child = Command::new("python3")
            .args(["-c", PROXY])
            .arg(&cert)
            .arg(&key)
            .arg(port)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = format!("https://127.0.0.1:{}", line.trim());
        Self { child, url, ca }
    }
}

impl Drop for TlsProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const PROXY: &str = r#"
import socket, ssl, sys, threading
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
ls = socket.socket()
ls.bind(("127.0.0.1", 0))
ls.listen(16)
print(ls.getsockname()[1], flush=True)
def pipe(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except OSError:
        pass
    for s in (a, b):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
def serve(c):
    c.settimeout(30)
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except (ssl.SSLError, OSError):
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", int(sys.argv[3])))
    threading.Thread(target=pipe, args=(t, u), daemon=True).start()
    pipe(u, t)
for _ in range(200):
    c, _ = ls.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"#;

#[test]
fn the_client_talks_to_a_server_behind_tls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = crate::support::bootstrap(&data);
    let server = Server::start(&data);
    let proxy = TlsProxy::start(dir.path(), &server.url);
    let config = dir.path().join("config");
    let login = |trust: bool| {
        let mut cmd = tessera();
        cmd.env("XDG_CONFIG_HOME", &config)
            .env_remove("TESSERA_SERVER")
            .args(["login", "--server", &proxy.url, "--key", &key]);
        if trust {
            cmd.env("SSL_CERT_FILE", &proxy.ca);
        } else {
            cmd.env("SSL_CERT_FILE", "/nonexistent.pem");
        }
        run(&mut cmd)
    };
    // A certificate this machine does not trust: refused, saying what to do.
    let out = login(false);
    out.expect_code(4);
    assert!(
        out.stderr.contains("certificate") && out.stderr.contains("SSL_CERT_FILE"),
        "{}",
        out.stderr
    );
    let out = login(true);
    out.expect_code(0);
    assert_eq!(
        out.stdout.trim(),
        format!("logged in to {} as ana", proxy.url)
    );
    let mut jobs = tessera();
    jobs.env("XDG_CONFIG_HOME", &config)
        .env("SSL_CERT_FILE", &proxy.ca)
        .env_remove("TESSERA_SERVER")
        .env_remove("TESSERA_KEY")
        .arg("jobs");
    let out = run(&mut jobs);
    out.expect_code(0);
    assert!(
        out.stdout.starts_with("no jobs in this project yet"),
        "{}",
        out.stdout
    );
}
