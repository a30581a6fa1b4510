//! The web UI's encode flow in headless Chromium against the real
//! `tessera server` (its own binary runs the ops): log in with a key, open
//! the encode page from the project page, choose a generated clip, see the
//! upload's progress bar reach 100 %, follow the job page until the encode
//! succeeds, download the output through the session (whole and by range)
//! and check it frame for frame against the source; after a restart of the
//! server the output and the encode's workdir are still there.
//! Screenshots go to `target/ui-screenshots/encode-*.png`.

use crate::browser::{browser, chromium_present, shot};
use crate::server::Server;
use crate::support::bootstrap;
use fantoccini::{Client, Locator};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};
use tessera_media::VerifyOptions;

pub(crate) async fn text_of(c: &Client, css: &str) -> String {
    match c.find(Locator::Css(css)).await {
        Ok(e) => e.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// GET `url` with the session cookie (and a `Range`, if given), not
/// following redirects.
pub(crate) fn get(url: &str, cookie: &str, range: Option<&str>) -> (u16, ureq::Response) {
    let agent = ureq::AgentBuilder::new().redirects(0).build();
    let mut req = agent.get(url).set("Cookie", cookie);
    if let Some(r) = range {
        req = req.set("Range", r);
    }
    match req.call() {
        Ok(r) => (r.status(), r),
        Err(ureq::Error::Status(code, r)) => (code, r),
        Err(e) => panic!("GET {url}: {e}"),
    }
}

pub(crate) fn body(r: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    r.into_reader().read_to_end(&mut out).unwrap();
    out
}

fn verify_frames(src: &Path, out: &Path) {
    let report = tessera_media::verify(src, out, VerifyOptions { decode: true }).unwrap();
    assert!(report.passed(), "not frame-exact: {}", report.failures());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_uploads_a_clip_and_downloads_a_frame_exact_encode() {
    if !chromium_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let src = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    let server = Server::start_with(&data, &[]);
    let base = server.url.clone();
    let (_driver, c) = browser().await;

    // Log in, then from the project page to the encode page.
    c.goto(&format!("{base}/ui")).await.unwrap();
    c.find(Locator::Css("#key"))
        .await
        .unwrap()
        .send_keys(&key)
        .await
        .unwrap();
    c.find(Locator::Css("#login"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let wait = Duration::from_secs(30);
    c.wait()
        .at_most(wait)
        .for_element(Locator::Css("section.project"))
        .await
        .unwrap();
    c.find(Locator::LinkText("video"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(wait)
        .for_element(Locator::Css("#encode-link"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.wait()
        .at_most(wait)
        .for_element(Locator::Css("#encode-form"))
        .await
        .unwrap();

    // Fill the form: the clip, lossless FFV1 in Matroska, 1 s chunks.
    c.find(Locator::Css("#file"))
        .await
        .unwrap()
        .send_keys(src.to_str().unwrap())
        .await
        .unwrap();
    // The CRF field follows the codec: x264's range, then none for ffv1.
    let crf = |c: Client| async move {
        c.execute(
            "var e = document.getElementById('crf'); return [e.disabled, e.max];",
            vec![],
        )
        .await
        .unwrap()
    };
    c.find(Locator::Css("#codec"))
        .await
        .unwrap()
        .select_by_value("x264")
        .await
        .unwrap();
    assert_eq!(crf(c.clone()).await, json!([false, "51"]));
    c.find(Locator::Css("#codec"))
        .await
        .unwrap()
        .select_by_value("ffv1")
        .await
        .unwrap();
    assert_eq!(
        crf(c.clone()).await,
        json!([true, "51"]),
        "ffv1 takes no CRF"
    );
    c.find(Locator::Css("#container"))
        .await
        .unwrap()
        .select_by_value("mkv")
        .await
        .unwrap();
    let chunk = c.find(Locator::Css("#chunk_seconds")).await.unwrap();
    chunk.clear().await.unwrap();
    chunk.send_keys("1").await.unwrap();
    shot(&c, "encode-form.png").await;

    // Submit; the page stays (a test hook) so the finished progress shows.
    c.execute(
        "window.tesseraNavigate = function (u) { window.tesseraWentTo = u; };",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("#encode"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job_url = loop {
        let went = c
            .execute("return window.tesseraWentTo || null;", vec![])
            .await
            .unwrap();
        if let Value::String(url) = went {
            break url;
        }
        let error = text_of(&c, "#encode-error").await;
        assert!(error.is_empty(), "the page says: {error}");
        assert!(Instant::now() < deadline, "no job after 30 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let bar = c
        .execute(
            "return document.getElementById('upload-bar').value;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(bar, json!(100), "the progress bar is full");
    let status = text_of(&c, "#upload-status").await;
    assert!(
        status.starts_with("100 % · ") && status.contains("MB/s"),
        "{status}"
    );
    assert!(status.contains("cfr25.mp4 uploaded"), "{status}");
    shot(&c, "encode-uploaded.png").await;
    let job: i64 = job_url
        .strip_prefix("/ui/jobs/")
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("not a job page: {job_url}"));

    // The job page follows the encode live until it succeeds; its chunk
    // map fills in as the plan cuts the video.
    c.goto(&format!("{base}{job_url}")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen_live = false;
    loop {
        let state = text_of(&c, "#job-state").await;
        if state == "succeeded" {
            break;
        }
        if state == "running" && !seen_live {
            let chunks = c
                .find_all(Locator::Css("#chunk-map g.chunk"))
                .await
                .map_or(0, |g| g.len());
            if chunks > 0 {
                seen_live = true;
                shot(&c, "encode-running.png").await;
            }
        }
        assert!(
            !["failed", "cancelled"].contains(&state.as_str()),
            "job {job} {state}"
        );
        assert!(
            Instant::now() < deadline,
            "job {job} still {state:?} after 120 s"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let link = c
        .wait()
        .at_most(wait)
        .for_element(Locator::Css("#download"))
        .await
        .unwrap();
    let href = link.attr("href").await.unwrap().expect("a download link");
    assert_eq!(href, format!("/ui/jobs/{job}/output"));
    assert_eq!(link.text().await.unwrap(), "Download cfr25.mkv");
    let size = text_of(&c, "#output-size").await;
    assert!(size.ends_with(" MB") || size.ends_with(" KB"), "{size}");
    // The page is about the video: settings, every chunk done, every frame
    // counted, the checks, and the output in a player.
    let line = text_of(&c, "#video-line").await;
    assert!(
        line.contains("cfr25.mp4") && line.contains("ffv1") && line.contains("into mkv"),
        "{line}"
    );
    let chunks = c
        .find_all(Locator::Css("#chunk-map g.chunk"))
        .await
        .unwrap();
    assert!(chunks.len() >= 2, "{} chunks", chunks.len());
    for g in &chunks {
        assert_eq!(
            g.attr("data-state").await.unwrap().as_deref(),
            Some("succeeded")
        );
    }
    assert_eq!(text_of(&c, "#frames-done").await, "100");
    assert_eq!(text_of(&c, "#frames-total").await, "100");
    let checks = text_of(&c, "#checks").await;
    assert!(checks.contains("all checks passed"), "{checks}");
    let player = c.find(Locator::Css("video#player")).await.unwrap();
    assert_eq!(
        player.attr("src").await.unwrap().as_deref(),
        Some(format!("/ui/jobs/{job}/output").as_str())
    );
    // The player reads the output (through the session, by ranges): its
    // length is the source's.
    let deadline = Instant::now() + Duration::from_secs(30);
    let duration = loop {
        let d = c
            .execute(
                "var v = document.getElementById('player'); return v.readyState >= 1 ? v.duration : null;",
                vec![],
            )
            .await
            .unwrap();
        if let Some(d) = d.as_f64() {
            break d;
        }
        assert!(
            Instant::now() < deadline,
            "the player never loaded the output"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!((duration - 4.0).abs() < 0.1, "the player says {duration} s");
    println!("chunk map seen while the encode ran: {seen_live}");
    shot(&c, "encode-job.png").await;
    let session = c.get_named_cookie("tessera_session").await.unwrap();
    let cookie = format!("tessera_session={}", session.value());
    c.close().await.unwrap();

    // Download through the session, whole and by range; frame for frame.
    let url = format!("{base}{href}");
    let (status, r) = get(&url, &cookie, None);
    assert_eq!(status, 200);
    assert_eq!(r.header("Content-Type"), Some("video/x-matroska"));
    let whole = body(r);
    let out = dir.path().join("downloaded.mkv");
    std::fs::write(&out, &whole).unwrap();
    verify_frames(&src, &out);
    let (status, r) = get(&url, &cookie, Some("bytes=100-199"));
    assert_eq!(status, 206);
    assert_eq!(body(r), whole[100..200]);
    let (status, _) = get(&url, "tessera_session=forged", None);
    assert_eq!(status, 303, "no session: to the login");

    // A restart keeps the output and the workdir until the output is deleted.
    drop(server);
    let server = Server::start_with(&data, &[]);
    let api = format!("{}/api/v1/jobs/{job}/output", server.url);
    let auth = format!("Bearer {key}");
    let r = ureq::get(&api).set("Authorization", &auth).call().unwrap();
    assert_eq!(body(r), whole, "the same output after a restart");
    let workdirs = std::fs::read_dir(data.join("encodes")).unwrap().count();
    assert_eq!(workdirs, 1, "the encode's workdir survives the restart");
    let r = ureq::delete(&api)
        .set("Authorization", &auth)
        .call()
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(std::fs::read_dir(data.join("encodes")).unwrap().count(), 0);
}
