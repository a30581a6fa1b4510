//! `tessera server`'s configuration: flags and environment ([`ServerArgs`]),
//! the TOML file, and the settled [`ServerConfig`] (see the module above
//! for the precedence).

use crate::fail::{Failure, Result};
use clap::Args;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

pub const DEFAULT_LISTEN: &str = "127.0.0.1:6543";

#[derive(Args, Debug, Default)]
pub struct ServerArgs {
    /// Address to listen on [default: 127.0.0.1:6543].
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<SocketAddr>,
    /// Where the database (SQLite), job workspaces and logs live
    /// [default: $XDG_STATE_HOME/tessera/server or ~/.local/state/tessera/server].
    #[arg(long, env = "TESSERA_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Database URL: `sqlite:PATH` or `postgres://user:pass@host/db`
    /// [default: SQLite in the data directory].
    #[arg(long, env = "TESSERA_DATABASE")]
    pub database: Option<String>,
    /// CPU slots for tasks on this machine [default: one per core]; 0 runs
    /// every task on workers (`tessera worker`) that share the data
    /// directory at the same path.
    #[arg(long, env = "TESSERA_SLOTS")]
    pub slots: Option<u32>,
    /// Take workers (`tessera worker`) beside this machine's slots: the
    /// server's slots become one node among the workers, and placement
    /// (resources, labels, locality, spread) chooses among them all
    /// [default: off; --slots 0 implies it].
    #[arg(long, env = "TESSERA_WORKERS", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub workers: Option<bool>,
    /// Labels of this server's own node (with --workers), as k=v,k=v:
    /// tasks that name labels in `resources.labels` run only on nodes that
    /// carry them all.
    #[arg(
        long,
        env = "TESSERA_LABELS",
        value_delimiter = ',',
        value_name = "K=V"
    )]
    pub labels: Vec<String>,
    /// How long a worker's lease on an attempt lasts without a heartbeat,
    /// in milliseconds; then the attempt is lost and retried elsewhere
    /// [default: 10000].
    #[arg(long, env = "TESSERA_LEASE_MS")]
    pub lease_ms: Option<u64>,
    /// The largest upload the API accepts, in bytes [default: 8 GiB].
    #[arg(long, env = "TESSERA_MAX_UPLOAD_BYTES")]
    pub max_upload_bytes: Option<u64>,
    /// A directory encodes may read files from in place, as NAME=DIR
    /// (repeatable; TESSERA_VOLUMES takes NAME=DIR,NAME=DIR). Adds to the
    /// file's [volumes], replacing a volume of the same name.
    #[arg(
        long = "volume",
        value_name = "NAME=DIR",
        env = "TESSERA_VOLUMES",
        value_delimiter = ','
    )]
    pub volumes: Vec<String>,
    /// A volume tasks may also write in (mounted into their containers
    /// read-write), as NAME=DIR (repeatable; TESSERA_WRITABLE_VOLUMES takes
    /// NAME=DIR,NAME=DIR). Adds to the file's [writable_volumes].
    #[arg(
        long = "writable-volume",
        value_name = "NAME=DIR",
        env = "TESSERA_WRITABLE_VOLUMES",
        value_delimiter = ','
    )]
    pub writable_volumes: Vec<String>,
    /// The uids projects' tasks run as, FIRST-LAST: project N's tasks run
    /// as uid FIRST+N (group the same), so no project reads another's
    /// files. Needs a server running as root, which uses them always
    /// [default: 200000-299999].
    #[arg(long, value_name = "FIRST-LAST", env = "TESSERA_TASK_UIDS")]
    pub task_uids: Option<String>,
    /// Run tasks that name a container image on this machine's Docker
    /// engine (DOCKER_HOST or /var/run/docker.sock); the server refuses to
    /// start if the engine does not answer [default: off; such tasks are
    /// refused at submission].
    #[arg(long, env = "TESSERA_DOCKER", num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub docker: Option<bool>,
    /// Also serve the Docker Engine API (the docker CLI, Swarm-classic
    /// `waitfor`s) on HOST:PORT or unix:PATH; containers need --docker or
    /// workers offering docker [default: off].
    #[arg(long, env = "TESSERA_DOCKER_API", value_name = "ADDR")]
    pub docker_api: Option<String>,
    /// A TOML configuration file (see tessera.sample.toml).
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(flatten)]
    pub http: crate::http_limits::HttpArgs,
}

