//! Turning a list of task specs into a validated graph: unique names,
//! selectors resolved to concrete parents, no cycles, sane resources.

use regex::Regex;
use std::collections::HashMap;
use tessera_types::{Action, Condition, Selector, TaskSpec};

/// Why a job spec (or an expansion) was refused. Each message names the task
/// and says what to change.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpecError {
    #[error("the job has no tasks")]
    Empty,
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
    #[error("the dependencies form a cycle through {0:?}")]
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
}

/// Parents of each new task as unique (index, condition) edges. A parent named
/// by several selectors with different conditions must satisfy all of them.
pub(crate) type Parents = Vec<Vec<(u32, Condition)>>;

/// Resolves the dependencies of `new` tasks, which will occupy indices
/// `existing.len()..`. Selectors see the existing tasks and the new batch.
/// Existing tasks never gain parents, so only the new batch can hold a cycle.
/// What tasks may ask of the machine: cpu slots, and whether container
/// images can run (a Docker executor is there).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub cpu: u32,
    pub images: bool,
}

pub(crate) fn resolve(
    existing: &[&str],
    new: &[TaskSpec],
    offer: Offer,
) -> Result<Parents, SpecError> {
    let base = existing.len();
    let mut index: HashMap<&str, u32> = HashMap::with_capacity(base + new.len());
    for (i, name) in existing.iter().enumerate() {
        index.insert(name, i as u32);
    }
    for (i, t) in new.iter().enumerate() {
        if t.name.is_empty() {
            return Err(SpecError::EmptyName(base + i));
        }
        if index.insert(&t.name, (base + i) as u32).is_some() {
            return Err(SpecError::DuplicateName(t.name.clone()));
        }
        check_task(t, offer)?;
    }
    let all: Vec<&str> = existing
        .iter()
        .copied()
        .chain(new.iter().map(|t| t.name.as_str()))
        .collect();
    let mut parents: Parents = Vec::with_capacity(new.len());
    for (i, t) in new.iter().enumerate() {
        let me = (base + i) as u32;
        let mut mine: Vec<(u32, Condition)> = Vec::with_capacity(t.deps.len());
        let mut seen: std::collections::HashSet<(u32, Condition)> =
            std::collections::HashSet::new();
        for dep in &t.deps {
            let matched = matches(&dep.selector, &all, &index, &t.name)?;
            if matched.is_empty() {
                return Err(SpecError::NoMatch {
                    task: t.name.clone(),
                    selector: dep.selector.to_string(),
                });
            }
            for p in matched {
                if p == me {
                    // A glob may well match its own task ("encode-*" on
                    // "encode-all"); only an exact self-reference is an error.
                    if matches!(dep.selector, Selector::Name(_)) {
                        return Err(SpecError::SelfDependency(t.name.clone()));
                    }
                    continue;
                }
                if seen.insert((p, dep.condition)) {
                    mine.push((p, dep.condition));
                }
            }
        }
        parents.push(mine);
    }
    check_acyclic(base, new, &parents)?;
    Ok(parents)
}

fn check_task(t: &TaskSpec, offer: Offer) -> Result<(), SpecError> {
    let capacity = offer.cpu;
    if t.resources.cpu == 0 {
        return Err(SpecError::ZeroCpu(t.name.clone()));
    }
    if t.resources.cpu > capacity {
        return Err(SpecError::TooBig {
            task: t.name.clone(),
            cpu: t.resources.cpu,
            capacity,
        });
    }
    match &t.action {
        Action::Command { argv } if argv.first().is_none_or(|p| p.is_empty()) => {
            return Err(SpecError::EmptyCommand(t.name.clone()));
        }
        Action::Script { script, .. } if script.trim().is_empty() => {
            return Err(SpecError::EmptyScript(t.name.clone()));
        }
        Action::Script {
            shell: Some(shell), ..
        } if shell.is_empty() => {
            return Err(SpecError::EmptyShell(t.name.clone()));
        }
        _ => {}
    }
    if let Some(image) = t.image.as_ref().filter(|_| !offer.images) {
        return Err(SpecError::ImageUnsupported {
            task: t.name.clone(),
            image: image.clone(),
        });
    }
    if t.resources.gpus > 0 {
        return Err(SpecError::NoGpus {
            task: t.name.clone(),
            gpus: t.resources.gpus,
        });
    }
    if t.array.is_some() {
        return Err(SpecError::Uncompiled(t.name.clone()));
    }
    Ok(())
}

fn matches(
    sel: &Selector,
    all: &[&str],
    index: &HashMap<&str, u32>,
    task: &str,
) -> Result<Vec<u32>, SpecError> {
    Ok(match sel {
        Selector::Name(n) => index.get(n.as_str()).map(|&i| vec![i]).unwrap_or_default(),
        Selector::Glob(g) => {
            let pat: Vec<char> = g.chars().collect();
            let mut out = Vec::new();
            for (i, n) in all.iter().enumerate() {
                if glob_match(&pat, n) {
                    out.push(i as u32);
                }
            }
            out
        }
        Selector::Regex(r) => {
            let re = Regex::new(r).map_err(|e| SpecError::BadRegex {
                task: task.to_string(),
                selector: sel.to_string(),
                error: e
                    .to_string()
                    .lines()
                    .last()
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
            })?;
            all.iter()
                .enumerate()
                .filter(|(_, n)| re.is_match(n))
                .map(|(i, _)| i as u32)
                .collect()
        }
    })
}

