//! Whole encodes through the scheduler, checked with ffmpeg/ffprobe rather
//! than with Tessera's own word alone.

use crate::support::{
    argv, chunk_tasks, ffmpeg, framemd5, only_job, stream_types, tessera_run, video_packets,
    video_pts,
};
use std::path::{Path, PathBuf};
use tessera_media::testclips;
use tessera_types::TaskState;

/// `tessera encode INPUT -o OUTPUT --state-dir STATE --plain EXTRA...`, which must succeed.
fn encode_ok(input: &Path, output: &Path, state: &Path, extra: &[&str]) -> String {
    let mut args = argv![
        "encode",
        input,
        "-o",
        output,
        "--state-dir",
        state,
        "--plain"
    ];
    args.extend(extra.iter().map(Into::into));
    let out = tessera_run(args);
    out.expect_code(0);
    assert!(output.is_file(), "no output at {}", output.display());
    out.stdout
}

/// `tessera verify SOURCE ENCODED` must pass.
fn verify_ok(source: &Path, encoded: &Path) {
    tessera_run(argv!["verify", source, encoded]).expect_code(0);
}

fn report(path: &Path) -> serde_json::Value {
    let bytes = std::fs::read(path).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn scratch() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    (dir, state)
}

#[test]
fn ffv1_of_a_multi_track_mkv_is_bit_exact_and_keeps_every_stream() {
    let (dir, state) = scratch();
    let src = testclips::multi_track(dir.path()).unwrap();
    let out = dir.path().join("out.mkv");
    encode_ok(
        &src,
        &out,
        &state,
        &["--codec", "ffv1", "--chunk-seconds", "1"],
    );
    assert_eq!(framemd5(&src), framemd5(&out), "decoded frames differ");
    let (s, o) = (stream_types(&src), stream_types(&out));
    let count = |v: &[String], k: &str| v.iter().filter(|t| *t == k).count();
    assert_eq!(count(&o, "video"), 1);
    assert_eq!(count(&s, "audio"), 2);
    assert_eq!(count(&o, "audio"), count(&s, "audio"), "{s:?} vs {o:?}");
    assert_eq!(count(&s, "subtitle"), 1);
    assert_eq!(
        count(&o, "subtitle"),
        count(&s, "subtitle"),
        "{s:?} vs {o:?}"
    );
    verify_ok(&src, &out);
    let (_, tasks, _) = only_job(&state);
    let chunks = chunk_tasks(&tasks);
    assert!(chunks.len() > 1, "one chunk proves nothing about joining");
    assert!(chunks.iter().all(|t| t.state == TaskState::Succeeded));
}

#[test]
fn ffv1_cut_mid_gop_on_sparse_keyframes_is_bit_exact() {
    let (dir, state) = scratch();
    let src = testclips::sparse_keyframes(dir.path()).unwrap();
    let out = dir.path().join("out.mkv");
    let json = dir.path().join("report.json");
    let json_arg = json.to_string_lossy().into_owned();
    encode_ok(
        &src,
        &out,
        &state,
        &[
            "--codec",
            "ffv1",
            "--chunk-seconds",
            "1",
            "--report-json",
            &json_arg,
        ],
    );
    // 8 s with keyframes at 0 s and 6 s only: more than two chunks means
    // cuts landed between keyframes.
    let chunks = report(&json)["chunks"].as_u64().unwrap();
    assert!(chunks > 2, "expected mid-GOP cuts, got {chunks} chunks");
    // Every frame identical, at the same time relative to the first frame.
    // (The absolute start differs by the AAC priming: Matroska has no edit
    // lists, so its muxer shifts the timeline by 1024 samples to keep the
    // audio in sync — exactly what `ffmpeg -i src.mp4 -c copy out.mkv` does.
    // Matroska sources give identical framemd5s: see the multi-track test.)
    assert_eq!(
        relative_frames(&src),
        relative_frames(&out),
        "decoded frames differ"
    );
}