/// The same fields, as the configuration file spells them.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<SocketAddr>,
    data_dir: Option<PathBuf>,
    database: Option<String>,
    slots: Option<u32>,
    workers: Option<bool>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    lease_ms: Option<u64>,
    max_upload_bytes: Option<u64>,
    #[serde(default)]
    volumes: BTreeMap<String, PathBuf>,
    #[serde(default)]
    writable_volumes: BTreeMap<String, PathBuf>,
    task_uids: Option<String>,
    /// Replaced by `task_uids`; refused with a message saying so.
    run_as: Option<String>,
    docker: Option<bool>,
    docker_api: Option<String>,
    #[serde(default)]
    http: crate::http_limits::HttpFile,
}

/// The settled configuration.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub database: Database,
    /// 0: tasks run on workers only.
    pub slots: u32,
    /// Whether workers take part (always with 0 slots).
    pub workers: bool,
    /// The labels of the server's own node (with workers).
    pub labels: BTreeMap<String, String>,
    /// A worker's lease on an attempt without a heartbeat.
    pub lease: std::time::Duration,
    pub max_upload_bytes: u64,
    /// Volumes by name; relative directories are taken from the working
    /// directory.
    pub volumes: BTreeMap<String, PathBuf>,
    /// The names of the volumes tasks may write in (among `volumes`).
    pub writable: std::collections::BTreeSet<String>,
    /// The uids projects' tasks run as, as given (checked by
    /// [`task_users`](Self::task_users) when the server starts, not here:
    /// `tessera admin` reads the same configuration).
    pub task_uids: Option<String>,
    /// Whether container tasks run on the local Docker engine.
    pub docker: bool,
    /// Where the Docker Engine API listens, if anywhere.
    pub docker_api: Option<tessera_dockerapi::Listen>,
    /// Connection and request limits (`[http]`).
    pub http: tessera_api::HttpLimits,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl ServerConfig {
    /// Flags and environment (already merged by clap) over the file over defaults.
    pub fn resolve(args: &ServerArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen = match args.listen.or(file.listen) {
            Some(l) => l,
            None => DEFAULT_LISTEN.parse().expect("valid default"),
        };
        let data_dir = match args.data_dir.clone().or(file.data_dir) {
            Some(d) => d,
            None => default_data_dir()?,
        };
        let data_dir = std::path::absolute(&data_dir)
            .map_err(|e| Failure::env(format!("{}: {e}", data_dir.display())))?;
        let database = match args.database.clone().or(file.database) {
            Some(url) => parse_database(&url)?,
            None => Database::Sqlite(data_dir.join("tessera.db")),
        };
        let slots = args
            .slots
            .or(file.slots)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get() as u32));
        let workers = slots == 0 || args.workers.or(file.workers).unwrap_or(false);
        let mut labels = file.labels;
        for spec in &args.labels {
            match spec.split_once('=') {
                Some((k, v)) if !k.is_empty() => {
                    labels.insert(k.to_string(), v.to_string());
                }
                _ => {
                    return Err(Failure::input(format!(
                        "--labels {spec:?}: give labels as k=v,k=v, e.g. --labels gpu=yes,zone=a"
                    )))
                }
            }
        }
        let lease_ms = args.lease_ms.or(file.lease_ms).unwrap_or(10_000);
        if lease_ms < 100 {
            return Err(Failure::input(format!(
                "lease_ms {lease_ms} is too short; give at least 100"
            )));
        }
        let max_upload_bytes = args
            .max_upload_bytes
            .or(file.max_upload_bytes)
            .unwrap_or(tessera_api::DEFAULT_MAX_UPLOAD);
        let mut volumes = file.volumes;
        for spec in &args.volumes {
            let (name, dir) = parse_volume(spec)?;
            volumes.insert(name, dir);
        }
        let mut writable = std::collections::BTreeSet::new();
        let flags = args.writable_volumes.iter().map(|s| parse_volume(s));
        for entry in file.writable_volumes.into_iter().map(Ok).chain(flags) {
            let (name, dir) = entry?;
            writable.insert(name.clone());
            volumes.insert(name, dir);
        }
        if file.run_as.is_some() {
            return Err(Failure::input(
                "run_as is gone: as root, each project's tasks now run as a uid of its own \
                 (task_uids, default 200000-299999); remove run_as from the config file",
            ));
        }
        let task_uids = args.task_uids.clone().or(file.task_uids);
        let docker = args.docker.or(file.docker).unwrap_or(false);
        let http = crate::http_limits::resolve(&args.http, &file.http)?;
        Ok(Self {
            listen,
            data_dir,
            database,
            slots,
            workers,
            labels,
            lease: std::time::Duration::from_millis(lease_ms),
            max_upload_bytes,
            volumes,
            writable,
            task_uids,
            docker,
            docker_api: crate::docker_api::address(
                args.docker_api.as_ref().or(file.docker_api.as_ref()),
            )?,
            http,
        })
    }
}

