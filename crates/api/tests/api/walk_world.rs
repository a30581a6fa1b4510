//! The route walk's world: a server with workers, the users of the table's
//! columns (another project's owner; alpha's viewer, member and owner; an
//! admin), a succeeded job, a registered worker, and each column's
//! credential as it travels to API, worker and UI routes.

use crate::harness::{Resp, Server};
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;
use tessera_api::{create_worker_token, new_api_key, revoke_worker_token, Pool};
use tessera_store::Accounts;

/// Wrong secrets sent per key prefix, below the throttle (5 a minute), so
/// each is a plain 401.
const WRONG_PER_PREFIX: u32 = 3;

/// What `miss` asks for: no project, job or key has this id.
const MISSING: i64 = 999_999;

/// How a credential travels.
#[derive(Clone, Debug)]
pub(crate) enum Cred {
    Nothing,
    Bearer(String),
    Cookie(String),
}

/// A fresh wrong secret for a key prefix that has had fewer than
/// [`WRONG_PER_PREFIX`] of them: the victims are made on demand.
struct Victims {
    make: Box<dyn FnMut() -> String + Send>,
    current: String,
    used: u32,
}

impl Victims {
    fn new(make: Box<dyn FnMut() -> String + Send>) -> Self {
        Self {
            make,
            current: String::new(),
            used: WRONG_PER_PREFIX,
        }
    }

    fn next(&mut self) -> String {
        if self.used == WRONG_PER_PREFIX {
            self.current = (self.make)();
            self.used = 0;
        }
        self.used += 1;
        let mut wrong = self.current.clone();
        let last = if wrong.ends_with('x') { "y" } else { "x" };
        wrong.replace_range(wrong.len() - 1.., last);
        wrong
    }
}

/// The server, its users and objects, and every caller's credentials.
pub(crate) struct World {
    pub s: Server,
    pub alpha: i64,
    pub beta: i64,
    pub job: i64,
    pub spare: i64,
    pub spare_key: i64,
    worker: String,
    /// Keys of the user columns (othr, view, memb, ownr, admn).
    pub keys: BTreeMap<&'static str, String>,
    /// UI sessions of the user columns.
    sessions: BTreeMap<&'static str, String>,
    revoked_key: String,
    revoked_session: String,
    logged_out_session: String,
    worker_token: String,
    revoked_worker: String,
    user_victims: Victims,
    worker_victims: Victims,
}

impl World {
    pub(crate) async fn build() -> World {
        let s = Server::start_with("/bin/true", |state| {
            state.with_workers(Pool::new(Duration::from_secs(30)))
        });
        std::fs::create_dir_all(&s.data).unwrap();
        let admin = s.admin_key.clone();
        let (_, own) = s.user("own", false).await;
        let (vee, view) = s.user("vee", false).await;
        let (mem, memb) = s.user("mem", false).await;
        let (_, oth) = s.user("oth", false).await;
        let (spare, spare_secret) = s.user("spare", false).await;
        let alpha = s.project("alpha", &own).await;
        let beta = s.project("beta", &oth).await;
        for (user, role) in [(vee, "viewer"), (mem, "member")] {
            let url = format!("/api/v1/projects/{alpha}/members/{user}");
            let r = s
                .send_json(Method::PUT, &url, &own, json!({ "role": role }))
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        }
        let spec =
            "name: done\ntasks:\n  - name: a\n    action: {kind: command, argv: [echo, walked]}\n";
        let r = s
            .post_yaml(&format!("/api/v1/projects/{alpha}/jobs"), &memb, spec)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let job = r.json()["id"].as_i64().unwrap();
        assert_eq!(s.wait_job(job, &memb).await["state"], "succeeded");
        let r = s.get("/api/v1/keys", &spare_secret).await;
        let spare_key = r.json()[0]["id"].as_i64().unwrap();

        let keys: BTreeMap<&'static str, String> = [
            ("othr", oth),
            ("view", view),
            ("memb", memb.clone()),
            ("ownr", own),
            ("admn", admin.clone()),
        ]
        .into_iter()
        .collect();
        let mut sessions = BTreeMap::new();
        for (col, key) in &keys {
            sessions.insert(*col, login(&s, key).await.expect("a user logs in"));
        }
        // A session ended by its logout.
        let logged_out_session = login(&s, &spare_secret).await.unwrap();
        let r = send(
            &s,
            "POST",
            "/ui/logout",
            &Cred::Cookie(logged_out_session.clone()),
            "",
        )
        .await;
        assert_eq!(r.status, StatusCode::SEE_OTHER);
        // A key used (so its check is cached) and logged in with, then revoked.
        let r = s
            .send_json(Method::POST, "/api/v1/keys", &memb, json!({"name": "old"}))
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let revoked_key = r.json()["secret"].as_str().unwrap().to_string();
        let revoked_id = r.json()["key"]["id"].as_i64().unwrap();
        assert_eq!(
            s.get("/api/v1/me", &revoked_key).await.status,
            StatusCode::OK
        );
        let revoked_session = login(&s, &revoked_key).await.unwrap();
        let r = s
            .call(
                Method::DELETE,
                &format!("/api/v1/keys/{revoked_id}"),
                Some(&memb),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());

        // Worker tokens: one valid (and registered), one used then revoked.
        let worker_token = create_worker_token(&s.data, "walk").unwrap();
        let revoked_worker = create_worker_token(&s.data, "gone").unwrap();
        let register = |token: &str, name: &str| {
            let cred = Cred::Bearer(token.to_string());
            let body = format!(r#"json:{{"name": "{name}", "slots": 1}}"#);
            let s = &s;
            async move { send(s, "POST", "/api/v1/workers", &cred, &body).await }
        };
        let r = register(&revoked_worker, "gone-1").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        assert!(revoke_worker_token(&s.data, "gone").unwrap());
        let r = register(&worker_token, "walker").await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text());
        let worker = r.json()["id"].as_str().unwrap().to_string();

