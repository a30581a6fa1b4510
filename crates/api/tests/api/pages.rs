//! Big jobs read a page at a time: task counts come from the store's
//! `GROUP BY`, and task and attempt lists are paged with a `Link` header.

use crate::harness::{Resp, Server};
use axum::http::{header, StatusCode};

const MANY: &str = "name: many\ntasks:\n  - name: t\n    array: { count: 25 }\n    action: { kind: script, script: \"true\" }\n";

fn indexes(r: &Resp, field: &str) -> Vec<u64> {
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let items = r.json();
    let items = items.as_array().expect("a plain JSON array").clone();
    items.iter().map(|t| t[field].as_u64().unwrap()).collect()
}

fn next(r: &Resp) -> Option<(String, String)> {
    let link = r.headers.get(header::LINK)?.to_str().unwrap().to_string();
    let offset = r.headers["x-next-offset"].to_str().unwrap().to_string();
    Some((link, offset))
}

#[tokio::test]
async fn job_counts_and_paged_task_and_attempt_lists() {
    let s = Server::start();
    let key = s.admin_key.clone();
    s.project("p", &key).await;
    let r = s.post_yaml("/api/v1/projects/p/jobs", &key, MANY).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["id"].as_i64().unwrap();
    let job = s.wait_job(id, &key).await;
    assert_eq!(job["state"], "succeeded", "{job}");
    assert_eq!(job["tasks"], serde_json::json!({ "succeeded": 25 }));

    let tasks = format!("/api/v1/jobs/{id}/tasks");
    let r = s.get(&tasks, &key).await;
    assert_eq!(indexes(&r, "index"), (0..25).collect::<Vec<_>>());
    assert_eq!(next(&r), None, "one page holds them all");

    let r = s.get(&format!("{tasks}?limit=10"), &key).await;
    assert_eq!(indexes(&r, "index"), (0..10).collect::<Vec<_>>());
    let want = format!("<{tasks}?offset=10&limit=10>; rel=\"next\"");
    assert_eq!(next(&r), Some((want, "10".into())));
    let r = s.get(&format!("{tasks}?offset=20&limit=10"), &key).await;
    assert_eq!(indexes(&r, "index"), (20..25).collect::<Vec<_>>());
    assert_eq!(next(&r), None, "the last page names no next");
    let r = s.get(&format!("{tasks}?offset=15&limit=10"), &key).await;
    assert_eq!(indexes(&r, "index"), (15..25).collect::<Vec<_>>());
    assert_eq!(next(&r), None, "exactly full and nothing after: no next");
    let r = s.get(&format!("{tasks}?offset=99"), &key).await;
    assert!(indexes(&r, "index").is_empty());
    let r = s.get(&format!("{tasks}?limit=0"), &key).await;
    assert_eq!(indexes(&r, "index"), [0], "a limit is at least 1");
    let r = s.get(&format!("{tasks}?limit=100000"), &key).await;
    assert_eq!(indexes(&r, "index").len(), 25, "a limit is cut to the most");
    let r = s.get(&format!("{tasks}?page=2"), &key).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());

    // Attempts page the same way, in task order.
    let attempts = format!("/api/v1/jobs/{id}/attempts");
    let all = indexes(&s.get(&attempts, &key).await, "task");
    assert_eq!(all, (0..25).collect::<Vec<_>>(), "one attempt per task");
    let mut paged = Vec::new();
    let mut url = format!("{attempts}?limit=4");
    loop {
        let r = s.get(&url, &key).await;
        paged.extend(indexes(&r, "task"));
        match next(&r) {
            Some((link, offset)) => {
                url = format!("{attempts}?offset={offset}&limit=4");
                assert!(link.starts_with(&format!("<{url}>")), "{link}");
            }
            None => break,
        }
    }
    assert_eq!(paged, all);
}
