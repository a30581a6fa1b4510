//! `tessera worker`: runs a server's attempts on this machine.
//!
//! It registers (slots, cpus, memory, labels, free disk of the data
//! directory), then one thread long-polls the server for attempts, another
//! heartbeats every lease/3 (renewing every lease it holds), and the main
//! thread runs the attempts with the [`LocalExecutor`] (one process group
//! each, logs written where the server's data directory has them: the
//! filesystem is shared) and reports their events.
//!
//! A report the server refuses as *fenced* (409: the lease lapsed, the
//! attempt was given to another worker) makes the worker kill its copy;
//! a fenced heartbeat makes it kill everything and register again.
//! With `--data http` the worker shares no filesystem with the server:
//! see [`data`] for how it fetches inputs and sends outputs back.
//! With `--docker` it offers the `docker` executor too, and attempts that
//! name an image run in containers on its Docker engine (see [`docker`]).
//!
//! SIGTERM or SIGINT drains: nothing new is taken, running attempts get
//! `--grace` to finish, then what is left is handed back (`release`), so
//! the server retries it elsewhere at once, and killed.
//!
//! [`LocalExecutor`]: tessera_exec::LocalExecutor

mod data;
mod docker;
pub(crate) mod host;
mod http;
mod map;
mod report;
mod tenancy;
mod threads;

use crate::fail::{Failure, Result};
use clap::Args;
use host::{disk_free_mb, hostname, memory_mb};
use http::Fetched;
use map::PathMap;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_exec::{EventSink, ExecEvent, Executor, LocalConfig, LocalExecutor, StartRequest};
use tessera_types::{AttemptNo, JobId, TaskRef};
use threads::{key_of, spawn_heartbeat, spawn_poller, Held};

#[derive(Args, Debug)]
pub struct WorkerArgs {
    /// The server's URL, e.g. http://10.0.0.1:6543.
    #[arg(long, env = "TESSERA_SERVER")]
    server: String,
    /// A worker token (`tessera admin create-worker-token`).
    #[arg(long, env = "TESSERA_WORKER_TOKEN")]
    token: String,
    /// This worker's name [default: the host name].
    #[arg(long)]
    name: Option<String>,
    /// Labels, as k=v,k=v.
    #[arg(long, value_delimiter = ',')]
    labels: Vec<String>,
    /// Attempts' cpu slots on this machine [default: one per core].
    #[arg(long)]
    slots: Option<u32>,
    /// The server's data directory as seen here (for the free-disk figure)
    /// [default: the current directory].
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Seconds running attempts get to finish after SIGTERM before they
    /// are handed back.
    #[arg(long, default_value_t = 30)]
    grace: u64,
    /// Where this machine sees the server's data directory, as
    /// SERVER_PREFIX=LOCAL_PREFIX: every path the server sends (working
    /// and log directories, environment values, arguments) that starts with
    /// SERVER_PREFIX is rewritten [default: the same paths as the server].
    #[arg(long, value_name = "SERVER_PREFIX=LOCAL_PREFIX")]
    map: Option<String>,
    /// How attempts' files get here: `shared` (this machine sees the
    /// server's data directory) or `http` (fetched from the server and sent
    /// back; copies live at the server's paths on this machine's disk).
    #[arg(long, default_value = "shared", value_parser = ["shared", "http"])]
    data: String,
    /// With `--data http`: below this much free disk (MiB) take no new
    /// attempts, and evict cached inputs no running attempt needs.
    #[arg(long, default_value_t = 1024)]
    min_free_mb: u64,
    /// Offer the `docker` executor: attempts that name a container image
    /// run on this machine's Docker engine (DOCKER_HOST or
    /// /var/run/docker.sock); the worker refuses to start if it does not
    /// answer [default: off; such attempts go to other workers].
    #[arg(long, env = "TESSERA_DOCKER", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    docker: Option<bool>,
}

/// The worker's executor: host processes, and containers with `--docker`.
type Exec = tessera_exec::Split<LocalExecutor, tessera_docker::DockerExecutor>;