        let db = s.db.clone();
        let mut n = 0;
        let user_victims = Victims::new(Box::new(move || {
            let mut store = tessera_store::SqliteStore::open_secondary(&db).unwrap();
            let root = store.user_by_name("root").unwrap().unwrap();
            let (key, prefix, hash) = new_api_key();
            store
                .create_key(root.id, "victim", &prefix, &hash, 1)
                .unwrap();
            key
        }));
        let data = s.data.clone();
        let worker_victims = Victims::new(Box::new(move || {
            n += 1;
            create_worker_token(&data, &format!("victim{n}")).unwrap()
        }));
        World {
            s,
            alpha,
            beta,
            job,
            spare,
            spare_key,
            worker,
            keys,
            sessions,
            revoked_key,
            revoked_session,
            logged_out_session,
            worker_token,
            revoked_worker,
            user_victims,
            worker_victims,
        }
    }

    /// The route's path with its parameters filled in for `col`.
    pub(crate) fn url(&self, path: &str, col: &str) -> String {
        let miss = col == "miss";
        let pick = |real: i64| if miss { MISSING } else { real }.to_string();
        let id = if path.contains("/jobs/{id}") {
            self.job
        } else {
            self.spare_key
        };
        path.replace("{project}", &pick(self.alpha))
            .replace("{id}", &pick(id))
            .replace("{user}", &self.spare.to_string())
            .replace("{index}", "0")
            .replace("{upload}", "0123456789abcdef")
            .replace("{node}", "nowhere")
            .replace("{worker}", &self.worker)
            .replace("{job}", &self.job.to_string())
            .replace("{attempt}", "1")
            .replace("{*path}", "master.m3u8")
    }

    /// The key `col` stands for (for bodies) and how it is sent to `path`.
    pub(crate) fn credential(&mut self, col: &str, path: &str) -> (String, Cred) {
        let worker_route = path.starts_with("/api/v1/workers");
        let ui = path == "/" || path.starts_with("/ui");
        let unknown_user = format!("tsk_{}_{}", "Q".repeat(12), "Q".repeat(32));
        let unknown_worker = format!("twk_{}_{}", "Q".repeat(12), "Q".repeat(32));
        let key = match col {
            "none" => String::new(),
            "bad" => "not-a-key".to_string(),
            "unk" if worker_route => unknown_worker,
            "unk" => unknown_user,
            "wrng" if worker_route => self.worker_victims.next(),
            "wrng" if !ui || path == "/ui/login" => self.user_victims.next(),
            "wrng" => String::new(),
            "rvkd" if worker_route => self.revoked_worker.clone(),
            "rvkd" => self.revoked_key.clone(),
            "wtok" => self.worker_token.clone(),
            "miss" => self.keys["othr"].clone(),
            user => self.keys[user].clone(),
        };
        let cred = if !ui {
            if col == "none" {
                Cred::Nothing
            } else {
                Cred::Bearer(key.clone())
            }
        } else if path == "/ui/login" {
            Cred::Nothing // the key goes in the form
        } else {
            match col {
                "none" => Cred::Nothing,
                "bad" => Cred::Cookie("not-a-session".into()),
                "unk" => Cred::Cookie("0".repeat(64)),
                "wrng" => Cred::Cookie(self.logged_out_session.clone()),
                "rvkd" => Cred::Cookie(self.revoked_session.clone()),
                "wtok" => Cred::Bearer(key.clone()),
                "miss" => Cred::Cookie(self.sessions["othr"].clone()),
                user => Cred::Cookie(self.sessions[user].clone()),
            }
        };
        (key, cred)
    }
}

/// Sends `method path` with `cred` and `body` (`json:`, `yaml:`, `raw:`,
/// `form:` or empty) to the router.
pub(crate) async fn send(s: &Server, method: &str, path: &str, cred: &Cred, body: &str) -> Resp {
    let mut req = Request::builder()
        .method(Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path);
    match cred {
        Cred::Nothing => {}
        Cred::Bearer(key) => req = req.header(header::AUTHORIZATION, format!("Bearer {key}")),
        Cred::Cookie(id) => req = req.header(header::COOKIE, format!("tessera_session={id}")),
    }
    let body = match body.split_once(':') {
        None if body.is_empty() => Body::empty(),
        Some((kind, text)) => {
            let content_type = match kind {
                "json" => "application/json",
                "yaml" => "application/yaml",
                "raw" => "application/octet-stream",
                "form" => "application/x-www-form-urlencoded",
                other => panic!("body kind {other:?}"),
            };
            req = req.header(header::CONTENT_TYPE, content_type);
            Body::from(text.to_string())
        }
        None => panic!("body {body:?} has no kind"),
    };
    s.send(req.body(body).unwrap()).await
}

/// Logs `key` in to the UI; its session id, or `None` if refused.
pub(crate) async fn login(s: &Server, key: &str) -> Option<String> {
    let body = format!("form:key={}", form_encode(key));
    let r = send(s, "POST", "/ui/login", &Cred::Nothing, &body).await;
    if r.status != StatusCode::SEE_OTHER {
        return None;
    }
    let cookie = r.headers.get(header::SET_COOKIE)?.to_str().ok()?;
    let id = cookie.strip_prefix("tessera_session=")?.split(';').next()?;
    Some(id.to_string())
}

pub(crate) fn form_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
