//! Why a job spec (or an expansion) is refused.

use tessera_types::JobId;

/// Why a job spec (or an expansion) was refused. Each message names the task
/// and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("the job has no tasks")]
    Empty,
    /// A mount that cannot be: no image to mount it in, a bad target or
    /// subpath, a volume the server does not have, a read-only one written.
    #[error("task {task:?}: {reason}")]
    BadMount { task: String, reason: String },
    /// Placement rules out of bounds (see `PlaceRule::check`).
    #[error("task {task:?}: {reason}")]
    BadPlacement { task: String, reason: String },
    #[error("task #{0} has an empty name")]
    EmptyName(usize),
    #[error("two tasks are named {0:?}; task names must be unique within a job")]
    DuplicateName(String),
    #[error("task {task:?}: dependency {selector:?} matches no task")]
    NoMatch { task: String, selector: String },
    #[error("task {task:?}: invalid regex in dependency {selector:?}: {error}")]
    BadRegex {
        task: String,
        selector: String,
        error: String,
    },
    #[error("task {0:?} depends on itself")]
    SelfDependency(String),
    /// The tasks of a cycle, each waiting for the next (the first again at
    /// the end), as [`cycle_text`](crate::dag::cycle_text) writes them.
    #[error("the dependencies form a cycle: {0} (each waits for the next, so none can start)")]
    Cycle(String),
    #[error("task {task:?} asks for {cpu} cpu slots but only {capacity} exist")]
    TooBig {
        task: String,
        cpu: u32,
        capacity: u32,
    },
    #[error("task {0:?} asks for 0 cpu slots; ask for at least 1")]
    ZeroCpu(String),
    #[error("task {0:?}: a command needs at least a program name")]
    EmptyCommand(String),
    #[error("task {0:?}: a script needs some text")]
    EmptyScript(String),
    #[error("task {0:?}: the script's shell is empty; omit `shell` to use /bin/sh")]
    EmptyShell(String),
    #[error(
        "task {task:?} names the container image {image:?}; container tasks need a Docker \
         engine, and this server runs without one (start it with --docker, or remove `image` to run \
         the command on the host)"
    )]
    ImageUnsupported { task: String, image: String },
    #[error(
        "task {task:?} asks for gpus: {gpus}, but this machine offers no GPUs; \
         remove `resources.gpus`"
    )]
    NoGpus { task: String, gpus: u32 },
    #[error("task {task:?}: {reason}")]
    BadArray { task: String, reason: String },
    #[error("task {task:?} is an array of {size} tasks; at most {max} are allowed")]
    ArrayTooBig { task: String, size: u64, max: u64 },
    #[error(
        "task {0:?} is an array task, but arrays are expanded only when a job is submitted \
         (an expansion may not add array tasks)"
    )]
    Uncompiled(String),
    #[error("task {task:?} uses ${{params.{param}}}, but the job has no parameter {param:?}")]
    UnknownParam { task: String, param: String },
    #[error("task {task:?} uses ${{array.{field}}}, but it is not an array task")]
    NotAnArray { task: String, field: String },
    #[error(
        "task {task:?} uses ${{array.{field}}}; only ${{array.index}} and ${{array.count}} exist"
    )]
    UnknownArrayField { task: String, field: String },
    #[error("task {task:?}: {text:?} has no closing \"}}\"")]
    Unterminated { task: String, text: String },
    #[error("task {0:?}: time_limit_ms must be at least 1 (omit it for no limit)")]
    ZeroTimeLimit(String),
    #[error("task {task:?} asks for {retries} retries; at most {max} are allowed")]
    TooManyRetries {
        task: String,
        retries: u32,
        max: u32,
    },
    #[error("task {task:?}: retry.{field} is {ms} ms; at most {max} ms (a day) is allowed")]
    BackoffTooLong {
        task: String,
        field: &'static str,
        ms: u64,
        max: u64,
    },
    #[error(
        "task {task:?} asks for {memory_mb} MiB of memory; at most {max} MiB (16 TiB) may be asked for"
    )]
    TooMuchMemory {
        task: String,
        memory_mb: u64,
        max: u64,
    },
    #[error(
        "task {task:?}…: its name is too long: as a folder name it takes {bytes} bytes, at most \
         {max} are allowed (bytes other than letters, digits, '-', '_' and '.' take 3)"
    )]
    NameTooLong {
        task: String,
        bytes: usize,
        max: usize,
    },
    #[error(
        "the job's dependencies need more than {max} links (at least {links}): each distinct \
         selector costs one link per task it matches, and each task one per selector it names; \
         depend on an array by its name or share one glob instead of many distinct selectors"
    )]
    TooManyLinks { links: usize, max: usize },
    #[error(
        "the job's glob and regex dependencies need {patterns} distinct patterns x {tasks} \
         task names = {matches} matches, more than the {max} allowed; use fewer distinct patterns"
    )]
    TooManyPatternMatches {
        patterns: usize,
        tasks: usize,
        matches: usize,
        max: usize,
    },
    #[error(
        "job dependency {selector:?} matches no job of this project; name an existing job of \
         the project by its id or its name (`encode*` or `re:REGEX` for several)"
    )]
    NoJobMatch { selector: String },
    #[error("job dependency {selector:?}: invalid regex: {error}")]
    BadJobRegex { selector: String, error: String },
    #[error(
        "job dependency {selector:?} carries `resolved`, which the scheduler writes at \
         submission; remove it"
    )]
    ResolvedGiven { selector: String },
    #[error("job dependency {selector:?} was not resolved to jobs before the job was submitted")]
    Unresolved { selector: String },
    #[error(
        "job dependency {selector:?} names job {job}, which this scheduler neither runs nor \
         knows the end of"
    )]
    UnknownParent { selector: String, job: JobId },
    #[error("the job names {count} job dependencies; at most {max} are allowed")]
    TooManyJobDeps { count: usize, max: usize },
    #[error(
        "the job's dependencies match {count} jobs; at most {max} are allowed (narrow the \
         selectors)"
    )]
    TooManyParentJobs { count: usize, max: usize },
    #[error(
        "the job's name patterns need {patterns} distinct patterns x {jobs} job names = \
         {matches} matches, more than the {max} allowed; use fewer distinct patterns"
    )]
    TooManyJobMatches {
        patterns: usize,
        jobs: usize,
        matches: usize,
        max: usize,
    },
    #[error(
        "the job's dependencies name {count} distinct job name patterns; at most {max} are \
         allowed (name jobs by id or exact name, or share a pattern)"
    )]
    TooManyJobPatterns { count: usize, max: usize },
    #[error("job {0} would wait for itself (a cycle of job dependencies)")]
    JobCycle(JobId),
    #[error(
        "the job's meta holds {count} entries or one of more than {max_entry} bytes; at most \
         {max} entries are allowed"
    )]
    TooMuchMeta {
        count: usize,
        max: usize,
        max_entry: usize,
    },
}
