//! Turning a batch of task specs into a validated graph: unique names,
//! selectors resolved to fan-ins, no cycles, within the link budget.
//!
//! A dependency is not kept as one edge per (dependent, matched task). Each
//! distinct (selector, condition) of a batch becomes one **fan-in**, a
//! barrier: the tasks its selector matched (its *members*) and the tasks
//! that name it (its *waiters*). A waiter is ready once the members of all
//! its fan-ins have ended as their conditions accept, and is skipped as soon
//! as one member ends in a way a condition rejects. So 3,000 tasks waiting
//! on a glob over 3,000 tasks cost 6,000 links, not 9,000,000.
//!
//! A glob may match the very task that names it (`encode-*` on
//! `encode-all`); that task waits for the others only, so it gets a fan-in
//! of its own. At most one task per selector can need one: two such tasks
//! would each wait for the other, which is a cycle.

pub use crate::error::SpecError;
use crate::glob::glob_match;
use crate::limits::{MAX_LINKS, MAX_PATTERN_MATCHES};
use regex::Regex;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_types::{Action, Condition, Selector, TaskSpec};

/// A fan-in as resolved, with job-wide task indices.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FanInSpec {
    /// Where its selector is written (for `why_waiting`): the task that
    /// first named it and the index of the dependency in its spec.
    pub named_by: (u32, u32),
    pub condition: Condition,
    /// The tasks it waits for, ascending.
    pub members: Arc<[u32]>,
    /// The tasks that wait on it (all in the new batch), ascending.
    pub waiters: Vec<u32>,
}

/// A batch resolved: its fan-ins and, per new task, the fan-ins it waits on.
#[derive(Debug, Default)]
pub(crate) struct Resolved {
    pub fan_ins: Vec<FanInSpec>,
    /// Indices into `fan_ins`, ascending, one list per new task.
    pub waits_on: Vec<Vec<u32>>,
    /// Members of every fan-in plus every task's fan-ins.
    pub links: usize,
}

/// What tasks may ask of the machine: cpu slots, and whether container
/// images can run (a Docker executor is there).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Offer {
    pub cpu: u32,
    pub images: bool,
}

