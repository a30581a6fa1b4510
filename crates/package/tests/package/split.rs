//! Splitting real ffmpeg fMP4 renditions into CMAF segments.

use crate::support::{audio_fmp4, concat, ffprobe, packets, video_fmp4, video_fmp4_with, X264};
use tessera_package::{split_fmp4, Cuts, Media, Track};

/// H.264 profile names as ffprobe prints them -> profile_idc.
fn avc_profile_idc(name: &str) -> u8 {
    match name {
        "Baseline" | "Constrained Baseline" => 66,
        "Main" => 77,
        "High" => 100,
        other => panic!("unexpected profile {other}"),
    }
}

/// ffprobe's `profile|level` of the first stream.
fn profile_level(file: &std::path::Path) -> (String, i64) {
    let out = ffprobe(
        file,
        &[
            "-select_streams",
            "0",
            "-show_entries",
            "stream=profile,level",
            "-of",
            "csv=p=0",
        ],
    );
    let (p, l) = out.trim().split_once(',').expect("profile,level");
    (p.to_string(), l.parse().expect("level"))
}

/// ffprobe's duration of the first stream in its time base.
fn duration_ts(file: &std::path::Path) -> u64 {
    let out = ffprobe(
        file,
        &[
            "-select_streams",
            "0",
            "-show_entries",
            "stream=duration_ts",
            "-of",
            "csv=p=0",
        ],
    );
    out.trim().parse().expect("duration_ts")
}

/// Every segment appended to init, probed alone, starts with a keyframe.
fn assert_segments_start_on_keyframes(dir: &std::path::Path, track: &Track) {
    let init = std::fs::read(dir.join(&track.init)).unwrap();
    for s in &track.segments {
        let seg = std::fs::read(dir.join(&s.file)).unwrap();
        assert_eq!(seg.len() as u64, s.bytes);
        let (off, len) = s.iframe;
        assert_eq!(
            &seg[off as usize + 4..off as usize + 8],
            b"moof",
            "{}",
            s.file
        );
        assert!(
            off + len <= s.bytes && len > 8,
            "{}: {:?}",
            s.file,
            s.iframe
        );
        let one = dir.with_extension("one.mp4");
        std::fs::write(&one, [init.clone(), seg].concat()).unwrap();
        let p = packets(&one);
        assert_eq!(p.len(), s.samples as usize, "{}", s.file);
        assert!(
            p[0].1,
            "{} does not start with a keyframe: {:?}",
            s.file,
            &p[..2]
        );
    }
}

#[test]
fn video_segments_hold_the_exact_frames_and_start_on_idrs() {
    let dir = tempfile::tempdir().unwrap();
    let input = video_fmp4(dir.path(), "v", 180, "eq(mod(n,60),0)", X264);
    let out = dir.path().join("360p");
    let track = split_fmp4(&input, &out, &Cuts::Samples(vec![60, 60, 60])).unwrap();

    let (profile, level) = profile_level(&input);
    assert_eq!(
        track.codec,
        format!("avc1.{:02x}00{:02x}", avc_profile_idc(&profile), level)
    );
    assert_eq!(
        track.media,
        Media::Video {
            width: 640,
            height: 360
        }
    );
    assert_eq!(track.timescale, 30000);
    let names: Vec<_> = track.segments.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(names, ["seg-00001.m4s", "seg-00002.m4s", "seg-00003.m4s"]);
    for (k, s) in track.segments.iter().enumerate() {
        assert_eq!(
            (s.samples, s.start, s.duration),
            (60, k as u64 * 60060, 60060)
        );
    }
    assert_eq!(duration_ts(&input), 180_180);
    // The segments played in order are the input, packet for packet.
    let joined = dir.path().join("joined.mp4");
    concat(&out, &track, &joined);
    assert_eq!(packets(&joined), packets(&input));
    assert_segments_start_on_keyframes(&out, &track);
    // Nothing temporary is left behind.
    let left: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 4, "{left:?}");
}

