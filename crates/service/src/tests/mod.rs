//! The service without any API: a real SQLite store, a real driver thread
//! (attempts run by the in-process executor: a no-op succeeds at once,
//! anything else fails), and users made through the store, authenticated
//! with real keys.

mod access;
mod closing;
mod files;
mod jobs;

use crate::{Caller, Service};
use std::sync::Arc;
use tessera_driver::{Driver, DriverConfig, DriverHandle};
use tessera_exec::InProcessExecutor;
use tessera_store::{Accounts, SqliteStore};
use tessera_types::{JobSpec, ProjectId, Role};

/// A service over its own store and driver, with project `video` owned by
/// `owner`, `member` and `viewer` in it, `outsider` in no project and
/// `admin` an admin in no project.
pub(super) struct World {
    pub service: Service,
    pub project: ProjectId,
    pub admin: Caller,
    pub owner: Caller,
    pub member: Caller,
    pub viewer: Caller,
    pub outsider: Caller,
    /// Each user's key, by name.
    pub keys: Vec<(String, String)>,
    driver: DriverHandle,
    thread: Option<std::thread::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl Drop for World {
    fn drop(&mut self) {
        self.driver.interrupt();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A job of one task running `action` (`noop` succeeds, `command` fails).
pub(super) fn spec(action: &str) -> JobSpec {
    let action = match action {
        "noop" => serde_json::json!({"kind": "noop"}),
        _ => serde_json::json!({"kind": "command", "argv": ["false"]}),
    };
    serde_json::from_value(serde_json::json!({
        "name": "j", "tasks": [{"name": "a", "action": action}],
    }))
    .expect("a job spec")
}

impl World {
    /// A world whose scheduler has `slots` slots.
    pub async fn new(slots: u32) -> World {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("tessera.db");
        let data = dir.path().join("data");
        let (tx, rx) = std::sync::mpsc::channel();
        let (db2, data2) = (db.clone(), data.clone());
        let thread = std::thread::spawn(move || {
            let store = SqliteStore::open(&db2).unwrap();
            let config = DriverConfig::new(slots, data2);
            let mut driver = Driver::new(store, InProcessExecutor::new, config);
            driver.recover(None).unwrap();
            tx.send(driver.handle()).unwrap();
            driver.serve(&mut ()).unwrap();
        });
        let driver = rx.recv().unwrap();
        let mut store = SqliteStore::open_secondary(&db).unwrap();
        let mut keys = Vec::new();
        let mut users = Vec::new();
        for (name, admin) in [
            ("admin", true),
            ("owner", false),
            ("member", false),
            ("viewer", false),
            ("outsider", false),
        ] {
            let user = store.create_user(name, admin, 1).unwrap();
            let (key, prefix, hash) = crate::new_api_key();
            store.create_key(user.id, "k", &prefix, &hash, 1).unwrap();
            keys.push((name.to_string(), key));
            users.push(user);
        }
        let project = store.create_project("video", users[1].id, 1).unwrap().id;
        store
            .set_member(project, users[2].id, Some(Role::Member), 1)
            .unwrap();
        store
            .set_member(project, users[3].id, Some(Role::Viewer), 1)
            .unwrap();
        let service = Service::new(Box::new(store), driver.clone(), data, Arc::new(()));
        let mut callers = Vec::new();
        for (_, key) in &keys {
            callers.push(service.authenticate(key).await.expect("a valid key"));
        }
        let [admin, owner, member, viewer, outsider]: [Caller; 5] =
            callers.try_into().expect("five users");
        World {
            service,
            project,
            admin,
            owner,
            member,
            viewer,
            outsider,
            keys,
            driver,
            thread: Some(thread),
            _dir: dir,
        }
    }

    pub fn key(&self, name: &str) -> &str {
        &self.keys.iter().find(|(n, _)| n == name).expect("a user").1
    }

    /// Submits `spec` to the project as its member; the job's id.
    pub async fn submit(&self, spec: JobSpec) -> tessera_types::JobId {
        let access = self
            .service
            .project::<crate::AsMember>(&self.member, "video")
            .await
            .unwrap();
        self.service.submit(&access, spec).await.unwrap().id
    }

    /// Waits (on the store's answer, up to a minute) until job `id` ended.
    pub async fn ended(&self, id: tessera_types::JobId) -> tessera_store::JobRecord {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let job = self.service.reload(id).await.unwrap().expect("the job");
            if job.state.is_terminal() {
                return job;
            }
            assert!(std::time::Instant::now() < deadline, "job {id} never ended");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }
}
