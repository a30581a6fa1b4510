//! A static DASH MPD (ISO/IEC 23009-1, live profile) for a [`Presentation`],
//! addressing the same segment files as the HLS playlists.
//!
//! One video AdaptationSet holds every video rendition (segments aligned,
//! each starting with a SAP type 1, i.e. an IDR); audio gets one
//! AdaptationSet per language; each WebVTT file is a text AdaptationSet.
//! Segments are listed by a `SegmentTimeline` of the exact decode times and
//! durations, so nothing is rounded.

use crate::{xml_escape as x, AudioRendition, Media, Presentation, Track};
use std::fmt::Write;

/// The MPD text of `p`. Every name and path is XML-escaped.
pub fn dash(p: &Presentation) -> String {
    let max_segment = p
        .video
        .iter()
        .map(|v| &v.track)
        .chain(p.audio.iter().map(|a| &a.track))
        .flat_map(|t| {
            t.segments
                .iter()
                .map(move |s| s.duration as f64 / f64::from(t.timescale.max(1)))
        })
        .fold(1.0f64, f64::max);
    let mut m = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        m,
        "<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" minBufferTime=\"{}\" mediaPresentationDuration=\"{}\">",
        duration(max_segment),
        duration(p.duration_seconds)
    );
    m.push_str("  <Period id=\"0\" start=\"PT0S\">\n");
    let mut set_id = 0;
    if !p.video.is_empty() {
        let (mut mw, mut mh) = (0, 0);
        for v in &p.video {
            if let Media::Video { width, height } = v.track.media {
                mw = mw.max(width);
                mh = mh.max(height);
            }
        }
        let _ = writeln!(
            m,
            "    <AdaptationSet id=\"{set_id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{mw}\" maxHeight=\"{mh}\">"
        );
        set_id += 1;
        for v in &p.video {
            let (w, h) = match v.track.media {
                Media::Video { width, height } => (width, height),
                Media::Audio { .. } => (0, 0),
            };
            let _ = writeln!(
                m,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" width=\"{w}\" height=\"{h}\" frameRate=\"{}/{}\" sar=\"1:1\">",
                x(&v.dir),
                v.track.peak_bandwidth(),
                x(&v.track.codec),
                v.frame_rate.0,
                v.frame_rate.1
            );
            segments(&mut m, &v.dir, &v.track);
            m.push_str("      </Representation>\n");
        }
        m.push_str("    </AdaptationSet>\n");
    }
    for (lang, members) in by_language(&p.audio) {
        let _ = write!(
            m,
            "    <AdaptationSet id=\"{set_id}\" contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\""
        );
        set_id += 1;
        if let Some(l) = lang {
            let _ = write!(m, " lang=\"{}\"", x(l));
        }
        m.push_str(">\n");
        let role = if members.iter().any(|a| a.default) {
            "main"
        } else {
            "alternate"
        };
        let _ = writeln!(
            m,
            "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>"
        );
        let _ = writeln!(m, "      <Label>{}</Label>", x(&members[0].name));
        for a in members {
            let (ch, rate) = match a.track.media {
                Media::Audio {
                    channels,
                    sample_rate,
                } => (channels, sample_rate),
                Media::Video { .. } => (0, 0),
            };
            let _ = writeln!(
                m,
                "      <Representation id=\"{}\" bandwidth=\"{}\" codecs=\"{}\" audioSamplingRate=\"{rate}\">\n        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{ch}\"/>",
                x(&a.dir),
                a.track.peak_bandwidth(),
                x(&a.track.codec)
            );
            segments(&mut m, &a.dir, &a.track);
            m.push_str("      </Representation>\n");
        }
        m.push_str("    </AdaptationSet>\n");
    }
    for (i, s) in p.subtitles.iter().enumerate() {
        let _ = write!(
            m,
            "    <AdaptationSet id=\"{set_id}\" contentType=\"text\" mimeType=\"text/vtt\""
        );
        set_id += 1;
        if let Some(l) = &s.language {
            let _ = write!(m, " lang=\"{}\"", x(l));
        }
        let role = if s.forced {
            "forced-subtitle"
        } else {
            "subtitle"
        };
        let _ = writeln!(
            m,
            ">\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>\n      <Label>{}</Label>\n      <Representation id=\"text-{i}\" bandwidth=\"256\">\n        <BaseURL>{}</BaseURL>\n      </Representation>\n    </AdaptationSet>",
            x(&s.name),
            x(&s.file)
        );
    }
    m.push_str("  </Period>\n</MPD>\n");
    m
}