/// `NAME=DIR` of `--volume`.
fn parse_volume(spec: &str) -> Result<(String, PathBuf)> {
    match spec.split_once('=') {
        Some((name, dir)) if !name.is_empty() && !dir.is_empty() => {
            Ok((name.to_string(), PathBuf::from(dir)))
        }
        _ => Err(Failure::input(format!(
            "--volume {spec:?}: give it as NAME=DIR, e.g. --volume media=/srv/media"
        ))),
    }
}

impl ServerConfig {
    /// The uids projects' tasks run as: as root, the configured range (or
    /// the default), checked; otherwise none (tasks run as this process's
    /// user), and a range given anyway is refused, since it cannot be used.
    pub fn task_users(&self) -> Result<Option<tessera_exec::TaskUids>> {
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match (&self.task_uids, root) {
            (Some(range), true) => tessera_exec::TaskUids::parse(range)
                .map(Some)
                .map_err(Failure::input),
            (None, true) => {
                let uids = tessera_exec::TaskUids::DEFAULT;
                uids.check().map_err(|e| {
                    Failure::input(format!("{e}; set another range with --task-uids"))
                })?;
                Ok(Some(uids))
            }
            (Some(range), false) => Err(Failure::input(format!(
                "--task-uids {range}: switching tasks to other uids needs a server running \
                 as root; start it as root, or leave task uids out"
            ))),
            (None, false) => Ok(None),
        }
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Failure::input(format!(
            "cannot read the config file {}: {e}",
            path.display()
        ))
    })?;
    toml::from_str(&text).map_err(|e| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
        let at = line.map_or(String::new(), |l| format!(" (line {l})"));
        Failure::input(format!(
            "config file {}: {}{at}",
            path.display(),
            e.message()
        ))
    })
}

pub fn parse_database(url: &str) -> Result<Database> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    {
        if path.is_empty() {
            return Err(Failure::input(
                "--database sqlite: needs a file path, e.g. sqlite:/var/lib/tessera/tessera.db",
            ));
        }
        return Ok(Database::Sqlite(PathBuf::from(path)));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(Database::Postgres(url.to_string()));
    }
    Err(Failure::input(format!(
        "unsupported database URL {url:?}: use sqlite:PATH or postgres://user:password@host/database"
    )))
}

