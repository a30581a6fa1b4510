//! `tessera encode --target-vmaf`: each chunk's CRF searched with probe
//! encodes scored by tessera-vmaf, every chunk landing within 1 of the
//! target, and the whole output measured independently.

use crate::support::{argv, tessera_run};
use tessera_media::testclips;

#[test]
fn every_chunk_lands_within_one_vmaf_of_the_target() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let out = dir.path().join("out.mp4");
    let report = dir.path().join("report.json");
    let run = tessera_run(argv![
        "encode",
        &src,
        "-o",
        &out,
        "--state-dir",
        dir.path().join("state"),
        "--plain",
        "--target-vmaf",
        "90",
        "--preset",
        "veryfast",
        "--chunk-seconds",
        "1",
        "--report-json",
        &report
    ]);
    run.expect_code(0);
    assert!(
        run.stdout.contains("target     VMAF 90: 4 chunks"),
        "{}",
        run.stdout
    );
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    let chunks = json["target_chunks"].as_array().unwrap();
    assert_eq!(chunks.len(), 4, "{json}");
    for c in chunks {
        let measured = c["measured"].as_f64().unwrap();
        assert!((measured - 90.0).abs() <= 1.0, "a chunk at {measured}: {c}");
        assert!(c["probes"].as_array().unwrap().len() <= 5);
    }
    // Independently: the whole output against the source.
    let verify = tessera_run(argv!["verify", &src, &out, "--quality"]);
    verify.expect_code(0);
    let line = verify
        .stdout
        .lines()
        .find(|l| l.starts_with("VMAF"))
        .unwrap()
        .to_string();
    let mean: f64 = line.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!((mean - 90.0).abs() <= 1.0, "{line}");
}

#[test]
fn a_target_out_of_range_or_for_another_codec_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let out = dir.path().join("out.mkv");
    for (extra, want) in [
        (
            vec!["--target-vmaf", "120"],
            "target VMAF 120 is out of range; use 50 to 99",
        ),
        (
            vec!["--target-vmaf", "90", "--codec", "vp9"],
            "which x264 and x265 take; vp9 does not",
        ),
        (
            vec!["--target-vmaf", "90", "--crf", "20"],
            "cannot be used with",
        ),
    ] {
        let mut args = argv![
            "encode",
            &src,
            "-o",
            &out,
            "--state-dir",
            dir.path().join("s")
        ];
        args.extend(extra.iter().map(Into::into));
        let run = tessera_run(args);
        assert_ne!(run.code, Some(0));
        assert!(run.stderr.contains(want), "{extra:?}: {}", run.stderr);
        assert!(!out.exists());
    }
}
