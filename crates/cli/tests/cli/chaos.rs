//! Chaos on this machine's Docker engine: the server and three workers as
//! containers on a private network, sharing the data directory (a host
//! folder bind-mounted at the same path in each), encoding a real 720p clip
//! losslessly (ffv1) in 2 s chunks. A worker SIGKILLed mid-chunk, a worker
//! cut off the network for longer than its lease, and the server SIGKILLed
//! and started again: each time the job succeeds, the download matches the
//! source frame for frame, and every chunk succeeded exactly once.
//!
//! The full-disk scenario is in `chaos_disk.rs`: the same cluster with
//! `--data http` workers (nothing of the host mounted), one of them on a
//! small tmpfs that is filled mid-chunk.
//!
//! The random rounds (`random_worker_kills_at_random_moments_...`) draw
//! each round's victim and moment from a seed they print first (`chaos
//! seed N`, also in a failure's message). `TESSERA_CHAOS_SEED=N` replays
//! those choices (the machine's own timing still varies);
//! `TESSERA_CHAOS_ROUNDS` sets the number of rounds (1, or 3 under CI).

use crate::support::{
    argv, bootstrap, docker, docker_engine_present, docker_logs, docker_remove, docker_user,
    local_image, published_url, run, tessera, tessera_run,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Every cluster's lease; a lost worker is noticed within about this.
const LEASE_MS: u32 = 2000;

/// The server and three workers (`w1`..`w3`, one slot each) in containers;
/// dropping it removes the containers and the network.
pub(crate) struct Cluster {
    pub dir: tempfile::TempDir,
    prefix: String,
    net: String,
    pub data: PathBuf,
    url: String,
    key: String,
}

/// How a worker of a [`Cluster`] gets its files.
pub(crate) enum Data {
    /// The host folder with the data directory, bind-mounted.
    Shared,
    /// `--data http` with these extra `docker run` options and worker
    /// arguments; nothing of the host is mounted.
    Http {
        opts: Vec<String>,
        args: Vec<String>,
    },
}

impl Cluster {
    fn start() -> Self {
        Self::start_with(&|_, _| Data::Shared)
    }

    /// A cluster whose worker `wN` gets its files as `how(wN, the data
    /// directory)` says.
    pub fn start_with(how: &dyn Fn(&str, &Path) -> Data) -> Self {
        static RUN: AtomicU32 = AtomicU32::new(0);
        let prefix = format!(
            "tessera-chaos-{}-{}",
            std::process::id(),
            RUN.fetch_add(1, Ordering::Relaxed)
        );
        let dir = tempfile::tempdir().unwrap();
        {
            use std::os::unix::fs::PermissionsExt;
            let open = std::fs::Permissions::from_mode(0o755);
            std::fs::set_permissions(dir.path(), open).unwrap();
        }
        let data = dir.path().join("data");
        let key = bootstrap(&data);
        let mut make = tessera();
        make.args(["admin", "create-worker-token", "rack", "--data-dir"])
            .arg(&data);
        let token = run(&mut make).expect_code(0).stdout.trim().to_string();
        let net = format!("{prefix}-net");
        docker(&["network", "create", &net]);
        let mut c = Self {
            dir,
            prefix,
            net,
            data,
            url: String::new(),
            key,
        };
        let d = c.data.to_str().unwrap().to_string();
        let lease = LEASE_MS.to_string();
        c.run_container(
            "server",
            true,
            &["-p", "127.0.0.1::6543"],
            &["server", "--listen", "0.0.0.0:6543", "--data-dir", &d],
            &["--slots", "0", "--lease-ms", &lease],
        );
        c.find_url();
        let server = format!("http://{}-server:6543", c.prefix);
        for n in 1..=3 {
            let name = format!("w{n}");
            let mut more = vec!["--name", &name, "--slots", "1", "--grace", "0"];
            more.extend(["--data-dir", &d]);
            let spec = how(&name, &c.data);
            let opts: Vec<&str> = match &spec {
                Data::Shared => Vec::new(),
                Data::Http { opts, args } => {
                    more.extend(["--data", "http"]);
                    more.extend(args.iter().map(String::as_str));
                    opts.iter().map(String::as_str).collect()
                }
            };
            let shared = matches!(spec, Data::Shared);
            let run = ["worker", "--server", &server, "--token", &token];
            c.run_container(&name, shared, &opts, &run, &more);
        }
        c.wait_ready(&["w1", "w2", "w3"]);
        c
    }

    pub fn container(&self, name: &str) -> String {
        format!("{}-{name}", self.prefix)
    }

    /// The server's and the workers' container names.
    fn containers(&self) -> Vec<String> {
        ["server", "w1", "w2", "w3"]
            .map(|n| self.container(n))
            .into()
    }

    /// `docker run -d` of `tessera ARGS MORE` on the network; when
    /// `shared`, as this user with the temporary folder at the same path.
    fn run_container(&self, name: &str, shared: bool, opts: &[&str], args: &[&str], more: &[&str]) {
        let user = docker_user();
        let root = self.dir.path().to_str().unwrap();
        let mount = format!("{root}:{root}");
        let container = self.container(name);
        let mut all = vec!["run", "-d", "--name", &container, "--network", &self.net];
        if shared {
            all.extend(["--user", &user, "-v", &mount]);
        }
        all.extend(opts);
        all.extend([local_image(), "tessera"]);
        all.extend(args);
        all.extend(more);
        docker(&all);
    }

    /// Reads the server's published port and waits (bounded) until it answers.
    fn find_url(&mut self) {
        let start = Instant::now();
        loop {
            if let Some(url) = published_url(&self.container("server")) {
                self.url = url;
                if ureq::get(&format!("{}/api/v1/nodes", self.url))
                    .set("Authorization", &format!("Bearer {}", self.key))
                    .timeout(Duration::from_secs(2))
                    .call()
                    .is_ok()
                {
                    return;
                }
            }
            self.check(start, 30, "the server did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fails with every container's log once `limit` seconds passed since `start`.
    pub fn check(&self, start: Instant, limit: u64, what: &str) {
        if start.elapsed() > Duration::from_secs(limit) {
            self.fail(&format!("{what} within {limit} s"));
        }
    }

    pub fn fail(&self, what: &str) -> ! {
        let logs = docker_logs(self.containers().iter().map(String::as_str), "40");
        panic!("{what}\n{logs}");
    }

    pub fn get(&self, path: &str) -> Value {
        let r = ureq::get(&format!("{}/api/v1{path}", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .timeout(Duration::from_secs(10))
            .call();
        match r {
            Ok(r) => r.into_json().unwrap_or(Value::Null),
            Err(e) => self.fail(&format!("GET {path}: {e}")),
        }
    }

    pub fn nodes(&self) -> Vec<Value> {
        self.get("/nodes")["nodes"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Waits (bounded) until a ready worker has each of `names`; their ids.
    pub fn wait_ready(&self, names: &[&str]) -> BTreeMap<String, String> {
        let start = Instant::now();
        loop {
            let ready: BTreeMap<String, String> = self
                .nodes()
                .iter()
                .filter(|n| n["state"] == "ready")
                .map(|n| (s(&n["name"]), s(&n["id"])))
                .collect();
            if names.iter().all(|n| ready.contains_key(*n)) {
                return ready;
            }
            self.check(start, 30, &format!("{names:?} not all ready: {ready:?}"));
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Uploads the clip and starts its lossless encode in 2 s chunks; the job.
    pub fn encode(&self, clip: &Path) -> i64 {
        let up: Value = ureq::post(&format!("{}/api/v1/projects/video/uploads", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .query("name", "clip.mp4")
            .send_bytes(&std::fs::read(clip).unwrap())
            .unwrap_or_else(|e| self.fail(&format!("upload: {e}")))
            .into_json()
            .unwrap();
        let body = json!({"upload": up["upload"], "codec": "ffv1", "container": "mkv", "chunk_seconds": 2.0});
        let job: Value = ureq::post(&format!("{}/api/v1/projects/video/encodes", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .send_json(body)
            .unwrap_or_else(|e| self.fail(&format!("encode: {e}")))
            .into_json()
            .unwrap();
        job["id"].as_i64().unwrap()
    }

    /// Waits (bounded) until a chunk attempt of `job` starts on a worker and
    /// was not running at the previous look (so most of it is still to
    /// run); the worker's name and the attempt as `(index, attempt)`.
    fn fresh_chunk(&self, job: i64) -> (String, (u64, u64)) {
        let start = Instant::now();
        let mut seen: Option<Vec<(u64, u64)>> = None;
        loop {
            let chunks = self.chunk_indexes(job);
            let mut now = Vec::new();
            for n in self.nodes() {
                for r in n["running"].as_array().into_iter().flatten() {
                    let at = (r["index"].as_u64().unwrap(), r["attempt"].as_u64().unwrap());
                    if r["job"] == job && chunks.contains(&at.0) {
                        now.push((s(&n["name"]), at));
                    }
                }
            }
            // The first look only records what already runs.
            if let Some(before) = &seen {
                if let Some(fresh) = now.iter().find(|(_, at)| !before.contains(at)) {
                    return fresh.clone();
                }
            }
            seen.get_or_insert_with(Vec::new)
                .extend(now.into_iter().map(|(_, at)| at));
            self.check(start, 30, "no chunk attempt started");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The indexes of the job's `encode-chunk-*` tasks (none before the plan).
    pub fn chunk_indexes(&self, job: i64) -> Vec<u64> {
        let tasks = self.get(&format!("/jobs/{job}/tasks"));
        tasks
            .as_array()
            .into_iter()
            .flatten()
            .filter(|t| s(&t["name"]).starts_with("encode-chunk-"))
            .filter_map(|t| t["index"].as_u64())
            .collect()
    }

    /// Waits (bounded) for the job to succeed.
    pub fn wait_succeeded(&self, job: i64) {
        let start = Instant::now();
        loop {
            let v = self.get(&format!("/jobs/{job}"));
            match v["state"].as_str().unwrap_or("") {
                "succeeded" => return,
                "failed" | "cancelled" => self.fail(&format!("the encode ended badly: {v}")),
                _ => {}
            }
            self.check(start, 120, &format!("job {job} did not succeed: {v}"));
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    pub fn attempts(&self, job: i64) -> Vec<Value> {
        let v = self.get(&format!("/jobs/{job}/attempts"));
        v.as_array().cloned().unwrap_or_default()
    }

    /// The job's attempt `(index, attempt)`.
    pub fn attempt(&self, job: i64, at: (u64, u64)) -> Value {
        self.attempts(job)
            .into_iter()
            .find(|a| a["task"] == at.0 && a["attempt"] == at.1)
            .unwrap_or_else(|| self.fail(&format!("no attempt {at:?} of job {job}")))
    }

    /// The job's output matches `clip` frame for frame, and every chunk
    /// task has exactly one succeeded attempt.
    pub fn check_result(&self, job: i64, clip: &Path) {
        let resp = ureq::get(&format!("{}/api/v1/jobs/{job}/output", self.url))
            .set("Authorization", &format!("Bearer {}", self.key))
            .call()
            .unwrap_or_else(|e| self.fail(&format!("download: {e}")));
        let mut whole = Vec::new();
        resp.into_reader().read_to_end(&mut whole).unwrap();
        let out = self.dir.path().join(format!("job{job}.mkv"));
        std::fs::write(&out, &whole).unwrap();
        tessera_run(argv!["verify", clip, &out]).expect_code(0);
        std::fs::remove_file(&out).unwrap();
        let chunks = self.chunk_indexes(job);
        assert!(chunks.len() >= 3, "{chunks:?}");
        let attempts = self.attempts(job);
        for index in chunks {
            let won = attempts
                .iter()
                .filter(|a| a["task"] == index && a["outcome"] == "succeeded")
                .count();
            assert_eq!(won, 1, "chunk {index} succeeded {won} times: {attempts:?}");
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        docker_remove(self.containers().iter().map(String::as_str), &self.net);
    }
}

pub(crate) fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}

/// 6 s of noisy 720p (three 2 s chunks of about 2 s of ffv1 work each).
pub(crate) fn clip(dir: &Path) -> PathBuf {
    let clip = dir.join("clip.mp4");
    tessera_media::testclips::sample_720p(&clip, 6).unwrap();
    clip
}

#[test]
fn a_worker_killed_mid_chunk_loses_its_attempt_and_the_encode_stays_exact() {
    if !docker_engine_present() {
        return;
    }
    let c = Cluster::start();
    let clip = clip(c.dir.path());
    let job = c.encode(&clip);
    let (victim, at) = c.fresh_chunk(job);
    docker(&["kill", &c.container(&victim)]);
    c.wait_succeeded(job);
    c.check_result(job, &clip);
    let lost = c.attempt(job, at);
    assert_eq!(lost["outcome"], "lost", "{lost}");
    let why = s(&lost["message"]);
    assert!(why.contains(&format!("worker {victim} ")), "{why}");
}

#[test]
fn a_worker_cut_off_past_its_lease_is_fenced_and_comes_back() {
    if !docker_engine_present() {
        return;
    }
    let c = Cluster::start();
    let clip = clip(c.dir.path());
    let before = c.wait_ready(&["w1", "w2", "w3"]);
    let job = c.encode(&clip);
    let (victim, at) = c.fresh_chunk(job);
    let container = c.container(&victim);
    docker(&["network", "disconnect", &c.net, &container]);
    // Past the lease: the attempt is given up and run elsewhere.
    let start = Instant::now();
    while c.attempt(job, at)["outcome"] != "lost" {
        c.check(
            start,
            30,
            &format!("{victim}'s attempt {at:?} was not lost"),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Kept off for a further lease (the scenario: cut off well past it).
    std::thread::sleep(Duration::from_millis(u64::from(LEASE_MS)));
    docker(&["network", "connect", &c.net, &container]);
    c.wait_succeeded(job);
    // Fenced, it registers again under a new id.
    let start = Instant::now();
    loop {
        let again = c.wait_ready(&[&victim]);
        if again[&victim] != before[&victim] {
            break;
        }
        c.check(start, 30, &format!("{victim} did not register again"));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Its late word changed nothing (it registered again only after the
    // server fenced that word off).
    let lost = c.attempt(job, at);
    assert_eq!(lost["outcome"], "lost", "{lost}");
    assert!(
        s(&lost["message"]).contains(&format!("worker {victim} ")),
        "{lost}"
    );
    c.check_result(job, &clip);
}

#[test]
fn a_server_killed_mid_job_and_started_again_finishes_it() {
    if !docker_engine_present() {
        return;
    }
    let mut c = Cluster::start();
    let clip = clip(c.dir.path());
    let job = c.encode(&clip);
    c.fresh_chunk(job);
    let server = c.container("server");
    docker(&["kill", &server]);
    // `docker start` of a container still running would do nothing.
    let start = Instant::now();
    while docker(&["inspect", "-f", "{{.State.Running}}", &server]).trim() != "false" {
        c.check(start, 30, "the killed server did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
    docker(&["start", &server]);
    // The published port may change with the restart.
    c.find_url();
    c.wait_succeeded(job);
    c.check_result(job, &clip);
    c.wait_ready(&["w1", "w2", "w3"]);
}

/// The random rounds' choices: splitmix64 from a seed, which is
/// `TESSERA_CHAOS_SEED` (to replay a failure) or else the clock's
/// nanoseconds.
struct Chaos(u64);

impl Chaos {
    fn seed() -> u64 {
        match std::env::var("TESSERA_CHAOS_SEED") {
            Ok(n) => n.trim().parse().expect("TESSERA_CHAOS_SEED: a number"),
            Err(_) => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap();
                now.as_secs() ^ (u64::from(now.subsec_nanos()) << 20)
            }
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) % n
    }
}

#[test]
fn chaos_choices_are_the_same_for_the_same_seed() {
    let draw = |seed| {
        let mut c = Chaos(seed);
        (0..20).map(|_| c.below(4000)).collect::<Vec<_>>()
    };
    assert_eq!(draw(7), draw(7));
    assert_ne!(draw(7), draw(8));
    assert!(draw(7).iter().all(|n| *n < 4000));
}

#[test]
fn random_worker_kills_at_random_moments_never_change_the_result() {
    if !docker_engine_present() {
        return;
    }
    let rounds: u32 = match std::env::var("TESSERA_CHAOS_ROUNDS") {
        Ok(n) => n.parse().expect("TESSERA_CHAOS_ROUNDS: a number"),
        Err(_) if tessera_testkit::env::strict() => 3,
        Err(_) => 1,
    };
    let seed = Chaos::seed();
    let replay = format!(
        "chaos seed {seed} (replay: TESSERA_CHAOS_SEED={seed} TESSERA_CHAOS_ROUNDS={rounds} \
         cargo test -p tessera-cli --test cli random_worker_kills)"
    );
    eprintln!("{replay}");
    let mut chaos = Chaos(seed);
    let c = Cluster::start();
    let clip = clip(c.dir.path());
    let mut correct = 0;
    let mut failures = Vec::new();
    for round in 1..=rounds {
        // The moment is the thing under test, not a synchronisation.
        let wait = chaos.below(4000);
        let victim = format!("w{}", 1 + chaos.below(3));
        eprintln!("round {round}: SIGKILL {victim} after {wait} ms");
        let ended = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let job = c.encode(&clip);
            std::thread::sleep(Duration::from_millis(wait));
            docker(&["kill", &c.container(&victim)]);
            c.wait_succeeded(job);
            c.check_result(job, &clip);
        }));
        match ended {
            Ok(()) => correct += 1,
            Err(e) => failures.push(format!(
                "round {round}: {}",
                e.downcast_ref::<String>().map_or("?", |m| m.as_str())
            )),
        }
        docker(&["start", &c.container(&victim)]);
        c.wait_ready(&["w1", "w2", "w3"]);
    }
    eprintln!("{correct} of {rounds} runs ended correct");
    assert!(failures.is_empty(), "{replay}\n{}", failures.join("\n"));
}
