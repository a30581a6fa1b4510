//! `tessera submit --dry-run`: a job spec checked here, without a server,
//! by the scheduler's own compiler (arrays, templates, task dependencies,
//! cycles), so what passes here fails at submission only for what needs
//! the server (its jobs, projects, volumes, images and quotas).

use crate::fail::{Failure, Result};
use std::path::Path;
use tessera_types::{Condition, JobSpec};

/// Tasks listed one per line; past this, counted.
const LISTED: usize = 40;

pub fn check(file: &Path, body: &[u8], yaml: bool) -> Result<()> {
    let shown = file.display();
    let parsed = if yaml {
        serde_yaml::from_slice::<JobSpec>(body).map_err(|e| e.to_string())
    } else {
        serde_json::from_slice::<JobSpec>(body).map_err(|e| e.to_string())
    };
    let spec = parsed.map_err(|e| Failure::input(format!("{shown}: does not parse: {e}")))?;
    let job = tessera_core::compile(&spec)
        .map_err(|e| Failure::input(format!("{shown}: invalid job: {e}")))?;
    let arrays = spec.tasks.iter().filter(|t| t.array.is_some()).count();
    let expanded = if arrays > 0 {
        format!(
            " ({} as written, {arrays} of them arrays)",
            spec.tasks.len()
        )
    } else {
        String::new()
    };
    println!(
        "{shown}: a valid job {:?} of {} tasks{expanded}",
        job.name,
        job.tasks.len()
    );
    for t in job.tasks.iter().take(LISTED) {
        let deps: Vec<String> = t
            .deps
            .iter()
            .map(|d| match d.condition {
                Condition::Success => d.selector.to_string(),
                c => format!("{} (on {})", d.selector, format!("{c:?}").to_lowercase()),
            })
            .collect();
        if deps.is_empty() {
            println!("  {}", t.name);
        } else {
            println!("  {}  after {}", t.name, deps.join(", "));
        }
    }
    if job.tasks.len() > LISTED {
        println!("  ... and {} more tasks", job.tasks.len() - LISTED);
    }
    if !spec.after.is_empty() {
        println!(
            "it waits for {} job selector(s) (after:), which only the server can resolve: \
             submit it to check them",
            spec.after.len()
        );
    }
    Ok(())
}