/// `xs:duration` with millisecond precision.
fn duration(seconds: f64) -> String {
    let s = if seconds.is_finite() && seconds > 0.0 {
        seconds
    } else {
        0.0
    };
    format!("PT{s:.3}S")
}

/// Audio renditions grouped by language, in order of first appearance.
fn by_language(audio: &[AudioRendition]) -> Vec<(Option<&str>, Vec<&AudioRendition>)> {
    let mut groups: Vec<(Option<&str>, Vec<&AudioRendition>)> = Vec::new();
    for a in audio {
        let l = a.language.as_deref();
        match groups.iter_mut().find(|(g, _)| *g == l) {
            Some((_, v)) => v.push(a),
            None => groups.push((l, vec![a])),
        }
    }
    groups
}

/// The `SegmentTemplate` (files named `seg-00001.m4s`, ... as
/// [`split_fmp4`](crate::split_fmp4) writes) or, for other names, a
/// `SegmentList`; both with the exact timeline.
fn segments(m: &mut String, dir: &str, t: &Track) {
    let numbered = t
        .segments
        .iter()
        .enumerate()
        .all(|(i, s)| s.file == format!("seg-{:05}.m4s", i + 1));
    let (open, close) = if numbered {
        (
            format!(
                "        <SegmentTemplate timescale=\"{}\" initialization=\"{}/{}\" media=\"{}/seg-$Number%05d$.m4s\" startNumber=\"1\">",
                t.timescale,
                x(dir),
                x(&t.init),
                x(dir)
            ),
            "        </SegmentTemplate>",
        )
    } else {
        (
            format!(
                "        <SegmentList timescale=\"{}\">\n          <Initialization sourceURL=\"{}/{}\"/>",
                t.timescale,
                x(dir),
                x(&t.init)
            ),
            "        </SegmentList>",
        )
    };
    let _ = writeln!(m, "{open}");
    m.push_str("          <SegmentTimeline>\n");
    for (start, d, r) in timeline(t) {
        let _ = write!(m, "            <S");
        if let Some(start) = start {
            let _ = write!(m, " t=\"{start}\"");
        }
        let _ = write!(m, " d=\"{d}\"");
        if r > 0 {
            let _ = write!(m, " r=\"{r}\"");
        }
        m.push_str("/>\n");
    }
    m.push_str("          </SegmentTimeline>\n");
    if !numbered {
        for s in &t.segments {
            let _ = writeln!(
                m,
                "          <SegmentURL media=\"{}/{}\"/>",
                x(dir),
                x(&s.file)
            );
        }
    }
    let _ = writeln!(m, "{close}");
}

/// Run-length timeline: (explicit start when not contiguous, duration,
/// repeat count).
fn timeline(t: &Track) -> Vec<(Option<u64>, u64, u64)> {
    let mut out: Vec<(Option<u64>, u64, u64)> = Vec::new();
    let mut next: Option<u64> = None;
    for s in &t.segments {
        let contiguous = next == Some(s.start);
        match out.last_mut() {
            Some((_, d, r)) if contiguous && *d == s.duration => *r += 1,
            _ => out.push((if contiguous { None } else { Some(s.start) }, s.duration, 0)),
        }
        next = Some(s.start.saturating_add(s.duration));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Segment;

    fn track(spans: &[(u64, u64)]) -> Track {
        Track {
            timescale: 1000,
            codec: "mp4a.40.2".into(),
            media: Media::Audio {
                channels: 2,
                sample_rate: 48000,
            },
            init: "init.mp4".into(),
            segments: spans
                .iter()
                .enumerate()
                .map(|(i, &(start, duration))| Segment {
                    file: format!("seg-{:05}.m4s", i + 1),
                    start,
                    duration,
                    samples: 1,
                    bytes: 1,
                    iframe: (0, 1),
                })
                .collect(),
        }
    }

    #[test]
    fn timeline_repeats_equal_runs_and_restates_time_after_a_gap() {
        let t = track(&[
            (0, 2000),
            (2000, 2000),
            (4000, 2000),
            (6000, 500),
            (7000, 500),
        ]);
        assert_eq!(
            timeline(&t),
            vec![(Some(0), 2000, 2), (None, 500, 0), (Some(7000), 500, 0)]
        );
    }
}