/// What the main loop hears.
enum Msg {
    Exec(ExecEvent),
    Work(Vec<Value>),
    Orders(Vec<Value>),
    /// The server no longer knows this worker (registered under the given
    /// id): kill everything, register again.
    Fenced(String, String),
    /// An attempt's inputs are here (http data): start it.
    Fetched(Box<StartRequest>, Box<Fetched>),
    /// An attempt's transfers ended: report this event (`None`: fenced).
    Sent(Key, Option<Wire>),
}

type Key = (TaskRef, AttemptNo);

/// An event to report, as the wire has it.
enum Wire {
    Event(ExecEvent),
    Lost(String),
}

struct Conn {
    server: String,
    token: String,
    agent: ureq::Agent,
    /// For file transfers: no overall deadline, only per read and write.
    files: ureq::Agent,
}

/// Times a busy server (503) or a throttled token (429) is asked again, at
/// the pace its `Retry-After` sets, before registering gives up.
const REGISTER_TRIES: u32 = 10;

impl Conn {
    fn request(&self, path: &str) -> ureq::Request {
        self.agent
            .post(&format!("{}/api/v1{path}", self.server))
            .set("Authorization", &format!("Bearer {}", self.token))
    }

    /// [`post`](Self::post) for registering: a 503 or 429 (the server's
    /// credential checks are busy, e.g. many workers starting at once) is
    /// retried after its `Retry-After` (at most 30 s), [`REGISTER_TRIES`]
    /// times.
    fn register(&self, body: &Value) -> std::result::Result<Value, Option<String>> {
        let mut tries = 1;
        loop {
            match self.request("/workers").send_json(body.clone()) {
                Err(ureq::Error::Status(status @ (429 | 503), r)) if tries < REGISTER_TRIES => {
                    tries += 1;
                    let wait: u64 = r
                        .header("retry-after")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    let wait = wait.clamp(1, 30);
                    eprintln!(
                        "tessera worker: registering: the server answered {status}; trying \
                         again in {wait} s"
                    );
                    std::thread::sleep(Duration::from_secs(wait));
                }
                r => return Self::answer("/workers", r),
            }
        }
    }

    /// POSTs JSON: `Ok(body)`, `Err(Some(message))` for a 409 (fenced),
    /// `Err(None)` for anything else (logged; the caller retries later).
    fn post(&self, path: &str, body: &Value) -> std::result::Result<Value, Option<String>> {
        Self::answer(path, self.request(path).send_json(body.clone()))
    }

    fn answer(
        path: &str,
        r: std::result::Result<ureq::Response, ureq::Error>,
    ) -> std::result::Result<Value, Option<String>> {
        match r {
            Ok(r) => r.into_json().map_err(|_| None),
            Err(ureq::Error::Status(status, r)) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                let message = v["error"]["message"].as_str().unwrap_or("").to_string();
                if status == 409 {
                    return Err(Some(message));
                }
                eprintln!("tessera worker: POST {path}: {status} {message}");
                Err(None)
            }
            Err(e) => {
                eprintln!("tessera worker: POST {path}: {e}");
                Err(None)
            }
        }
    }
}

