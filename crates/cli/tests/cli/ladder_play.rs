//! Issue 12's playback proof: real headless Chromium plays a ladder that
//! `tessera encode --ladder` wrote, served over loopback HTTP
//! ([`crate::static_http`]) with the content types players check.
//!
//! The ladder: `testclips::multi_track` (4 s, 100 frames at 25 fps, English
//! and French audio, English subtitles) in two renditions with 1 s
//! segments: `big` (320x240, x264 `veryfast`, so B-frames and an MP4 edit
//! list that puts the first frame at 0) and `small` (160x120, `ultrafast`).
//! The page is `ladder_play.html`:
//! - `native`: `<video src=master.m3u8>`, Chromium's own HLS player;
//! - `hls`, `dash`: video.js 7.5.5 with its VHS engine (MSE) from PyPI's
//!   `js.videojs` (`.ci/run` unpacks it), `master.m3u8` and
//!   `manifest.mpd`, with a rendition switch forced after 1.5 s.
//!
//! Each plays to `ended` (within 60 s) with no media or player error, all
//! frames decoded, frames presented from 0 to the last, the first buffered
//! range at 0; the MSE players present frames of both renditions and fetch
//! both renditions' segments, the audio and the subtitles (their cues
//! shown). Screenshots go to `target/ui-screenshots/ladder-*.png`.
//!
//! `video_js_keeps_audio_and_subtitles_on_the_video_clock` checks audio
//! and subtitles stay on the video's clock under video.js (it once caught
//! the audio 256 ms early: see its doc).

use crate::browser::{browser, chromium_present, shot};
use crate::static_http::{Site, StaticServer};
use crate::support::{argv, tessera_run, video_packets};
use fantoccini::Client;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tessera_media::testclips;

const LADDER: &str = "segment_seconds: 1\nrungs:\n  - {name: big, height: 240, preset: veryfast}\n  - {name: small, height: 120, preset: ultrafast}\n";
const PAGE: &str = include_str!("ladder_play.html");
const FPS: f64 = 25.0;
/// How long one playback may take to reach `ended` (the clip is 4 s).
const PLAY_LIMIT: Duration = Duration::from_secs(60);

/// The folder holding video.js 7.5.5 (`video.js`, `video-js.css`): from
/// `TESSERA_VIDEOJS`, else where `.ci/run` unpacks it under the target dir.
fn videojs_dir() -> Option<PathBuf> {
    let unpacked = |target: PathBuf| target.join("videojs-7.5.5/js/videojs/resources");
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(d) = std::env::var_os("TESSERA_VIDEOJS") {
        candidates.push(d.into());
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        candidates.push(unpacked(t.into()));
    }
    candidates.push(unpacked(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"),
    ));
    for d in &candidates {
        let head = std::fs::read(d.join("video.js")).unwrap_or_default();
        let head = String::from_utf8_lossy(&head[..head.len().min(400)]).into_owned();
        if head.contains("Video.js 7.5.5") && d.join("video-js.css").is_file() {
            return Some(d.clone());
        }
    }
    tessera_testkit::env::skip(
        &format!("video.js 7.5.5 is not unpacked (looked in {candidates:?})"),
        "run .ci/run (its js.videojs step: pip download js.videojs==7.5.5 into \
         $CARGO_TARGET_DIR/videojs-7.5.5), or set TESSERA_VIDEOJS to the package's \
         js/videojs/resources folder",
    );
    None
}

/// The first edit's media time in the `elst` of the MP4 at `path`.
fn first_edit_media_time(path: &Path) -> i64 {
    let b = std::fs::read(path).unwrap();
    let i = b
        .windows(4)
        .position(|w| w == b"elst")
        .unwrap_or_else(|| panic!("{} has no elst", path.display()));
    let int = |at: usize, n: usize| -> i64 {
        let mut v: i64 = 0;
        for byte in &b[at..at + n] {
            v = (v << 8) | i64::from(*byte);
        }
        v
    };
    if b[i + 4] == 1 {
        int(i + 20, 8)
    } else {
        int(i + 16, 4) as i32 as i64
    }
}

/// A ladder of `multi_track` in `dir/out`, and the source's frame count.
fn make_ladder(dir: &Path) -> (PathBuf, f64) {
    let src = testclips::multi_track(dir).unwrap();
    let ladder = dir.join("ladder.yaml");
    std::fs::write(&ladder, LADDER).unwrap();
    let out = dir.join("out");
    let state = dir.join("state");
    tessera_run(argv![
        "encode",
        src,
        "-o",
        out,
        "--state-dir",
        state,
        "--plain",
        "--ladder",
        ladder
    ])
    .expect_code(0);
    // The B-frame delay is in the edit list, so the check of the first
    // frame's time below means something.
    assert!(
        first_edit_media_time(&out.join("big/init.mp4")) > 0,
        "big/init.mp4: no B-frame delay in its edit list; the rung lost its B-frames"
    );
    (out, video_packets(&src) as f64)
}

