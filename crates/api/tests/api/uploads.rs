//! Uploads and volumes through the API, in-process, with real ffprobe on
//! generated clips: multipart and raw bodies streamed and probed, refusals
//! that leave nothing behind, the list, deletion (refused while an encode
//! reads the upload), and volume paths that cannot leave their volume.

use crate::harness::{Resp, Server};
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

const BOUNDARY: &str = "tessera-test-7f3a9c";

/// A `multipart/form-data` body of `(field name, file name, bytes)` parts.
pub fn multipart(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let mut body = Vec::new();
    for (name, file, bytes) in parts {
        body.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let disposition = match file {
            Some(f) => format!(
                "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\n\
                 Content-Type: application/octet-stream\r\n\r\n"
            ),
            None => format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n"),
        };
        body.extend_from_slice(disposition.as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={BOUNDARY}"), body)
}

/// Every file under `dir` (none if it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// A 4 s 320x240 H.264 + AAC clip (real ffmpeg).
pub fn clip(dir: &Path) -> PathBuf {
    tessera_media::testclips::cfr_25(dir).expect("ffmpeg makes a test clip")
}

/// A 3 s lossless H.264 clip larger than the API's general body limit, so
/// multipart uploads are shown to escape it.
pub fn big_clip(dir: &Path) -> Vec<u8> {
    let path = dir.join("big.mp4");
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-f", "lavfi"])
        .args(["-i", "testsrc2=size=640x480:rate=25", "-t", "3"])
        .args(["-c:v", "libx264", "-preset", "ultrafast", "-qp", "0"])
        .arg(&path)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg makes a lossless clip");
    let bytes = std::fs::read(&path).unwrap();
    assert!(
        bytes.len() > tessera_api::BODY_LIMIT,
        "{} bytes",
        bytes.len()
    );
    bytes
}

async fn post_multipart(
    s: &Server,
    path: &str,
    key: &str,
    parts: &[(&str, Option<&str>, &[u8])],
) -> Resp {
    let (content_type, body) = multipart(parts);
    s.call(Method::POST, path, Some(key), Some((&content_type, body)))
        .await
}

async fn post_raw(s: &Server, path: &str, key: &str, bytes: Vec<u8>) -> Resp {
    s.call(
        Method::POST,
        path,
        Some(key),
        Some(("application/octet-stream", bytes)),
    )
    .await
}

#[tokio::test]
async fn multipart_and_raw_uploads_are_probed_listed_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = big_clip(tmp.path());
    let s = Server::start();
    let admin = s.admin_key.clone();
    let p = s.project("films", &admin).await;
    let uploads = format!("/api/v1/projects/{p}/uploads");

    let parts: &[(&str, Option<&str>, &[u8])] = &[
        ("note", None, b"parts other than `file` are skipped"),
        ("file", Some("../My Clip.mp4"), &bytes),
    ];
    let r = post_multipart(&s, &uploads, &admin, parts).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let first = r.json();
    assert_eq!(first["name"], "My_Clip.mp4", "{first}");
    assert_eq!(first["bytes"], bytes.len() as u64);
    assert!(first["duration"].as_f64().unwrap() > 2.9, "{first}");
    assert!(first["created"].as_u64().unwrap() > 0);
    assert_eq!(first["streams"][0]["kind"], "video", "{first}");
    let id = first["upload"].as_str().unwrap().to_string();
    let stored = s.data.join(format!("uploads/{p}/{id}/My_Clip.mp4"));
    assert_eq!(
        std::fs::read(&stored).unwrap(),
        bytes,
        "stored byte for byte"
    );

    let r = post_raw(
        &s,
        &format!("{uploads}?name=raw.mp4"),
        &admin,
        bytes.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let raw = r.json()["upload"].as_str().unwrap().to_string();

    let r = s.get(&uploads, &admin).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    let list = r.json();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0]["upload"], raw.as_str(), "newest first: {list:?}");
    assert_eq!(list[1]["upload"], id.as_str());
    assert_eq!(list[1]["name"], "My_Clip.mp4");
    assert_eq!(list[1]["bytes"], bytes.len() as u64);
    assert_eq!(list[1]["duration"], first["duration"]);
    assert_eq!(list[1]["created"], first["created"]);

    // Members only; viewers may list.
    let (_, outsider) = s.user("outsider", false).await;
    let r = post_raw(&s, &uploads, &outsider, bytes.clone()).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.text());
    assert_eq!(
        s.get(&uploads, &outsider).await.status,
        StatusCode::FORBIDDEN
    );

    let one = format!("{uploads}/{id}");
    let r = s.call(Method::DELETE, &one, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = s.call(Method::DELETE, &one, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(r.message().contains(&id), "{}", r.message());
    let r = s
        .call(
            Method::DELETE,
            &format!("{uploads}/..%2F..%2Fetc"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert!(!stored.exists());
    let list = s.get(&uploads, &admin).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[tokio::test]
async fn refused_uploads_leave_nothing_behind() {
    let tmp = tempfile::tempdir().unwrap();
    let png = tmp.path().join("still.png");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc2=size=32x24",
        ])
        .args(["-frames:v", "1"])
        .arg(&png)
        .status()
        .unwrap();
    assert!(made.success());
    let s = Server::start_with("/bin/true", |state| state.with_max_upload_bytes(10_000));
    let admin = s.admin_key.clone();
    let p = s.project("films", &admin).await;
    let uploads = format!("/api/v1/projects/{p}/uploads");
    let left = || files_under(&s.data.join("uploads"));

    let big = vec![0u8; 50_000];
    let r = post_multipart(&s, &uploads, &admin, &[("file", Some("big.mp4"), &big)]).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert!(r.message().contains("10000 bytes"), "{}", r.message());
    assert_eq!(left(), Vec::<PathBuf>::new());
    let r = post_raw(&s, &uploads, &admin, big.clone()).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{}", r.text());
    assert_eq!(left(), Vec::<PathBuf>::new());

    let text = b"just some text, not a video\n";
    let r = post_multipart(&s, &uploads, &admin, &[("file", Some("notes.mp4"), text)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    let message = r.message();
    assert!(message.starts_with("notes.mp4: "), "{message}");
    assert!(!message.contains(s.data.to_str().unwrap()), "{message}");
    assert!(!message.contains(".incoming"), "{message}");
    assert_eq!(left(), Vec::<PathBuf>::new());

    let still = std::fs::read(&png).unwrap();
    assert!(still.len() < 10_000, "the still fits the limit");
    let r = post_multipart(&s, &uploads, &admin, &[("file", Some("frame.mp4"), &still)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", r.text());
    assert!(r.message().contains("still image"), "{}", r.message());
    assert_eq!(left(), Vec::<PathBuf>::new());

    let r = post_multipart(&s, &uploads, &admin, &[("video", Some("a.mp4"), text)]).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert!(r.message().contains("part named `file`"), "{}", r.message());
    let bad = format!("multipart/form-data; boundary={BOUNDARY}");
    let r = s
        .call(
            Method::POST,
            &uploads,
            Some(&admin),
            Some((&bad, b"no parts at all".to_vec())),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.text());
    assert_eq!(left(), Vec::<PathBuf>::new());
    assert_eq!(
        s.get(&uploads, &admin).await.json(),
        json!([]),
        "nothing is listed"
    );
}

#[tokio::test]
async fn an_upload_read_by_an_unfinished_encode_cannot_be_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let src = clip(tmp.path());
    // Every op sleeps: the encode stays running until it is cancelled.
    let op = tmp.path().join("slow-op");
    std::fs::write(&op, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&op, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let s = Server::start_with(op.to_str().unwrap(), |state| state);
    let admin = s.admin_key.clone();
    let p = s.project("films", &admin).await;
    let uploads = format!("/api/v1/projects/{p}/uploads");
    let r = post_raw(
        &s,
        &format!("{uploads}?name=clip.mp4"),
        &admin,
        std::fs::read(&src).unwrap(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let id = r.json()["upload"].as_str().unwrap().to_string();
    let r = s
        .send_json(
            Method::POST,
            &format!("/api/v1/projects/{p}/encodes"),
            &admin,
            json!({"upload": id, "codec": "ffv1", "container": "mkv"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    assert_eq!(r.json()["name"], "encode clip.mp4");

    let one = format!("{uploads}/{id}");
    let r = s.call(Method::DELETE, &one, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.text());
    assert!(
        r.message().contains(&format!("the input of job {job}")),
        "{}",
        r.message()
    );
    let r = s
        .call(
            Method::POST,
            &format!("/api/v1/jobs/{job}/cancel"),
            Some(&admin),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text());
    assert_eq!(s.wait_job(job, &admin).await["state"], "cancelled");
    let r = s.call(Method::DELETE, &one, Some(&admin), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.text());
    let r = s
        .send_json(
            Method::POST,
            &format!("/api/v1/projects/{p}/encodes"),
            &admin,
            json!({"upload": id}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.text());
}

#[tokio::test]
async fn volume_files_are_encoded_in_place_and_paths_cannot_leave_the_volume() {
    let tmp = tempfile::tempdir().unwrap();
    let src = clip(tmp.path());
    let media = tmp.path().join("media");
    std::fs::create_dir_all(media.join("shows")).unwrap();
    std::fs::copy(&src, media.join("shows/ep1.mp4")).unwrap();
    std::fs::write(media.join("notes.mp4"), "not a video\n").unwrap();
    std::os::unix::fs::symlink(&src, media.join("escape.mp4")).unwrap();
    let volumes = tessera_api::Volumes::new([("media".to_string(), media.clone())]).unwrap();
    let s = Server::start_with("/bin/true", move |state| state.with_volumes(volumes));
    let admin = s.admin_key.clone();
    let (_, plain) = s.user("plain", false).await;
    let p = s.project("films", &admin).await;

    let r = s.get("/api/v1/volumes", &plain).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.text());
    assert_eq!(r.json(), json!([{"name": "media"}]));
    let r = s.call(Method::GET, "/api/v1/volumes", None, None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);

    let encodes = format!("/api/v1/projects/{p}/encodes");
    let r = s
        .send_json(
            Method::POST,
            &encodes,
            &admin,
            json!({"volume": "media", "path": "shows/ep1.mp4", "codec": "ffv1", "container": "mkv"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    assert_eq!(r.json()["name"], "encode media:shows/ep1.mp4");

    let refusals: [(Value, &str); 8] = [
        (
            json!({"volume": "media", "path": "../ep0.mp4"}),
            "contains `..`",
        ),
        (
            json!({"volume": "media", "path": "shows/../../cfr25.mp4"}),
            "contains `..`",
        ),
        (
            json!({"volume": "media", "path": "/etc/passwd"}),
            "is absolute",
        ),
        (
            json!({"volume": "media", "path": "escape.mp4"}),
            "leads outside volume media",
        ),
        (
            json!({"volume": "tapes", "path": "a.mp4"}),
            "unknown volume \"tapes\"; this server has: media",
        ),
        (
            json!({"volume": "media", "path": "notes.mp4"}),
            "media:notes.mp4: ",
        ),
        (json!({"volume": "media"}), "a volume needs a path"),
        (
            json!({"volume": "media", "path": "shows/ep1.mp4", "upload": "abc"}),
            "not both",
        ),
    ];
    for (body, want) in refusals {
        let r = s
            .send_json(Method::POST, &encodes, &admin, body.clone())
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{body}: {}",
            r.text()
        );
        let message = r.message();
        assert!(message.contains(want), "{body}: {message}");
        assert!(
            !message.contains(tmp.path().to_str().unwrap()),
            "{body}: {message}"
        );
    }
    let count = |dir: &str| std::fs::read_dir(s.data.join(dir)).map_or(0, |d| d.count());
    assert_eq!(
        count("encodes"),
        1,
        "only the accepted encode has a workdir"
    );
    assert_eq!(count("outputs"), 1);
}
