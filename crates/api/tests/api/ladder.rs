//! Ladder encodes over the API, in-process: the `ladder` field of an
//! encode (accepted, and refused when malformed), and the job's ladder
//! files served with their media types to viewers, through the API key
//! and the session, while every way out of the ladder folder is refused
//! by performing it: `..`, `%2e%2e`, a symbolic link planted in the
//! folder pointing at another project's file, another project's job, a
//! job still running. The ops here are a stand-in that waits for the test
//! (the real ladder is encoded in the cli crate's tests); the test writes
//! the published folder itself.

use crate::harness::Server;
use crate::ui::login;
use crate::uploads::clip;
use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use serde_json::json;
use std::path::{Path, PathBuf};

/// An op program that waits until `release` exists (so a job stays
/// running as long as the test needs), then succeeds.
fn waiting_ops(dir: &Path, release: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let program = dir.join("ops.sh");
    std::fs::write(
        &program,
        format!(
            "#!/bin/sh\nwhile [ ! -e '{}' ]; do sleep 0.05; done\n",
            release.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).unwrap();
    program
}

/// The only encode's output folder under the server's data.
fn output_dir(data: &Path) -> PathBuf {
    let dirs: Vec<PathBuf> = std::fs::read_dir(data.join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs[0].clone()
}

/// Writes what a published ladder holds (the test's own bytes).
fn publish(ladder: &Path) {
    std::fs::create_dir_all(ladder.join("240p")).unwrap();
    std::fs::create_dir_all(ladder.join("thumbs")).unwrap();
    std::fs::write(ladder.join("master.m3u8"), "#EXTM3U\n240p/index.m3u8\n").unwrap();
    std::fs::write(ladder.join("manifest.mpd"), "<MPD/>").unwrap();
    std::fs::write(ladder.join("240p/init.mp4"), b"init").unwrap();
    std::fs::write(ladder.join("240p/seg-00001.m4s"), b"0123456789").unwrap();
    std::fs::write(ladder.join("thumbs/poster.jpg"), b"\xff\xd8jpeg").unwrap();
    let report = json!({
        "duration_seconds": 3.0, "segment_seconds": 1.0, "segments": 3,
        "renditions": [{"name": "240p", "width": 320, "height": 240, "codec": "avc1.64000d",
            "frames": 75, "bytes": 14, "average_bandwidth": 300000, "peak_bandwidth": 410000,
            "checks": [{"name": "frames", "ok": true, "detail": "75 of 75"}]}],
        "audio": ["audio-und-0"], "subtitles": [], "skipped": [],
        "thumbnails": {"poster": "poster.jpg", "sprites": [], "vtt": "thumbnails.vtt",
            "tile": [160, 90], "count": 0, "interval_seconds": 10.0}
    });
    std::fs::write(ladder.join("ladder.json"), report.to_string()).unwrap();
}

/// GET with a raw path (no client normalizes it) and the bearer key.
async fn raw_get(s: &Server, path: &str, key: &str) -> crate::harness::Resp {
    let req = Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {key}"))
        .body(Body::empty())
        .unwrap();
    s.send(req).await
}

#[tokio::test]
async fn a_ladder_encode_serves_its_files_to_viewers_and_nothing_outside_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let release = tmp.path().join("release");
    let ops = waiting_ops(tmp.path(), &release);
    let media = tmp.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    std::fs::rename(clip(tmp.path()), media.join("ep1.mp4")).unwrap();
    let volumes = tessera_api::Volumes::new([("media".to_string(), media)]).unwrap();
    let s = Server::start_with(ops.to_str().unwrap(), move |st| st.with_volumes(volumes));
    let admin = s.admin_key.clone();
    let p = s.project("films", &admin).await;
    let (viewer, viewer_key) = s.user("vic", false).await;
    let r = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{p}/members/{viewer}"),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let (_, other_key) = s.user("olga", false).await;
    let other = s.project("other", &other_key).await;
    let encodes = format!("/api/v1/projects/{p}/encodes");
    let source = json!({"volume": "media", "path": "ep1.mp4"});

    // Malformed ladders: one line each, nothing submitted.
    for (ladder, want) in [
        (json!("tallest"), "is not a ladder"),
        (json!(42), "not a ladder"),
        (json!({"rungs": []}), "1 to 12 rungs"),
        (
            json!({"rungs": [{"name": "a", "height": 240, "codec": "ffv1"}]}),
            "cannot be a ladder rung",
        ),
        (
            json!({"rungs": [{"name": "../x", "height": 240}]}),
            "not usable as a folder name",
        ),
        (json!({"segment_seconds": 0.1}), "out of range"),
        (
            json!({"rungs": [{"name": "a", "height": 240, "depth": 3}]}),
            "not a ladder",
        ),
    ] {
        let mut body = source.clone();
        body["ladder"] = ladder.clone();
        let r = s.send_json(Method::POST, &encodes, &admin, body).await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{ladder}: {}",
            r.text()
        );
        assert!(r.message().contains(want), "{ladder}: {}", r.message());
        assert!(!r.message().contains('\n'), "{}", r.message());
    }
    // Too many rungs, and a ladder beyond the API's body limit.
    let rungs: Vec<_> = (0..13)
        .map(|i| json!({"name": format!("r{i}"), "height": 240}))
        .collect();
    let mut body = source.clone();
    body["ladder"] = json!({ "rungs": rungs });
    let r = s.send_json(Method::POST, &encodes, &admin, body).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.message().contains("1 to 12 rungs"), "{}", r.message());
    let huge: Vec<_> = (0..40_000)
        .map(|i| json!({"name": format!("r{i}"), "height": 240}))
        .collect();
    let mut body = source.clone();
    body["ladder"] = json!({ "rungs": huge });
    assert!(body.to_string().len() > tessera_api::BODY_LIMIT);
    let r = s.send_json(Method::POST, &encodes, &admin, body).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    let mut with_container = source.clone();
    with_container["ladder"] = json!("default");
    with_container["container"] = json!("mkv");
    let r = s
        .send_json(Method::POST, &encodes, &admin, with_container)
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(
        r.message().contains("leave out container"),
        "{}",
        r.message()
    );
    assert!(
        !s.data.join("outputs").exists()
            || std::fs::read_dir(s.data.join("outputs"))
                .unwrap()
                .next()
                .is_none()
    );

    // A ladder of the test's rungs: accepted; its request names a folder.
    let mut body = source.clone();
    body["ladder"] = json!({"rungs": [{"name": "240p", "height": 240, "maxrate": "400k"}], "segment_seconds": 1});
    let r = s.send_json(Method::POST, &encodes, &admin, body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    let out = output_dir(&s.data);
    let workdir = s.data.join("encodes").join(out.file_name().unwrap());
    let request: serde_json::Value =
        serde_json::from_slice(&std::fs::read(workdir.join("request.json")).unwrap()).unwrap();
    assert_eq!(request["output"], json!(out.join("ladder")));
    assert_eq!(request["ladder"]["segment_seconds"], json!(1.0));
    assert_eq!(request["ladder"]["rungs"][0]["maxrate"], json!(400));

    // Running: no ladder yet, even one already on disk.
    let ladder = out.join("ladder");
    publish(&ladder);
    let url = |path: &str| format!("/api/v1/jobs/{job}/ladder/{path}");
    let r = s.get(&url("master.m3u8"), &viewer_key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(
        r.message().contains("once it has succeeded"),
        "{}",
        r.message()
    );
    std::fs::write(&release, b"").unwrap();
    let done = s.wait_job(job, &admin).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    // Another project's file, and a link to it planted in the ladder.
    let secret = s.data.join("outputs-of-other.json");
    std::fs::write(&secret, b"{\"secret\": true}").unwrap();
    std::os::unix::fs::symlink(&secret, ladder.join("leak.json")).unwrap();
    // A link to the workdir, where request.json is: not followed either.
    std::os::unix::fs::symlink(&workdir, ladder.join("up")).unwrap();
    assert!(ladder.join("up/request.json").is_file());

    // Viewers read every kind of file, with its media type, inline.
    for (path, want_type, want_body) in [
        (
            "master.m3u8",
            "application/vnd.apple.mpegurl",
            &b"#EXTM3U\n240p/index.m3u8\n"[..],
        ),
        ("manifest.mpd", "application/dash+xml", &b"<MPD/>"[..]),
        ("240p/init.mp4", "video/mp4", &b"init"[..]),
        (
            "240p/seg-00001.m4s",
            "video/iso.segment",
            &b"0123456789"[..],
        ),
        ("thumbs/poster.jpg", "image/jpeg", &b"\xff\xd8jpeg"[..]),
    ] {
        let r = s.get(&url(path), &viewer_key).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.text());
        assert_eq!(r.headers[header::CONTENT_TYPE], want_type, "{path}");
        assert_eq!(r.headers[header::CONTENT_DISPOSITION], "inline", "{path}");
        assert_eq!(r.body, want_body, "{path}");
    }
    let r = s.get(&url("ladder.json"), &viewer_key).await;
    assert_eq!(r.json()["renditions"][0]["name"], "240p");
    // Ranges, as players ask for segments.
    let req = Request::builder()
        .uri(url("240p/seg-00001.m4s"))
        .header(header::AUTHORIZATION, format!("Bearer {viewer_key}"))
        .header(header::RANGE, "bytes=2-5")
        .body(Body::empty())
        .unwrap();
    let r = s.send(req).await;
    assert_eq!(
        (r.status, r.body.as_slice()),
        (StatusCode::PARTIAL_CONTENT, &b"2345"[..])
    );
    // The single file of a ladder job is none.
    let r = s
        .get(&format!("/api/v1/jobs/{job}/output"), &viewer_key)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains("ABR ladder"), "{}", r.message());

    // The refusals, performed.
    for (path, status, want) in [
        ("../request.json", 422, "not a file of a ladder"),
        (
            "240p/../../../outputs-of-other.json",
            422,
            "not a file of a ladder",
        ),
        (
            "%2e%2e/%2e%2e/outputs-of-other.json",
            422,
            "not a file of a ladder",
        ),
        (
            "..%2f..%2foutputs-of-other.json",
            422,
            "not a file of a ladder",
        ),
        ("%2fetc%2fpasswd.json", 422, "not a file of a ladder"),
        (".hidden.json", 422, "not a file of a ladder"),
        ("240p/seg-00001.ts", 422, "not a file of a ladder"),
        ("leak.json", 404, "not a regular file"),
        ("up/request.json", 404, "not a regular file"),
        ("240p/seg-00099.m4s", 404, "has no file"),
    ] {
        let r = raw_get(&s, &url(path), &viewer_key).await;
        assert_eq!(r.status.as_u16(), status, "{path}: {}", r.text());
        assert!(r.message().contains(want), "{path}: {}", r.message());
        assert!(!r.text().contains("secret"), "{path}: {}", r.text());
        assert!(
            !r.text().contains(s.data.to_str().unwrap()),
            "{path}: {}",
            r.text()
        );
    }
    // The ladder folder itself swapped for a link: no ladder.
    std::fs::rename(&ladder, out.join("elsewhere")).unwrap();
    std::os::unix::fs::symlink(out.join("elsewhere"), &ladder).unwrap();
    let r = s.get(&url("master.m3u8"), &viewer_key).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    std::fs::remove_file(&ladder).unwrap();
    std::fs::rename(out.join("elsewhere"), &ladder).unwrap();
    // Another project's user, and a job that is no encode.
    let r = s.get(&url("master.m3u8"), &other_key).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    let r = s
        .post_yaml(
            &format!("/api/v1/projects/{other}/jobs"),
            &other_key,
            "name: plain\ntasks: [{name: a, action: {kind: noop}}]\n",
        )
        .await;
    let plain = r.json()["id"].as_i64().unwrap();
    s.wait_job(plain, &other_key).await;
    let r = s
        .get(
            &format!("/api/v1/jobs/{plain}/ladder/master.m3u8"),
            &other_key,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    assert!(r.message().contains("not an encode job"), "{}", r.message());

    // The web UI: the same files through the session, and the job page
    // with the player, the links and the renditions.
    let cookie = login(&s, &viewer_key).await;
    let page_get = |path: String| {
        Request::builder()
            .uri(path)
            .header("cookie", cookie.as_str())
            .body(Body::empty())
            .unwrap()
    };
    let r = s
        .send(page_get(format!("/ui/jobs/{job}/ladder/master.m3u8")))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(
        r.headers[header::CONTENT_TYPE],
        "application/vnd.apple.mpegurl"
    );
    let r = s
        .send(page_get(format!("/ui/jobs/{job}/ladder/leak.json")))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
    let r = s.send(page_get(format!("/ui/jobs/{job}"))).await;
    assert_eq!(r.status, StatusCode::OK);
    let html = r.text();
    for want in [
        r#"id="ladder-player""#,
        &format!(r#"src="/ui/jobs/{job}/ladder/master.m3u8""#),
        &format!(r#"poster="/ui/jobs/{job}/ladder/thumbs/poster.jpg""#),
        &format!(r#"href="/ui/jobs/{job}/ladder/manifest.mpd""#),
        r#"<tr data-rendition="240p">"#,
        "320×240",
        "300 kbit/s",
        "410 kbit/s",
        "1 of 1 passed",
        "audio: audio-und-0",
    ] {
        assert!(html.contains(want), "{want} in {html}");
    }
}