/// Serves the ladder, video.js and the page.
fn serve(ladder: &Path, videojs: &Path) -> StaticServer {
    StaticServer::start(Site {
        mounts: vec![
            ("/".into(), ladder.to_path_buf()),
            ("/videojs/".into(), videojs.to_path_buf()),
        ],
        pages: vec![(
            "/play.html".into(),
            "text/html; charset=utf-8",
            PAGE.to_string(),
        )],
    })
}

/// Opens the page in `mode` and waits for `ended` or an error (at most
/// [`PLAY_LIMIT`]): the page's report, with its console, on any failure.
async fn play(c: &Client, server: &StaticServer, mode: &str) -> Value {
    c.goto(&format!("{}/play.html?mode={mode}", server.url))
        .await
        .unwrap();
    let deadline = Instant::now() + PLAY_LIMIT;
    let mut shot_mid = false;
    loop {
        let r = c
            .execute("return window.report ? window.report() : null;", vec![])
            .await
            .unwrap();
        let errors = r["errors"].as_array().map_or(0, Vec::len);
        if !shot_mid && r["currentTime"].as_f64().unwrap_or(0.0) > 2.0 {
            shot(c, &format!("ladder-{mode}-playing.png")).await;
            shot_mid = true;
        }
        if r["ended"] == true || errors > 0 {
            shot(c, &format!("ladder-{mode}.png")).await;
            assert_eq!(errors, 0, "{mode}: the page reports errors:\n{r:#}");
            return r;
        }
        if Instant::now() > deadline {
            shot(c, &format!("ladder-{mode}-stuck.png")).await;
            panic!("{mode}: not ended after {PLAY_LIMIT:?}:\n{r:#}");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn num(r: &Value, key: &str) -> f64 {
    r[key]
        .as_f64()
        .unwrap_or_else(|| panic!("no {key} in the report:\n{r:#}"))
}

/// What every playback must show: all frames decoded, frames presented from
/// 0 to the last one, audio decoded, the first buffered range at 0.
fn check_played(mode: &str, r: &Value, frames: f64) {
    let decoded = num(r, "decodedFrames");
    // A rendition switch decodes a few frames twice (the buffer is replaced).
    assert!(
        decoded >= frames && decoded <= frames * 1.25,
        "{mode}: {decoded} frames decoded of {frames}:\n{r:#}"
    );
    let presented = num(r, "presentedFrames");
    assert!(
        presented >= frames * 0.8,
        "{mode}: only {presented} frames presented of {frames}:\n{r:#}"
    );
    let first = num(r, "firstMediaTime");
    assert!(
        first.abs() < 0.5 / FPS,
        "{mode}: the first frame shown is at {first} s, not 0:\n{r:#}"
    );
    let last = num(r, "lastMediaTime");
    assert!(
        last >= (frames - 3.0) / FPS,
        "{mode}: the last frame shown is at {last} s of {} s:\n{r:#}",
        frames / FPS
    );
    let audio = num(r, "audioDecodedBytes");
    assert!(audio > 0.0, "{mode}: no audio decoded:\n{r:#}");
    let start = r["bufferedAtLoad"][0][0].as_f64();
    assert!(
        start.is_some_and(|s| s.abs() < 0.5 / FPS),
        "{mode}: buffered from {start:?} s at loadeddata, not 0:\n{r:#}"
    );
}

/// What the MSE players (video.js) must show beyond [`check_played`]: the
/// switch, frames of both sizes, both renditions, audio and subtitles
/// fetched (from `paths`, what the server was asked for during the
/// playback) and the cues.
fn check_switched(mode: &str, r: &Value, paths: &[String]) {
    let switched = &r["switched"];
    assert!(switched.is_object(), "{mode}: no rendition switch:\n{r:#}");
    for h in ["240", "120"] {
        let n = r["heights"][h].as_u64().unwrap_or(0);
        assert!(n >= 5, "{mode}: {n} frames of height {h} presented:\n{r:#}");
    }
    for folder in ["/big/seg-", "/small/seg-", "/audio-eng-0/seg-"] {
        assert!(
            paths.iter().any(|p| p.starts_with(folder)),
            "{mode}: no {folder}* requested: {paths:?}"
        );
    }
    let cues: Vec<&str> = r["cues"]
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(
        cues.iter().any(|c| c.ends_with(" Hello")) && cues.iter().any(|c| c.ends_with(" World")),
        "{mode}: the subtitles' cues are {cues:?}"
    );
    let video = r["sourceBuffers"]
        .as_array()
        .and_then(|a| {
            a.iter()
                .find(|s| s["mime"].as_str().unwrap_or("").starts_with("video/"))
        })
        .unwrap_or_else(|| panic!("{mode}: no video SourceBuffer:\n{r:#}"));
    let start = video["first"][0].as_f64();
    assert!(
        start.is_some_and(|s| s.abs() < 0.5 / FPS),
        "{mode}: the video SourceBuffer starts at {start:?} s:\n{r:#}"
    );
}

/// The request paths the server saw from `from` on.
fn paths_since(server: &StaticServer, from: usize) -> Vec<String> {
    server.hits()[from..]
        .iter()
        .map(|h| h.path.clone())
        .collect()
}

/// The audio SourceBuffer's first range and timestampOffset, for the log.
fn audio_timing(r: &Value) -> String {
    let audio = r["sourceBuffers"].as_array().and_then(|a| {
        a.iter()
            .find(|s| s["mime"].as_str().unwrap_or("").starts_with("audio/"))
    });
    match audio {
        Some(a) => format!(
            "audio SourceBuffer: first range {}, timestampOffset {}, now {}; cues {}",
            a["first"], a["timestampOffset"], a["now"], r["cues"]
        ),
        None => "no audio SourceBuffer".into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chromium_plays_the_ladder_natively_and_through_video_js_hls_and_dash() {
    if !chromium_present() {
        return;
    }
    let Some(videojs) = videojs_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ladder, frames) = make_ladder(dir.path());
    let server = serve(&ladder, &videojs);
    let (_driver, c) = browser().await;

    let r = play(&c, &server, "native").await;
    assert!(
        matches!(r["canPlayType"].as_str(), Some("maybe" | "probably")),
        "this Chromium has no native HLS:\n{r:#}"
    );
    check_played("native", &r, frames);
    println!(
        "native: {} decoded, {} presented, heights {}, duration {}",
        r["decodedFrames"], r["presentedFrames"], r["heights"], r["duration"]
    );

    for (mode, manifest) in [("hls", "/master.m3u8"), ("dash", "/manifest.mpd")] {
        let from = server.hits().len();
        let r = play(&c, &server, mode).await;
        let paths = paths_since(&server, from);
        assert!(paths.iter().any(|p| p == manifest), "{mode}: {paths:?}");
        check_played(mode, &r, frames);
        check_switched(mode, &r, &paths);
        println!(
            "{mode}: {} decoded, {} presented, heights {}, switch {}; {}",
            r["decodedFrames"],
            r["presentedFrames"],
            r["heights"],
            r["switched"],
            audio_timing(&r)
        );
    }
    let refused: Vec<_> = server
        .hits()
        .into_iter()
        .filter(|h| h.status != 200)
        .collect();
    // Chromium asks for a favicon the folder does not hold; nothing else may miss.
    assert!(
        refused.iter().all(|h| h.path == "/favicon.ico"),
        "requests refused: {refused:?}"
    );
    c.close().await.unwrap();
}

/// video.js 7.5.5 (VHS 1.9.3, mux.js `probe.startTime`) reads a `tfdt` of
/// 0 as missing (`baseTime || Infinity`): when the ladder's audio segments
/// held four fragments each, the first segment was taken to start at its
/// second fragment's time (256 ms), VHS set the audio SourceBuffer's
/// timestampOffset to -0.256 s and the audio (at times the subtitles) played
/// 256 ms early. The packager now writes one fragment per audio segment
/// (`tessera_package`'s merge.rs); this keeps it so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn video_js_keeps_audio_and_subtitles_on_the_video_clock() {
    if !chromium_present() {
        return;
    }
    let Some(videojs) = videojs_dir() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (ladder, _) = make_ladder(dir.path());
    let server = serve(&ladder, &videojs);
    let (_driver, c) = browser().await;
    for mode in ["hls", "dash"] {
        let r = play(&c, &server, mode).await;
        let audio = r["sourceBuffers"]
            .as_array()
            .and_then(|a| {
                a.iter()
                    .find(|s| s["mime"].as_str().unwrap_or("").starts_with("audio/"))
            })
            .unwrap_or_else(|| panic!("{mode}: no audio SourceBuffer:\n{r:#}"))
            .clone();
        let offset = audio["timestampOffset"].as_f64().unwrap_or(f64::NAN);
        let cues: Vec<&str> = r["cues"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        assert!(
            offset.abs() < 0.01 && cues.contains(&"eng 0.500 Hello"),
            "{mode}: {}",
            audio_timing(&r)
        );
    }
    c.close().await.unwrap();
}
