//! Job shapes and a median for the benches (each includes this file with
//! `#[path]`; it is no bench of its own). Every task runs `action`.

use serde_json::{json, Value};

fn task(name: String, deps: Vec<String>, action: &Value) -> Value {
    let deps: Vec<Value> = deps.into_iter().map(|d| json!({ "selector": d })).collect();
    json!({ "name": name, "action": action, "deps": deps })
}

/// `split`, then `n` tasks `enc-I` after it, then `merge` after them all.
pub fn fan(n: usize, action: &Value) -> Value {
    let mut tasks = vec![task("split".into(), vec![], action)];
    tasks.extend((0..n).map(|i| task(format!("enc-{i}"), vec!["split".into()], action)));
    tasks.push(task("merge".into(), vec!["enc-*".into()], action));
    json!({ "name": format!("fan-{n}"), "tasks": tasks })
}

/// `c` independent chains of `len` tasks each.
pub fn chains(c: usize, len: usize, action: &Value) -> Value {
    let mut tasks = Vec::new();
    for k in 0..c {
        for i in 0..len {
            let deps = if i == 0 {
                vec![]
            } else {
                vec![format!("c{k}-{}", i - 1)]
            };
            tasks.push(task(format!("c{k}-{i}"), deps, action));
        }
    }
    json!({ "name": format!("chains-{c}x{len}"), "tasks": tasks })
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}
