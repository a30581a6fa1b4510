//! probe -> plan -> encode chunks -> audio -> concat -> verify on hard sources.

use crate::support::{framemd5, index_of, request, run_pipeline};
use tessera_media::runner::{self, argv, Tool};
use tessera_media::testclips;
use tessera_media::*;

/// Bytes of the first audio stream decoded to 16-bit PCM.
fn decoded_audio_bytes(path: &std::path::Path, dir: &std::path::Path) -> u64 {
    let raw = dir.join("audio.raw");
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(runner::media_input(path));
    a.extend(argv(["-map", "0:a:0", "-f", "s16le"]));
    a.push(raw.clone().into());
    runner::run(Tool::Ffmpeg, &a).unwrap();
    std::fs::metadata(&raw).unwrap().len()
}

fn assert_passed(report: &VerifyReport) {
    assert!(report.passed(), "{report}");
    assert!(report.check("decode").is_some_and(|c| c.ok), "{report}");
}

#[test]
fn cfr_25_to_mp4_with_x264() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let run = run_pipeline(
        &dir.path().join("w"),
        &request(&src, &dir.path().join("out.mp4"), Codec::X264, 1.0),
    )
    .unwrap();
    assert_passed(&run.report);
    assert!(run.plan.chunks.len() >= 3, "{:?}", run.plan.chunks);
    // The DAG: one task per chunk, audio, concat after all, verify after concat.
    let names: Vec<&str> = run.tasks.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names[0], "encode-chunk-0000");
    // AAC goes into mp4 as it is: copied straight from the source at the
    // mux, so there is no audio task.
    assert!(names.ends_with(&["concat", "verify"]), "{names:?}");
    assert!(!names.contains(&"encode-audio"), "{names:?}");
    let concat = &run.tasks[names.len() - 2];
    let deps: Vec<String> = concat.deps.iter().map(|d| d.selector.to_string()).collect();
    assert_eq!(deps, ["encode-chunk-*"]);
    // Copied audio keeps its exact timing, encoder priming included: the
    // same number of decoded samples (a remux through an intermediate
    // container used to add the 1024 priming samples).
    assert_eq!(
        decoded_audio_bytes(&run.output, dir.path()),
        decoded_audio_bytes(&src, dir.path())
    );
    assert_eq!(run.tasks[0].retry.retries, 2);
}

#[test]
fn ntsc_30000_1001_to_mp4_keeps_every_frame_time() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::ntsc(dir.path()).unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let run = run_pipeline(
        &work,
        &request(&src, &dir.path().join("out.mp4"), Codec::X264, 1.0),
    )
    .unwrap();
    assert_passed(&run.report);
    assert_eq!(index_of(&run.output).len(), 120);
}

#[test]
fn jittery_vfr_is_exact_with_ffv1_and_naive_ffmpeg_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::vfr_jitter(dir.path()).unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let run = run_pipeline(
        &work,
        &request(&src, &dir.path().join("out.mkv"), Codec::Ffv1, 1.0),
    )
    .unwrap();
    assert_passed(&run.report);
    let (a, b) = (index_of(&src), index_of(&run.output));
    assert_eq!(a.len(), b.len());
    assert_eq!(first_pts_mismatch(&a, &b, 0.001 + 1e-6), None);
    assert_eq!(
        framemd5(&src),
        framemd5(&run.output),
        "decoded frames differ: split/join is not exact"
    );
    // The video still starts 21 ms into the file (the A/V offset is kept).
    let start = |p: &std::path::Path| probe(p).unwrap().video().unwrap().start_time.unwrap();
    assert!(
        (start(&src) - start(&run.output)).abs() < 0.0015,
        "{} vs {}",
        start(&src),
        start(&run.output)
    );

    // Plain ffmpeg with default settings quantises the jitter away.
    let naive = dir.path().join("naive.mkv");
    let mut args = argv(["-nostdin", "-y", "-v", "error"]);
    args.extend(runner::media_input(&src));
    args.extend(argv(["-c:v", "libx264", "-preset", "ultrafast", "-an"]));
    args.push(naive.clone().into());
    runner::run(Tool::Ffmpeg, &args).unwrap();
    let n = index_of(&naive);
    let broken = n.len() != a.len() || first_pts_mismatch(&a, &n, 0.001 + 1e-6).is_some();
    assert!(broken, "naive ffmpeg unexpectedly preserved the VFR timing");
}

#[test]
fn hevc_10bit_open_gop_stays_10bit_and_exact() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::hevc_10bit_open_gop(dir.path()).unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let run = run_pipeline(
        &work,
        &request(&src, &dir.path().join("lossless.mkv"), Codec::Ffv1, 1.0),
    )
    .unwrap();
    assert_passed(&run.report);
    assert_eq!(
        framemd5(&src),
        framemd5(&run.output),
        "open-GOP chunks did not decode exactly"
    );

    let work = dir.path().join("w265");
    std::fs::create_dir(&work).unwrap();
    let run = run_pipeline(
        &work,
        &request(&src, &dir.path().join("out.mp4"), Codec::X265, 1.0),
    )
    .unwrap();
    assert_passed(&run.report);
    let info = probe(&run.output).unwrap();
    assert_eq!(
        info.video().unwrap().pix_fmt.as_deref(),
        Some("yuv420p10le")
    );
}

