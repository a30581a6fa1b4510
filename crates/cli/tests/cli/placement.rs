//! Placement among real workers on loopback: labels, spread, and the
//! server's own slots as a node beside workers (`--slots N --workers`).

use crate::workers::{alive, wait_file, wait_gone, Cluster};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

/// A job of `n` tasks that each write the node they ran on to `out/tI`
/// after `sleep` seconds; `extra` is added to each task's YAML.
fn job(name: &str, n: u32, sleep: &str, extra: &str, out: &Path) -> String {
    let o = out.display();
    let mut yaml = format!("name: {name}\ntasks:\n");
    for i in 0..n {
        yaml += &format!(
            "  - name: t{i}\n    action: {{ kind: command, argv: [\"sh\", \"-c\", \"sleep {sleep}; echo $TESSERA_NODE > {o}/{name}.t{i}\"] }}\n{extra}"
        );
    }
    yaml
}

/// The node each task of `job(name, n, ..)` ran on.
fn ran_on(out: &Path, name: &str, n: u32) -> Vec<String> {
    (0..n)
        .map(|i| {
            std::fs::read_to_string(out.join(format!("{name}.t{i}")))
                .unwrap_or_default()
                .trim()
                .to_string()
        })
        .collect()
}

#[test]
fn a_labelled_task_runs_only_on_the_worker_with_the_label_and_an_impossible_one_is_reported() {
    let c = Cluster::start_with(2000, &["--slots", "0"]);
    let _plain = c.worker("plain", 2);
    let _gpu = c.worker_with("gpu", 1, &["--grace", "0", "--labels", "gpu=a100,zone=x"]);
    let labelled = "    resources: { labels: { gpu: a100 } }\n";
    let job_id = c.submit(&job("lab", 4, "0.2", labelled, &c.out));
    assert_eq!(c.wait_job(job_id, Duration::from_secs(60)), "succeeded");
    assert_eq!(
        ran_on(&c.out, "lab", 4),
        ["gpu"; 4],
        "plain had free slots all along"
    );

    // No node carries gpu=h100: the attempt waits, and says why.
    let impossible = "    resources: { labels: { gpu: h100 } }\n";
    let stuck = c.submit(&job("imp", 1, "0", impossible, &c.out));
    let (u, v) = c.wait_unplaceable();
    assert_eq!(u["job"], stuck, "{v}");
    let reason = u["reason"].as_str().unwrap();
    assert!(
        reason.contains("gpu=h100, which no ready node carries"),
        "{reason}"
    );
    // A worker that carries it comes along later: the attempt runs there.
    let _h100 = c.worker_with("h100", 1, &["--grace", "0", "--labels", "gpu=h100"]);
    assert_eq!(c.wait_job(stuck, Duration::from_secs(20)), "succeeded");
    assert_eq!(ran_on(&c.out, "imp", 1), ["h100"]);
    let (_, v) = c.api("GET", "/nodes", None);
    assert_eq!(v["unplaceable"], serde_json::json!([]), "{v}");
}

#[test]
fn a_six_task_job_spreads_over_two_workers() {
    let c = Cluster::start_with(2000, &["--slots", "0"]);
    let _a = c.worker("a", 2);
    let _b = c.worker("b", 2);
    let id = c.submit(&job("six", 6, "0.5", "", &c.out));
    assert_eq!(c.wait_job(id, Duration::from_secs(60)), "succeeded");
    let ran = ran_on(&c.out, "six", 6);
    let on = |n: &str| ran.iter().filter(|r| *r == n).count();
    assert_eq!(on("a") + on("b"), 6, "{ran:?}");
    assert!(on("a") >= 2 && on("b") >= 2, "both ran a share: {ran:?}");
}

#[test]
fn a_job_smaller_than_the_free_slots_is_still_spread() {
    // Either worker could take all four at once; spread gives each two.
    let c = Cluster::start_with(2000, &["--slots", "0"]);
    let _a = c.worker("a", 4);
    let _b = c.worker("b", 4);
    let id = c.submit(&job("four", 4, "0.5", "", &c.out));
    assert_eq!(c.wait_job(id, Duration::from_secs(60)), "succeeded");
    let ran = ran_on(&c.out, "four", 4);
    let on = |n: &str| ran.iter().filter(|r| *r == n).count();
    assert_eq!((on("a"), on("b")), (2, 2), "{ran:?}");
}

/// The local node's name, from `GET /nodes`.
fn local_name(c: &Cluster) -> String {
    let (_, v) = c.api("GET", "/nodes", None);
    let nodes = v["nodes"].as_array().unwrap();
    let local: Vec<_> = nodes.iter().filter(|n| n["local"] == true).collect();
    assert_eq!(local.len(), 1, "{v}");
    assert_eq!(local[0]["slots"], 1, "{v}");
    assert_eq!(local[0]["labels"]["site"], "hq", "{v}");
    local[0]["name"].as_str().unwrap().to_string()
}