#[test]
fn extra_keyframe_inside_a_segment_is_kept_and_a_cut_inside_a_fragment_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Fragments of 60, 30, 30, 60 frames (a keyframe at 90 as well).
    let input = video_fmp4(dir.path(), "v", 180, "eq(mod(n,60),0)+eq(n,90)", X264);
    let out = dir.path().join("a");
    let track = split_fmp4(&input, &out, &Cuts::Samples(vec![60, 60, 60])).unwrap();
    let samples: Vec<_> = track.segments.iter().map(|s| s.samples).collect();
    assert_eq!(samples, [60, 60, 60]);
    let joined = dir.path().join("joined.mp4");
    concat(&out, &track, &joined);
    assert_eq!(packets(&joined), packets(&input));
    assert_segments_start_on_keyframes(&out, &track);

    // Segment 3 would start at frame 105, inside the fragment 90..120.
    let refused = dir.path().join("b");
    let e = split_fmp4(&input, &refused, &Cuts::Samples(vec![60, 45, 75]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("segment 3 does not start on a keyframe fragment: sample 105 lies inside fragment 3 (samples 90..120)"), "{e}");
    assert!(e.starts_with(&input.display().to_string()), "{e}");
    assert!(
        !refused.exists(),
        "nothing is written when the cuts are refused"
    );
    let e = split_fmp4(&input, &refused, &Cuts::Samples(vec![60, 60, 59]))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("the cuts count 179 samples but the file holds 180"),
        "{e}"
    );
    let e = split_fmp4(&input, &refused, &Cuts::Samples(vec![60, 0, 120]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("segment 2 has 0 samples"), "{e}");
}

#[test]
fn audio_splits_by_seconds_and_keeps_every_frame() {
    let dir = tempfile::tempdir().unwrap();
    let input = audio_fmp4(dir.path(), 6, 2_000_000);
    let out = dir.path().join("audio");
    let track = split_fmp4(&input, &out, &Cuts::Seconds(vec![0.0, 2.0, 4.0])).unwrap();
    assert_eq!(track.codec, "mp4a.40.2");
    assert_eq!(
        track.media,
        Media::Audio {
            channels: 2,
            sample_rate: 48000
        }
    );
    assert_eq!(track.segments.len(), 3);
    // Durations add up to the track's as ffprobe reads it: 6 s of samples
    // plus the encoder's 1024 priming samples (no edit list in the fMP4).
    let probed = duration_ts(&input);
    let total: u64 = track.segments.iter().map(|s| s.duration).sum();
    assert_eq!((total, probed), (289_024, 289_024));
    for w in track.segments.windows(2) {
        assert_eq!(w[0].start + w[0].duration, w[1].start);
    }
    // Each segment starts within a frame of its requested time.
    for (s, want) in track.segments.iter().zip([0.0, 2.0, 4.0]) {
        let t = (s.start - track.segments[0].start) as f64 / f64::from(track.timescale);
        assert!((t - want).abs() < 1024.0 / 48000.0, "{t} vs {want}");
    }
    let joined = dir.path().join("joined.mp4");
    concat(&out, &track, &joined);
    assert_eq!(packets(&joined), packets(&input));

    // Segments shorter than the fragments cannot be cut.
    let e = split_fmp4(
        &input,
        &dir.path().join("b"),
        &Cuts::Seconds(vec![0.0, 1.0, 2.0, 3.0]),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("segment 2 (from 1 s) gets no fragment"), "{e}");
    let e = split_fmp4(
        &input,
        &dir.path().join("b"),
        &Cuts::Seconds(vec![0.0, 2.0, 2.0]),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("segment start 3 (2) is not after segment start 2 (2)"),
        "{e}"
    );
}

