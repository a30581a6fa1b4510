//! Inputs that cannot be scored are refused with a one-line error, never a
//! panic and never a silently shifted pairing.

use crate::clips::{encode, reference};
use std::path::Path;
use tessera_media::runner::{self, argv, Tool};
use tessera_quality::{measure, QualityError, QualityOptions};

#[test]
fn different_frame_counts_are_refused_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    let src = reference(dir.path(), "src.mkv", "320x240", 30);
    let short = encode(
        &src,
        &dir.path().join("short.mp4"),
        20,
        &["-frames:v", "24"],
    );
    for (r, d, want) in [(&src, &short, (30, 24)), (&short, &src, (24, 30))] {
        let e = measure(r, d, &QualityOptions::default()).unwrap_err();
        assert!(
            matches!(e, QualityError::FrameCountMismatch { reference, distorted, .. } if (reference, distorted) == want),
            "{e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("has {} frames", want.0)) && msg.contains(&want.1.to_string()),
            "{msg}"
        );
        assert!(e.is_user_error());
    }
}

#[test]
fn a_range_past_the_reference_end_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = reference(dir.path(), "src.mkv", "320x240", 30);
    let chunk = encode(&src, &dir.path().join("c.mp4"), 20, &["-frames:v", "10"]);
    let opts = QualityOptions {
        first_frame: 25,
        frames: Some(10),
        ..Default::default()
    };
    let e = measure(&src, &chunk, &opts).unwrap_err();
    assert!(
        matches!(
            e,
            QualityError::FrameCountMismatch {
                reference: 5,
                distorted: 10,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("frames 25..34"), "{e}");
}

#[test]
fn a_picture_larger_than_8k_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let huge = dir.path().join("huge.mkv");
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(runner::lavfi_input("color=c=black:size=7696x4336:rate=1"));
    a.extend(argv([
        "-frames:v",
        "1",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
    ]));
    a.push(huge.clone().into());
    runner::run(Tool::Ffmpeg, &a).unwrap();
    let e = measure(&huge, &huge, &QualityOptions::default()).unwrap_err();
    assert!(
        matches!(
            e,
            QualityError::TooLarge {
                width: 7696,
                height: 4336,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("larger than 8K"), "{e}");
}

#[test]
fn a_file_that_is_not_video_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    std::fs::write(&text, "not a video at all\n").unwrap();
    let clip = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    let e = measure(&clip, &text, &QualityOptions::default()).unwrap_err();
    assert!(e.is_user_error(), "{e:?}");
    assert!(e.to_string().contains("notes.mp4"), "{e}");
    let e = measure(
        Path::new("/nonexistent/ref.mkv"),
        &clip,
        &QualityOptions::default(),
    )
    .unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");
}