pub fn default_data_dir() -> Result<PathBuf> {
    crate::dirs::state_home()
        .map(|d| d.join("tessera/server"))
        .ok_or_else(|| Failure::env("cannot choose a data directory: set --data-dir or HOME"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_beat_the_file_and_the_file_beats_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:7000\"\nslots = 3\ndata_dir = \"/srv/t\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            slots: Some(5),
            ..Default::default()
        };
        let c = ServerConfig::resolve(&args).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.slots, 5);
        assert_eq!(c.max_upload_bytes, tessera_api::DEFAULT_MAX_UPLOAD);
        assert_eq!(c.data_dir, PathBuf::from("/srv/t"));
        assert_eq!(
            c.database,
            Database::Sqlite(PathBuf::from("/srv/t/tessera.db"))
        );
    }

    #[test]
    fn volume_flags_add_to_and_replace_the_files_volumes() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(
            &file,
            "[volumes]\nmedia = \"/srv/media\"\narchive = \"/mnt/archive\"\n",
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(file),
            volumes: vec!["media=/data/media".into(), "inbox=/in".into()],
            ..Default::default()
        };
        let c = ServerConfig::resolve(&args).unwrap();
        let got: Vec<(&str, &str)> = c
            .volumes
            .iter()
            .map(|(k, v)| (k.as_str(), v.to_str().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("archive", "/mnt/archive"),
                ("inbox", "/in"),
                ("media", "/data/media")
            ]
        );
        let err = ServerConfig::resolve(&ServerArgs {
            volumes: vec!["nodir".into()],
            data_dir: Some(dir.path().into()),
            ..Default::default()
        })
        .unwrap_err();
        assert!(err.message.contains("NAME=DIR"), "{}", err.message);
        let err =
            tessera_api::Volumes::new([("media".into(), dir.path().join("none"))]).unwrap_err();
        assert!(err.starts_with("volume media: "), "{err}");
    }

    #[test]
    fn task_uids_are_used_as_root_refused_otherwise_and_run_as_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "run_as = \"nobody\"\n").unwrap();
        let args = ServerArgs {
            config: Some(file.clone()),
            data_dir: Some(dir.path().into()),
            ..Default::default()
        };
        let err = ServerConfig::resolve(&args).unwrap_err();
        assert!(err.message.starts_with("run_as is gone"), "{}", err.message);
        std::fs::write(&file, "task_uids = \"300000-300099\"\n").unwrap();
        let config = ServerConfig::resolve(&args).unwrap();
        // SAFETY: geteuid has no preconditions.
        let root = unsafe { libc::geteuid() } == 0;
        match config.task_users() {
            Ok(Some(u)) => assert!(root && (u.first, u.last) == (300_000, 300_099)),
            Err(e) => assert!(!root && e.message.contains("needs a server running as root")),
            Ok(None) => panic!("a range given was ignored"),
        }
        // The flag beats the file; a bad range is one line.
        let bad = ServerArgs {
            task_uids: Some("10-5".into()),
            ..args
        };
        let err = ServerConfig::resolve(&bad)
            .unwrap()
            .task_users()
            .unwrap_err();
        assert!(
            err.message.starts_with("task uids") || !root,
            "{}",
            err.message
        );
        let default = ServerConfig::resolve(&ServerArgs::default()).unwrap();
        assert_eq!(
            default.task_users().unwrap(),
            root.then_some(tessera_exec::TaskUids::DEFAULT)
        );
    }

    #[test]
    fn bad_config_is_named_precisely() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("t.toml");
        std::fs::write(&file, "listne = \"x\"\n").unwrap();
        let err = ServerConfig::resolve(&ServerArgs {
            config: Some(file),
            ..Default::default()
        })
        .unwrap_err();
        assert!(
            err.message.contains("unknown field `listne`"),
            "{}",
            err.message
        );
        let err = parse_database("mysql://x").unwrap_err();
        assert!(
            err.message.starts_with("unsupported database URL"),
            "{}",
            err.message
        );
        assert_eq!(
            parse_database("sqlite:/a/b.db").unwrap(),
            Database::Sqlite("/a/b.db".into())
        );
    }
}
