use crate::support::request;
use std::path::Path;
use tessera_media::*;

fn probe_err(path: &Path) -> MediaError {
    let err = probe(path)
        .and_then(|info| frame_index(path, &info).map(|_| ()))
        .unwrap_err();
    assert!(err.is_user_error(), "{err:?} should be a user error");
    assert!(!err.to_string().contains('\n'), "one-line message: {err}");
    err
}

#[test]
fn missing_empty_text_and_random_files_are_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope.mkv");
    assert!(matches!(
        probe_err(&missing),
        MediaError::InputMissing { .. }
    ));
    let empty = dir.path().join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    assert!(matches!(probe_err(&empty), MediaError::InputEmpty { .. }));
    let text = dir.path().join("notes.mkv");
    std::fs::write(&text, "just some words\nnot a video\n").unwrap();
    assert!(
        matches!(probe_err(&text), MediaError::NotMedia { .. }),
        "{:?}",
        probe_err(&text)
    );
    let random = dir.path().join("noise.mp4");
    let bytes: Vec<u8> = (0u32..65_536)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&random, bytes).unwrap();
    let err = probe_err(&random);
    assert!(
        matches!(
            err,
            MediaError::NotMedia { .. } | MediaError::Truncated { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn truncated_and_audio_only_files_are_user_errors() {
    let dir = tempfile::tempdir().unwrap();
    let cut = tessera_media::testclips::truncated(dir.path()).unwrap();
    let err = probe_err(&cut);
    assert!(matches!(err, MediaError::Truncated { .. }), "{err:?}");
    let mkv = tessera_media::testclips::vfr_jitter(dir.path()).unwrap();
    let bytes = std::fs::read(&mkv).unwrap();
    let cut_mkv = dir.path().join("cut.mkv");
    std::fs::write(&cut_mkv, &bytes[..bytes.len() / 3]).unwrap();
    let err = probe_err(&cut_mkv);
    assert!(matches!(err, MediaError::Truncated { .. }), "{err:?}");
    let audio = tessera_media::testclips::audio_only(dir.path()).unwrap();
    let err = probe_err(&audio);
    assert!(matches!(err, MediaError::NoVideo { .. }), "{err:?}");
    assert!(
        err.to_string()
            .contains("not a video file (ffprobe found no video stream)"),
        "{err}"
    );
}

#[test]
fn validate_refuses_bad_containers_and_output_dirs() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.mkv");
    std::fs::write(&input, b"x").unwrap();
    let err = request(&input, &dir.path().join("o.mp4"), Codec::Ffv1, 2.0)
        .validate()
        .unwrap_err();
    assert!(
        matches!(err, MediaError::Unsupported(_)) && err.to_string().contains("use mkv"),
        "{err}"
    );
    let err = request(&input, &dir.path().join("o.webm"), Codec::X264, 2.0)
        .validate()
        .unwrap_err();
    assert!(err.is_user_error(), "{err}");
    let err = request(&input, &dir.path().join("no/such/o.mkv"), Codec::X264, 2.0)
        .validate()
        .unwrap_err();
    assert!(matches!(err, MediaError::OutputDir { .. }), "{err}");
    assert!(request(&input, &dir.path().join("o.mkv"), Codec::Ffv1, 2.0)
        .validate()
        .is_ok());
}
