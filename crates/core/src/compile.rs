//! From a spec as written to the spec the scheduler runs.
//!
//! [`compile`] expands array tasks into one task per index, substitutes
//! `${params.NAME}` and `${array.index}`/`${array.count}` templates, rewrites
//! a dependency on an array's name into a fan-in on all its elements, and
//! validates the result. It is pure, and it runs once, at submission: the
//! store holds the compiled spec, so a restored job is never expanded twice.
//!
//! Templates are substituted in command argv, op arguments, scripts and
//! their shell, env values and images. Any other `${...}` (a shell's
//! `${HOME}`) and any other `$` are left alone; `$${params.x}` stands for a
//! literal `${params.x}`.

use crate::dag::{resolve, SpecError};
use std::collections::{HashMap, HashSet};
use tessera_types::{Action, ArraySpec, Dependency, JobSpec, Selector, TaskSpec};

/// The most tasks one array may expand to.
pub const MAX_ARRAY: u64 = 100_000;

/// Env var holding an array element's index.
pub const ARRAY_INDEX_ENV: &str = "TESSERA_ARRAY_INDEX";
/// Env var holding the number of elements in the element's array.
pub const ARRAY_COUNT_ENV: &str = "TESSERA_ARRAY_COUNT";

/// Expands arrays, substitutes templates and validates the job, whatever
/// the machine's capacity (see [`Scheduler::compile`](crate::Scheduler::compile)
/// for a check against it).
///
/// ```
/// use tessera_core::compile;
/// use tessera_types::{Action, ArraySpec, JobSpec, TaskSpec};
/// let spec = JobSpec::new("j", vec![
///     TaskSpec::new("enc", Action::command(["enc", "${params.preset}", "${array.index}"]))
///         .with_array(ArraySpec::count(3)),
///     TaskSpec::new("merge", Action::Noop).after("enc"),
/// ]).with_param("preset", "fast");
/// let job = compile(&spec).unwrap();
/// let names: Vec<_> = job.tasks.iter().map(|t| t.name.as_str()).collect();
/// assert_eq!(names, ["enc-0", "enc-1", "enc-2", "merge"]);
/// assert_eq!(job.tasks[2].action, Action::command(["enc", "fast", "2"]));
/// assert_eq!(job.tasks[3].deps.len(), 3); // fan-in on the whole array
/// ```
pub fn compile(spec: &JobSpec) -> Result<JobSpec, SpecError> {
    let offer = crate::dag::Offer {
        cpu: u32::MAX,
        images: false,
    };
    compile_for(spec, offer)
}

pub(crate) fn compile_for(spec: &JobSpec, offer: crate::dag::Offer) -> Result<JobSpec, SpecError> {
    if spec.tasks.is_empty() {
        return Err(SpecError::Empty);
    }
    // Checked on the names as written: an array and a task of the same name
    // would make a dependency on that name ambiguous.
    let mut written = HashSet::with_capacity(spec.tasks.len());
    for t in &spec.tasks {
        if !t.name.is_empty() && !written.insert(t.name.as_str()) {
            return Err(SpecError::DuplicateName(t.name.clone()));
        }
    }
    let mut arrays: HashMap<&str, Vec<String>> = HashMap::new();
    let mut tasks = Vec::with_capacity(spec.tasks.len());
    for t in &spec.tasks {
        let Some(array) = &t.array else {
            tasks.push(render_task(t.clone(), &spec.params, None)?);
            continue;
        };
        let (start, end) = bounds(t, array)?;
        let count = end - start + 1;
        let width = end.to_string().len();
        let mut names = Vec::with_capacity(count as usize);
        for index in start..=end {
            let mut e = t.clone();
            e.array = None;
            e.name = format!("{}-{index:0width$}", t.name);
            e.env.insert(ARRAY_INDEX_ENV.to_string(), index.to_string());
            e.env.insert(ARRAY_COUNT_ENV.to_string(), count.to_string());
            let e = render_task(e, &spec.params, Some(Element { index, count }))?;
            names.push(e.name.clone());
            tasks.push(e);
        }
        arrays.insert(t.name.as_str(), names);
    }
    if !arrays.is_empty() {
        for t in &mut tasks {
            fan_in(&mut t.deps, &arrays);
        }
    }
    resolve(&[], &tasks, offer)?;
    Ok(JobSpec {
        name: spec.name.clone(),
        params: spec.params.clone(),
        tasks,
        grants: spec.grants.clone(),
    })
}

