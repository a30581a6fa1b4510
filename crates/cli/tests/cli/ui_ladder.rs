//! A ladder encode through the real `tessera server` (its own binary runs
//! the ops) and its job page in headless Chromium: upload a clip and ask
//! for a two-rung ladder over the REST API, follow the job until it
//! succeeds, read the ladder's files through the API (media types,
//! `ladder.json`), then open the job page: the renditions' table, the
//! manifests' links, and the player, whose source is the HLS master
//! playlist, loads the ladder (Chromium plays HLS natively) with the
//! clip's length. Screenshot: `target/ui-screenshots/ladder-job.png`.

use crate::browser::{browser, on_path, shot};
use crate::server::Server;
use crate::support::bootstrap;
use crate::ui_encode::{body, get, text_of};
use fantoccini::Locator;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

fn api_get(url: &str, auth: &str) -> ureq::Response {
    ureq::get(url)
        .set("Authorization", auth)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_plays_a_ladder_submitted_over_the_api() {
    if !(on_path("chromium") && on_path("chromedriver")) {
        tessera_testkit::env::skip(
            "chromium or chromedriver is not on PATH",
            "apt-get install chromium chromium-driver (.ci/run does)",
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // As root, the tasks run as the project's task user: let it pass.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let src = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    let server = Server::start_with(&data, &[]);
    let base = server.url.clone();
    let auth = format!("Bearer {key}");

    // Upload, then a two-rung ladder of 1 s segments over the API.
    let up: Value = ureq::post(&format!("{base}/api/v1/projects/video/uploads"))
        .set("Authorization", &auth)
        .query("name", "cfr25.mp4")
        .send_bytes(&std::fs::read(&src).unwrap())
        .unwrap()
        .into_json()
        .unwrap();
    let ladder = json!({
        "rungs": [
            {"name": "240p", "height": 240, "crf": 26, "maxrate": "600k"},
            {"name": "144p", "height": 144, "crf": 30, "maxrate": "250k"},
        ],
        "segment_seconds": 1,
    });
    let job: Value = ureq::post(&format!("{base}/api/v1/projects/video/encodes"))
        .set("Authorization", &auth)
        .send_json(json!({"upload": up["upload"], "ladder": ladder, "chunk_seconds": 2}))
        .unwrap_or_else(|e| match e {
            ureq::Error::Status(_, r) => panic!("refused: {}", r.into_string().unwrap()),
            e => panic!("{e}"),
        })
        .into_json()
        .unwrap();
    let job = job["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let j: Value = api_get(&format!("{base}/api/v1/jobs/{job}"), &auth)
            .into_json()
            .unwrap();
        match j["state"].as_str().unwrap() {
            "succeeded" => break,
            s @ ("failed" | "cancelled") => panic!("job {job} {s}: {j}\n{}", server.stderr()),
            s => assert!(Instant::now() < deadline, "job {job} still {s} after 240 s"),
        }
        std::thread::sleep(Duration::from_millis(250));
    }

    // The files through the API, with their media types.
    let ladder_url = |path: &str| format!("{base}/api/v1/jobs/{job}/ladder/{path}");
    let r = api_get(&ladder_url("master.m3u8"), &auth);
    assert_eq!(r.content_type(), "application/vnd.apple.mpegurl");
    let master = r.into_string().unwrap();
    assert!(
        master.contains("240p/index.m3u8") && master.contains("144p/index.m3u8"),
        "{master}"
    );
    let r = api_get(&ladder_url("manifest.mpd"), &auth);
    assert_eq!(r.content_type(), "application/dash+xml");
    let r = api_get(&ladder_url("240p/init.mp4"), &auth);
    assert_eq!(r.content_type(), "video/mp4");
    let r = api_get(&ladder_url("240p/seg-00001.m4s"), &auth);
    assert_eq!(r.content_type(), "video/iso.segment");
    assert!(!body(r).is_empty());
    let report: Value = api_get(&ladder_url("ladder.json"), &auth)
        .into_json()
        .unwrap();
    let names: Vec<&str> = report["renditions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["240p", "144p"], "{report}");
    let poster = report["thumbnails"]["poster"].as_str().unwrap().to_string();
    let r = api_get(&ladder_url(&format!("thumbs/{poster}")), &auth);
    assert_eq!(r.content_type(), "image/jpeg");

    // The job page: renditions, links, and the player playing the ladder.
    let (_driver, c) = browser().await;
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
    c.goto(&format!("{base}/ui/jobs/{job}")).await.unwrap();
    let player = c
        .wait()
        .at_most(wait)
        .for_element(Locator::Css("video#ladder-player"))
        .await
        .unwrap();
    let master_src = format!("/ui/jobs/{job}/ladder/master.m3u8");
    assert_eq!(
        player.attr("src").await.unwrap().as_deref(),
        Some(master_src.as_str())
    );
    let can = c
        .execute(
            "return document.createElement('video').canPlayType('application/vnd.apple.mpegurl');",
            vec![],
        )
        .await
        .unwrap();
    println!("canPlayType(application/vnd.apple.mpegurl) = {can}");
    let rows = c
        .find_all(Locator::Css("#renditions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let table = text_of(&c, "#renditions").await;
    for want in ["240p", "144p", "320×240", "passed"] {
        assert!(table.contains(want), "{want} in {table}");
    }
    let links = text_of(&c, "#ladder-links").await;
    assert!(
        links.contains("master.m3u8") && links.contains("manifest.mpd"),
        "{links}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (ready, duration) = loop {
        let v = c
            .execute(
                "var v = document.getElementById('ladder-player'); \
                 return [v.readyState, v.duration, v.error ? v.error.code : 0];",
                vec![],
            )
            .await
            .unwrap();
        let ready = v[0].as_i64().unwrap_or(0);
        assert_eq!(v[2], json!(0), "the player failed: {v}");
        if ready >= 2 {
            break (ready, v[1].as_f64().unwrap_or(0.0));
        }
        assert!(
            Instant::now() < deadline,
            "the player never loaded the ladder: {v}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        (duration - 4.0).abs() < 0.2,
        "readyState {ready}, {duration} s"
    );
    // Every chunk of every rendition counted once.
    assert_eq!(text_of(&c, "#frames-done").await, "200");
    assert_eq!(text_of(&c, "#frames-total").await, "200");
    let line = text_of(&c, "#video-line").await;
    assert!(line.contains("ABR ladder of 2 renditions"), "{line}");
    c.execute(
        "document.getElementById('ladder-card').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shot(&c, "ladder-job.png").await;
    let session = c.get_named_cookie("tessera_session").await.unwrap();
    let cookie = format!("tessera_session={}", session.value());
    c.close().await.unwrap();

    // The session reads the same files; no session is sent to the login.
    let (status, r) = get(&format!("{base}{master_src}"), &cookie, None);
    assert_eq!(status, 200);
    assert_eq!(body(r), master.as_bytes());
    let (status, _) = get(
        &format!("{base}{master_src}"),
        "tessera_session=forged",
        None,
    );
    assert_eq!(status, 303);
}
