use super::*;
use crate::probe::{FrameIndex, StreamInfo};
use crate::request::Codec;

fn video(w: u32, h: u32) -> StreamInfo {
    StreamInfo {
        index: 0,
        kind: "video".into(),
        codec_name: Some("h264".into()),
        time_base: (1, 25),
        start_pts: Some(0),
        start_time: Some(0.0),
        pix_fmt: Some("yuv420p".into()),
        width: Some(w),
        height: Some(h),
        avg_frame_rate: None,
        channels: None,
        tags: Default::default(),
        disposition: Vec::new(),
        rotation: None,
        attached_pic: false,
        sample_aspect_ratio: None,
    }
}

fn index(pts: Vec<i64>, time_base: (i64, i64)) -> FrameIndex {
    FrameIndex {
        time_base,
        keyframes: vec![0],
        last_duration: pts.get(1).map_or(1, |p| p - pts[0]),
        pts,
        timestamp_faults: 0,
    }
}

#[test]
fn the_default_ladder_never_upscales_and_tops_out_at_the_source() {
    let names = |w, h| -> Vec<(String, u32, u32)> {
        let (r, skipped) = resolve(&LadderRequest::default_ladder(), &video(w, h), None).unwrap();
        assert!(skipped.is_empty());
        r.into_iter().map(|r| (r.name, r.width, r.height)).collect()
    };
    assert_eq!(
        names(1920, 1080),
        [
            ("1080p".into(), 1920, 1080),
            ("720p".into(), 1280, 720),
            ("480p".into(), 854, 480),
            ("360p".into(), 640, 360),
            ("240p".into(), 426, 240)
        ]
    );
    // Between rungs: a top rung at the source's own height.
    assert_eq!(names(1024, 576)[0], ("576p".into(), 1024, 576));
    assert_eq!(names(1024, 576).len(), 4);
    // 4:3 and tiny sources.
    assert_eq!(names(320, 240), [("240p".into(), 320, 240)]);
    assert_eq!(names(160, 120), [("120p".into(), 160, 120)]);
    // Anamorphic: 720x576 with 16:15 pixels is shown 768x576.
    let mut anamorphic = video(720, 576);
    anamorphic.sample_aspect_ratio = Some((16, 15));
    let (r, _) = resolve(&LadderRequest::default_ladder(), &anamorphic, None).unwrap();
    assert_eq!((r[0].width, r[0].height), (768, 576));
    // Rotated: a portrait phone video's rungs are portrait.
    let mut turned = video(1280, 720);
    turned.rotation = Some(-90);
    let (r, _) = resolve(&LadderRequest::default_ladder(), &turned, None).unwrap();
    assert_eq!((r[0].width, r[0].height), (720, 1280));
}

#[test]
fn a_ladder_file_is_read_and_its_mistakes_are_named() {
    let l = parse_ladder_file(
        "segment_seconds: 2\nrungs:\n  - {name: hi, height: 720, crf: 22, maxrate: 3M}\n  - {name: lo, height: 360, codec: x265, maxrate: \"800k\", bufsize: 1600}\n",
    )
    .unwrap();
    let rungs = l.rungs.as_ref().unwrap();
    assert_eq!(rungs[0].maxrate_kbps, Some(3000));
    assert_eq!(
        (rungs[1].codec, rungs[1].maxrate_kbps, rungs[1].bufsize_kbps),
        (Codec::X265, Some(800), Some(1600))
    );
    let (r, skipped) = resolve(&l, &video(640, 360), None).unwrap();
    assert_eq!(skipped, ["hi"]);
    assert_eq!(r.len(), 1);
    let refused = [
        ("rungs: []", "1 to 12 rungs"),
        ("segment_seconds: 4", "names no rungs"),
        (
            "rungs: [{name: a, height: 360}, {name: a, height: 240}]",
            "two rungs are named \"a\"",
        ),
        (
            "rungs: [{name: \"../x\", height: 360}]",
            "not usable as a folder name",
        ),
        (
            "rungs: [{name: a, height: 360, codec: svt-av1}]",
            "cannot be a ladder rung",
        ),
        (
            "rungs: [{name: a, height: 360, crf: 99}]",
            "crf 99 is out of range",
        ),
        (
            "rungs: [{name: a, height: 360, maxrate: lots}]",
            "is not a rate",
        ),
        ("rungs: [{name: a, height: 99999}]", "size out of range"),
        (
            "rungs: [{name: a, height: 360, colour: red}]",
            "unknown field",
        ),
        (
            "segment_seconds: 0.1\nrungs: [{name: a, height: 360}]",
            "segment length 0.1 s is out of range",
        ),
    ];
    for (text, want) in refused {
        let err = parse_ladder_file(text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    let huge = "#".repeat(70_000);
    assert!(parse_ladder_file(&huge)
        .unwrap_err()
        .to_string()
        .contains("64 KiB"));
    let all_up = parse_ladder_file("rungs: [{name: a, height: 2160}]").unwrap();
    assert!(resolve(&all_up, &video(640, 360), None)
        .unwrap_err()
        .to_string()
        .contains("does not upscale"));
}

#[test]
fn segments_start_on_the_source_clock_in_cfr_ntsc_and_vfr() {
    // 25 fps, 10 s, 4 s segments: 0, 100, 200 (the 2 s tail stays).
    let cfr = index((0..250).collect(), (1, 25));
    assert_eq!(plan_segments(&cfr, 4.0), [0, 100, 200]);
    // A tail under a quarter segment joins the one before: 8.4 s.
    let short_tail = index((0..210).collect(), (1, 25));
    assert_eq!(plan_segments(&short_tail, 4.0), [0, 100]);
    // NTSC: 1001/30000 per frame; 2 s segments start at frames 60, 120...
    let ntsc = index((0..300).map(|i| i * 1001).collect(), (1, 30000));
    assert_eq!(plan_segments(&ntsc, 2.0), [0, 60, 120, 180, 240]);
    // VFR with a gap of 5 s: one boundary after it, not one per skipped multiple.
    let mut pts: Vec<i64> = (0..50).map(|i| i * 40).collect();
    pts.extend((0..100).map(|i| 7000 + i * 40));
    let vfr = index(pts, (1, 1000));
    assert_eq!(plan_segments(&vfr, 2.0), [0, 50, 75, 125]);
}

#[test]
fn chunks_are_whole_segments() {
    let segs: Vec<u32> = (0..30).map(|i| i * 50).collect();
    let cuts = chunk_cuts(&segs, 1500, 250, 1);
    assert_eq!(cuts, [0, 250, 500, 750, 1000, 1250]);
    assert!(cuts.iter().all(|c| segs.contains(c)));
    // More chunks asked than segments: one per segment at most.
    assert_eq!(chunk_cuts(&segs[..3], 150, 10, 8), [0, 50, 100]);
    assert!(chunk_cuts(&[], 0, 10, 1).is_empty());
}
