//! HLS and DASH text from real splits: the tags and attributes a careful
//! packager writes, and numbers that agree with the segments.

use crate::support::{audio_fmp4, video_fmp4, X264};
use tessera_package::{
    dash, hls, split_fmp4, AudioRendition, Cuts, Presentation, SubtitleRendition, VideoRendition,
};

/// A real 6 s 640x360 video rendition, 6 s of AAC and a subtitle, split
/// under `dir/out`.
pub fn presentation(dir: &std::path::Path) -> Presentation {
    let v = video_fmp4(dir, "v", 180, "eq(mod(n,60),0)", X264);
    let video = split_fmp4(&v, &dir.join("out/360p"), &Cuts::Samples(vec![60, 60, 60])).unwrap();
    let a = audio_fmp4(dir, 6, 2_002_000);
    let audio = split_fmp4(
        &a,
        &dir.join("out/audio-en"),
        &Cuts::Seconds(vec![0.0, 2.002, 4.004]),
    )
    .unwrap();
    Presentation {
        duration_seconds: video.duration_seconds(),
        video: vec![VideoRendition {
            dir: "360p".into(),
            track: video,
            frame_rate: (30000, 1001),
        }],
        audio: vec![AudioRendition {
            dir: "audio-en".into(),
            track: audio,
            name: "English".into(),
            language: Some("en".into()),
            default: true,
        }],
        subtitles: vec![SubtitleRendition {
            file: "subs/en-0.vtt".into(),
            name: "English".into(),
            language: Some("en".into()),
            default: false,
            forced: false,
        }],
    }
}

/// The value of `key=` in an HLS attribute list (quotes kept off).
fn attr<'a>(line: &'a str, key: &str) -> &'a str {
    let at = line
        .find(&format!("{key}="))
        .unwrap_or_else(|| panic!("no {key} in {line}"));
    let rest = &line[at + key.len() + 1..];
    if let Some(q) = rest.strip_prefix('"') {
        &q[..q.find('"').unwrap()]
    } else {
        &rest[..rest.find(',').unwrap_or(rest.len())]
    }
}

fn file<'a>(files: &'a [(String, String)], name: &str) -> &'a str {
    &files
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