#[test]
fn default_x264_mp4_of_ntsc_keeps_every_packet_and_verifies() {
    let (dir, state) = scratch();
    let src = testclips::ntsc(dir.path()).unwrap();
    let out = dir.path().join("out.mp4");
    let json = dir.path().join("report.json");
    let json_arg = json.to_string_lossy().into_owned();
    let stdout = encode_ok(
        &src,
        &out,
        &state,
        &["--chunk-seconds", "1", "--report-json", &json_arg],
    );
    assert!(stdout.contains("verified   passed"), "{stdout}");
    verify_ok(&src, &out);
    assert_eq!(video_packets(&src), 120);
    assert_eq!(video_packets(&out), video_packets(&src));
    let r = report(&json);
    assert!(r["chunks"].as_u64().unwrap() > 1, "{r}");
    assert_eq!(r["chunks_done"], r["chunks"], "{r}");
    assert_eq!(r["verified"], serde_json::Value::Bool(true), "{r}");
    assert_eq!(r["frames"].as_u64(), Some(120), "{r}");
    assert_eq!(stream_types(&out), ["video", "audio"]);
}

/// Exact NTSC timing: frame n at n*1001/30000 s, as in the source, not
/// rounded to the millisecond.
#[test]
fn default_x264_mp4_of_ntsc_keeps_exact_frame_times() {
    let (dir, state) = scratch();
    let src = testclips::ntsc(dir.path()).unwrap();
    let out = dir.path().join("out.mp4");
    encode_ok(&src, &out, &state, &["--chunk-seconds", "1"]);
    let (s, o) = (video_pts(&src), video_pts(&out));
    assert_eq!(s.len(), o.len());
    for (i, (a, b)) in s.iter().zip(&o).enumerate() {
        assert!(
            (a - b).abs() < 1e-5,
            "frame {i}: source {a:.6}s, output {b:.6}s"
        );
    }
}

/// Count equal and every frame within 1 ms (the first differing frame otherwise).
fn timing_kept(src: &[f64], out: &[f64]) -> Result<(), String> {
    if src.len() != out.len() {
        return Err(format!("{} frames became {}", src.len(), out.len()));
    }
    match src
        .iter()
        .zip(out)
        .enumerate()
        .find(|(_, (a, b))| (*a - *b).abs() > 0.001 + 1e-6)
    {
        Some((i, (a, b))) => Err(format!("frame {i}: {a:.4}s became {b:.4}s")),
        None => Ok(()),
    }
}

#[test]
fn vfr_timing_survives_tessera_where_plain_ffmpeg_loses_it() {
    let (dir, state) = scratch();
    let src = testclips::vfr_jitter(dir.path()).unwrap();
    let src_pts = video_pts(&src);
    assert!(src_pts.len() > 100);

    // The obvious command, defaults only.
    let naive = dir.path().join("naive.mp4");
    ffmpeg(argv!["-i", &src, "-c:v", "libx264", &naive]);
    let naive_result = timing_kept(&src_pts, &video_pts(&naive));
    assert!(
        naive_result.is_err(),
        "plain ffmpeg kept the jittered timing; the comparison proves nothing"
    );

    let out = dir.path().join("out.mp4");
    encode_ok(&src, &out, &state, &["--preset", "ultrafast"]);
    if let Err(e) = timing_kept(&src_pts, &video_pts(&out)) {
        panic!("tessera changed the timing: {e} (plain ffmpeg: {naive_result:?})");
    }
    verify_ok(&src, &out);
    // And tessera verify agrees plain ffmpeg's result is wrong.
    let judged = tessera_run(argv!["verify", &src, &naive]);
    assert_eq!(judged.code, Some(1), "{}", judged.stderr);
}

