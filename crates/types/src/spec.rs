//! What a user (or a planner task) asks for: jobs made of tasks, with
//! dependencies, resources, retries and time limits.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

/// A job: a named DAG of tasks. Dependencies refer to tasks by name.
///
/// A spec as written may use array tasks and `${params.NAME}` templates;
/// `tessera_core::compile` expands and substitutes them, and the compiled
/// spec (no arrays, no templates) is what the store and scheduler hold.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobSpec {
    pub name: String,
    /// Template parameters, substituted for `${params.NAME}` in argv, op
    /// arguments, scripts, env values and images when the job is compiled.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
    pub tasks: Vec<TaskSpec>,
    /// Paths beyond its own folder that the job's tasks may use (see
    /// [`Reach`](crate::Reach)): given by the service that builds the job
    /// (an encode grants its source, workdir and output), never by a
    /// client; the API refuses specs that carry any.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grants: Vec<crate::Grant>,
    /// Other jobs of its project it waits for (see
    /// [`JobDependency`](crate::JobDependency)): nothing of it starts until
    /// they have ended as their conditions accept, and it is skipped (it
    /// ends cancelled) once one of them ended in a way its condition rejects.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub after: Vec<crate::JobDependency>,
    /// What a foreign API keeps about the job for itself (a Go-Docker
    /// job's description and tags...): opaque to the scheduler, stored with
    /// the job and shown back as it was given. Bounded by
    /// `tessera_core::compile` ([`MAX_META`] entries).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub meta: BTreeMap<String, String>,
}

/// The most entries a job's [`JobSpec::meta`] may hold, and the longest
/// key plus value, in bytes.
pub const MAX_META: usize = 32;
pub const MAX_META_ENTRY: usize = 4096;

impl JobSpec {
    pub fn new(name: impl Into<String>, tasks: Vec<TaskSpec>) -> Self {
        Self {
            name: name.into(),
            params: BTreeMap::new(),
            tasks,
            grants: Vec::new(),
            after: Vec::new(),
            meta: BTreeMap::new(),
        }
    }

    /// Waits for other jobs of its project as `dep` says.
    pub fn after_job(mut self, dep: crate::JobDependency) -> Self {
        self.after.push(dep);
        self
    }

    pub fn with_param(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.params.insert(key.into(), value.into());
        self
    }
}

/// One node of the DAG.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskSpec {
    /// Unique within the job; selectors match against it.
    pub name: String,
    pub action: Action,
    /// A container image to run the action in. Refused at validation until
    /// the server has a Docker executor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Makes this entry an array of tasks, expanded when the job is compiled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub array: Option<ArraySpec>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default)]
    pub resources: Resources,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deps: Vec<Dependency>,
    #[serde(default)]
    pub retry: RetryPolicy,
    /// Wall-clock limit per attempt; the attempt is killed and counts as failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_limit_ms: Option<u64>,
    /// Higher runs first among ready tasks (0-100 by convention).
    #[serde(default)]
    pub priority: i32,
    /// The task may add tasks to its job when it succeeds: it writes a JSON
    /// list of `TaskSpec` to the file named by `TESSERA_EXPAND`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub expands: bool,
    /// Volumes the operator configured, mounted into the task's container
    /// (a task with mounts needs an image).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mounts: Vec<crate::Mount>,
}

impl TaskSpec {
    pub fn new(name: impl Into<String>, action: Action) -> Self {
        Self {
            name: name.into(),
            action,
            image: None,
            array: None,
            env: BTreeMap::new(),
            resources: Resources::default(),
            deps: Vec::new(),
            retry: RetryPolicy::default(),
            time_limit_ms: None,
            priority: 0,
            expands: false,
            mounts: Vec::new(),
        }
    }

    /// Depends on `selector` finishing successfully.
    pub fn after(self, selector: &str) -> Self {
        self.after_if(selector, Condition::Success)
    }