/// The first and last index of an array, checked.
fn bounds(t: &TaskSpec, array: &ArraySpec) -> Result<(u64, u64), SpecError> {
    let bad = |reason: String| SpecError::BadArray {
        task: t.name.clone(),
        reason,
    };
    let (start, end) = match (array.count, array.start, array.end) {
        (Some(0), None, None) => return Err(bad("an array's count must be at least 1".into())),
        (Some(n), None, None) => (0, n - 1),
        (None, Some(start), Some(end)) if end < start => {
            return Err(bad(format!(
                "the array's end ({end}) is before its start ({start})"
            )))
        }
        (None, Some(start), Some(end)) => (start, end),
        _ => {
            return Err(bad(
                "an array needs either `count: N` or both `start: A` and `end: B`".into(),
            ))
        }
    };
    let size = (end - start).saturating_add(1);
    if size > MAX_ARRAY {
        return Err(SpecError::ArrayTooBig {
            task: t.name.clone(),
            size,
            max: MAX_ARRAY,
        });
    }
    Ok((start, end))
}

/// Rewrites each dependency on an array's exact name into one per element.
fn fan_in(deps: &mut Vec<Dependency>, arrays: &HashMap<&str, Vec<String>>) {
    let on_array = |d: &Dependency| matches!(&d.selector, Selector::Name(n) if arrays.contains_key(n.as_str()));
    if !deps.iter().any(on_array) {
        return;
    }
    let old = std::mem::take(deps);
    for d in old {
        match &d.selector {
            Selector::Name(n) if arrays.contains_key(n.as_str()) => {
                deps.extend(arrays[n.as_str()].iter().map(|e| Dependency {
                    selector: Selector::Name(e.clone()),
                    condition: d.condition,
                }))
            }
            _ => deps.push(d),
        }
    }
}

#[derive(Clone, Copy)]
struct Element {
    index: u64,
    count: u64,
}

struct Ctx<'a> {
    task: &'a str,
    params: &'a std::collections::BTreeMap<String, String>,
    element: Option<Element>,
}

fn render_task(
    mut t: TaskSpec,
    params: &std::collections::BTreeMap<String, String>,
    element: Option<Element>,
) -> Result<TaskSpec, SpecError> {
    let name = t.name.clone();
    let ctx = Ctx {
        task: &name,
        params,
        element,
    };
    match &mut t.action {
        Action::Op { args, .. } | Action::Command { argv: args } => {
            for a in args {
                render_in_place(a, &ctx)?;
            }
        }
        Action::Script { script, shell } => {
            render_in_place(script, &ctx)?;
            if let Some(shell) = shell {
                render_in_place(shell, &ctx)?;
            }
        }
        Action::Noop => {}
    }
    for v in t.env.values_mut() {
        render_in_place(v, &ctx)?;
    }
    if let Some(image) = &mut t.image {
        render_in_place(image, &ctx)?;
    }
    Ok(t)
}

fn render_in_place(text: &mut String, ctx: &Ctx) -> Result<(), SpecError> {
    if text.contains("${") {
        *text = render(text, ctx)?;
    }
    Ok(())
}

/// Substitutes the templates in `text` (see the module docs).
fn render(text: &str, ctx: &Ctx) -> Result<String, SpecError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if tail.starts_with("$${params.") || tail.starts_with("$${array.") {
            out.push_str("${");
            rest = &tail[3..];
            continue;
        }
        let body = tail.strip_prefix("${").unwrap_or("");
        let (space, key_and_rest) = if let Some(r) = body.strip_prefix("params.") {
            ("params", r)
        } else if let Some(r) = body.strip_prefix("array.") {
            ("array", r)
        } else {
            out.push('$');
            rest = &tail[1..];
            continue;
        };
        let Some(close) = key_and_rest.find('}') else {
            return Err(SpecError::Unterminated {
                task: ctx.task.to_string(),
                text: tail.to_string(),
            });
        };
        let key = &key_and_rest[..close];
        rest = &key_and_rest[close + 1..];
        if space == "params" {
            let value = ctx.params.get(key).ok_or_else(|| SpecError::UnknownParam {
                task: ctx.task.to_string(),
                param: key.to_string(),
            })?;
            out.push_str(value);
            continue;
        }
        let Some(e) = ctx.element else {
            return Err(SpecError::NotAnArray {
                task: ctx.task.to_string(),
                field: key.to_string(),
            });
        };
        match key {
            "index" => out.push_str(&e.index.to_string()),
            "count" => out.push_str(&e.count.to_string()),
            _ => {
                return Err(SpecError::UnknownArrayField {
                    task: ctx.task.to_string(),
                    field: key.to_string(),
                })
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
#[path = "compile_tests.rs"]
mod tests;
