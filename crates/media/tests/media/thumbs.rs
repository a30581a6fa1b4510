//! Thumbnails on clips the tests make: a strict WebVTT track whose every
//! tile lies inside its sprite, the most tiles, and failures that leave
//! nothing. What the tiles show is in `thumbs_look`.

use std::path::Path;
use std::process::Command;
use tessera_media::thumbs::{ThumbOptions, Thumbs};
use tessera_media::*;

pub fn ffmpeg(args: &[&str]) {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-y", "-v", "error"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Width and height of an image or video, from ffprobe.
pub fn size_of(path: &Path) -> (u32, u32) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=width,height",
            "-of",
            "csv=p=0",
        ])
        .arg(path)
        .output()
        .unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    let (w, h) = s.trim().split_once(',').unwrap();
    (w.parse().unwrap(), h.parse().unwrap())
}

/// Mean luma (0-255, full range) of the rectangle `[x, y, w, h]` of a JPEG.
pub fn mean_luma(path: &Path, [x, y, w, h]: [u32; 4]) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(path)
        .args([
            "-vf",
            &format!("crop={w}:{h}:{x}:{y},format=gray"),
            "-f",
            "rawvideo",
            "pipe:1",
        ])
        .output()
        .unwrap();
    assert!(out.status.success() && out.stdout.len() == (w * h) as usize);
    out.stdout.iter().map(|&b| f64::from(b)).sum::<f64>() / f64::from(w * h)
}

/// A cue of the thumbnail track.
#[derive(Debug)]
pub struct Cue {
    pub start_ms: u64,
    pub end_ms: u64,
    pub sprite: String,
    pub rect: [u32; 4],
}

fn vtt_ms(s: &str) -> u64 {
    let b = s.as_bytes();
    assert!(s.len() >= 12 && b[s.len() - 4] == b'.', "timestamp {s:?}");
    let (hms, ms) = s.split_at(s.len() - 4);
    let p: Vec<u64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    assert!(
        p.len() == 3 && p[1] < 60 && p[2] < 60 && hms.len() >= 8,
        "timestamp {s:?}"
    );
    ((p[0] * 60 + p[1]) * 60 + p[2]) * 1000 + ms[1..].parse::<u64>().unwrap()
}

/// A strict reader of the thumbnail track: the header, then cues of a
/// timing line and one `file#xywh=x,y,w,h` line, each followed by a blank
/// line; times contiguous from 0.
pub fn parse_vtt(text: &str) -> Vec<Cue> {
    let body = text
        .strip_prefix("WEBVTT\n\n")
        .expect("WEBVTT header and a blank line");
    let body = body.strip_suffix('\n').expect("a newline at the end");
    let mut cues: Vec<Cue> = Vec::new();
    for block in body.split("\n\n") {
        let lines: Vec<&str> = block.split('\n').collect();
        assert_eq!(lines.len(), 2, "cue {block:?}");
        let (a, b) = lines[0].split_once(" --> ").expect("timing line");
        let (sprite, xywh) = lines[1].split_once("#xywh=").expect("#xywh= fragment");
        let rect: Vec<u32> = xywh.split(',').map(|v| v.parse().unwrap()).collect();
        let cue = Cue {
            start_ms: vtt_ms(a),
            end_ms: vtt_ms(b),
            sprite: sprite.into(),
            rect: rect.try_into().unwrap(),
        };
        assert!(cue.end_ms > cue.start_ms, "{cue:?}");
        let prev_end = cues.last().map_or(0, |c| c.end_ms);
        assert_eq!(
            cue.start_ms, prev_end,
            "cues are contiguous from 0: {cue:?}"
        );
        cues.push(cue);
    }
    cues
}