/// Resolves the dependencies of `new` tasks, which will occupy indices
/// `existing.len()..`. Selectors see the existing tasks and the new batch.
/// Existing tasks never gain dependencies, so only the new batch can hold a
/// cycle. `budget`: the links the batch may add and whether the pattern
/// budget applies (`None` when restoring a job accepted before).
pub(crate) fn resolve(
    existing: &[&str],
    new: &[TaskSpec],
    offer: Offer,
    budget: Option<usize>,
) -> Result<Resolved, SpecError> {
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

    // Each distinct glob or regex is matched once, when a task first names
    // it; a name is looked up. A fan-in is keyed by (task named, condition)
    // or (pattern, condition), in arrays: no hashing beyond the lookups.
    let mut patterns: HashMap<&Selector, usize> = HashMap::new();
    for d in new.iter().flat_map(|t| &t.deps) {
        if !matches!(d.selector, Selector::Name(_)) {
            let next = patterns.len();
            patterns.entry(&d.selector).or_insert(next);
        }
    }
    if budget.is_some() {
        let matches = patterns.len().saturating_mul(all.len());
        if matches > MAX_PATTERN_MATCHES {
            return Err(SpecError::TooManyPatternMatches {
                patterns: patterns.len(),
                tasks: all.len(),
                matches,
                max: MAX_PATTERN_MATCHES,
            });
        }
    }
    let mut fans = Fans {
        out: Resolved::default(),
        limit: budget.unwrap_or(usize::MAX),
    };
    let names_named = new
        .iter()
        .flat_map(|t| &t.deps)
        .any(|d| matches!(d.selector, Selector::Name(_)));
    let mut by_name: Vec<[u32; 3]> = if names_named {
        vec![[NONE; 3]; all.len()]
    } else {
        Vec::new()
    };
    let mut by_pattern: Vec<[u32; 3]> = vec![[NONE; 3]; patterns.len()];
    let mut matched: Vec<Option<Arc<[u32]>>> = vec![None; patterns.len()];
    // The one task per pattern that the pattern matches too, and its
    // fan-ins without itself, by condition.
    let mut own: HashMap<usize, (u32, [u32; 3])> = HashMap::new();
    for (i, t) in new.iter().enumerate() {
        let me = (base + i) as u32;
        let mut mine: Vec<u32> = Vec::with_capacity(t.deps.len());
        for (d, dep) in t.deps.iter().enumerate() {
            let named_by = (me, d as u32);
            let c = dep.condition as usize;
            let no_match = || SpecError::NoMatch {
                task: t.name.clone(),
                selector: dep.selector.to_string(),
            };
            let f = if let Selector::Name(n) = &dep.selector {
                let &p = index.get(n.as_str()).ok_or_else(no_match)?;
                if p == me {
                    return Err(SpecError::SelfDependency(t.name.clone()));
                }
                let slot = &mut by_name[p as usize][c];
                if *slot == NONE {
                    *slot = fans.add(Arc::from(&[p][..]), named_by, dep.condition)?;
                }
                *slot
            } else {
                let s = patterns[&dep.selector];
                let members = match &matched[s] {
                    Some(m) => m.clone(),
                    None => {
                        let m = matches(&dep.selector, &all, &t.name)?;
                        if m.is_empty() {
                            return Err(no_match());
                        }
                        matched[s] = Some(m.clone());
                        m
                    }
                };
                if members.binary_search(&me).is_err() {
                    let slot = &mut by_pattern[s][c];
                    if *slot == NONE {
                        *slot = fans.add(members, named_by, dep.condition)?;
                    }
                    *slot
                } else {
                    let (owner, slots) = own.entry(s).or_insert((me, [NONE; 3]));
                    if *owner != me {
                        // Another task this pattern matches names it too:
                        // each would wait for the other.
                        let other = all[*owner as usize];
                        return Err(SpecError::Cycle(cycle_text([&t.name, other, &t.name])));
                    }
                    let others: Arc<[u32]> = members.iter().copied().filter(|&m| m != me).collect();
                    if others.is_empty() {
                        continue; // it matched only the task that names it
                    }
                    if slots[c] == NONE {
                        slots[c] = fans.add(others, named_by, dep.condition)?;
                    }
                    slots[c]
                }
            };
            mine.push(f);
        }
        mine.sort_unstable();
        mine.dedup();
        fans.count(mine.len())?;
        for &f in &mine {
            fans.out.fan_ins[f as usize].waiters.push(me);
        }
        fans.out.waits_on.push(mine);
    }
    check_acyclic(base, new, &fans.out)?;
    Ok(fans.out)
}

/// No fan-in yet.
const NONE: u32 = u32::MAX;

/// The fan-ins being made, and the links they may hold.
struct Fans {
    out: Resolved,
    limit: usize,
}

impl Fans {
    fn count(&mut self, links: usize) -> Result<(), SpecError> {
        self.out.links += links;
        if self.out.links > self.limit {
            return Err(SpecError::TooManyLinks {
                links: self.out.links,
                max: MAX_LINKS,
            });
        }
        Ok(())
    }

