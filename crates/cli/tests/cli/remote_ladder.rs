//! `tessera encode SRC -o DIR --ladder FILE --server URL`: the ladder is
//! encoded on the server and its published folder downloaded here, file
//! for file the same as the server's (found from the playlists and
//! `ladder.json`, as a player finds them); an output folder holding other
//! files is refused before anything is sent.

use crate::server::Server;
use crate::support::{bootstrap, run, tessera};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Every file under `dir` by its path relative to `dir`, with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn a_ladder_encoded_on_a_server_arrives_file_for_file() {
    let dir = tempfile::tempdir().unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    let server = Server::start(&data);
    let src = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    let ladder = dir.path().join("ladder.yaml");
    std::fs::write(
        &ladder,
        "segment_seconds: 1\nrungs:\n  - {name: 240p, height: 240, crf: 28}\n  - {name: 144p, height: 144, crf: 32}\n",
    )
    .unwrap();
    let encode = |out: &Path| {
        let mut cmd = tessera();
        cmd.env("TESSERA_KEY", &key)
            .env("XDG_CONFIG_HOME", "/nonexistent")
            .arg("encode")
            .arg(&src)
            .arg("-o")
            .arg(out)
            .arg("--ladder")
            .arg(&ladder)
            .args(["--chunk-seconds", "2", "--plain", "--server", &server.url]);
        run(&mut cmd)
    };

    // A folder of other files: refused here, nothing uploaded.
    let taken = dir.path().join("taken");
    std::fs::create_dir_all(&taken).unwrap();
    std::fs::write(taken.join("notes.txt"), b"mine").unwrap();
    let refused = encode(&taken);
    refused.expect_code(3);
    assert!(
        refused.stderr.contains("not a Tessera ladder"),
        "{}",
        refused.stderr
    );
    assert!(
        !data.join("uploads").exists()
            || std::fs::read_dir(data.join("uploads")).unwrap().all(|e| {
                std::fs::read_dir(e.unwrap().path())
                    .unwrap()
                    .next()
                    .is_none()
            })
    );

    let out = dir.path().join("hls");
    let done = encode(&out);
    done.expect_code(0);
    assert!(done.stdout.contains("verified   passed"), "{}", done.stdout);
    let outputs: Vec<PathBuf> = std::fs::read_dir(data.join("outputs"))
        .unwrap()
        .map(|e| e.unwrap().path().join("ladder"))
        .collect();
    assert_eq!(outputs.len(), 1);
    let (there, here) = (tree(&outputs[0]), tree(&out));
    let names = |t: &BTreeMap<PathBuf, Vec<u8>>| t.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(&here), names(&there), "the same files");
    assert!(here == there, "the same bytes");
    for want in [
        "master.m3u8",
        "manifest.mpd",
        "ladder.json",
        "240p/init.mp4",
        "144p/index.m3u8",
    ] {
        assert!(here.contains_key(Path::new(want)), "{want}");
    }
    assert!(
        here.keys().any(|p| p.starts_with("thumbs")),
        "{:?}",
        names(&here)
    );
    assert!(!dir.path().join(".hls.tessera-part").exists());
}