/// Checks `out` against `t` and the source's frames; returns the cues.
pub fn check_track(out: &Path, t: &Thumbs, index: &FrameIndex, interval: f64) -> Vec<Cue> {
    let cues = parse_vtt(&std::fs::read_to_string(out.join(&t.vtt)).unwrap());
    let first = index.pts[0];
    let last_start = index.seconds(index.pts[index.len() - 1] - first);
    let duration = index.seconds(index.end_pts() - first);
    assert_eq!(cues.len() as u32, t.count);
    assert_eq!(
        cues.len(),
        (duration / interval - 1e-9).ceil() as usize,
        "ceil(duration / interval) cues"
    );
    let end = cues.last().unwrap().end_ms as f64 / 1000.0;
    assert!(
        end >= last_start && (end - duration).abs() < 0.001,
        "the track ends with the last frame"
    );
    let per = 10 * 10;
    assert_eq!(t.sprites.len(), cues.len().div_ceil(per));
    let mut names: Vec<String> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want = t.sprites.clone();
    want.extend([t.poster.clone(), t.vtt.clone()]);
    want.sort();
    assert_eq!(names, want, "exactly the poster, the sheets and the track");
    let mut sizes = std::collections::HashMap::new();
    for cue in &cues {
        let (sw, sh) = *sizes
            .entry(cue.sprite.clone())
            .or_insert_with(|| size_of(&out.join(&cue.sprite)));
        let [x, y, w, h] = cue.rect;
        assert!(x + w <= sw && y + h <= sh, "{cue:?} inside {sw}x{sh}");
        assert_eq!((w, h), t.tile);
    }
    cues
}

pub fn probed(path: &Path) -> (MediaInfo, FrameIndex) {
    probe_and_index(path).unwrap()
}

#[test]
fn the_op_writes_a_strict_track_over_real_sprites() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let workdir = dir.path().join("w");
    let req = crate::support::request(&src, &dir.path().join("o.mkv"), Codec::X264, 1.0);
    write_request(&workdir, &req).unwrap();
    let probe = probe_op(&workdir).unwrap();
    let out = dir.path().join("thumbs");
    let t = thumbnails_op(&workdir, &out).unwrap();
    assert_eq!((t.count, t.tile, t.sprites.len()), (2, (160, 120), 1));
    check_track(&out, &t, &probe.index, 2.0);
    assert_eq!(
        size_of(&out.join("thumbs-001.jpg")),
        (320, 120),
        "one sheet cut to 2 tiles"
    );
    assert_eq!(size_of(&out.join("poster.jpg")), (320, 240));

    // Several sheets, the last one partly filled; the old folder is replaced whole.
    let opts = ThumbOptions {
        interval_seconds: 0.15,
        columns: 4,
        rows: 3,
        ..Default::default()
    };
    let t = write_thumbnails(&src, &probe.info, &probe.index, &out, &opts).unwrap();
    assert_eq!((t.count, t.sprites.len()), (27, 3));
    let cues = parse_vtt(&std::fs::read_to_string(out.join(&t.vtt)).unwrap());
    assert_eq!(cues.len(), 27);
    for cue in &cues {
        let (sw, sh) = size_of(&out.join(&cue.sprite));
        assert_eq!((sw, sh), (640, 360));
        assert!(cue.rect[0] + cue.rect[2] <= sw && cue.rect[1] + cue.rect[3] <= sh);
    }
    assert_eq!(cues[26].sprite, "thumbs-003.jpg");
    assert_eq!(cues[26].rect, [320, 0, 160, 120]);
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        5,
        "no file of the first run is left"
    );
    let siblings: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(
        !siblings
            .iter()
            .any(|n| n.to_string_lossy().contains("tessera-")),
        "{siblings:?}"
    );
}

