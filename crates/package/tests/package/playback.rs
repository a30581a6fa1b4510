//! ffmpeg's own HLS and DASH demuxers read the packaged output end to end:
//! every frame of every rendition, through the playlists and the MPD.

use crate::manifests::presentation;
use crate::support::ffprobe_with;
use tessera_package::{dash, hls, Presentation};

fn frames(out: &std::path::Path, manifest: &str, formats: &[&str], stream: &str) -> u64 {
    let text = ffprobe_with(
        &out.join(manifest),
        formats,
        &[
            "-select_streams",
            stream,
            "-count_packets",
            "-show_entries",
            "stream=nb_read_packets",
            "-of",
            "csv=p=0",
        ],
    );
    text.lines()
        .next()
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{manifest}: {text}"))
}

#[test]
fn ffmpeg_reads_every_frame_through_hls_and_dash() {
    let dir = tempfile::tempdir().unwrap();
    let p = presentation(dir.path());
    let out = dir.path().join("out");
    for (name, text) in hls(&p) {
        let path = out.join(&name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    std::fs::write(
        out.join("subs/en-0.vtt"),
        "WEBVTT\n\n00:00.000 --> 00:01.000\nhello\n",
    )
    .unwrap();
    // ffmpeg's dash demuxer refuses to open a .vtt file, so its MPD is
    // written without the subtitle (the subtitle AdaptationSet is checked
    // in `manifests`).
    let no_subs = Presentation {
        subtitles: vec![],
        ..p.clone()
    };
    std::fs::write(out.join("manifest.mpd"), dash(&no_subs)).unwrap();
    let audio_packets: u32 = p.audio[0].track.segments.iter().map(|s| s.samples).sum();
    assert_eq!(frames(&out, "360p/index.m3u8", &["hls", "mov"], "v:0"), 180);
    assert_eq!(
        frames(&out, "audio-en/index.m3u8", &["hls", "mov"], "a:0"),
        u64::from(audio_packets)
    );
    assert_eq!(
        frames(&out, "master.m3u8", &["hls", "mov", "webvtt"], "v:0"),
        180
    );
    assert_eq!(frames(&out, "manifest.mpd", &["dash", "mov"], "v:0"), 180);
    assert_eq!(
        frames(&out, "manifest.mpd", &["dash", "mov"], "a:0"),
        u64::from(audio_packets)
    );
}

/// What an I-frame playlist points at (init, then the byte range of a
/// segment) decodes to exactly one key frame.
#[test]
fn each_iframe_byte_range_decodes_to_one_key_frame() {
    let dir = tempfile::tempdir().unwrap();
    let p = presentation(dir.path());
    let v = &p.video[0].track;
    let seg_dir = dir.path().join("out/360p");
    let init = std::fs::read(seg_dir.join(&v.init)).unwrap();
    for s in &v.segments {
        let seg = std::fs::read(seg_dir.join(&s.file)).unwrap();
        let (off, len) = (s.iframe.0 as usize, s.iframe.1 as usize);
        let one = dir.path().join("iframe.mp4");
        std::fs::write(&one, [&init[..], &seg[off..off + len]].concat()).unwrap();
        let frames = crate::support::ffprobe(
            &one,
            &[
                "-show_entries",
                "frame=key_frame,pict_type",
                "-of",
                "csv=p=0",
            ],
        );
        let frames: Vec<_> = frames
            .lines()
            .map(|l| l.trim().trim_end_matches(','))
            .filter(|l| !l.is_empty())
            .collect();
        assert_eq!(frames, ["1,I"], "{}", s.file);
    }
}
