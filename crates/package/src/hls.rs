//! HLS playlists (RFC 8216) for a [`Presentation`]: the master playlist, a
//! media playlist and an I-frame playlist per video rendition, a media
//! playlist per audio rendition and per subtitle file.
//!
//! Version 6 throughout: fMP4 segments need `EXT-X-MAP` in media playlists
//! (version 6) and I-frame playlists (version 5). Audio renditions are
//! grouped by codec (one `EXT-X-MEDIA` group per codec) and each video
//! rendition gets one `EXT-X-STREAM-INF` per audio group, so every variant's
//! `CODECS` lists exactly what it plays.

use crate::{bits_per_second, hls_quoted, AudioRendition, Media, Presentation, Track};
use std::fmt::Write;

/// The group of subtitle renditions in the master playlist.
const SUBTITLE_GROUP: &str = "subs";

/// The playlists of `p`, as (path relative to the output folder, text);
/// `master.m3u8` first. Names are written as given except that characters
/// HLS cannot quote (`"`, line breaks) are replaced; call
/// [`Presentation::validate`] first to refuse them instead.
pub fn hls(p: &Presentation) -> Vec<(String, String)> {
    let mut files = vec![("master.m3u8".to_string(), master(p))];
    for v in &p.video {
        files.push((format!("{}/index.m3u8", v.dir), media_playlist(&v.track)));
        files.push((format!("{}/iframes.m3u8", v.dir), iframe_playlist(&v.track)));
    }
    for a in &p.audio {
        files.push((format!("{}/index.m3u8", a.dir), media_playlist(&a.track)));
    }
    for s in &p.subtitles {
        let name = s.file.rsplit('/').next().unwrap_or(&s.file);
        files.push((
            subtitle_playlist_path(&s.file),
            subtitle_playlist(name, p.duration_seconds),
        ));
    }
    files
}

/// `subs/en-0.vtt` -> `subs/en-0.m3u8`.
fn subtitle_playlist_path(vtt: &str) -> String {
    format!("{}.m3u8", vtt.strip_suffix(".vtt").unwrap_or(vtt))
}

/// Audio renditions grouped by codec, in order of first appearance.
fn audio_groups(audio: &[AudioRendition]) -> Vec<(String, Vec<&AudioRendition>)> {
    let mut groups: Vec<(String, Vec<&AudioRendition>)> = Vec::new();
    for a in audio {
        match groups.iter_mut().find(|(c, _)| *c == a.track.codec) {
            Some((_, g)) => g.push(a),
            None => groups.push((a.track.codec.clone(), vec![a])),
        }
    }
    groups
}

fn yes(b: bool) -> &'static str {
    if b {
        "YES"
    } else {
        "NO"
    }
}

/// Index of the one rendition of a group that is DEFAULT=YES: the first
/// marked default, else none.
fn default_index(flags: impl Iterator<Item = bool>) -> Option<usize> {
    flags.into_iter().position(|d| d)
}