#[test]
fn sparse_keyframes_cut_mid_gop_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::sparse_keyframes(dir.path()).unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let run = run_pipeline(
        &work,
        &request(&src, &dir.path().join("out.mkv"), Codec::Ffv1, 2.0),
    )
    .unwrap();
    assert_passed(&run.report);
    assert!(
        run.plan.chunks.iter().any(|c| c.seek_pts < c.start_pts),
        "no mid-GOP cut: {:?}",
        run.plan.chunks
    );
    assert_eq!(framemd5(&src), framemd5(&run.output));
}

#[test]
fn tracks_subtitles_and_chapters_survive_to_mp4_and_mkv() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::multi_track(dir.path()).unwrap();
    for out in ["out.mp4", "out.mkv"] {
        let work = dir.path().join(format!("w-{out}"));
        std::fs::create_dir(&work).unwrap();
        let run = run_pipeline(
            &work,
            &request(&src, &dir.path().join(out), Codec::X264, 1.0),
        )
        .unwrap();
        assert_passed(&run.report);
        let info = probe(&run.output).unwrap();
        let langs: Vec<_> = info
            .streams_of("audio")
            .map(|s| s.language().unwrap_or("und").to_string())
            .collect();
        assert_eq!(langs, ["eng", "fre"], "{out}");
        assert_eq!(info.streams_of("subtitle").count(), 1, "{out}");
        assert_eq!(info.chapters.len(), 2, "{out}");
        assert_eq!(
            info.tags.get("title").map(String::as_str),
            Some("Tessera test"),
            "{out}"
        );
        if out.ends_with("mp4") {
            let codecs: Vec<_> = info
                .streams_of("audio")
                .map(|s| s.codec_name.clone().unwrap())
                .collect();
            assert_eq!(codecs, ["aac", "aac"], "flac is re-encoded for mp4");
        }
    }
}

#[test]
fn a_rerun_reuses_finished_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let req = request(&src, &dir.path().join("out.mkv"), Codec::X264, 2.0);
    let run = run_pipeline(&work, &req).unwrap();
    let chunk = &run.plan.chunks[0];
    let path = run.plan.chunk_path(&work, chunk);
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    let mut calls = Vec::new();
    encode_chunk(&work, 0, &mut |d, t| calls.push((d, t))).unwrap();
    assert_eq!(calls, [(u64::from(chunk.count), u64::from(chunk.count))]);
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    // A damaged chunk is re-encoded.
    std::fs::write(&path, b"junk").unwrap();
    encode_chunk(&work, 0, &mut |_, _| {}).unwrap();
    assert_eq!(count_video_packets(&path).unwrap(), u64::from(chunk.count));
}

/// The script people write first: stream-copy segments, encode each, join
/// with the concat demuxer. On a B-frame NTSC source it loses frames or
/// timing at the seams; Tessera's pipeline on the same source passes every check.
#[test]
fn naive_segment_encode_concat_breaks_at_the_joins_and_tessera_does_not() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::ntsc(dir.path()).unwrap();
    let ffmpeg = |args: Vec<std::ffi::OsString>| {
        let mut a = argv(["-nostdin", "-y", "-v", "error"]);
        a.extend(args);
        runner::run(Tool::Ffmpeg, &a).unwrap();
    };
    let seg = dir.path().join("seg%03d.mp4");
    let mut a = runner::media_input(&src);
    a.extend(argv([
        "-map",
        "0:v",
        "-c",
        "copy",
        "-f",
        "segment",
        "-segment_time",
        "1",
        "-reset_timestamps",
        "1",
    ]));
    a.push(seg.into());
    ffmpeg(a);
    let mut list = String::new();
    for i in 0.. {
        let part = dir.path().join(format!("seg{i:03}.mp4"));
        if !part.exists() {
            break;
        }
        let enc = dir.path().join(format!("enc{i:03}.mp4"));
        let mut a = runner::media_input(&part);
        a.extend(argv(["-c:v", "libx264", "-preset", "ultrafast"]));
        a.push(enc.clone().into());
        ffmpeg(a);
        list.push_str(&format!("file '{}'\n", enc.display()));
    }
    let list_path = dir.path().join("list.txt");
    std::fs::write(&list_path, list).unwrap();
    let naive = dir.path().join("naive.mp4");
    let mut a = argv(["-f", "concat", "-safe", "0"]);
    a.extend(runner::input_args(&list_path, &["concat", "mov"]));
    a.extend(argv(["-c", "copy"]));
    a.push(naive.clone().into());
    ffmpeg(a);
    let naive_report = verify(&src, &naive, VerifyOptions { decode: false }).unwrap();
    assert!(
        !naive_report.passed(),
        "the naive join unexpectedly passed:\n{naive_report}"
    );

    let work = dir.path().join("w");
    std::fs::create_dir(&work).unwrap();
    let run = run_pipeline(
        &work,
        &request(&src, &dir.path().join("out.mp4"), Codec::X264, 1.0),
    )
    .unwrap();
    assert_passed(&run.report);
    assert!(
        run.report
            .check("timestamps monotonic")
            .is_some_and(|c| c.ok),
        "{}",
        run.report
    );
}
