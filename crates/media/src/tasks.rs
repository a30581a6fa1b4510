//! The encode DAG as task specs: `probe -> plan`, then what `plan` expands to.

use crate::request::EncodeRequest;
use crate::workdir::Plan;
use std::path::Path;
use tessera_types::{Action, Grant, TaskSpec};

fn op(name: &str, workdir: &Path, extra: &[String]) -> Action {
    let mut args = vec![
        "--workdir".to_string(),
        workdir.to_string_lossy().into_owned(),
    ];
    args.extend_from_slice(extra);
    Action::op(name, args)
}

/// The tasks an encode job starts with: `probe`, then `plan` (which expands).
pub fn initial_tasks(workdir: &Path) -> Vec<TaskSpec> {
    vec![
        TaskSpec::new("probe", op("probe", workdir, &[])).with_priority(100),
        TaskSpec::new("plan", op("plan", workdir, &[]))
            .after("probe")
            .expanding()
            .with_priority(100),
    ]
}

/// What an encode job's tasks may touch besides their job's folder (see
/// [`Reach`](tessera_types::Reach)): its workdir, its source (read), its
/// output and the temporary output beside it. The job's spec carries them
/// as grants.
pub fn encode_grants(workdir: &Path, req: &EncodeRequest) -> Vec<Grant> {
    if req.ladder.is_some() {
        // A ladder is a folder, built beside its place and renamed into it.
        return vec![
            Grant::write(workdir).folder(),
            Grant::read(&req.input),
            Grant::write(&req.output).folder(),
            Grant::write(crate::workdir::temp_output(&req.output)).folder(),
        ];
    }
    vec![
        Grant::write(workdir).folder(),
        Grant::read(&req.input),
        Grant::write(&req.output),
        Grant::write(crate::workdir::temp_output(&req.output)),
    ]
}

/// Name of the task that encodes chunk `n`.
pub fn chunk_task_name(n: u32) -> String {
    format!("encode-chunk-{n:04}")
}

/// The chunk a task encodes, from its name ([`chunk_task_name`]'s
/// inverse): `encode-chunk-0007` -> 7; `None` for any other task.
pub fn chunk_of_task(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("encode-chunk-")?;
    // A ladder's: `encode-chunk-0007-720p`.
    let digits = rest.split_once('-').map_or(rest, |(d, _)| d);
    digits.parse().ok()
}

/// Name of the task that encodes chunk `n` of a ladder's rendition `name`.
pub fn rendition_chunk_task_name(n: u32, rendition: &str) -> String {
    format!("encode-chunk-{n:04}-{rendition}")
}

/// The tasks `plan` adds: one per chunk (longest first), `encode-audio` if
/// some audio stream needs encoding (copied ones go straight to the mux), `concat` after all of them, `verify` after `concat`.
pub fn follow_on_tasks(workdir: &Path, plan: &Plan, req: &EncodeRequest) -> Vec<TaskSpec> {
    let longest = plan
        .chunks
        .iter()
        .map(|c| c.count)
        .max()
        .unwrap_or(1)
        .max(1);
    let cpu = req.settings.threads_per_chunk.max(1);
    let mut tasks: Vec<TaskSpec> = plan
        .chunks
        .iter()
        .map(|c| {
            let priority = 10 + (80 * u64::from(c.count) / u64::from(longest)) as i32;
            TaskSpec::new(
                chunk_task_name(c.index),
                op(
                    "encode-chunk",
                    workdir,
                    &["--chunk".into(), c.index.to_string()],
                ),
            )
            .with_priority(priority)
            .with_retries(2, 1_000)
            .with_cpu(cpu)
        })
        .collect();
    let mut concat = TaskSpec::new("concat", op("concat", workdir, &[]))
        .after("encode-chunk-*")
        .with_priority(95);
    if plan.audio.as_ref().is_some_and(|a| a.needs_encode()) {
        // One long task: start it first so it never ends up last.
        tasks.push(
            TaskSpec::new("encode-audio", op("encode-audio", workdir, &[]))
                .with_priority(100)
                .with_retries(2, 1_000),
        );
        concat = concat.after("encode-audio");
    }
    tasks.push(concat.with_retries(1, 1_000));
    tasks.push(
        TaskSpec::new("verify", op("verify", workdir, &[]))
            .after("concat")
            .with_priority(95),
    );
    tasks
}

#[cfg(test)]
mod tests {
    #[test]
    fn chunk_names_read_back() {
        assert_eq!(super::chunk_of_task(&super::chunk_task_name(42)), Some(42));
        assert_eq!(super::chunk_of_task("encode-chunk-0042"), Some(42));
        assert_eq!(super::chunk_of_task("encode-audio"), None);
        assert_eq!(
            super::chunk_of_task(&super::rendition_chunk_task_name(7, "720p")),
            Some(7)
        );
    }
}