#[test]
fn local_slots_and_a_worker_both_run_attempts_of_one_job() {
    let c = Cluster::start_with(2000, &["--slots", "1", "--workers", "--labels", "site=hq"]);
    let here = local_name(&c);
    let _a = c.worker("a", 2);
    let id = c.submit(&job("mix", 6, "0.5", "", &c.out));
    assert_eq!(c.wait_job(id, Duration::from_secs(60)), "succeeded");
    let ran = ran_on(&c.out, "mix", 6);
    let nodes: BTreeSet<&str> = ran.iter().map(String::as_str).collect();
    assert_eq!(nodes, BTreeSet::from([here.as_str(), "a"]), "{ran:?}");
    // One name for the server's node everywhere: its attempts carry the
    // name the nodes list gives it, and it is credited with them.
    let named: BTreeSet<String> = c
        .attempts(id)
        .iter()
        .map(|a| a["node"].as_str().unwrap_or("(none)").to_string())
        .collect();
    assert_eq!(named, BTreeSet::from([here.clone(), "a".into()]));
    let (_, v) = c.api("GET", "/nodes", None);
    let mine = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["local"] == true)
        .unwrap();
    let ran_here = ran.iter().filter(|n| **n == here).count();
    assert_eq!(mine["recent"]["attempts"], ran_here, "{v}");
    // The dashboard counts every node's slots: 1 here and 2 on `a`.
    let page = dashboard(&c);
    assert!(page.contains("<b>0</b> of 3 slots busy"), "{page}");
    // A task that needs the server's label runs only there.
    let id = c.submit(&job(
        "hq",
        3,
        "0",
        "    resources: { labels: { site: hq } }\n",
        &c.out,
    ));
    assert_eq!(c.wait_job(id, Duration::from_secs(30)), "succeeded");
    assert_eq!(ran_on(&c.out, "hq", 3), [here.as_str(); 3]);
}

#[test]
fn cancelling_a_job_kills_its_attempt_on_the_local_node_beside_workers() {
    let mut c = Cluster::start_with(2000, &["--slots", "1", "--workers", "--labels", "site=hq"]);
    let here = local_name(&c);
    let o = c.out.display();
    let id = c.submit(&format!(
        r#"
name: long
tasks:
  - name: long
    action: {{ kind: command, argv: ["sh", "-c", "echo $$ > {o}/pid; echo $TESSERA_NODE > {o}/node; sleep 60"] }}
"#
    ));
    let pid: i32 = wait_file(&c.out.join("pid"), Duration::from_secs(20))
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        wait_file(&c.out.join("node"), Duration::from_secs(30)).trim(),
        here
    );
    let (status, v) = c.api("POST", &format!("/jobs/{id}/cancel"), None);
    assert!(status < 300, "{status} {v}");
    assert_eq!(c.wait_job(id, Duration::from_secs(30)), "cancelled");
    wait_gone(pid, "the local attempt was not killed");
    let (_, v) = c.api("GET", "/nodes", None);
    assert_eq!(v["nodes"][0]["used"], 0, "its slot is free again: {v}");

    // SIGTERM stops the server promptly with a local attempt running (it
    // is killed, and resumes on the next start).
    let again = c.submit(&format!(
        r#"
name: again
tasks:
  - name: long
    action: {{ kind: command, argv: ["sh", "-c", "echo $$ > {o}/pid2; sleep 3600"] }}
"#
    ));
    assert!(again > id);
    let pid: i32 = wait_file(&c.out.join("pid2"), Duration::from_secs(20))
        .trim()
        .parse()
        .unwrap();
    // An hour-long attempt: an exit within the bound (on a hang) means it
    // was killed, not waited for.
    assert_eq!(c.server.terminate(Duration::from_secs(60)), Some(0));
    assert!(!alive(pid), "the local attempt outlived the server");
}

/// The web UI's dashboard as the admin sees it (signed in with its key).
fn dashboard(c: &Cluster) -> String {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let login = agent
        .post(&format!("{}/ui/login", c.server.url))
        .send_form(&[("key", c.key.as_str())]);
    let r = match login {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("sign in: {e}"),
    };
    let cookie = r
        .header("Set-Cookie")
        .and_then(|c| c.split(';').next())
        .unwrap_or_else(|| panic!("no session cookie"))
        .to_string();
    agent
        .get(&format!("{}/ui", c.server.url))
        .set("Cookie", &cookie)
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}