fn master(p: &Presentation) -> String {
    let mut m = String::from("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let groups = audio_groups(&p.audio);
    if !groups.is_empty() {
        m.push('\n');
    }
    for (codec, members) in &groups {
        let def = default_index(members.iter().map(|a| a.default));
        for (i, a) in members.iter().enumerate() {
            let _ = write!(
                m,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-{}\",NAME=\"{}\"",
                hls_quoted(codec),
                hls_quoted(&a.name)
            );
            if let Some(l) = &a.language {
                let _ = write!(m, ",LANGUAGE=\"{}\"", hls_quoted(l));
            }
            let channels = match a.track.media {
                Media::Audio { channels, .. } => channels,
                Media::Video { .. } => 0,
            };
            let _ = writeln!(
                m,
                ",DEFAULT={},AUTOSELECT=YES,CHANNELS=\"{channels}\",URI=\"{}/index.m3u8\"",
                yes(def == Some(i)),
                hls_quoted(&a.dir)
            );
        }
    }
    if !p.subtitles.is_empty() {
        m.push('\n');
    }
    let def = default_index(p.subtitles.iter().map(|s| s.default));
    for (i, s) in p.subtitles.iter().enumerate() {
        let _ = write!(
            m,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"{SUBTITLE_GROUP}\",NAME=\"{}\"",
            hls_quoted(&s.name)
        );
        if let Some(l) = &s.language {
            let _ = write!(m, ",LANGUAGE=\"{}\"", hls_quoted(l));
        }
        let _ = writeln!(
            m,
            ",DEFAULT={},AUTOSELECT=YES,FORCED={},URI=\"{}\"",
            yes(def == Some(i)),
            yes(s.forced),
            hls_quoted(&subtitle_playlist_path(&s.file))
        );
    }
    // One variant per (video, audio group); audio alone when there is no video.
    let audio_choices: Vec<Option<&(String, Vec<&AudioRendition>)>> = if groups.is_empty() {
        vec![None]
    } else {
        groups.iter().map(Some).collect()
    };
    for v in &p.video {
        let (w, h) = match v.track.media {
            Media::Video { width, height } => (width, height),
            Media::Audio { .. } => (0, 0),
        };
        for g in &audio_choices {
            let (mut peak, mut avg) = (v.track.peak_bandwidth(), v.track.average_bandwidth());
            let mut codecs = v.track.codec.clone();
            if let Some((codec, members)) = g {
                peak += members
                    .iter()
                    .map(|a| a.track.peak_bandwidth())
                    .max()
                    .unwrap_or(0);
                avg += members
                    .iter()
                    .map(|a| a.track.average_bandwidth())
                    .max()
                    .unwrap_or(0);
                codecs = format!("{codecs},{codec}");
            }
            let _ = write!(
                m,
                "\n#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{}\",RESOLUTION={w}x{h},FRAME-RATE={:.3}",
                hls_quoted(&codecs),
                f64::from(v.frame_rate.0) / f64::from(v.frame_rate.1.max(1))
            );
            if let Some((codec, _)) = g {
                let _ = write!(m, ",AUDIO=\"audio-{}\"", hls_quoted(codec));
            }
            if !p.subtitles.is_empty() {
                let _ = write!(m, ",SUBTITLES=\"{SUBTITLE_GROUP}\"");
            }
            let _ = writeln!(m, "\n{}/index.m3u8", hls_quoted(&v.dir));
        }
    }
    if p.video.is_empty() {
        for (codec, members) in &groups {
            for a in members {
                let _ = write!(
                    m,
                    "\n#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\",AUDIO=\"audio-{}\"\n{}/index.m3u8\n",
                    a.track.peak_bandwidth(),
                    a.track.average_bandwidth(),
                    hls_quoted(codec),
                    hls_quoted(codec),
                    hls_quoted(&a.dir)
                );
            }
        }
    }
    if !p.video.is_empty() {
        m.push('\n');
    }
    for v in &p.video {
        let (w, h) = match v.track.media {
            Media::Video { width, height } => (width, height),
            Media::Audio { .. } => (0, 0),
        };
        let (peak, avg) = iframe_bandwidth(&v.track);
        let _ = writeln!(
            m,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{}\",RESOLUTION={w}x{h},URI=\"{}/iframes.m3u8\"",
            hls_quoted(&v.track.codec),
            hls_quoted(&v.dir)
        );
    }
    m
}

/// Peak and average bit rate of the I-frames alone, each standing for its
/// segment's duration.
fn iframe_bandwidth(t: &Track) -> (u64, u64) {
    let peak = t
        .segments
        .iter()
        .map(|s| bits_per_second(s.iframe.1, s.duration, t.timescale))
        .max()
        .unwrap_or(0);
    let bytes = t.segments.iter().map(|s| s.iframe.1).sum();
    let ticks = t.segments.iter().map(|s| s.duration).sum();
    (peak, bits_per_second(bytes, ticks, t.timescale))
}

/// Seconds for `#EXTINF`, with microsecond precision.
fn extinf(ticks: u64, timescale: u32) -> String {
    format!("{:.6}", ticks as f64 / f64::from(timescale.max(1)))
}

/// RFC 8216 4.3.3.1: every EXTINF, rounded to the nearest integer, must be
/// <= the target duration; at least 1.
fn target_duration(seconds: impl Iterator<Item = f64>) -> u64 {
    seconds.map(|s| s.round() as u64).max().unwrap_or(1).max(1)
}

fn header(t: &Track, iframes: bool) -> String {
    let ts = f64::from(t.timescale.max(1));
    let target = target_duration(t.segments.iter().map(|s| s.duration as f64 / ts));
    let mut m = format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
    if iframes {
        m.push_str("#EXT-X-I-FRAMES-ONLY\n");
    } else {
        m.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    }
    let _ = writeln!(m, "#EXT-X-MAP:URI=\"{}\"", hls_quoted(&t.init));
    m
}

fn media_playlist(t: &Track) -> String {
    let mut m = header(t, false);
    for s in &t.segments {
        let _ = writeln!(
            m,
            "#EXTINF:{},\n{}",
            extinf(s.duration, t.timescale),
            hls_quoted(&s.file)
        );
    }
    m.push_str("#EXT-X-ENDLIST\n");
    m
}

fn iframe_playlist(t: &Track) -> String {
    let mut m = header(t, true);
    for s in &t.segments {
        let _ = writeln!(
            m,
            "#EXTINF:{},\n#EXT-X-BYTERANGE:{}@{}\n{}",
            extinf(s.duration, t.timescale),
            s.iframe.1,
            s.iframe.0,
            hls_quoted(&s.file)
        );
    }
    m.push_str("#EXT-X-ENDLIST\n");
    m
}

/// One WebVTT file as one segment lasting the whole presentation.
fn subtitle_playlist(vtt_name: &str, duration: f64) -> String {
    let d = if duration.is_finite() && duration > 0.0 {
        duration
    } else {
        0.0
    };
    format!(
        "#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-TARGETDURATION:{}\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:{d:.6},\n{}\n#EXT-X-ENDLIST\n",
        target_duration(std::iter::once(d)),
        hls_quoted(vtt_name)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_duration_rounds_to_nearest() {
        assert_eq!(target_duration([2.002, 2.49].into_iter()), 2);
        assert_eq!(target_duration([2.5, 1.0].into_iter()), 3);
        assert_eq!(target_duration(std::iter::empty()), 1);
        assert_eq!(target_duration([0.2].into_iter()), 1);
    }

    fn track(codec: &str, media: Media, bytes: u64) -> Track {
        let seg = |i: u64| crate::Segment {
            file: format!("seg-{:05}.m4s", i + 1),
            start: i * 2000,
            duration: 2000,
            samples: 1,
            bytes: bytes * (i + 1),
            iframe: (24, 100),
        };
        Track {
            timescale: 1000,
            codec: codec.into(),
            media,
            init: "init.mp4".into(),
            segments: (0..2).map(seg).collect(),
        }
    }

    #[test]
    fn one_variant_per_video_and_audio_codec_with_one_default_per_group() {
        let audio = |dir: &str, codec: &str, bytes, default| AudioRendition {
            dir: dir.into(),
            track: track(
                codec,
                Media::Audio {
                    channels: 6,
                    sample_rate: 48000,
                },
                bytes,
            ),
            name: dir.into(),
            language: None,
            default,
        };
        let video = |dir: &str, bytes| crate::VideoRendition {
            dir: dir.into(),
            track: track(
                "avc1.64001f",
                Media::Video {
                    width: 1280,
                    height: 720,
                },
                bytes,
            ),
            frame_rate: (25, 1),
        };
        let p = Presentation {
            duration_seconds: 4.0,
            video: vec![video("720p", 500_000), video("360p", 100_000)],
            audio: vec![
                audio("aac-a", "mp4a.40.2", 20_000, true),
                audio("aac-b", "mp4a.40.2", 30_000, true),
                audio("ac3", "ac-3", 50_000, false),
            ],
            subtitles: vec![],
        };
        let master = master(&p);
        assert_eq!(master.matches("DEFAULT=YES").count(), 1, "{master}");
        assert!(
            master.contains("GROUP-ID=\"audio-ac-3\",NAME=\"ac3\",DEFAULT=NO"),
            "{master}"
        );
        let infs: Vec<_> = master
            .lines()
            .filter(|l| l.starts_with("#EXT-X-STREAM-INF"))
            .collect();
        assert_eq!(infs.len(), 4, "{master}");
        // 720p peak 1,000,000 B / 2 s = 4,000,000 bps; aac-b's peak 240,000.
        assert!(infs[0].starts_with("#EXT-X-STREAM-INF:BANDWIDTH=4240000,AVERAGE-BANDWIDTH=3180000,CODECS=\"avc1.64001f,mp4a.40.2\""), "{}", infs[0]);
        assert!(
            infs[1].contains("CODECS=\"avc1.64001f,ac-3\""),
            "{}",
            infs[1]
        );
        assert!(!master.contains("SUBTITLES="));
        assert!(master.contains("CHANNELS=\"6\""));
    }

    #[test]
    fn subtitle_playlist_sits_beside_its_file() {
        assert_eq!(subtitle_playlist_path("subs/en-0.vtt"), "subs/en-0.m3u8");
        let t = subtitle_playlist("en-0.vtt", 6.006);
        assert!(
            t.contains(
                "#EXT-X-TARGETDURATION:6\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXTINF:6.006000,\nen-0.vtt\n"
            ),
            "{t}"
        );
    }
}