pub fn run(
    args: WorkerArgs,
    spawner: std::result::Result<tessera_exec::Spawner, tessera_exec::ExecError>,
) -> Result<()> {
    let spawner = spawner.map_err(Failure::env)?;
    let map = PathMap::parse(args.map.as_deref())?;
    let http = args.data == "http";
    if http && args.map.is_some() {
        return Err(Failure::input(
            "--map rewrites paths of a shared filesystem; with --data http files live at the \
             server's paths on this machine: drop one of them",
        ));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let slots = args.slots.unwrap_or(cpus);
    if slots == 0 {
        return Err(Failure::input("--slots must be at least 1"));
    }
    let mut labels = BTreeMap::new();
    for l in &args.labels {
        let (k, v) = l
            .split_once('=')
            .ok_or_else(|| Failure::input(format!("--labels: {l:?} is not k=v")))?;
        labels.insert(k.to_string(), v.to_string());
    }
    let name = match args.name.clone() {
        Some(n) => n,
        None => hostname(),
    };
    let data_dir = args.data_dir.clone().unwrap_or_else(|| ".".into());
    let with_docker = args.docker.unwrap_or(false);
    let executors = if with_docker {
        vec!["local", "docker"]
    } else {
        vec!["local"]
    };
    let info = json!({
        "name": name,
        "slots": slots,
        "cpus": cpus,
        "memory_mb": memory_mb(),
        "gpus": host::gpus(),
        "disk_free_mb": disk_free_mb(&data_dir),
        "labels": labels,
        "executors": executors,
        "data": args.data,
    });
    let conn = Arc::new(Conn {
        server: args.server.trim_end_matches('/').to_string(),
        token: args.token.clone(),
        agent: ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(40))
            .build(),
        files: ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout_read(Duration::from_secs(60))
            .timeout_write(Duration::from_secs(60))
            .build(),
    });
    let (tx, rx) = mpsc::channel();
    let sink_tx = Mutex::new(tx.clone());
    let sink: EventSink = Arc::new(move |e| {
        let _ = sink_tx.lock().map(|tx| tx.send(Msg::Exec(e)));
    });
    let op_program = std::env::current_exe()
        .map_err(|e| Failure::env(format!("cannot find the tessera executable: {e}")))?;
    // The engine is connected (and this worker's leftovers removed) before
    // it registers: a worker that cannot run containers never offers them.
    let mut docker_failed = None;
    let exec = tessera_exec::Split::new(
        sink,
        |sink| {
            let config = LocalConfig { op_program, sink };
            LocalExecutor::with_spawner(config, Ok(spawner))
        },
        |sink| {
            if !with_docker {
                return None;
            }
            match docker::connect(&name, sink) {
                Ok((docker, 0)) => Some(docker),
                Ok((docker, removed)) => {
                    eprintln!(
                        "tessera worker: removed {removed} containers an earlier run of {name} left"
                    );
                    Some(docker)
                }
                Err(e) => {
                    docker_failed = Some(e);
                    None
                }
            }
        },
    );
    if let Some(e) = docker_failed {
        return Err(Failure::env(format!(
            "--docker: {e}; start the Docker engine, or run this worker without --docker"
        )));
    }
    let server_dir = std::sync::OnceLock::new();
    let register = || -> Result<(String, Duration)> {
        let v = conn.register(&info).map_err(|e| {
            Failure::env(format!(
                "cannot register with {}: {}",
                conn.server,
                e.unwrap_or_else(|| "see above".into())
            ))
        })?;
        let id = v["id"].as_str().unwrap_or_default().to_string();
        let lease = Duration::from_millis(v["lease_ms"].as_u64().unwrap_or(10_000));
        if let Some(dir) = v["data_dir"].as_str() {
            let _ = server_dir.set(PathBuf::from(dir));
        }
        eprintln!("tessera worker: {name} registered as {id} ({slots} slots, leases of {lease:?})");
        if let Some(line) = tenancy::isolation_line() {
            eprintln!("{line}");
        }
        Ok((id, lease))
    };
    let (id, lease) = register()?;
    let cache = match (http, server_dir.get()) {
        (false, _) => None,
        (true, None) => {
            return Err(Failure::env(format!(
                "{} did not say where its data directory is (an older server?); run this \
                 worker with --data shared",
                conn.server
            )))
        }
        (true, Some(dir)) => {
            std::fs::create_dir_all(dir).map_err(|e| {
                Failure::env(format!(
                    "--data http keeps files at the server's paths, but {} cannot be created \
                     here ({e}); create it and let this user write in it",
                    dir.display()
                ))
            })?;
            let cache = data::Cache::new(dir.clone(), name.clone(), args.min_free_mb);
            cache.check_disk();
            Some(Arc::new(cache))
        }
    };
    let id = Arc::new(Mutex::new(id));
    let draining = Arc::new(AtomicBool::new(false));
    let stop = signal_flag()?;
    let held = Held::default();
    spawn_poller(
        conn.clone(),
        id.clone(),
        draining.clone(),
        held.clone(),
        cache.clone(),
        tx.clone(),
    );
    spawn_heartbeat(
        conn.clone(),
        id.clone(),
        draining.clone(),
        held.clone(),
        cache.clone(),
        lease,
        tx.clone(),
    );
    let mut w = Running {
        conn: conn.clone(),
        id,
        name: name.clone(),
        map,
        exec,
        held,
        cache,
        tx,
        http_attempts: HashMap::new(),
        fetching: HashSet::new(),
    };
    w.serve(
        rx,
        &stop,
        &draining,
        Duration::from_secs(args.grace),
        register,
    )
}