/// Shell-style glob over the whole name: `*` any run, `?` one char,
/// `[abc]`/`[a-z]`/`[!x]` a class.
pub fn glob_match(pat: &[char], name: &str) -> bool {
    let text: Vec<char> = name.chars().collect();
    let (mut p, mut t) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pat.len() {
            match pat[p] {
                '*' => {
                    star = Some((p, t));
                    p += 1;
                    continue;
                }
                '?' => {
                    p += 1;
                    t += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class_match(pat, p, text[t]) {
                        if ok {
                            p = next;
                            t += 1;
                            continue;
                        }
                    } else if text[t] == '[' {
                        p += 1;
                        t += 1;
                        continue;
                    }
                }
                c if c == text[t] => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
        }
        match star {
            Some((sp, st)) => {
                p = sp + 1;
                t = st + 1;
                star = Some((sp, st + 1));
            }
            None => return false,
        }
    }
    pat[p..].iter().all(|&c| c == '*')
}

/// Matches `c` against the class starting at `pat[start] == '['`; returns
/// (matched, index after the class), or None when the class is unterminated.
fn class_match(pat: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(pat.get(i), Some('!') | Some('^'));
    if negate {
        i += 1;
    }
    let mut hit = false;
    let mut first = true;
    while i < pat.len() {
        if pat[i] == ']' && !first {
            return Some((hit != negate, i + 1));
        }
        first = false;
        if i + 2 < pat.len() && pat[i + 1] == '-' && pat[i + 2] != ']' {
            hit |= pat[i] <= c && c <= pat[i + 2];
            i += 3;
        } else {
            hit |= pat[i] == c;
            i += 1;
        }
    }
    None
}

/// Kahn's algorithm over the new batch (edges to existing tasks cannot close a cycle).
fn check_acyclic(base: usize, new: &[TaskSpec], parents: &Parents) -> Result<(), SpecError> {
    let n = new.len();
    let mut indegree = vec![0u32; n];
    let mut children: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ps) in parents.iter().enumerate() {
        for &(p, _) in ps {
            if (p as usize) >= base {
                indegree[i] += 1;
                children[p as usize - base].push(i);
            }
        }
    }
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut seen = 0;
    while let Some(i) = queue.pop() {
        seen += 1;
        for &c in &children[i] {
            indegree[c] -= 1;
            if indegree[c] == 0 {
                queue.push(c);
            }
        }
    }
    if seen == n {
        Ok(())
    } else {
        let stuck = (0..n).find(|&i| indegree[i] > 0).unwrap_or(0);
        Err(SpecError::Cycle(new[stuck].name.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cpus(cpu: u32) -> Offer {
        Offer { cpu, images: false }
    }

    fn g(p: &str, n: &str) -> bool {
        glob_match(&p.chars().collect::<Vec<_>>(), n)
    }

    #[test]
    fn globs_match_like_a_shell() {
        assert!(g("encode-*", "encode-0001"));
        assert!(g("encode-*", "encode-"));
        assert!(!g("encode-*", "encoder"));
        assert!(g("*-audio", "encode-audio"));
        assert!(g("a?c", "abc"));
        assert!(!g("a?c", "ac"));
        assert!(g("chunk-[0-3]", "chunk-2"));
        assert!(!g("chunk-[0-3]", "chunk-7"));
        assert!(g("chunk-[!0-3]", "chunk-7"));
        assert!(g("*a*b*", "xxaxxbxx"));
        assert!(!g("*a*b", "xxaxxbxx"));
        assert!(g("[", "["));
    }

    fn t(name: &str) -> TaskSpec {
        TaskSpec::new(name, Action::Noop)
    }

    #[test]
    fn resolution_reports_precise_errors() {
        let err = |tasks: Vec<TaskSpec>| resolve(&[], &tasks, cpus(4)).unwrap_err().to_string();
        assert_eq!(
            err(vec![t("a"), t("a")]),
            "two tasks are named \"a\"; task names must be unique within a job"
        );
        assert_eq!(
            err(vec![t("a").after("b*")]),
            "task \"a\": dependency \"b*\" matches no task"
        );
        assert_eq!(
            err(vec![t("a").after("b"), t("b").after("a")]),
            "the dependencies form a cycle through \"a\""
        );
        assert_eq!(err(vec![t("a").after("a")]), "task \"a\" depends on itself");
        assert!(err(vec![t("a").after("re:(")]).starts_with("task \"a\": invalid regex"));
        assert_eq!(
            err(vec![t("a").with_cpu(8)]),
            "task \"a\" asks for 8 cpu slots but only 4 exist"
        );
    }

    #[test]
    fn fan_in_over_a_glob_and_regex_resolves_every_match_once() {
        let tasks = vec![
            t("enc-1"),
            t("enc-2"),
            t("audio"),
            t("merge")
                .after("enc-*")
                .after("re:^(enc-1|audio)$")
                .after_if("audio", Condition::Any),
        ];
        let parents = resolve(&[], &tasks, cpus(1)).unwrap();
        assert_eq!(
            parents[3],
            vec![
                (0, Condition::Success),
                (1, Condition::Success),
                (2, Condition::Success),
                (2, Condition::Any)
            ]
        );
        // An expansion sees the existing tasks.
        let more = vec![t("verify").after("merge")];
        let p2 = resolve(&["enc-1", "enc-2", "audio", "merge"], &more, cpus(1)).unwrap();
        assert_eq!(p2[0], vec![(3, Condition::Success)]);
    }
}