#[test]
fn refusals_and_failures_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let audio = testclips::audio_only(d).unwrap();
    // `probe` refuses audio alone itself; read ffprobe's answer directly.
    assert!(matches!(probe(&audio), Err(MediaError::NoVideo { .. })));
    let json = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_format",
            "-show_streams",
            "-of",
            "json",
        ])
        .arg(&audio)
        .output()
        .unwrap()
        .stdout;
    let info = MediaInfo::from_ffprobe_json(&String::from_utf8(json).unwrap()).unwrap();
    let index = FrameIndex {
        time_base: (1, 25),
        pts: vec![0, 1],
        keyframes: vec![0],
        last_duration: 1,
        timestamp_faults: 0,
    };
    let out = d.join("t");
    let err = write_thumbnails(&audio, &info, &index, &out, &ThumbOptions::default()).unwrap_err();
    assert!(matches!(err, MediaError::NoVideo { .. }), "{err}");

    // The source is damaged after it was probed: ffmpeg fails, nothing is left,
    // and an earlier folder stays as it was.
    let src = testclips::cfr_25(d).unwrap();
    let (info, index) = probed(&src);
    write_thumbnails(&src, &info, &index, &out, &ThumbOptions::default()).unwrap();
    let before = std::fs::read(out.join("thumbnails.vtt")).unwrap();
    std::fs::write(&src, b"not a video any more").unwrap();
    let err = write_thumbnails(&src, &info, &index, &out, &ThumbOptions::default()).unwrap_err();
    assert!(matches!(err, MediaError::ToolFailed { .. }), "{err}");
    assert_eq!(std::fs::read(out.join("thumbnails.vtt")).unwrap(), before);
    let fresh = d.join("fresh");
    assert!(write_thumbnails(&src, &info, &index, &fresh, &ThumbOptions::default()).is_err());
    let names: Vec<String> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        !names.iter().any(|n| n == "fresh" || n.contains("tessera-")),
        "{names:?}"
    );
    // A folder of other things is not swept away, nor a file replaced
    // (refused before ffmpeg runs).
    let ladder = d.join("ladder");
    std::fs::create_dir(&ladder).unwrap();
    std::fs::write(ladder.join("master.m3u8"), "#EXTM3U\n").unwrap();
    for target in [ladder.clone(), ladder.join("master.m3u8")] {
        let err =
            write_thumbnails(&src, &info, &index, &target, &ThumbOptions::default()).unwrap_err();
        assert!(matches!(err, MediaError::OutputDir { .. }), "{err}");
    }
    let err = write_thumbnails(&src, &info, &index, &ladder, &ThumbOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("give them a folder of their own"),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&ladder).unwrap().count(), 1);
    let err = write_thumbnails(
        &src,
        &info,
        &index,
        &d.join("50%"),
        &ThumbOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, MediaError::OutputDir { .. }) && err.to_string().contains("'%'"),
        "{err}"
    );
}

#[test]
fn the_most_tiles_go_through_ffmpeg_and_a_longer_video_gets_a_larger_interval() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("long.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=32x32:r=10:d=200",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        src.to_str().unwrap(),
    ]);
    let (info, index) = probed(&src);
    let out = dir.path().join("t");
    let opts = ThumbOptions {
        interval_seconds: 0.1,
        tile_width: 16,
        ..Default::default()
    };
    let t = write_thumbnails(&src, &info, &index, &out, &opts).unwrap();
    assert_eq!(
        (t.count, t.sprites.len(), t.interval_seconds),
        (2000, 20, 0.1)
    );
    check_track(&out, &t, &index, 0.1);
    // 2500 s at 1 s: 2500 tiles, past the bound: 2 s, 1250 tiles.
    let long = dir.path().join("longer.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=32x32:r=1:d=2500",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        long.to_str().unwrap(),
    ]);
    let (info, index) = probed(&long);
    let opts = ThumbOptions {
        interval_seconds: 1.0,
        ..opts
    };
    let t = write_thumbnails(&long, &info, &index, &out, &opts).unwrap();
    assert_eq!(
        (t.count, t.sprites.len(), t.interval_seconds),
        (1250, 13, 2.0)
    );
    check_track(&out, &t, &index, 2.0);
}

/// The cost of thumbnails beside an encode, on the README's 20 s 720p
/// sample: `cargo test -p tessera-media --test media thumbnail_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn thumbnail_cost_beside_an_encode() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sample.mp4");
    testclips::sample_720p(&src, 20).unwrap();
    let (info, index) = probed(&src);
    let t0 = std::time::Instant::now();
    let t = write_thumbnails(
        &src,
        &info,
        &index,
        &dir.path().join("t"),
        &ThumbOptions::default(),
    )
    .unwrap();
    let thumbs = t0.elapsed();
    let t0 = std::time::Instant::now();
    ffmpeg(&[
        "-i",
        src.to_str().unwrap(),
        "-map",
        "0:v",
        "-f",
        "null",
        "-",
    ]);
    let decode = t0.elapsed();
    let t0 = std::time::Instant::now();
    let enc = dir.path().join("enc.mp4");
    ffmpeg(&[
        "-i",
        src.to_str().unwrap(),
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-an",
        enc.to_str().unwrap(),
    ]);
    let encode = t0.elapsed();
    println!(
        "thumbnails ({} tiles): {:.2} s; decode alone: {:.2} s; libx264 veryfast encode: {:.2} s; thumbnails / encode {:.3}",
        t.count,
        thumbs.as_secs_f64(),
        decode.as_secs_f64(),
        encode.as_secs_f64(),
        thumbs.as_secs_f64() / encode.as_secs_f64()
    );
}
