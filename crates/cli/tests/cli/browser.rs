//! Headless Chromium for the end-to-end tests that drive a browser
//! (`ui_encode`, `ladder_play`): a fresh chromedriver per session, the rule
//! for a machine without Chromium, and screenshots under
//! `target/ui-screenshots/`.

use fantoccini::{Client, ClientBuilder};
use serde_json::json;
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// chromedriver, killed when dropped.
pub(crate) struct Chromedriver(Child);

impl Drop for Chromedriver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Whether an executable named `name` is in a folder on `PATH`.
pub(crate) fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(name).is_file()))
}

/// Whether Chromium and chromedriver are here; when not, the test skips
/// (fails under CI) by `tessera_testkit::env::skip` and the caller returns.
pub(crate) fn chromium_present() -> bool {
    if on_path("chromium") && on_path("chromedriver") {
        return true;
    }
    tessera_testkit::env::skip(
        "chromium or chromedriver is not on PATH",
        "apt-get install chromium chromium-driver (.ci/run does)",
    );
    false
}

/// A headless Chromium session through a fresh chromedriver.
pub(crate) async fn browser() -> (Chromedriver, Client) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new("chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Chromedriver(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen within 30 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1280,1000"]}),
    );
    let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{port}"))
        .await
        .expect("a chromedriver session");
    (driver, client)
}

/// Saves a screenshot of the page as `target/ui-screenshots/NAME`.
pub(crate) async fn shot(c: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/ui-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, c.screenshot().await.unwrap()).unwrap();
    println!("screenshot: {}", path.display());
}
