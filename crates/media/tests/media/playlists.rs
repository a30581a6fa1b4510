//! The critical hole of issue 9: a "video" that is a playlist or a list
//! names other files, and ffmpeg followed it. Every file is now opened as
//! exactly one media file (`runner::media_input`): these tests write the
//! attack files and check that ffprobe and ffmpeg refuse them.

use crate::support::request;
use std::path::{Path, PathBuf};
use tessera_media::*;

/// The file an attacker wants to read: a real video of someone else's.
fn secret(dir: &Path) -> PathBuf {
    testclips::cfr_25(dir).unwrap()
}

/// Attack files that point at `target`, each with a name that looks like a video.
fn attacks(dir: &Path, target: &Path) -> Vec<(PathBuf, &'static str)> {
    let t = target.display();
    let files = [
        (
            "hls-url.mp4",
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4,\nfile://{t}\n#EXT-X-ENDLIST\n"),
            "hls",
        ),
        (
            "hls-path.mkv",
            format!("#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:4,\n{t}\n#EXT-X-ENDLIST\n"),
            "hls",
        ),
        (
            "list.mp4",
            format!("ffconcat version 1.0\nfile '{t}'\n"),
            "concat",
        ),
    ];
    files
        .into_iter()
        .map(|(name, body, format)| {
            let p = dir.join(name);
            std::fs::write(&p, body).unwrap();
            (p, format)
        })
        .collect()
}

#[test]
fn playlists_and_lists_are_refused_by_the_probe_naming_what_they_are() {
    let dir = tempfile::tempdir().unwrap();
    let target = secret(dir.path());
    for (path, format) in attacks(dir.path(), &target) {
        let err = probe(&path).unwrap_err();
        assert!(err.is_user_error(), "{err:?}");
        match &err {
            MediaError::Refused { format: f, .. } => assert_eq!(f, format, "{err}"),
            other => panic!("{}: expected a refusal, got {other:?}", path.display()),
        }
        let msg = err.to_string();
        assert!(
            msg.contains("Tessera does not open this file") && !msg.contains('\n'),
            "{msg}"
        );
        // The packet index (the other ffprobe pass) refuses it too.
        assert!(probe_and_index(&path).is_err());
    }
    let png = dir.path().join("still.mp4");
    let mut a = runner::lavfi_input("testsrc2=size=64x64");
    a.extend(runner::argv([
        "-frames:v",
        "1",
        "-f",
        "image2",
        "-c:v",
        "png",
        "-y",
    ]));
    a.push(png.clone().into());
    runner::run(runner::Tool::Ffmpeg, &a).unwrap();
    let err = probe(&png).unwrap_err();
    assert!(err.to_string().contains("a still image"), "{err}");
    // The real file still opens.
    probe_and_index(&target).unwrap();
}

#[test]
fn a_chunk_encode_whose_probe_was_bypassed_still_refuses_the_playlist() {
    // A member who writes the workdir's files can skip the probe: plan a
    // real video, then point the request at a playlist of the secret.
    let dir = tempfile::tempdir().unwrap();
    let target = secret(dir.path());
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let req = request(&target, &dir.path().join("out.mkv"), Codec::Ffv1, 2.0);
    write_request(&work, &req).unwrap();
    probe_op(&work).unwrap();
    plan_op(&work).unwrap();
    for (path, _) in attacks(dir.path(), &target) {
        let mut evil = req.clone();
        evil.input = path.clone();
        write_request(&work, &evil).unwrap();
        let err = encode_chunk(&work, 0, &mut |_, _| {}).unwrap_err();
        assert!(
            err.to_string().contains("Format not on whitelist"),
            "{}: {err}",
            path.display()
        );
        let err = encode_audio(&work)
            .map(|_| ())
            .and_then(|()| concat(&work).map(|_| ()));
        assert!(
            err.is_err(),
            "{}: the join read the playlist",
            path.display()
        );
    }
    let chunks = std::fs::read_dir(work.join("chunks"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(chunks, 0, "no chunk was written from a playlist");
}
