//! The limits a job spec is held to, in one place, each with its reason.
//!
//! They are checked when a job is compiled ([`compile`](crate::compile),
//! so before the store sees it) and when a task adds tasks (an expansion).
//! A job restored after a restart is not checked again: it was accepted
//! once, and refusing it now would lose it.

use crate::dag::SpecError;
use tessera_types::{folder_name, TaskSpec};

/// The most tasks one array may expand to.
pub const MAX_ARRAY: u64 = 100_000;

/// The most dependency links one job may hold. A link is one task a fan-in
/// waits for, or one task waiting on a fan-in. Tasks that name the same
/// selector with the same condition share one fan-in, so an array waiting
/// for an array of N costs 2·N links, not N²; what this bounds is many
/// *distinct* selectors each matching many tasks (S selectors over N tasks
/// cost S·N, which no sharing can reduce). A link costs about 8 bytes in the
/// scheduler: 2,000,000 of them are 16 MB. The encode DAG of a
/// 10,000-chunk video needs about 30,000.
pub const MAX_LINKS: usize = 2_000_000;

/// The most (pattern, task name) matches the glob and regex selectors of one
/// batch (a job as submitted, or one expansion) may take: each distinct
/// pattern is matched against every task name of the job once. A match
/// takes well under a microsecond, so this keeps a submission from holding
/// the scheduler for more than a few seconds (an array of 100,000 tasks
/// leaves room for 200 distinct patterns).
pub const MAX_PATTERN_MATCHES: usize = 20_000_000;

/// The most job dependencies (entries of `JobSpec::after`) one job may
/// name. Go-Docker's `--parent` lists one job id per parent: a merge after
/// 10,000 encodes names 10,000.
pub const MAX_JOB_DEPS: usize = 10_000;

/// The most parent jobs one job's dependencies may match, counted per
/// dependency. While the job waits, each costs the scheduler about 50 bytes
/// (a fan-in member and an entry in the index by parent), and its stored
/// spec a few bytes; 100,000 is 5 MB for one job. A name pattern that
/// matches more (every `encode*` job a project ever ran) is refused rather
/// than waited on.
pub const MAX_JOB_PARENTS: usize = 100_000;

/// The most distinct name patterns (globs and regexes) one job's
/// dependencies may hold. Each is compiled and matched against every job
/// name of the project on the scheduler's thread at submission; a flow
/// names a few (Docker's `waitfor` entries, a merge's `encode*`), and ids
/// and exact names, which are looked up, do not count.
pub const MAX_JOB_PATTERNS: usize = 100;

/// The most retries a task may ask for. Each is a process and a row in the
/// store; a task that failed a hundred times will not succeed on the next
/// try (retry the whole job once the cause is fixed).
pub const MAX_RETRIES: u32 = 100;

/// The longest a retry may back off: a day. Longer is a job that looks hung
/// (and near `u64::MAX` it would never run).
pub const MAX_BACKOFF_MS: u64 = 24 * 60 * 60 * 1000;

/// The most memory a task may ask for, in MiB: 16 TiB. No machine offers
/// more, and it keeps the sums of many tasks' memory (quotas, placement,
/// container limits in bytes) far from overflowing.
pub const MAX_MEMORY_MB: u64 = 16 * 1024 * 1024;

/// The longest a task's folder name ([`folder_name`]: the name with
/// unusual bytes written `%XX`) may be, in bytes. Its log files add
/// `.<attempt>.stdout.log` and must fit the 255 bytes a file name may have.
pub const MAX_FOLDER_NAME: usize = 200;

/// Checks the numbers and the name of a task against the limits above.
pub(crate) fn check_limits(t: &TaskSpec) -> Result<(), SpecError> {
    let task = || t.name.clone();
    if t.time_limit_ms == Some(0) {
        return Err(SpecError::ZeroTimeLimit(task()));
    }
    if t.retry.retries > MAX_RETRIES {
        return Err(SpecError::TooManyRetries {
            task: task(),
            retries: t.retry.retries,
            max: MAX_RETRIES,
        });
    }
    for (field, ms) in [
        ("backoff_ms", t.retry.backoff_ms),
        ("backoff_max_ms", t.retry.backoff_max_ms),
    ] {
        if ms > MAX_BACKOFF_MS {
            return Err(SpecError::BackoffTooLong {
                task: task(),
                field,
                ms,
                max: MAX_BACKOFF_MS,
            });
        }
    }
    if t.resources.memory_mb > MAX_MEMORY_MB {
        return Err(SpecError::TooMuchMemory {
            task: task(),
            memory_mb: t.resources.memory_mb,
            max: MAX_MEMORY_MB,
        });
    }
    let folder = folder_name(&t.name).len();
    if folder > MAX_FOLDER_NAME {
        return Err(SpecError::NameTooLong {
            task: t.name.chars().take(40).collect(),
            bytes: folder,
            max: MAX_FOLDER_NAME,
        });
    }
    Ok(())
}
