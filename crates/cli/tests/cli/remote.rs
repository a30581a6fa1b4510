//! The remote workflow without curl, against a real `tessera server`:
//! `tessera upload`, and `tessera encode FILE --server URL` (upload with
//! progress, the encode followed live, the verified output downloaded and
//! checked here by `tessera verify` and frame by frame); what is refused
//! before anything is sent, and a key never sent to a server it was not
//! saved for.

use crate::server::Server;
use crate::support::{bootstrap, client_of, long_clip, run, tessera, tessera_run, video_packets};
use std::path::Path;

/// `tessera encode` on `server` with `key` in the environment.
fn remote_encode(server: &Server, key: &str, args: &[&str]) -> crate::support::Outcome {
    let mut cmd = tessera();
    cmd.env("TESSERA_KEY", key)
        .env("XDG_CONFIG_HOME", "/nonexistent")
        .arg("encode")
        .args(args)
        .args(["--server", &server.url]);
    run(&mut cmd)
}

fn uploads(data: &Path) -> usize {
    walk(&data.join("uploads"))
}

fn walk(dir: &Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |entries| {
        entries
            .flatten()
            .map(|e| {
                if e.path().is_dir() {
                    walk(&e.path())
                } else {
                    1
                }
            })
            .sum()
    })
}

#[test]
fn upload_and_encode_on_a_server_then_verify_here() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let server = Server::start(&data);
    let clip = long_clip(dir.path(), 4);

    let up = run(&mut client_of(
        &server.url,
        &key,
        &["upload", clip.to_str().unwrap()],
    ));
    up.expect_code(0);
    let id = up.stdout.trim();
    assert_eq!(
        id.len(),
        20,
        "the upload id alone on stdout: {:?}",
        up.stdout
    );
    assert!(
        up.stderr.contains("uploaded long4.mp4 (")
            && up.stderr.contains(" MiB, h264 320x240, 4.0 s) as upload "),
        "{}",
        up.stderr
    );

    let out = dir.path().join("out.mkv");
    let enc = remote_encode(
        &server,
        &key,
        &[
            clip.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
            "--chunk-seconds",
            "1",
        ],
    );
    enc.expect_code(0);
    assert!(enc.stderr.contains("encoding on http://"), "{}", enc.stderr);
    assert!(
        enc.stderr.contains("encoding  100/100 frames"),
        "{}",
        enc.stderr
    );
    assert!(
        enc.stdout.contains("  verified   passed (on the server"),
        "{}",
        enc.stdout
    );
    assert!(enc.stdout.contains("  chunks     4 ("), "{}", enc.stdout);
    assert!(!dir.path().join("out.mkv.part").exists());
    // Checked here too: every frame, its timing, every stream.
    tessera_run(["verify".as_ref(), clip.as_os_str(), out.as_os_str()]).expect_code(0);
    assert_eq!(video_packets(&out), 100);

    // An output that exists is kept unless -y; nothing is uploaded first.
    let before = uploads(&data);
    let again = remote_encode(
        &server,
        &key,
        &[clip.to_str().unwrap(), "-o", out.to_str().unwrap()],
    );
    again.expect_code(3);
    assert!(
        again.stderr.contains("already exists; pass --overwrite"),
        "{}",
        again.stderr
    );
    // A codec the container cannot hold: refused here, before the upload.
    let mp4 = dir.path().join("lossless.mp4");
    let ffv1 = remote_encode(
        &server,
        &key,
        &[
            clip.to_str().unwrap(),
            "-o",
            mp4.to_str().unwrap(),
            "--codec",
            "ffv1",
        ],
    );
    ffv1.expect_code(3);
    assert!(
        ffv1.stderr.contains("cannot hold ffv1 video; use mkv"),
        "{}",
        ffv1.stderr
    );
    assert!(!ffv1.stderr.contains("uploading"), "{}", ffv1.stderr);
    assert_eq!(uploads(&data), before, "nothing was uploaded");
    assert!(!mp4.exists());

    // A file that is not a video: the server's refusal, in one line.
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "these are not frames\n").unwrap();
    let refused = run(&mut client_of(
        &server.url,
        &key,
        &["upload", text.to_str().unwrap()],
    ));
    refused.expect_code(3);
    assert!(
        refused.stderr.starts_with("tessera: the server refused (4"),
        "{}",
        refused.stderr
    );
    assert_eq!(
        refused.stderr.trim().lines().count(),
        1,
        "{}",
        refused.stderr
    );
}

#[test]
fn a_saved_key_is_never_sent_to_another_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let server = Server::start(&data);
    let config = dir.path().join("config");
    let mut login = tessera();
    login
        .env("XDG_CONFIG_HOME", &config)
        .args(["login", "--server", &server.url, "--key", &key]);
    run(&mut login).expect_code(0);
    let clip = long_clip(dir.path(), 1);
    let out = dir.path().join("o.mkv");
    // A listener that is not the saved server: it must get no key.
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other_url = format!("http://{}", other.local_addr().unwrap());
    let mut cmd = tessera();
    cmd.env("XDG_CONFIG_HOME", &config)
        .env_remove("TESSERA_KEY")
        .args([
            "encode",
            clip.to_str().unwrap(),
            "-o",
            out.to_str().unwrap(),
        ])
        .args(["--server", &other_url]);
    let o = run(&mut cmd);
    o.expect_code(3);
    assert!(
        o.stderr
            .contains(&format!("no key for {other_url}: run `tessera login")),
        "{}",
        o.stderr
    );
    other.set_nonblocking(true).unwrap();
    assert!(other.accept().is_err(), "the other server was contacted");
}
