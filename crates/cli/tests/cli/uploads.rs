//! The encode service through `tessera server`: upload a generated clip,
//! encode it, download the result whole and by range, and check it frame
//! for frame; uploads that are not video or too large leave nothing behind.

use crate::server::Server;
use crate::support::{argv, bootstrap, tessera_run};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

/// Status and body of a request, whatever the status.
fn answer(r: Result<ureq::Response, ureq::Error>) -> (u16, ureq::Response) {
    match r {
        Ok(resp) => (resp.status(), resp),
        Err(ureq::Error::Status(code, resp)) => (code, resp),
        Err(e) => panic!("request failed: {e}"),
    }
}

fn bytes_of(resp: ureq::Response) -> Vec<u8> {
    let mut out = Vec::new();
    resp.into_reader().read_to_end(&mut out).unwrap();
    out
}

/// Every file under `dir` (none if it does not exist).
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
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

fn upload(server: &Server, key: &str, name: &str, body: &[u8]) -> (u16, Value) {
    let (status, resp) = answer(
        ureq::post(&format!("{}/api/v1/projects/video/uploads", server.url))
            .set("Authorization", &format!("Bearer {key}"))
            .query("name", name)
            .send_bytes(body),
    );
    (status, resp.into_json().unwrap_or(Value::Null))
}

#[test]
fn an_uploaded_clip_is_encoded_and_downloaded_frame_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let src = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    // As root (CI), the encode's tasks run as the project's own task user
    // (uid 200000 + its id): the folders above the data directory must let
    // it pass, and the folders the API prepares must be its to write.
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        use std::os::unix::fs::PermissionsExt;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(dir.path(), open).unwrap();
    }
    let server = Server::start_with(&data, &[]);
    let auth = format!("Bearer {key}");

    let (status, up) = upload(
        &server,
        &key,
        "../my clip.mp4",
        &std::fs::read(&src).unwrap(),
    );
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["name"], "my_clip.mp4", "{up}");
    assert_eq!(up["bytes"], std::fs::metadata(&src).unwrap().len());
    assert!(up["duration"].as_f64().unwrap() > 3.9, "{up}");

    let (status, resp) = answer(
        ureq::post(&format!("{}/api/v1/projects/video/encodes", server.url))
            .set("Authorization", &auth)
            .send_json(json!({"upload": up["upload"], "codec": "ffv1", "container": "mkv", "chunk_seconds": 1.0})),
    );
    let job: Value = resp.into_json().unwrap();
    assert_eq!(status, 201, "{job}");
    let id = job["id"].as_i64().unwrap();
    let output = format!("{}/api/v1/jobs/{id}/output", server.url);

    let start = Instant::now();
    loop {
        let (_, resp) = answer(
            ureq::get(&format!("{}/api/v1/jobs/{id}", server.url))
                .set("Authorization", &auth)
                .call(),
        );
        let shown: Value = resp.into_json().unwrap();
        match shown["state"].as_str().unwrap() {
            "succeeded" => break,
            "failed" | "cancelled" => panic!("the encode ended badly: {shown}"),
            _ => {
                let (status, resp) = answer(ureq::get(&output).set("Authorization", &auth).call());
                assert!(status == 404 || status == 200, "{status}");
                if status == 404 {
                    let err: Value = resp.into_json().unwrap();
                    let message = err["error"]["message"].as_str().unwrap().to_string();
                    assert!(message.contains("once it has succeeded"), "{message}");
                }
            }
        }
        assert!(start.elapsed() < Duration::from_secs(120), "still {shown}");
        std::thread::sleep(Duration::from_millis(200));
    }

    let (status, resp) = answer(ureq::get(&output).set("Authorization", &auth).call());
    assert_eq!(status, 200);
    assert_eq!(resp.header("Accept-Ranges"), Some("bytes"));
    let length: usize = resp.header("Content-Length").unwrap().parse().unwrap();
    let whole = bytes_of(resp);
    assert_eq!(whole.len(), length);
    if root {
        use std::os::unix::fs::MetadataExt;
        let made = files_under(&data.join("outputs"));
        assert!(!made.is_empty());
        for f in made {
            let owner = std::fs::metadata(&f).unwrap().uid();
            assert!(
                (200_001..300_000).contains(&owner),
                "{} was written by uid {owner}, not the project's task user",
                f.display()
            );
        }
    }
    let downloaded = dir.path().join("downloaded.mkv");
    std::fs::write(&downloaded, &whole).unwrap();
    tessera_run(argv!["verify", src, downloaded]).expect_code(0);

    let (status, resp) = answer(
        ureq::get(&output)
            .set("Authorization", &auth)
            .set("Range", "bytes=0-99")
            .call(),
    );
    assert_eq!(status, 206);
    let range = format!("bytes 0-99/{}", whole.len());
    assert_eq!(resp.header("Content-Range"), Some(range.as_str()));
    assert_eq!(bytes_of(resp), whole[..100]);
    let (status, resp) = answer(
        ureq::get(&output)
            .set("Authorization", &auth)
            .set("Range", "bytes=-10")
            .call(),
    );
    assert_eq!(status, 206);
    assert_eq!(bytes_of(resp), whole[whole.len() - 10..]);
    let (status, resp) = answer(
        ureq::get(&output)
            .set("Authorization", &auth)
            .set("Range", &format!("bytes={}-", whole.len()))
            .call(),
    );
    assert_eq!(status, 416);
    let range = format!("bytes */{}", whole.len());
    assert_eq!(resp.header("Content-Range"), Some(range.as_str()));

    let (status, _) = answer(ureq::delete(&output).set("Authorization", &auth).call());
    assert_eq!(status, 204);
    let (status, resp) = answer(ureq::get(&output).set("Authorization", &auth).call());
    assert_eq!(status, 404);
    let err: Value = resp.into_json().unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deleted"),
        "{err}"
    );
    assert!(files_under(&data.join("outputs")).is_empty());
}

#[test]
fn bad_and_oversized_uploads_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let server = Server::start_with(&data, &["--max-upload-bytes", "10000"]);

    let (status, err) = upload(&server, &key, "clip.mp4", b"just some text, not a video\n");
    assert_eq!(status, 422, "{err}");
    let message = err["error"]["message"].as_str().unwrap();
    assert!(message.starts_with("clip.mp4: "), "{message}");
    assert!(!message.contains(data.to_str().unwrap()), "{message}");
    assert!(files_under(&data.join("uploads")).is_empty());

    // Declared too large (Content-Length) and found too large while streaming (chunked).
    // The server answers 413 without reading the declared body, so the
    // client may see the 413 or, still writing, a reset connection.
    let declared = ureq::post(&format!("{}/api/v1/projects/video/uploads", server.url))
        .set("Authorization", &format!("Bearer {key}"))
        .send_bytes(&vec![0u8; 50_000]);
    match declared {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 413),
        Err(ureq::Error::Transport(_)) => {}
        Ok(r) => panic!("an oversized upload was accepted: {}", r.status()),
    }
    // Found too large while streaming: the same (the 413 goes out as soon
    // as the limit is crossed, possibly while the client still writes).
    let big = vec![0u8; 50_000];
    let streamed = ureq::post(&format!("{}/api/v1/projects/video/uploads", server.url))
        .set("Authorization", &format!("Bearer {key}"))
        .send(&big[..]);
    match streamed {
        Err(ureq::Error::Status(code, _)) => assert_eq!(code, 413),
        Err(ureq::Error::Transport(_)) => {}
        Ok(r) => panic!("an oversized upload was accepted: {}", r.status()),
    }
    assert!(files_under(&data.join("uploads")).is_empty());
}