#[test]
fn hevc_and_av1_codec_strings_match_the_bitstream() {
    let dir = tempfile::tempdir().unwrap();
    let keys = "eq(mod(n,15),0)";
    let hevc = video_fmp4(
        dir.path(),
        "hevc",
        30,
        keys,
        &[
            "-c:v",
            "libx265",
            "-forced-idr",
            "1",
            "-tag:v",
            "hvc1",
            "-x265-params",
            "log-level=error:scenecut=0:keyint=1000",
        ],
    );
    let t = split_fmp4(&hevc, &dir.path().join("h"), &Cuts::Samples(vec![15, 15])).unwrap();
    let (profile, level) = profile_level(&hevc);
    assert_eq!(profile, "Main");
    // Main: profile 1, compatible with Main and Main 10 (flags 1, 2 -> 6);
    // x265 marks progressive, frame-only content (constraint byte 0x90).
    assert_eq!(t.codec, format!("hvc1.1.6.L{level}.90"));

    // ffmpeg 5.1's libsvtav1 ignores forced keyframes; its GOP size places them.
    let av1 = video_fmp4(
        dir.path(),
        "av1",
        30,
        keys,
        &["-c:v", "libsvtav1", "-g", "15"],
    );
    let t = split_fmp4(&av1, &dir.path().join("a"), &Cuts::Samples(vec![15, 15])).unwrap();
    let (profile, level) = profile_level(&av1);
    assert_eq!(profile, "Main");
    assert_eq!(t.codec, format!("av01.0.{level:02}M.08"));
}

/// With `+delay_moov` (instead of `+empty_moov`) and `-use_editlist 1`
/// ffmpeg writes the moov
/// after the first fragment, with an edit list that puts the first frame at
/// 0 instead of two frames late (x264's B-frame delay); it splits the same
/// and init.mp4 keeps the edit list.
#[test]
fn delay_moov_output_keeps_its_edit_list() {
    let dir = tempfile::tempdir().unwrap();
    let remux = [
        "-use_editlist",
        "1",
        "-movflags",
        "+frag_keyframe+delay_moov+default_base_moof+cmaf",
    ];
    let input = video_fmp4_with(dir.path(), "v", 60, "eq(mod(n,30),0)", X264, &remux);
    let out = dir.path().join("out");
    let track = split_fmp4(&input, &out, &Cuts::Samples(vec![30, 30])).unwrap();
    let init = std::fs::read(out.join(&track.init)).unwrap();
    assert!(init.windows(4).any(|w| w == b"elst"));
    let joined = dir.path().join("joined.mp4");
    concat(&out, &track, &joined);
    assert_eq!(packets(&joined), packets(&input));
    let start = ffprobe(
        &joined,
        &["-show_entries", "stream=start_time", "-of", "csv=p=0"],
    );
    assert_eq!(start.trim(), "0.000000");
}

/// Variable frame rate (timestamps jittered by up to 12 ms, millisecond
/// time base): every segment's start is its first frame's decode time and
/// the joined segments keep every timestamp.
#[test]
fn vfr_timestamps_survive_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let vfr = tessera_media::testclips::vfr_jitter(dir.path()).unwrap();
    let input = dir.path().join("vfr.mp4");
    let mut a = tessera_media::runner::input_args(&vfr, &["matroska"]);
    a.extend(tessera_media::runner::argv([
        "-map",
        "0:v",
        "-c",
        "copy",
        "-movflags",
        crate::support::VIDEO_FLAGS,
        "-f",
        "mp4",
    ]));
    a.push(input.clone().into());
    crate::support::ffmpeg(a);
    let dts: Vec<(u64, bool)> = ffprobe(
        &input,
        &["-show_entries", "packet=dts,flags", "-of", "csv=p=0"],
    )
    .lines()
    .filter_map(|l| l.split_once(','))
    .map(|(d, f)| (d.parse().unwrap(), f.starts_with('K')))
    .collect();
    // One segment per keyframe run.
    let keys: Vec<usize> = (0..dts.len()).filter(|&i| dts[i].1).collect();
    assert!(keys.len() >= 3, "{keys:?}");
    let counts: Vec<u32> = keys
        .iter()
        .zip(keys.iter().skip(1).chain([&dts.len()]))
        .map(|(a, b)| (b - a) as u32)
        .collect();
    let out = dir.path().join("out");
    let track = split_fmp4(&input, &out, &Cuts::Samples(counts.clone())).unwrap();
    assert_eq!(
        track.segments.iter().map(|s| s.samples).collect::<Vec<_>>(),
        counts
    );
    for (s, &k) in track.segments.iter().zip(&keys) {
        assert_eq!(s.start, dts[k].0, "{}", s.file);
    }
    for w in track.segments.windows(2) {
        assert_eq!(w[0].start + w[0].duration, w[1].start);
    }
    let joined = dir.path().join("joined.mp4");
    concat(&out, &track, &joined);
    assert_eq!(packets(&joined), packets(&input));
}

