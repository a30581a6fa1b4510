//! One server per test: store, driver thread, router, and a bootstrapped admin.

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use axum::Router;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tessera_api::{new_api_key, router, AppState};
use tessera_driver::{Driver, DriverConfig, DriverHandle};
use tessera_exec::{LocalConfig, LocalExecutor};
use tessera_store::{Accounts, SqliteStore};
use tower::ServiceExt;

pub struct Server {
    pub app: Router,
    pub state: AppState,
    pub db: PathBuf,
    /// The data directory (uploads, encodes, outputs, job workspaces).
    pub data: PathBuf,
    pub admin_key: String,
    driver: DriverHandle,
    thread: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

pub struct Resp {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The error code of an error response.
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {}", self.text()))
            .to_string()
    }

    pub fn message(&self) -> String {
        self.json()["error"]["message"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

impl Server {
    pub fn start() -> Server {
        Server::start_with("/bin/true", |state| state)
    }

    /// With `op_program` running the ops of encode jobs, and `configure`
    /// applied to the API's state (upload limit, volumes).
    pub fn start_with(op_program: &str, configure: impl FnOnce(AppState) -> AppState) -> Server {
        let op_program = PathBuf::from(op_program);
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let data = dir.path().join("data");
        let (tx, rx) = mpsc::channel();
        let (db2, data2) = (db.clone(), data.clone());
        let thread = std::thread::spawn(move || {
            let store = SqliteStore::open(&db2).unwrap();
            let make = |sink| {
                LocalExecutor::new(LocalConfig {
                    op_program: op_program.clone(),
                    sink,
                })
            };
            let mut driver = Driver::new(store, make, DriverConfig::new(2, data2));
            driver.recover(None).unwrap();
            tx.send(driver.handle()).unwrap();
            driver.serve(&mut ()).unwrap();
        });
        let driver = rx.recv().unwrap();
        let mut store = SqliteStore::open_secondary(&db).unwrap();
        let admin = store.create_user("root", true, now()).unwrap();
        let (admin_key, prefix, hash) = new_api_key();
        store
            .create_key(admin.id, "bootstrap", &prefix, &hash, now())
            .unwrap();
        let state = configure(AppState::new(Box::new(store), driver.clone(), data.clone()));
        Server {
            app: router(state.clone()),
            state,
            db,
            data,
            admin_key,
            driver,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<(&str, Vec<u8>)>,
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(key) = key {
            req = req.header(header::AUTHORIZATION, format!("Bearer {key}"));
        }
        let body = match body {
            Some((content_type, bytes)) => {
                req = req.header(header::CONTENT_TYPE, content_type);
                Body::from(bytes)
            }
            None => Body::empty(),
        };
        self.send(req.body(body).unwrap()).await
    }

    /// Sends a request to the router; the whole answer.
    pub async fn send(&self, req: Request<Body>) -> Resp {
        let response = self.app.clone().oneshot(req).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
        Resp {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, key: &str) -> Resp {
        self.call(Method::GET, path, Some(key), None).await
    }

    pub async fn send_json(&self, method: Method, path: &str, key: &str, body: Value) -> Resp {
        let bytes = serde_json::to_vec(&body).unwrap();
        self.call(method, path, Some(key), Some(("application/json", bytes)))
            .await
    }

    pub async fn post_yaml(&self, path: &str, key: &str, yaml: &str) -> Resp {
        let body = Some(("application/yaml", yaml.as_bytes().to_vec()));
        self.call(Method::POST, path, Some(key), body).await
    }

    /// Creates a user through the API; returns (user id, key).
    pub async fn user(&self, name: &str, admin: bool) -> (i64, String) {
        let body = serde_json::json!({ "name": name, "admin": admin });
        let r = self
            .send_json(Method::POST, "/api/v1/users", &self.admin_key, body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        let v = r.json();
        let key = v["key"]["secret"].as_str().unwrap().to_string();
        (v["user"]["id"].as_i64().unwrap(), key)
    }

    /// Creates a project as `key`'s user; returns its id.
    pub async fn project(&self, name: &str, key: &str) -> i64 {
        let body = serde_json::json!({ "name": name });
        let r = self
            .send_json(Method::POST, "/api/v1/projects", key, body)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
        r.json()["id"].as_i64().unwrap()
    }

    /// Polls a job until it reaches a terminal state (60 s at most: a bound
    /// on a hang, not a speed requirement).
    pub async fn wait_job(&self, id: i64, key: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let r = self.get(&format!("/api/v1/jobs/{id}"), key).await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.text());
            let job = r.json();
            let state = job["state"].as_str().unwrap().to_string();
            if ["succeeded", "failed", "cancelled"].contains(&state.as_str()) {
                return job;
            }
            assert!(
                Instant::now() < deadline,
                "job {id} still {state} after 60 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A store connection of the test's own (beside the API's).
    pub fn store(&self) -> SqliteStore {
        SqliteStore::open_secondary(&self.db).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.driver.interrupt();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