struct Running {
    conn: Arc<Conn>,
    id: Arc<Mutex<String>>,
    name: String,
    map: PathMap,
    exec: Exec,
    held: Held,
    /// With `--data http`: this worker's copies of the server's files.
    cache: Option<Arc<data::Cache>>,
    tx: mpsc::Sender<Msg>,
    /// Running http attempts: their plans and what was fetched.
    http_attempts: HashMap<Key, Fetched>,
    /// http attempts whose inputs are being fetched.
    fetching: HashSet<Key>,
}

impl Running {
    fn id(&self) -> String {
        self.id
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn serve(
        &mut self,
        rx: Receiver<Msg>,
        stop: &AtomicBool,
        draining: &AtomicBool,
        grace: Duration,
        register: impl Fn() -> Result<(String, Duration)>,
    ) -> Result<()> {
        let mut drain_until: Option<Instant> = None;
        loop {
            if stop.load(Ordering::SeqCst) && drain_until.is_none() {
                eprintln!(
                    "tessera worker: draining: taking nothing new, {} running",
                    self.held.len()
                );
                draining.store(true, Ordering::SeqCst);
                drain_until = Some(Instant::now() + grace);
            }
            if let Some(until) = drain_until {
                if self.held.len() == 0 || Instant::now() >= until {
                    return self.hand_back(&rx);
                }
            }
            let msg = match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(m) => m,
                Err(mpsc::RecvTimeoutError::Timeout) => continue,
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
            };
            match msg {
                Msg::Work(attempts) => {
                    for a in attempts {
                        self.start(a);
                    }
                }
                Msg::Orders(orders) => self.obey(orders),
                Msg::Exec(event) => self.exec_event(event),
                Msg::Fetched(req, fetched) => self.fetched(*req, *fetched),
                Msg::Sent(_, Some(Wire::Event(event))) => self.report(event),
                Msg::Sent(key, Some(Wire::Lost(reason))) => self.report_lost(key, reason),
                Msg::Sent(key, None) => {
                    self.held.remove(key);
                }
                Msg::Fenced(id, _) if id != self.id() => {} // already registered again
                Msg::Fenced(_, why) => {
                    eprintln!(
                        "tessera worker: {why}; killing {} attempts and registering again",
                        self.held.len()
                    );
                    self.held.clear();
                    self.exec.kill_all();
                    if drain_until.is_some() {
                        return Ok(());
                    }
                    let (id, _) = register()?;
                    *self.id.lock().unwrap_or_else(PoisonError::into_inner) = id;
                }
            }
        }
    }