#[test]
fn opus_audio_is_packaged_too() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("opus.mp4");
    let mut a = tessera_media::runner::lavfi_input("sine=frequency=440:sample_rate=48000");
    a.extend(tessera_media::runner::argv([
        "-t",
        "4",
        "-ac",
        "2",
        "-c:a",
        "libopus",
        "-movflags",
        "+empty_moov+default_base_moof+cmaf",
        "-frag_duration",
        "2000000",
        "-f",
        "mp4",
    ]));
    a.push(input.clone().into());
    crate::support::ffmpeg(a);
    let track = split_fmp4(
        &input,
        &dir.path().join("out"),
        &Cuts::Seconds(vec![0.0, 2.0]),
    )
    .unwrap();
    assert_eq!(track.codec, "opus");
    assert_eq!(
        track.media,
        Media::Audio {
            channels: 2,
            sample_rate: 48000
        }
    );
    assert_eq!(track.segments.len(), 2);
}

/// How many `moof` boxes a segment file holds (top level).
fn moofs(path: &std::path::Path) -> usize {
    let d = std::fs::read(path).unwrap();
    let (mut i, mut n) = (0usize, 0);
    while i + 8 <= d.len() {
        let size = u32::from_be_bytes(d[i..i + 4].try_into().unwrap()) as usize;
        n += usize::from(&d[i + 4..i + 8] == b"moof");
        i += size.max(8);
    }
    n
}

#[test]
fn an_audio_segment_of_many_fragments_becomes_one_fragment_with_every_sample() {
    let dir = tempfile::tempdir().unwrap();
    // Quarter-second fragments, 2 s segments: eight fragments each.
    let input = audio_fmp4(dir.path(), 6, 250_000);
    let out = dir.path().join("audio");
    let track = split_fmp4(&input, &out, &Cuts::Seconds(vec![0.0, 2.0, 4.0])).unwrap();
    assert_eq!(track.segments.len(), 3);
    for s in &track.segments {
        assert_eq!(moofs(&out.join(&s.file)), 1, "{}: one fragment", s.file);
        let size = std::fs::metadata(out.join(&s.file)).unwrap().len();
        assert_eq!(size, s.bytes);
    }
    let joined = dir.path().join("joined.mp4");
    concat(&out, &track, &joined);
    // Every packet with its time, size and flags, and the same bytes decoded.
    assert_eq!(packets(&joined), packets(&input));
    let md5 = |p: &std::path::Path| {
        let mut a = tessera_media::runner::argv(["-v", "error"]);
        a.extend(tessera_media::runner::media_input(p));
        a.extend(tessera_media::runner::argv([
            "-map", "0:a", "-f", "md5", "-",
        ]));
        tessera_media::runner::run(tessera_media::runner::Tool::Ffmpeg, &a)
            .unwrap()
            .stdout
    };
    assert_eq!(md5(&joined), md5(&input));
}