#[test]
fn verify_names_a_frame_count_difference() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let n = video_packets(&src);
    assert_eq!(n, 100);
    let trimmed = dir.path().join("trimmed.mp4");
    let keep = (n - 5).to_string();
    ffmpeg(argv![
        "-i",
        &src,
        "-frames:v",
        &keep,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-c:a",
        "copy",
        &trimmed
    ]);
    let out = tessera_run(argv!["verify", &src, &trimmed]);
    assert_ne!(out.code, Some(0), "{}", out.stdout);
    assert_eq!(out.code, Some(1), "a mismatch is a failed check: exit 1");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{}", out.stderr);
    let line = lines[0];
    assert!(line.starts_with("tessera: "), "{line}");
    assert!(
        line.contains("video frames: source 100, output 95"),
        "the message should name both frame counts: {line}"
    );
    assert!(out.stdout.contains("FAIL video frames"), "{}", out.stdout);
    // --quality measures nothing when the checks fail: the same one line.
    let out = tessera_run(argv!["verify", &src, &trimmed, "--quality"]);
    assert_eq!(out.code, Some(1), "{}", out.stderr);
    assert!(!out.stdout.contains("VMAF"), "{}", out.stdout);
}

#[test]
fn verify_quality_prints_vmaf_psnr_and_ssim() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let rough = dir.path().join("rough.mp4");
    ffmpeg(argv![
        "-i",
        &src,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-crf",
        "40",
        "-c:a",
        "copy",
        &rough
    ]);
    let out = tessera_run(argv!["verify", &src, &rough, "--quality"]);
    out.expect_code(0);
    let metric = |name: &str| -> f64 {
        let line = out
            .stdout
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("no {name} line in {}", out.stdout));
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert!(
        out.stdout.contains("quality over 100 frames:"),
        "{}",
        out.stdout
    );
    let (vmaf, psnr, ssim) = (metric("VMAF "), metric("PSNR-Y "), metric("SSIM "));
    assert!(
        (20.0..97.0).contains(&vmaf),
        "crf 40 is visibly worse: {vmaf}"
    );
    assert!((20.0..50.0).contains(&psnr), "{psnr}");
    assert!((0.5..0.999).contains(&ssim), "{ssim}");
}

/// framemd5 rows as (pts relative to the first frame, hash).
fn relative_frames(path: &std::path::Path) -> Vec<(i64, String)> {
    let rows: Vec<(i64, String)> = framemd5(path)
        .iter()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let f: Vec<&str> = l.split(',').map(str::trim).collect();
            (f[2].parse().expect("pts"), f[5].to_string())
        })
        .collect();
    let first = rows.first().map_or(0, |r| r.0);
    rows.into_iter().map(|(pts, h)| (pts - first, h)).collect()
}

/// Chunks shorter than --chunk-seconds are explained in one line, and the
/// summary counts chunks, tasks and retries.
#[test]
fn a_plan_that_differs_from_chunk_seconds_says_why() {
    let (dir, state) = scratch();
    let src = testclips::ntsc(dir.path()).unwrap();
    let out = dir.path().join("out.mkv");
    let run = tessera_run(argv![
        "encode",
        &src,
        "-o",
        &out,
        "--state-dir",
        &state,
        "--plain",
        "--chunk-seconds",
        "10",
        "-j",
        "2"
    ]);
    run.expect_code(0);
    let note = run
        .stderr
        .lines()
        .find(|l| l.starts_with("plan: "))
        .unwrap_or_else(|| panic!("no plan note:\n{}", run.stderr));
    assert!(
        note.contains(", not 10 s: 1 chunk per slot (2 slots)"),
        "{note}"
    );
    let chunks = run
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("chunks "))
        .unwrap_or_else(|| panic!("{}", run.stdout));
    assert!(
        chunks.contains(" tasks, 0 retries)"),
        "the summary counts tasks: {chunks}"
    );
    // The encode's own verification decoded the whole output.
    assert!(run.stdout.contains("no decode errors"), "{}", run.stdout);
    // Chunks of the length asked for need no note.
    let out2 = dir.path().join("out2.mkv");
    let run = tessera_run(argv![
        "encode",
        &src,
        "-o",
        &out2,
        "--state-dir",
        &state,
        "--plain",
        "--chunk-seconds",
        "1",
        "-j",
        "1"
    ]);
    run.expect_code(0);
    assert!(!run.stderr.contains("plan: "), "{}", run.stderr);
}
