//! The job's DAG as inline SVG, laid out here: each task in the column of
//! its longest path from a root, boxes colored by state, edges as lines.
//!
//! The store keeps selectors, not resolved edges, so the edges are resolved
//! here against the job's task names (as the scheduler does). A selector of
//! an original task that also matches a task added later by an expansion
//! draws an edge the scheduler did not make; acceptable for a picture.

use super::html::escape;
use regex::Regex;
use std::fmt::Write;
use tessera_store::TaskRecord;
use tessera_types::Selector;

/// Tasks drawn at most.
pub(crate) const MAX_NODES: usize = 300;

const BOX_W: usize = 150;
const BOX_H: usize = 28;
const COL: usize = 190;
const ROW: usize = 40;
const PAD: usize = 16;

/// `(parent, child)` index pairs among `names`, from each task's selectors.
pub(crate) fn edges(tasks: &[TaskRecord]) -> Vec<(usize, usize)> {
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    let mut out = Vec::new();
    for (child, t) in tasks.iter().enumerate() {
        let mut parents: Vec<usize> = Vec::new();
        for dep in &t.spec.deps {
            let hit: Box<dyn Fn(&str) -> bool> = match &dep.selector {
                Selector::Name(n) => {
                    let n = n.clone();
                    Box::new(move |s| s == n)
                }
                Selector::Glob(g) => {
                    let pat: Vec<char> = g.chars().collect();
                    Box::new(move |s| tessera_core::glob_match(&pat, s))
                }
                Selector::Regex(r) => match Regex::new(&format!("^(?:{r})$")) {
                    Ok(re) => Box::new(move |s| re.is_match(s)),
                    Err(_) => continue,
                },
            };
            parents.extend((0..names.len()).filter(|&p| p != child && hit(names[p])));
        }
        parents.sort_unstable();
        parents.dedup();
        out.extend(parents.into_iter().map(|p| (p, child)));
    }
    out
}

/// The column of each of `n` nodes: the length of its longest path from a
/// root. Nodes on a cycle (which a valid job never has) go after the rest.
pub(crate) fn layers(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut children = vec![Vec::new(); n];
    for &(p, c) in edges {
        indegree[c] += 1;
        children[p].push(c);
    }
    let mut layer = vec![0usize; n];
    let mut queue: Vec<usize> = (0..n).filter(|&i| indegree[i] == 0).collect();
    let mut placed = vec![false; n];
    while let Some(p) = queue.pop() {
        placed[p] = true;
        for &c in &children[p] {
            layer[c] = layer[c].max(layer[p] + 1);
            indegree[c] -= 1;
            if indegree[c] == 0 {
                queue.push(c);
            }
        }
    }
    let after = layer.iter().copied().max().unwrap_or(0) + 1;
    for (i, done) in placed.iter().enumerate() {
        if !done {
            layer[i] = after;
        }
    }
    layer
}

/// The DAG of (at most [`MAX_NODES`] of) `tasks` as an `<svg id="dag">`.
pub(crate) fn render(tasks: &[TaskRecord]) -> String {
    let shown = &tasks[..tasks.len().min(MAX_NODES)];
    let edges = edges(shown);
    let layer = layers(shown.len(), &edges);
    let mut pos = vec![(0usize, 0usize); shown.len()];
    let mut rows: Vec<usize> = Vec::new();
    for (i, &l) in layer.iter().enumerate() {
        if rows.len() <= l {
            rows.resize(l + 1, 0);
        }
        pos[i] = (PAD + l * COL, PAD + rows[l] * ROW);
        rows[l] += 1;
    }
    let width = PAD * 2 + rows.len().saturating_sub(1) * COL + BOX_W;
    let height = PAD * 2 + rows.iter().copied().max().unwrap_or(1).saturating_sub(1) * ROW + BOX_H;
    let mut svg = format!(
        r##"<svg id="dag" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="task graph">
<defs><marker id="arrow" viewBox="0 0 8 8" refX="8" refY="4" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#98a2b3"/></marker></defs>
"##
    );
    for &(p, c) in &edges {
        let (x1, y1) = (pos[p].0 + BOX_W, pos[p].1 + BOX_H / 2);
        let (x2, y2) = (pos[c].0, pos[c].1 + BOX_H / 2);
        let _ = writeln!(
            svg,
            r#"<line class="edge" x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" marker-end="url(#arrow)"/>"#
        );
    }
    for (i, t) in shown.iter().enumerate() {
        let (x, y) = pos[i];
        let index = t.task.index;
        let state = t.state.as_str();
        let label: String = if t.name.chars().count() > 20 {
            t.name.chars().take(19).chain(['…']).collect()
        } else {
            t.name.clone()
        };
        let _ = writeln!(
            svg,
            r##"<a href="#task-{index}"><g class="node"><title>{name}: {state}</title><rect class="n s-{state}" data-task="{index}" x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="5"/><text x="{tx}" y="{ty}">{label}</text></g></a>"##,
            name = escape(&t.name),
            label = escape(&label),
            tx = x + 8,
            ty = y + 18,
        );
    }
    svg.push_str("</svg>");
    if tasks.len() > shown.len() {
        let _ = write!(
            svg,
            r#"<p class="muted">showing the first {} of {} tasks</p>"#,
            shown.len(),
            tasks.len()
        );
    }
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_follow_the_longest_path() {
        // 0 -> 1 -> 3, 0 -> 3, 2 alone.
        let l = layers(4, &[(0, 1), (1, 3), (0, 3)]);
        assert_eq!(l, vec![0, 1, 0, 2]);
    }

    #[test]
    fn a_cycle_does_not_hang_the_layout() {
        let l = layers(3, &[(0, 1), (1, 2), (2, 1)]);
        assert_eq!(l[0], 0);
        assert!(l[1] > 0 && l[2] > 0);
    }
}