    fn add(
        &mut self,
        members: Arc<[u32]>,
        named_by: (u32, u32),
        condition: Condition,
    ) -> Result<u32, SpecError> {
        self.count(members.len())?;
        self.out.fan_ins.push(FanInSpec {
            named_by,
            condition,
            members,
            waiters: Vec::new(),
        });
        Ok((self.out.fan_ins.len() - 1) as u32)
    }
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
    for m in &t.mounts {
        let bad = |reason: String| SpecError::BadMount {
            task: t.name.clone(),
            reason,
        };
        if t.image.is_none() {
            return Err(bad(format!(
                "volume {} is mounted into a container, and the task names no image; host \
                 tasks read what their job was granted in place",
                m.volume
            )));
        }
        m.check().map_err(bad)?;
    }
    tessera_types::PlaceRule::check(&t.resources.rules).map_err(|reason| {
        SpecError::BadPlacement {
            task: t.name.clone(),
            reason,
        }
    })?;
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

/// The indices of the tasks a glob or regex matches, ascending.
pub(crate) fn matches(sel: &Selector, all: &[&str], task: &str) -> Result<Arc<[u32]>, SpecError> {
    Ok(match sel {
        Selector::Name(_) => unreachable!("names are looked up"),
        Selector::Glob(g) => {
            let pat: Vec<char> = g.chars().collect();
            let mut out = Vec::new();
            for (i, n) in all.iter().enumerate() {
                if glob_match(&pat, n) {
                    out.push(i as u32);
                }
            }
            out.into()
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
                .collect::<Vec<u32>>()
                .into()
        }
    })
}

/// Kahn's algorithm over the new batch, through its fan-ins (links to
/// existing tasks cannot close a cycle). A fan-in is passed once its members
/// in the batch are; a task once the fan-ins it waits on are.
fn check_acyclic(base: usize, new: &[TaskSpec], r: &Resolved) -> Result<(), SpecError> {
    let n = new.len();
    let mut member_of: Vec<Vec<u32>> = vec![Vec::new(); n];
    let mut fan_open: Vec<u32> = vec![0; r.fan_ins.len()];
    for (f, fan) in r.fan_ins.iter().enumerate() {
        for &m in fan.members.iter().filter(|&&m| m as usize >= base) {
            member_of[m as usize - base].push(f as u32);
            fan_open[f] += 1;
        }
    }
    let mut indegree: Vec<u32> = r
        .waits_on
        .iter()
        .map(|fs| fs.iter().filter(|&&f| fan_open[f as usize] > 0).count() as u32)
        .collect();
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut seen = 0;
    let mut done = vec![false; n];
    while let Some(i) = queue.pop() {
        seen += 1;
        done[i] = true;
        for &f in &member_of[i] {
            let f = f as usize;
            fan_open[f] -= 1;
            if fan_open[f] > 0 {
                continue;
            }
            for &w in &r.fan_ins[f].waiters {
                let w = w as usize - base;
                indegree[w] -= 1;
                if indegree[w] == 0 {
                    queue.push(w);
                }
            }
        }
    }
    if seen == n {
        return Ok(());
    }
    // Every task left waits on a fan-in with a member left: walking from
    // one to such a member must come back to a task already walked, and
    // the walk from there on is a cycle.
    let mut at: HashMap<usize, usize> = HashMap::new();
    let mut path: Vec<usize> = Vec::new();
    let mut cur = (0..n).find(|&i| !done[i]).unwrap_or(0);
    while !at.contains_key(&cur) && path.len() <= n {
        at.insert(cur, path.len());
        path.push(cur);
        let next = r.waits_on[cur]
            .iter()
            .filter(|&&f| fan_open[f as usize] > 0)
            .flat_map(|&f| r.fan_ins[f as usize].members.iter())
            .map(|&m| m as usize)
            .find(|&m| m >= base && !done[m - base]);
        match next {
            Some(m) => cur = m - base,
            None => break,
        }
    }
    let from = at.get(&cur).copied().unwrap_or(0);
    let names = path[from..]
        .iter()
        .chain(path.get(from))
        .map(|&i| new[i].name.as_str());
    Err(SpecError::Cycle(cycle_text(names)))
}

/// A cycle's task names, each waiting for the next: `"a" -> "b" -> "a"`;
/// past a dozen, the middle is counted rather than listed.
pub(crate) fn cycle_text<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    const SHOWN: usize = 12;
    let names: Vec<&str> = names.into_iter().collect();
    let quoted = |s: &[&str]| s.iter().map(|n| format!("{n:?}")).collect::<Vec<_>>();
    if names.len() <= SHOWN {
        return quoted(&names).join(" -> ");
    }
    let (head, tail) = (&names[..SHOWN - 2], &names[names.len() - 2..]);
    format!(
        "{} -> ({} more) -> {}",
        quoted(head).join(" -> "),
        names.len() - SHOWN,
        quoted(tail).join(" -> ")
    )
}

#[cfg(test)]
#[path = "dag_tests.rs"]
mod tests;