    fn start(&mut self, mut a: Value) {
        if let Some(fields) = a.as_object_mut() {
            for (k, v) in fields.iter_mut() {
                if k != "name" {
                    self.map.apply(v);
                }
            }
        }
        let parsed = (|| -> Option<StartRequest> {
            let (task, attempt) = key_of(&a)?;
            let mut env: BTreeMap<String, String> =
                serde_json::from_value(a["env"].clone()).ok()?;
            env.insert("TESSERA_NODE".into(), self.name.clone());
            Some(StartRequest {
                task,
                attempt,
                name: a["name"].as_str()?.to_string(),
                action: serde_json::from_value(a["action"].clone()).ok()?,
                env,
                workdir: a["workdir"].as_str()?.into(),
                log_dir: a["log_dir"].as_str()?.into(),
                image: a["image"].as_str().map(String::from),
                cpu: a["cpu"].as_u64()? as u32,
                memory_mb: a["memory_mb"].as_u64()?,
                labels: Default::default(),
                placement: Default::default(),
                reach: serde_json::from_value(a["reach"].clone()).ok()?,
                user: self.user_of(&a),
                mounts: serde_json::from_value(a["mounts"].clone()).unwrap_or_default(),
            })
        })();
        let plan = match (&self.cache, a.get("files")) {
            (Some(_), Some(files)) => match serde_json::from_value::<data::Plan>(files.clone()) {
                Ok(p) => Some(p),
                Err(e) => {
                    eprintln!("tessera worker: the server sent a file plan this worker cannot read ({e}): {a}");
                    if let Some(key) = key_of(&a) {
                        self.held.remove(key);
                    }
                    return;
                }
            },
            _ => None,
        };
        match parsed {
            Some(req) => {
                self.held.insert((req.task, req.attempt));
                match (plan, &self.cache) {
                    (Some(mut plan), Some(cache)) => {
                        plan.reach = req.reach.clone();
                        plan.owner = req.user.as_ref().map(|u| (u.uid, u.gid));
                        match tenancy::admit(&req, &plan) {
                            Ok(()) => self.fetch(req, plan, cache.clone()),
                            Err(why) => self.report(ExecEvent::Exited {
                                task: req.task,
                                attempt: req.attempt,
                                result: Err(why),
                                usage: Default::default(),
                            }),
                        }
                    }
                    _ => self.exec.start(req),
                }
            }
            None => {
                // Not reported as running: the server gives it up after a lease.
                if let Some(key) = key_of(&a) {
                    self.held.remove(key);
                }
                eprintln!("tessera worker: the server sent an attempt this worker cannot read: {a}")
            }
        }
    }

    fn obey(&mut self, orders: Vec<Value>) {
        for o in orders {
            let (Some(job), Some(index), Some(attempt)) = (
                o["job"].as_i64(),
                o["index"].as_u64(),
                o["attempt"].as_u64(),
            ) else {
                continue;
            };
            let (task, attempt) = (TaskRef::new(JobId(job), index as u32), attempt as AttemptNo);
            match o["order"].as_str() {
                Some("kill") if self.fetching.contains(&(task, attempt)) => {
                    // Not started yet: it never will be.
                    self.fetching.remove(&(task, attempt));
                    self.report(ExecEvent::Exited {
                        task,
                        attempt,
                        result: Err("killed before it started".into()),
                        usage: Default::default(),
                    });
                }
                Some("kill") => self.exec.kill(task, attempt),
                Some("suspend") => self.exec.suspend(task, attempt),
                Some("resume") => self.exec.resume(task, attempt),
                _ => {}
            }
        }
    }

    /// Hands every lease back, kills what still runs, waits for it to end.
    fn hand_back(&mut self, rx: &Receiver<Msg>) -> Result<()> {
        let left = self.held.len();
        let _ = self
            .conn
            .post(&format!("/workers/{}/release", self.id()), &json!({}));
        self.held.clear();
        self.exec.kill_all();
        // Let the killed process groups be reaped (their events go nowhere).
        let until = Instant::now() + Duration::from_secs(5);
        while Instant::now() < until && rx.recv_timeout(Duration::from_millis(200)).is_ok() {}
        eprintln!("tessera worker: stopped; handed back {left} attempts");
        Ok(())
    }
}

/// A flag SIGTERM and SIGINT set.
fn signal_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, flag.clone())
            .map_err(|e| Failure::internal(format!("cannot handle signals: {e}")))?;
    }
    Ok(flag)
}