    /// Depends on `selector` ending in a way `condition` accepts.
    ///
    /// # Panics
    /// When `selector` is not a valid selector string; use
    /// [`Selector::from_str`] for untrusted input.
    pub fn after_if(mut self, selector: &str, condition: Condition) -> Self {
        let selector = selector.parse().expect("valid selector");
        self.deps.push(Dependency {
            selector,
            condition,
        });
        self
    }

    pub fn with_retries(mut self, retries: u32, backoff_ms: u64) -> Self {
        self.retry = RetryPolicy {
            retries,
            backoff_ms,
            backoff_max_ms: backoff_ms.max(1) * 64,
        };
        self
    }

    pub fn with_priority(mut self, priority: i32) -> Self {
        self.priority = priority;
        self
    }

    pub fn with_time_limit_ms(mut self, ms: u64) -> Self {
        self.time_limit_ms = Some(ms);
        self
    }

    pub fn with_cpu(mut self, cpu: u32) -> Self {
        self.resources.cpu = cpu;
        self
    }

    pub fn with_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(key.into(), value.into());
        self
    }

    pub fn expanding(mut self) -> Self {
        self.expands = true;
        self
    }

    pub fn with_image(mut self, image: impl Into<String>) -> Self {
        self.image = Some(image.into());
        self
    }

    pub fn with_gpus(mut self, gpus: u32) -> Self {
        self.resources.gpus = gpus;
        self
    }

    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.resources.labels.insert(key.into(), value.into());
        self
    }

    pub fn with_array(mut self, array: ArraySpec) -> Self {
        self.array = Some(array);
        self
    }
}

/// Indices of an array task: `{ count: N }` (0 to N-1) or
/// `{ start: A, end: B }` (A to B inclusive). Exactly one form is allowed;
/// `tessera_core::compile` checks it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArraySpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<u64>,
}

impl ArraySpec {
    /// Indices 0 to `n - 1`.
    pub fn count(n: u64) -> Self {
        Self {
            count: Some(n),
            ..Self::default()
        }
    }

    /// Indices `start` to `end`, both included.
    pub fn range(start: u64, end: u64) -> Self {
        Self {
            count: None,
            start: Some(start),
            end: Some(end),
        }
    }
}

/// What an attempt runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Action {
    /// A built-in media operation, run as `tessera op <op> <args...>`.
    Op { op: String, args: Vec<String> },
    /// A program and its arguments, run directly (never through a shell).
    Command { argv: Vec<String> },
    /// A script, run as `<shell> -c <script>`; the only action that uses a
    /// shell. The shell defaults to [`DEFAULT_SHELL`].
    Script {
        script: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        shell: Option<String>,
    },
    /// Does nothing and succeeds; for tests and benchmarks of the scheduler.
    Noop,
}

/// The shell a [`Action::Script`] runs in unless it names another.
pub const DEFAULT_SHELL: &str = "/bin/sh";

impl Action {
    pub fn script(script: impl Into<String>) -> Self {
        Action::Script {
            script: script.into(),
            shell: None,
        }
    }

    pub fn command<I, S>(argv: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Action::Command {
            argv: argv.into_iter().map(Into::into).collect(),
        }
    }

    pub fn op<I, S>(op: &str, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Action::Op {
            op: op.to_string(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }
}

/// Resources an attempt needs while it runs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    /// CPU slots (whole cores).
    #[serde(default = "one")]
    pub cpu: u32,
    /// Memory in MiB; 0 means "not stated".
    #[serde(default)]
    pub memory_mb: u64,
    /// GPUs; recorded and validated (this machine offers none yet).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gpus: u32,
    /// Labels the node that runs it must all carry (a worker's `--labels`,
    /// or the server's own with `--workers`). Enforced when workers take
    /// part; a server running tasks only on its own slots ignores them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Further placement rules among workers: labels the node must not
    /// carry, the nodes other jobs ran on; hard or soft (see
    /// [`PlaceRule`](crate::PlaceRule)). Ignored like `labels` without workers.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<crate::PlaceRule>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn one() -> u32 {
    1
}

impl Default for Resources {
    fn default() -> Self {
        Self {
            cpu: 1,
            memory_mb: 0,
            gpus: 0,
            labels: BTreeMap::new(),
            rules: Vec::new(),
        }
    }
}

/// How often and how patiently a failed task is tried again.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Further attempts after the first failure. Lost attempts (the node or
    /// the scheduler went away) do not count.
    #[serde(default)]
    pub retries: u32,
    /// Delay before the first retry; doubles for each further one.
    #[serde(default = "default_backoff")]
    pub backoff_ms: u64,
    #[serde(default = "default_backoff_max")]
    pub backoff_max_ms: u64,
}

