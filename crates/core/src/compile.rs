//! From a spec as written to the spec the scheduler runs.
//!
//! [`compile`] expands array tasks into one task per index, substitutes
//! `${params.NAME}` and `${array.index}`/`${array.count}` templates, rewrites
//! a dependency on an array's name into one selector that matches exactly
//! its elements (`enc-*` when nothing else matches that, else an exact
//! regex), and validates the result against the limits. One selector, not
//! one dependency per element: N tasks waiting on an array of M then cost
//! the scheduler one shared fan-in (N + M links), and the stored spec stays
//! the size it was written. It is pure, and it runs once, at submission: the
//! store holds the compiled spec, so a restored job is never expanded twice.
//!
//! Templates are substituted in command argv, op arguments, scripts and
//! their shell, env values and images. Any other `${...}` (a shell's
//! `${HOME}`) and any other `$` are left alone; `$${params.x}` stands for a
//! literal `${params.x}`.

use crate::dag::{resolve, SpecError};
use crate::glob::glob_match;
use crate::limits::{check_limits, MAX_ARRAY, MAX_LINKS};
use std::collections::{HashMap, HashSet};
use tessera_types::{Action, ArraySpec, Dependency, JobSpec, Selector, TaskSpec};

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
/// assert_eq!(job.tasks[3].deps[0].selector.to_string(), "enc-*"); // the whole array
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
    let long = |(k, v): (&String, &String)| k.len() + v.len() > tessera_types::MAX_META_ENTRY;
    if spec.meta.len() > tessera_types::MAX_META || spec.meta.iter().any(long) {
        return Err(SpecError::TooMuchMeta {
            count: spec.meta.len(),
            max: tessera_types::MAX_META,
            max_entry: tessera_types::MAX_META_ENTRY,
        });
    }
    // Checked on the names as written: an array and a task of the same name
    // would make a dependency on that name ambiguous.
    let mut written = HashSet::with_capacity(spec.tasks.len());
    for t in &spec.tasks {
        if !t.name.is_empty() && !written.insert(t.name.as_str()) {
            return Err(SpecError::DuplicateName(t.name.clone()));
        }
    }
    let mut arrays: HashMap<&str, Elements> = HashMap::new();
    let mut tasks = Vec::with_capacity(spec.tasks.len());
    for t in &spec.tasks {
        let Some(array) = &t.array else {
            tasks.push(render_task(t.clone(), &spec.params, None)?);
            continue;
        };
        if t.deps
            .iter()
            .any(|d| d.selector == Selector::Name(t.name.clone()))
        {
            return Err(SpecError::SelfDependency(t.name.clone()));
        }
        let (start, end) = bounds(t, array)?;
        let count = end - start + 1;
        let width = end.to_string().len();
        for index in start..=end {
            let mut e = t.clone();
            e.array = None;
            e.name = format!("{}-{index:0width$}", t.name);
            e.env.insert(ARRAY_INDEX_ENV.to_string(), index.to_string());
            e.env.insert(ARRAY_COUNT_ENV.to_string(), count.to_string());
            tasks.push(render_task(
                e,
                &spec.params,
                Some(Element { index, count }),
            )?);
        }
        arrays.insert(t.name.as_str(), Elements { start, end, width });
    }
    for t in &tasks {
        check_limits(t)?;
    }
    if !arrays.is_empty() {
        let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
        let selectors: HashMap<&str, Selector> = arrays
            .iter()
            .map(|(&name, e)| (name, e.selector(name, &names)))
            .collect();
        for t in &mut tasks {
            on_arrays(&mut t.deps, &selectors);
        }
    }
    resolve(&[], &tasks, offer, Some(MAX_LINKS))?;
    Ok(JobSpec {
        name: spec.name.clone(),
        params: spec.params.clone(),
        tasks,
        grants: spec.grants.clone(),
        after: spec.after.clone(),
        meta: spec.meta.clone(),
    })
}

/// The indices of an array: `start..=end`, written `width` digits wide.
struct Elements {
    start: u64,
    end: u64,
    width: usize,
}

impl Elements {
    /// A selector that matches exactly the elements of array `name` among
    /// `names`: the glob `name-*` when nothing else matches it, otherwise a
    /// regex for `name-` and exactly the array's indices.
    fn selector(&self, name: &str, names: &[&str]) -> Selector {
        // A name with glob characters, or one a selector string would read
        // as a regex, goes straight to the regex.
        if !name.contains(['*', '?', '[', ']']) && !name.starts_with("re:") {
            let glob = format!("{name}-*");
            let pat: Vec<char> = glob.chars().collect();
            let hits = names.iter().filter(|n| glob_match(&pat, n)).count() as u64;
            if hits == self.end - self.start + 1 {
                return Selector::Glob(glob);
            }
        }
        let digits = digits_between(self.start, self.end, self.width);
        Selector::Regex(format!("^{}-(?:{digits})$", regex::escape(name)))
    }
}

/// Rewrites each dependency on an array's exact name into the selector of
/// its elements.
fn on_arrays(deps: &mut [Dependency], selectors: &HashMap<&str, Selector>) {
    for d in deps {
        if let Selector::Name(n) = &d.selector {
            if let Some(s) = selectors.get(n.as_str()) {
                d.selector = s.clone();
            }
        }
    }
}

/// A regex (without anchors) that matches exactly the numbers `lo..=hi`
/// written with `width` digits, zero-padded: `digits_between(5, 12, 2)` is
/// `0[5-9]|1[0-2]`.
pub(crate) fn digits_between(lo: u64, hi: u64, width: usize) -> String {
    let (lo, hi) = (format!("{lo:0width$}"), format!("{hi:0width$}"));
    let mut alternatives = Vec::new();
    spans(
        lo.as_bytes(),
        hi.as_bytes(),
        String::new(),
        &mut alternatives,
    );
    alternatives.join("|")
}

/// Appends to `out` the patterns for `prefix` followed by the digit strings
/// from `lo` to `hi` (of equal length, `lo <= hi`).
fn spans(lo: &[u8], hi: &[u8], prefix: String, out: &mut Vec<String>) {
    let Some((&l, lo_rest)) = lo.split_first() else {
        out.push(prefix);
        return;
    };
    let (&h, hi_rest) = hi.split_first().expect("same length");
    if l == h {
        return spans(lo_rest, hi_rest, format!("{prefix}{}", l as char), out);
    }
    let n = lo_rest.len();
    let (mut first, mut last) = (l, h);
    if lo_rest.iter().any(|&d| d != b'0') {
        spans(
            lo_rest,
            &vec![b'9'; n],
            format!("{prefix}{}", l as char),
            out,
        );
        first += 1;
    }
    let high_tail = hi_rest.iter().any(|&d| d != b'9');
    if high_tail {
        last -= 1;
    }
    if first <= last {
        let class = if first == last {
            (first as char).to_string()
        } else {
            format!("[{}-{}]", first as char, last as char)
        };
        let any = if n == 0 {
            String::new()
        } else {
            format!("[0-9]{{{n}}}")
        };
        out.push(format!("{prefix}{class}{any}"));
    }
    if high_tail {
        spans(
            &vec![b'0'; n],
            hi_rest,
            format!("{prefix}{}", h as char),
            out,
        );
    }
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