/// RFC 8216's rules for a VOD media playlist of fMP4 segments, and the
/// EXTINF durations adding up to `seconds`.
fn check_media_playlist(text: &str, seconds: f64) -> Vec<f64> {
    assert!(text.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n"), "{text}");
    for tag in [
        "#EXT-X-PLAYLIST-TYPE:VOD\n",
        "#EXT-X-MAP:URI=\"init.mp4\"\n",
    ] {
        assert!(text.contains(tag), "{tag} missing: {text}");
    }
    assert!(text.ends_with("#EXT-X-ENDLIST\n"));
    let target: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-TARGETDURATION:"))
        .unwrap()
        .parse()
        .unwrap();
    let durations: Vec<f64> = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').parse().unwrap())
        .collect();
    let rounded_max = durations.iter().map(|d| d.round() as u64).max().unwrap();
    assert_eq!(
        target, rounded_max,
        "TARGETDURATION is the largest rounded EXTINF"
    );
    let sum: f64 = durations.iter().sum();
    assert!(
        (sum - seconds).abs() < 0.001,
        "EXTINF sum {sum} vs {seconds}"
    );
    durations
}

#[test]
fn hls_playlists_carry_what_a_careful_packager_writes() {
    let dir = tempfile::tempdir().unwrap();
    let p = presentation(dir.path());
    p.validate().unwrap();
    let files = hls(&p);
    let names: Vec<_> = files.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "master.m3u8",
            "360p/index.m3u8",
            "360p/iframes.m3u8",
            "audio-en/index.m3u8",
            "subs/en-0.m3u8"
        ]
    );

    let master = file(&files, "master.m3u8");
    assert!(
        master.starts_with("#EXTM3U\n#EXT-X-VERSION:6\n#EXT-X-INDEPENDENT-SEGMENTS\n"),
        "{master}"
    );
    let audio = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .unwrap();
    assert_eq!(audio, "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio-mp4a.40.2\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=YES,AUTOSELECT=YES,CHANNELS=\"2\",URI=\"audio-en/index.m3u8\"");
    let subs = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=SUBTITLES"))
        .unwrap();
    assert_eq!(subs, "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"English\",LANGUAGE=\"en\",DEFAULT=NO,AUTOSELECT=YES,FORCED=NO,URI=\"subs/en-0.m3u8\"");

    let lines: Vec<_> = master.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("#EXT-X-STREAM-INF:"))
        .unwrap();
    let inf = lines[i];
    assert_eq!(lines[i + 1], "360p/index.m3u8");
    let (v, a) = (&p.video[0].track, &p.audio[0].track);
    let bandwidth: u64 = attr(inf, "BANDWIDTH").parse().unwrap();
    let average: u64 = attr(inf, "AVERAGE-BANDWIDTH").parse().unwrap();
    assert!(bandwidth >= average && average > 0, "{inf}");
    assert_eq!(bandwidth, v.peak_bandwidth() + a.peak_bandwidth());
    // Peak: the largest segment's bits per second, by hand.
    let peak = v
        .segments
        .iter()
        .map(|s| s.bytes as f64 * 8.0 / (s.duration as f64 / 30000.0))
        .fold(0.0, f64::max);
    assert!((v.peak_bandwidth() as f64 - peak).abs() <= 1.0);
    assert_eq!(attr(inf, "CODECS"), format!("{},mp4a.40.2", v.codec));
    assert_eq!(attr(inf, "RESOLUTION"), "640x360");
    assert_eq!(attr(inf, "FRAME-RATE"), "29.970");
    assert_eq!(attr(inf, "AUDIO"), "audio-mp4a.40.2");
    assert_eq!(attr(inf, "SUBTITLES"), "subs");
    let iframe = lines
        .iter()
        .find(|l| l.starts_with("#EXT-X-I-FRAME-STREAM-INF:"))
        .unwrap();
    assert_eq!(attr(iframe, "URI"), "360p/iframes.m3u8");
    assert_eq!(attr(iframe, "CODECS"), v.codec);

    check_media_playlist(file(&files, "360p/index.m3u8"), v.duration_seconds());
    check_media_playlist(file(&files, "audio-en/index.m3u8"), a.duration_seconds());
    let iframes = file(&files, "360p/iframes.m3u8");
    assert!(iframes.contains("#EXT-X-I-FRAMES-ONLY\n"));
    check_media_playlist(iframes, v.duration_seconds());
    let ranges: Vec<_> = iframes
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-BYTERANGE:"))
        .collect();
    let want: Vec<_> = v
        .segments
        .iter()
        .map(|s| format!("{}@{}", s.iframe.1, s.iframe.0))
        .collect();
    assert_eq!(ranges, want);
    assert!(file(&files, "subs/en-0.m3u8").contains("\nen-0.vtt\n"));
}

