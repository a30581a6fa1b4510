//! The `tessera` client commands: they talk to a `tessera server` over its
//! REST API, the same API the web UI uses. `tessera login` saves the server
//! URL and key in `~/.config/tessera/client.json` (mode 0600);
//! `TESSERA_SERVER` and `TESSERA_KEY` override it.

use crate::fail::{Failure, Result};
use clap::{Args, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

mod dry_run;
mod job;
pub mod ladder;
pub mod remote;
pub mod upload;
mod when;

pub use job::{job, JobCmd};

#[derive(Serialize, Deserialize, Default)]
struct Credentials {
    server: String,
    key: String,
}

/// A server URL the client can use: its scheme, then a host.
fn check_url(server: &str) -> Result<()> {
    let rest = server
        .strip_prefix("http://")
        .or_else(|| server.strip_prefix("https://"));
    match rest {
        Some(host) if !host.trim_matches('/').is_empty() => Ok(()),
        Some(_) => Err(Failure::input(format!(
            "server URL {server:?} has no host; write it like http://127.0.0.1:6543"
        ))),
        None if server.contains("://") => Err(Failure::input(format!(
            "server URL {server:?}: the client speaks http:// and https:// only"
        ))),
        None => Err(Failure::input(format!(
            "server URL {server:?} has no scheme; write http://{0} (or https://{0} for a server \
             behind TLS)",
            server.trim_end_matches('/')
        ))),
    }
}

fn credentials_path() -> Result<PathBuf> {
    let base = crate::dirs::xdg("XDG_CONFIG_HOME", ".config")
        .ok_or_else(|| Failure::env("cannot find a config directory: set HOME"))?;
    Ok(base.join("tessera/client.json"))
}

/// A client for one server with one key.
pub struct Client {
    pub(crate) server: String,
    pub(crate) key: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client of `server` (an `http://` or `https://` URL; anything else
    /// is refused with what to write instead).
    pub fn new(server: &str, key: &str) -> Result<Self> {
        check_url(server)?;
        let agent = ureq::AgentBuilder::new()
            .timeout(std::time::Duration::from_secs(60))
            .build();
        Ok(Self {
            server: server.trim_end_matches('/').to_string(),
            key: key.to_string(),
            agent,
        })
    }

    /// A client of `server` with the key of the environment (TESSERA_KEY),
    /// or the saved login's key when the login is for that same server: a
    /// key is never sent to a server it was not saved for.
    pub fn for_server(server: &str) -> Result<Self> {
        check_url(server)?;
        if let Some(key) = std::env::var("TESSERA_KEY").ok().filter(|k| !k.is_empty()) {
            return Self::new(server, &key);
        }
        let saved: Credentials = match std::fs::read(credentials_path()?) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Credentials::default(),
        };
        if !saved.key.is_empty() && saved.server == server.trim_end_matches('/') {
            return Self::new(server, &saved.key);
        }
        Err(Failure::input(format!(
            "no key for {server}: run `tessera login --server {server} --key KEY` (or set \
             TESSERA_KEY)"
        )))
    }

    /// From the environment or the saved login.
    pub fn from_login() -> Result<Self> {
        let saved: Credentials = match std::fs::read(credentials_path()?) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => Credentials::default(),
        };
        let server = std::env::var("TESSERA_SERVER")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or(saved.server);
        let key = std::env::var("TESSERA_KEY")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or(saved.key);
        if server.is_empty() || key.is_empty() {
            return Err(Failure::input(
                "not logged in: run `tessera login --server URL --key KEY` (or set TESSERA_SERVER and TESSERA_KEY)",
            ));
        }
        Self::new(&server, &key)
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<(&str, Vec<u8>)>,
    ) -> Result<Value> {
        let text = self.call_text(method, path, body)?;
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The reply's body as it came (a log: printed as is, empty or not).
    fn call_text(&self, method: &str, path: &str, body: Option<(&str, Vec<u8>)>) -> Result<String> {
        let url = format!("{}/api/v1{path}", self.server);
        let req = self
            .agent
            .request(method, &url)
            .set("Authorization", &format!("Bearer {}", self.key));
        let resp = match body {
            Some((content_type, bytes)) => req.set("Content-Type", content_type).send_bytes(&bytes),
            None => req.call(),
        };
        match resp {
            Ok(r) => r
                .into_string()
                .map_err(|e| Failure::env(format!("reading the reply from {url}: {e}"))),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// A ureq error as a one-line failure: the server's own message for a
    /// refusal, else why it could not be reached.
    fn failure(&self, e: ureq::Error) -> Failure {
        match e {
            ureq::Error::Status(status, r) => {
                let text = r.into_string().unwrap_or_default();
                let message = serde_json::from_str::<Value>(&text)
                    .ok()
                    .and_then(|v| v["error"]["message"].as_str().map(String::from))
                    .unwrap_or(text);
                let f = format!("the server refused ({status}): {message}");
                if status < 500 {
                    Failure::input(f)
                } else {
                    Failure::internal(f)
                }
            }
            e => {
                let text = e.to_string();
                let hint = if text.contains("certificate") {
                    "; the server's TLS certificate is not one this machine trusts: add its CA \
                     to the system's store, or name a PEM file of it in SSL_CERT_FILE"
                } else {
                    ""
                };
                Failure::env(format!(
                    "cannot reach the server at {}: {text}{hint}",
                    self.server
                ))
            }
        }
    }

    pub fn get(&self, path: &str) -> Result<Value> {
        self.call("GET", path, None)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(
            "POST",
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Result<Value> {
        self.call(
            "PUT",
            path,
            Some(("application/json", body.to_string().into_bytes())),
        )
    }

    /// A GET whose body is read as it arrives (a followed log, an event
    /// stream): no overall time limit, only on connecting and between reads
    /// (the server sends a keep-alive at least every 15 s on event streams).
    pub fn open_stream(&self, path: &str) -> Result<Box<dyn std::io::Read + Send + Sync>> {
        let url = format!("{}/api/v1{path}", self.server);
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(std::time::Duration::from_secs(10))
            .build();
        let resp = agent
            .get(&url)
            .set("Authorization", &format!("Bearer {}", self.key))
            .call();
        match resp {
            Ok(r) => Ok(r.into_reader()),
            Err(e) => Err(self.failure(e)),
        }
    }

    /// A plain text body (logs), as it came: an empty log prints nothing,
    /// a log that happens to look like JSON prints as written.
    pub fn get_text(&self, path: &str) -> Result<String> {
        self.call_text("GET", path, None)
    }
}

#[derive(Args)]
pub struct LoginArgs {
    /// The server's URL, e.g. http://127.0.0.1:6543
    #[arg(long)]
    server: String,
    /// An API key (from `tessera admin create-user` or `tessera key create`).
    #[arg(long, env = "TESSERA_KEY")]
    key: String,
}

pub fn login(args: LoginArgs) -> Result<()> {
    let client = Client::new(&args.server, &args.key)?;
    let me = client.get("/me")?;
    let path = credentials_path()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| Failure::env(format!("{}: {e}", dir.display())))?;
    }
    let creds = Credentials {
        server: client.server.clone(),
        key: args.key,
    };
    write_private(
        &path,
        &serde_json::to_vec_pretty(&creds).map_err(Failure::internal)?,
    )?;
    println!(
        "logged in to {} as {}",
        client.server,
        me["user"]["name"].as_str().unwrap_or("?")
    );
    Ok(())
}

fn write_private(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| Failure::env(format!("{}: {e}", path.display())))?;
    f.write_all(bytes)
        .map_err(|e| Failure::env(format!("{}: {e}", path.display())))
}

#[derive(Args)]
pub struct SubmitArgs {
    /// A job spec, YAML (.yaml/.yml) or JSON.
    file: PathBuf,
    /// The project (id or name) to submit to; default: your only project.
    #[arg(long, short)]
    project: Option<String>,
    /// Check the spec here, without a server: that it parses, its arrays
    /// and templates expand, its task dependencies resolve and form no
    /// cycle. Job dependencies (`after:`) name the server's jobs, so only
    /// the submission checks them.
    #[arg(long)]
    dry_run: bool,
}

pub fn submit(args: SubmitArgs) -> Result<()> {
    let body = std::fs::read(&args.file)
        .map_err(|e| Failure::input(format!("{}: {e}", args.file.display())))?;
    let yaml = matches!(
        args.file.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    );
    if args.dry_run {
        return dry_run::check(&args.file, &body, yaml);
    }
    let client = Client::from_login()?;
    let content_type = if yaml {
        "application/yaml"
    } else {
        "application/json"
    };
    let project = project_id(&client, args.project.as_deref())?;
    let job = client.call(
        "POST",
        &format!("/projects/{project}/jobs"),
        Some((content_type, body)),
    )?;
    println!(
        "submitted job {} ({})",
        job["id"],
        job["name"].as_str().unwrap_or("")
    );
    Ok(())
}

/// Resolves a project by id or name; with none given, the caller's only project.
fn project_id(client: &Client, wanted: Option<&str>) -> Result<i64> {
    let projects = client.get("/projects")?;
    let list = projects.as_array().cloned().unwrap_or_default();
    let found = match wanted {
        Some(w) => list.iter().find(|p| {
            p["name"].as_str() == Some(w) || p["id"].as_i64().is_some_and(|id| id.to_string() == w)
        }),
        None if list.len() == 1 => list.first(),
        None if list.is_empty() => {
            return Err(Failure::input(
                "you are in no project yet: create one with `tessera project create NAME` (you \
                 become its owner), or ask a project's owner to add you as a member",
            ))
        }
        None => {
            let names: Vec<&str> = list.iter().filter_map(|p| p["name"].as_str()).collect();
            return Err(Failure::input(format!(
                "name a project with --project (yours: {})",
                names.join(", ")
            )));
        }
    };
    found
        .and_then(|p| p["id"].as_i64())
        .ok_or_else(|| Failure::input(format!("no project {:?} among yours", wanted.unwrap_or(""))))
}

#[derive(Args)]
pub struct JobsArgs {
    /// The project (id or name); default: your only project.
    #[arg(long, short)]
    project: Option<String>,
    /// How many of the newest jobs to list.
    #[arg(long, default_value_t = 20)]
    limit: u32,
}

pub fn jobs(args: JobsArgs) -> Result<()> {
    let client = Client::from_login()?;
    let project = project_id(&client, args.project.as_deref())?;
    let jobs = client.get(&format!("/projects/{project}/jobs?limit={}", args.limit))?;
    let jobs = jobs.as_array().cloned().unwrap_or_default();
    if jobs.is_empty() {
        println!(
            "no jobs in this project yet: submit one with `tessera submit FILE` (a YAML or JSON \
             job spec; `tessera submit --dry-run FILE` checks it first)"
        );
        return Ok(());
    }
    let now = tessera_driver::SystemClock::now();
    println!(
        "{:>6}  {:<10}  {:<9}  {:<8}  NAME",
        "ID", "STATE", "CREATED", "TOOK"
    );
    for j in &jobs {
        let created = j["created_at"].as_u64().unwrap_or(0);
        let suspended = if j["suspended"] == Value::Bool(true) {
            " (suspended)"
        } else {
            ""
        };
        println!(
            "{:>6}  {:<10}  {:<9}  {:<8}  {}{suspended}",
            j["id"].to_string(),
            j["state"].as_str().unwrap_or(""),
            when::ago(created, now),
            when::span(created, j["finished_at"].as_u64(), now),
            j["name"].as_str().unwrap_or("")
        );
    }
    if jobs.len() as u32 >= args.limit {
        println!("(the {} newest; --limit N shows more)", args.limit);
    }
    Ok(())
}

/// `tessera nodes`: the server's nodes (its workers, and its own slots
/// when they run beside workers), then attempts no node can take.
pub fn nodes() -> Result<()> {
    let client = Client::from_login()?;
    let view = client.get("/nodes")?;
    let nodes = &view["nodes"];
    println!(
        "{:<16}  {:<9}  {:>5}  {:>9}  {:<6}  {:>9}  LABELS",
        "NAME", "STATE", "SLOTS", "HEARTBEAT", "DATA", "10-MIN"
    );
    let now = tessera_driver::SystemClock::now();
    for n in nodes.as_array().into_iter().flatten() {
        let labels: Vec<String> = n["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect();
        let ago = now.saturating_sub(n["last_heartbeat_ms"].as_u64().unwrap_or(0));
        let state = match (n["state"].as_str().unwrap_or(""), n["disk_low"] == true) {
            ("ready", true) => "disk-low",
            (s, _) => s,
        };
        println!(
            "{:<16}  {:<9}  {:>2}/{:<2}  {:>7.1}s  {:<6}  {:>9}  {}",
            n["name"].as_str().unwrap_or(""),
            state,
            n["used"],
            n["slots"],
            ago as f64 / 1000.0,
            n["data"].as_str().unwrap_or("shared"),
            format!("{} done", n["recent"]["attempts"].as_u64().unwrap_or(0)),
            labels.join(",")
        );
    }
    for u in view["unplaceable"].as_array().into_iter().flatten() {
        println!(
            "job {} task {} ({}) cannot be placed: {}",
            u["job"],
            u["index"],
            u["name"].as_str().unwrap_or(""),
            u["reason"].as_str().unwrap_or("")
        );
    }
    Ok(())
}

#[derive(Subcommand)]
pub enum ProjectCmd {
    /// Your projects.
    List,
    /// Create a project; you become its owner.
    Create {
        /// The project's name (letters, digits, `-`, `_`; not a number).
        name: String,
    },
    /// Show a project's quota and usage; with a flag, change the quota
    /// (admins only; limits not named stay as they are).
    Quota(QuotaArgs),
}

#[derive(Args)]
pub struct QuotaArgs {
    /// The project (id or name).
    project: String,
    /// Cpu slots its running tasks may hold at once.
    #[arg(long)]
    max_cpu: Option<u32>,
    /// Memory (MiB) its running tasks may hold at once.
    #[arg(long)]
    max_memory_mb: Option<u64>,
    /// Cpu-seconds its attempts may use per quota window.
    #[arg(long)]
    cpu_seconds_per_window: Option<u64>,
    /// Remove every limit first (then apply the flags given).
    #[arg(long)]
    unlimited: bool,
}

pub fn project(cmd: ProjectCmd) -> Result<()> {
    let client = Client::from_login()?;
    match cmd {
        ProjectCmd::List => {
            let list = client.get("/projects")?;
            let list = list.as_array().cloned().unwrap_or_default();
            if list.is_empty() {
                println!(
                    "you are in no project yet: create one with `tessera project create NAME`, \
                     or ask a project's owner to add you"
                );
            } else {
                println!("{:>4}  {:<8}  NAME", "ID", "ROLE");
            }
            for p in &list {
                println!(
                    "{:>4}  {:<8}  {}",
                    p["id"].to_string(),
                    p["role"].as_str().unwrap_or("-"),
                    p["name"].as_str().unwrap_or("")
                );
            }
        }
        ProjectCmd::Create { name } => {
            let p = client.post_json("/projects", &serde_json::json!({ "name": name }))?;
            println!(
                "created project {} ({})",
                p["name"].as_str().unwrap_or(""),
                p["id"]
            );
        }
        ProjectCmd::Quota(args) => quota(&client, args)?,
    }
    Ok(())
}

fn quota(client: &Client, args: QuotaArgs) -> Result<()> {
    let path = format!("/projects/{}/quota", args.project);
    let changes = args.unlimited
        || args.max_cpu.is_some()
        || args.max_memory_mb.is_some()
        || args.cpu_seconds_per_window.is_some();
    let mut quota = if args.unlimited {
        serde_json::json!({})
    } else {
        client.get(&path)?
    };
    if changes {
        let mut set = |k: &str, v: Option<Value>| {
            if let Some(v) = v {
                quota[k] = v;
            }
        };
        set("max_cpu", args.max_cpu.map(Value::from));
        set("max_memory_mb", args.max_memory_mb.map(Value::from));
        let cpu_ms = args.cpu_seconds_per_window.map(|s| s.saturating_mul(1000));
        set("cpu_ms_per_window", cpu_ms.map(Value::from));
        quota = client.put_json(&path, &quota)?;
    }
    let limit = |v: &Value, scale: u64, unit: &str| match v.as_u64() {
        Some(n) => format!("{}{unit}", n / scale),
        None => "unlimited".to_string(),
    };
    println!(
        "max cpu:                {}",
        limit(&quota["max_cpu"], 1, "")
    );
    println!(
        "max memory:             {}",
        limit(&quota["max_memory_mb"], 1, " MiB")
    );
    println!(
        "cpu-seconds per window: {}",
        limit(&quota["cpu_ms_per_window"], 1000, "")
    );
    let usage = client.get(&format!("/projects/{}/usage", args.project))?;
    println!(
        "now: {} cpu, {} MiB running; {:.1} cpu-seconds this window, {:.1} recent (decayed)",
        usage["running_cpu"],
        usage["running_memory_mb"],
        usage["window_cpu_seconds"].as_f64().unwrap_or(0.0),
        usage["decayed_cpu_seconds"].as_f64().unwrap_or(0.0)
    );
    Ok(())
}

#[derive(Subcommand)]
pub enum KeyCmd {
    /// Your keys (never their secrets).
    List,
    /// A new key; it is shown once.
    Create { name: String },
    /// Revoke a key by id.
    Revoke { id: i64 },
}

pub fn key(cmd: KeyCmd) -> Result<()> {
    let client = Client::from_login()?;
    match cmd {
        KeyCmd::List => {
            for k in client.get("/keys")?.as_array().into_iter().flatten() {
                let revoked = if k["revoked_at"].is_null() {
                    ""
                } else {
                    "  (revoked)"
                };
                println!(
                    "{:>4}  {:<16}  {}{revoked}",
                    k["id"].to_string(),
                    k["prefix"].as_str().unwrap_or(""),
                    k["name"].as_str().unwrap_or("")
                );
            }
        }
        KeyCmd::Create { name } => {
            let k = client.post_json("/keys", &serde_json::json!({ "name": name }))?;
            println!("{}", k["secret"].as_str().unwrap_or(""));
            eprintln!("this key is shown once; store it now");
        }
        KeyCmd::Revoke { id } => {
            client.call("DELETE", &format!("/keys/{id}"), None)?;
            println!("revoked key {id}");
        }
    }
    Ok(())
}
