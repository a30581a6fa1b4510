//! `tessera encode --ladder`: the whole ladder through the scheduler, what
//! the summary says, and what it refuses (with --server: `remote_ladder.rs`).

use crate::support::{argv, tessera_run};
use std::path::Path;
use tessera_media::testclips;

const LADDER: &str = "segment_seconds: 1\nrungs:\n  - {name: big, height: 240, preset: ultrafast}\n  - {name: small, height: 120, preset: ultrafast, maxrate: 250k}\n  - {name: huge, height: 1080}\n";

fn encode(src: &Path, out: &Path, state: &Path, extra: &[&str]) -> crate::support::Outcome {
    let mut args = argv!["encode", src, "-o", out, "--state-dir", state, "--plain"];
    args.extend(extra.iter().map(Into::into));
    tessera_run(args)
}

#[test]
fn a_ladder_file_gives_a_published_ladder_and_a_summary_that_says_what_it_holds() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::multi_track(dir.path()).unwrap();
    let ladder = dir.path().join("ladder.yaml");
    std::fs::write(&ladder, LADDER).unwrap();
    let out = dir.path().join("out");
    let state = dir.path().join("state");
    let report = dir.path().join("report.json");
    let ladder_arg = ladder.to_string_lossy().into_owned();
    let report_arg = report.to_string_lossy().into_owned();
    let run = encode(
        &src,
        &out,
        &state,
        &["--ladder", &ladder_arg, "--report-json", &report_arg],
    );
    run.expect_code(0);
    let text = &run.stdout;
    assert!(
        text.contains("ladder     2 renditions, 4 segments of 1 s"),
        "{text}"
    );
    assert!(
        text.contains("chunk encodes (") && text.contains(" chunks x 2 renditions)"),
        "{text}"
    );
    assert!(
        text.contains("big") && text.contains("320x240") && text.contains("160x120"),
        "{text}"
    );
    assert!(
        text.contains("skipped  huge (taller than the source"),
        "{text}"
    );
    assert!(
        text.contains("audio    audio-eng-0, audio-fre-1; subtitles subs/eng-0.vtt"),
        "{text}"
    );
    assert!(text.contains("verified   passed"), "{text}");
    for f in [
        "master.m3u8",
        "manifest.mpd",
        "ladder.json",
        "big/index.m3u8",
        "small/init.mp4",
        "thumbs/thumbnails.vtt",
    ] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(
        json["ladder"]["renditions"].as_array().unwrap().len(),
        2,
        "{json}"
    );
    assert!(!dir.path().join(".out.tessera-tmp").exists());

    // Again: refused without --overwrite, replaced with it.
    let again = encode(&src, &out, &state, &["--ladder", &ladder_arg]);
    again.expect_code(3);
    assert!(
        again
            .stderr
            .contains("already holds a ladder; pass --overwrite (-y)"),
        "{}",
        again.stderr
    );
    encode(&src, &out, &state, &["--ladder", "default", "-y"]).expect_code(0);
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(
        master.contains("240p/index.m3u8") && !master.contains("big/"),
        "{master}"
    );
}

#[test]
fn ladder_mistakes_are_named_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let state = dir.path().join("state");
    let out = dir.path().join("out");
    let cases: [(&str, &[&str], &str); 4] = [
        (
            "missing file",
            &["--ladder", "/nonexistent/ladder.yaml"],
            "name a ladder file or use --ladder default",
        ),
        (
            "bad segment",
            &["--ladder", "default", "--segment-seconds", "0.2"],
            "segment length 0.2 s is out of range",
        ),
        (
            "codec",
            &["--ladder", "default", "--codec", "vp9"],
            "cannot be used with",
        ),
        ("all too tall", &["--ladder", "TALL"], "does not upscale"),
    ];
    let tall = dir.path().join("tall.yaml");
    std::fs::write(&tall, "rungs: [{name: uhd, height: 2160}]").unwrap();
    for (what, extra, want) in cases {
        let extra: Vec<String> = extra
            .iter()
            .map(|a| {
                if *a == "TALL" {
                    tall.to_string_lossy().into_owned()
                } else {
                    a.to_string()
                }
            })
            .collect();
        let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
        let run = encode(&src, &out, &state, &extra);
        assert_ne!(run.code, Some(0), "{what}");
        assert!(run.stderr.contains(want), "{what}: {}", run.stderr);
        assert!(!out.exists(), "{what}: nothing written");
    }
    // A folder holding someone's files is never replaced.
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("notes.txt"), "mine").unwrap();
    let run = encode(&src, &out, &state, &["--ladder", "default", "-y"]);
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    assert!(
        run.stderr.contains("not a Tessera ladder"),
        "{}",
        run.stderr
    );
    assert_eq!(
        std::fs::read_to_string(out.join("notes.txt")).unwrap(),
        "mine"
    );
}