/// Tag balance, attribute quoting and entity syntax: enough to know an XML
/// parser would accept the text.
fn well_formed(xml: &str) -> Result<(), String> {
    let body = xml
        .strip_prefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n")
        .ok_or("no XML declaration")?;
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = body;
    while let Some(lt) = rest.find('<') {
        check_text(&rest[..lt])?;
        let gt = rest[lt..].find('>').ok_or("unclosed tag")? + lt;
        let tag = &rest[lt + 1..gt];
        rest = &rest[gt + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            if stack.pop() != Some(name) {
                return Err(format!("</{name}> closes the wrong element"));
            }
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let (name, mut attrs) = tag.split_once(' ').unwrap_or((tag, ""));
        while !attrs.trim().is_empty() {
            let (key, after) = attrs
                .trim_start()
                .split_once("=\"")
                .ok_or(format!("bad attribute in <{tag}>"))?;
            if key.is_empty() || key.contains(|c: char| c.is_whitespace() || c == '"') {
                return Err(format!("bad attribute name {key:?}"));
            }
            let end = after.find('"').ok_or("unterminated attribute")?;
            check_text(&after[..end])?;
            attrs = &after[end + 1..];
        }
        if !self_closing {
            stack.push(name);
        }
    }
    check_text(rest)?;
    if stack.is_empty() {
        Ok(())
    } else {
        Err(format!("unclosed {stack:?}"))
    }
}

fn check_text(t: &str) -> Result<(), String> {
    if t.contains('<') || t.contains('>') {
        return Err(format!("raw angle bracket in {t:?}"));
    }
    for (i, _) in t.match_indices('&') {
        let entity = &t[i..t[i..].find(';').map_or(t.len(), |e| i + e + 1)];
        if ![
            "&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#10;", "&#13;", "&#9;",
        ]
        .contains(&entity)
        {
            return Err(format!("bad entity {entity:?}"));
        }
    }
    Ok(())
}

#[test]
fn dash_mpd_is_well_formed_and_its_timeline_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let p = presentation(dir.path());
    let mpd = dash(&p);
    well_formed(&mpd).unwrap_or_else(|e| panic!("{e}\n{mpd}"));
    assert!(
        mpd.contains("profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\""),
        "{mpd}"
    );
    assert!(mpd.contains(&format!(
        "mediaPresentationDuration=\"PT{:.3}S\"",
        p.duration_seconds
    )));
    assert!(mpd.contains(
        "contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\""
    ));
    let v = &p.video[0].track;
    assert!(mpd.contains(&format!(
        "<Representation id=\"360p\" bandwidth=\"{}\" codecs=\"{}\" width=\"640\" height=\"360\" frameRate=\"30000/1001\"",
        v.peak_bandwidth(),
        v.codec
    )));
    assert!(mpd.contains("initialization=\"360p/init.mp4\" media=\"360p/seg-$Number%05d$.m4s\""));
    assert!(mpd.contains("contentType=\"audio\" mimeType=\"audio/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" lang=\"en\""));
    assert!(mpd.contains("<AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"2\"/>"));
    assert!(mpd.contains("mimeType=\"text/vtt\" lang=\"en\""));
    assert!(mpd.contains("<BaseURL>subs/en-0.vtt</BaseURL>"));

    // Each timeline, expanded, is the track's segments exactly.
    let tracks = [v, &p.audio[0].track];
    let timelines: Vec<&str> = mpd
        .split("<SegmentTimeline>")
        .skip(1)
        .map(|t| &t[..t.find("</SegmentTimeline>").unwrap()])
        .collect();
    assert_eq!(timelines.len(), 2);
    for (tl, track) in timelines.iter().zip(tracks) {
        let mut expanded = Vec::new();
        let mut t = 0u64;
        for s in tl.split("<S ").skip(1) {
            let num = |k: &str| {
                s.split(&format!("{k}=\""))
                    .nth(1)
                    .map(|r| r[..r.find('"').unwrap()].parse::<u64>().unwrap())
            };
            if let Some(start) = num("t") {
                t = start;
            }
            let d = num("d").unwrap();
            for _ in 0..=num("r").unwrap_or(0) {
                expanded.push((t, d));
                t += d;
            }
        }
        let want: Vec<_> = track
            .segments
            .iter()
            .map(|s| (s.start, s.duration))
            .collect();
        assert_eq!(expanded, want);
    }
}

#[test]
fn names_with_quotes_and_line_breaks_are_refused_or_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = presentation(dir.path());
    p.audio[0].name = "Director's \"cut\"\n#EXT-X-ENDLIST <&>".into();
    let e = p.validate().unwrap_err().to_string();
    assert!(e.contains("double quote or a control character"), "{e}");
    let master = hls(&p).remove(0).1;
    let line = master
        .lines()
        .find(|l| l.starts_with("#EXT-X-MEDIA:TYPE=AUDIO"))
        .unwrap();
    assert!(
        line.contains("NAME=\"Director's 'cut' #EXT-X-ENDLIST <&>\","),
        "{line}"
    );
    assert!(!master.lines().any(|l| l == "#EXT-X-ENDLIST"));
    let mpd = dash(&p);
    well_formed(&mpd).unwrap_or_else(|e| panic!("{e}\n{mpd}"));
    assert!(
        mpd.contains(
            "<Label>Director&apos;s &quot;cut&quot;&#10;#EXT-X-ENDLIST &lt;&amp;&gt;</Label>"
        ),
        "{mpd}"
    );

    let mut q = presentation(dir.path());
    q.video[0].dir = "../escape".into();
    assert!(q
        .validate()
        .unwrap_err()
        .to_string()
        .contains("stay inside the output folder"));
    q.video[0].dir = "360p".into();
    q.subtitles[0].language = Some("en\",x".into());
    assert!(q
        .validate()
        .unwrap_err()
        .to_string()
        .contains("not a BCP 47 tag"));
    // The checker itself rejects what it should.
    assert!(well_formed("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a b=\"<\"/>").is_err());
    assert!(well_formed("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<a><b></a></b>").is_err());
}