fn default_backoff() -> u64 {
    1_000
}

fn default_backoff_max() -> u64 {
    60_000
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            retries: 0,
            backoff_ms: default_backoff(),
            backoff_max_ms: default_backoff_max(),
        }
    }
}

impl RetryPolicy {
    /// Delay before attempt `next` (2 for the first retry).
    pub fn backoff_before(&self, next: u32) -> u64 {
        let doublings = next.saturating_sub(2).min(32);
        self.backoff_ms
            .saturating_mul(1u64 << doublings)
            .min(self.backoff_max_ms.max(self.backoff_ms))
    }
}

/// An edge of the DAG: which tasks (by selector) and on what terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dependency {
    pub selector: Selector,
    #[serde(default)]
    pub condition: Condition,
}

/// How a dependency's end must look for the dependent to run.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Condition {
    /// Run only if the parent succeeded (the default).
    #[default]
    Success,
    /// Run whatever the parent's end.
    Any,
    /// Run only if the parent failed: an error handler.
    Failure,
}

/// Names the tasks a dependency waits for. Written as a string:
/// `encode-3` (exact), `encode-*` (glob: `*`, `?`, `[...]`), `re:^encode-\d+$` (regex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Selector {
    Name(String),
    Glob(String),
    Regex(String),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    #[error("empty dependency selector")]
    Empty,
}

impl FromStr for Selector {
    type Err = SelectorError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() {
            return Err(SelectorError::Empty);
        }
        if let Some(re) = s.strip_prefix("re:") {
            Ok(Selector::Regex(re.to_string()))
        } else if s.contains(['*', '?', '[']) {
            Ok(Selector::Glob(s.to_string()))
        } else {
            Ok(Selector::Name(s.to_string()))
        }
    }
}

impl fmt::Display for Selector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Selector::Name(s) | Selector::Glob(s) => f.write_str(s),
            Selector::Regex(r) => write!(f, "re:{r}"),
        }
    }
}

impl Serialize for Selector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Selector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_parse_by_shape() {
        assert_eq!("encode-1".parse(), Ok(Selector::Name("encode-1".into())));
        assert_eq!("encode-*".parse(), Ok(Selector::Glob("encode-*".into())));
        assert_eq!("re:^a\\d$".parse(), Ok(Selector::Regex("^a\\d$".into())));
        assert_eq!("".parse::<Selector>(), Err(SelectorError::Empty));
        assert_eq!(Selector::Regex("x".into()).to_string(), "re:x");
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = RetryPolicy {
            retries: 5,
            backoff_ms: 100,
            backoff_max_ms: 350,
        };
        assert_eq!(p.backoff_before(2), 100);
        assert_eq!(p.backoff_before(3), 200);
        assert_eq!(p.backoff_before(4), 350);
    }

    #[test]
    fn specs_round_trip_through_json_and_refuse_unknown_fields() {
        let spec = JobSpec::new(
            "j",
            vec![
                TaskSpec::new("a", Action::op("probe", ["x.mkv"])),
                TaskSpec::new("b", Action::Noop)
                    .after_if("a*", Condition::Any)
                    .with_retries(2, 10),
            ],
        );
        let json = serde_json::to_string(&spec).unwrap();
        assert_eq!(serde_json::from_str::<JobSpec>(&json).unwrap(), spec);
        let bad = r#"{"name":"j","tasks":[],"colour":1}"#;
        let err = serde_json::from_str::<JobSpec>(bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unknown field `colour`"), "{err}");
    }
}
