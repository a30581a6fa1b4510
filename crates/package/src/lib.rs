//! `tessera-package`: CMAF segmenting and HLS/DASH manifests for an ABR
//! ladder, in pure Rust file and byte work (no ffmpeg).
//!
//! Each rendition arrives as one fragmented MP4 with one track, as ffmpeg
//! writes with `-movflags +frag_keyframe+empty_moov+default_base_moof+cmaf`
//! (video: a fragment per keyframe) or `-frag_duration` (audio).
//! [`split_fmp4`] cuts it into `init.mp4` and `seg-00001.m4s`, ... on
//! fragment boundaries, checking that every video segment starts on a sync
//! sample and holds exactly the frames asked for, and returns a [`Track`]:
//! timescale, the RFC 6381 codec string read from the bitstream's
//! configuration box, and each segment's decode time, duration, size and
//! the byte range of its first (key) frame.
//!
//! The manifests are pure functions of a [`Presentation`] (the tracks plus
//! names, languages and subtitle files): [`hls`] returns the master playlist,
//! media playlists and I-frame playlists; [`dash`] returns a static MPD
//! addressing the same segment files with a `SegmentTimeline`.
//!
//! The input is treated as hostile: every box size, sample count and offset
//! is checked, and a bad file gives a one-line [`PackageError`] naming the
//! file and byte offset.
//!
//! ```
//! use tessera_package::{hls, Media, Presentation, Segment, Track, VideoRendition};
//! let seg = |i: u64| Segment { file: format!("seg-{:05}.m4s", i + 1), start: i * 60060,
//!     duration: 60060, samples: 60, bytes: 250_000, iframe: (24, 30_000) };
//! let track = Track { timescale: 30000, codec: "avc1.64001e".into(),
//!     media: Media::Video { width: 640, height: 360 }, init: "init.mp4".into(),
//!     segments: (0..3).map(seg).collect() };
//! let p = Presentation { duration_seconds: 6.006, audio: vec![], subtitles: vec![],
//!     video: vec![VideoRendition { dir: "360p".into(), track, frame_rate: (30000, 1001) }] };
//! let files = hls(&p);
//! assert!(files[0].1.contains("RESOLUTION=640x360,FRAME-RATE=29.970"));
//! ```

mod boxes;
mod codecs;
mod dash;
mod error;
mod fragment;
mod hls;
mod init;
mod merge;
mod scan;
mod split;

pub use dash::dash;
pub use error::PackageError;
pub use hls::hls;
pub use split::{split_fmp4, MAX_SEGMENTS};

use serde::{Deserialize, Serialize};

/// Where to cut a rendition into segments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Cuts {
    /// Video: the exact sample (frame) count of each segment, in order.
    Samples(Vec<u32>),
    /// Audio: each segment's start, in seconds from the track's first sample.
    Seconds(Vec<f64>),
}

/// One packaged track: its init segment and media segments, relative to the
/// rendition's folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Track {
    /// Ticks per second of every time below.
    pub timescale: u32,
    /// RFC 6381 codec string read from the sample entry (`avc1.64001e`).
    pub codec: String,
    pub media: Media,
    /// File name of the init segment (`init.mp4`).
    pub init: String,
    pub segments: Vec<Segment>,
}

/// The kind of a track and what a manifest says about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Media {
    Video { width: u32, height: u32 },
    Audio { channels: u32, sample_rate: u32 },
}

/// One media segment file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Segment {
    /// File name (`seg-00001.m4s`).
    pub file: String,
    /// Decode time of its first sample (tfdt), in timescale ticks.
    pub start: u64,
    /// Sum of its sample durations, in timescale ticks.
    pub duration: u64,
    pub samples: u32,
    /// Size of the file.
    pub bytes: u64,
    /// Byte offset and length within the file of its first moof, mdat
    /// header and first sample: the I-frame an I-frame playlist points at.
    pub iframe: (u64, u64),
}

/// Everything the manifests describe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Presentation {
    pub duration_seconds: f64,
    pub video: Vec<VideoRendition>,
    pub audio: Vec<AudioRendition>,
    pub subtitles: Vec<SubtitleRendition>,
}

/// A video rendition: its folder (`720p`), holding `track`'s files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRendition {
    pub dir: String,
    pub track: Track,
    /// Frames per second as a fraction (`(30000, 1001)`).
    pub frame_rate: (u32, u32),
}

/// An audio rendition: its folder, holding `track`'s files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AudioRendition {
    pub dir: String,
    pub track: Track,
    /// Shown to viewers (`English`).
    pub name: String,
    /// BCP 47 tag (`en`, `pt-BR`).
    pub language: Option<String>,
    pub default: bool,
}

/// A WebVTT subtitle file, relative to the output folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtitleRendition {
    /// `subs/en-0.vtt`; its HLS playlist is written beside it
    /// (`subs/en-0.m3u8`).
    pub file: String,
    pub name: String,
    pub language: Option<String>,
    pub default: bool,
    pub forced: bool,
}

impl Track {
    /// Total duration in seconds (sum of the segments' durations).
    pub fn duration_seconds(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum::<u64>() as f64
            / f64::from(self.timescale.max(1))
    }

    /// Peak bit rate: the largest segment's bits per second.
    pub fn peak_bandwidth(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| bits_per_second(s.bytes, s.duration, self.timescale))
            .max()
            .unwrap_or(0)
    }

    /// Average bit rate over all segments.
    pub fn average_bandwidth(&self) -> u64 {
        let bytes = self.segments.iter().map(|s| s.bytes).sum();
        let ticks = self.segments.iter().map(|s| s.duration).sum();
        bits_per_second(bytes, ticks, self.timescale)
    }
}

/// `bytes` over `ticks` at `timescale`, rounded up (0 for a zero duration).
pub(crate) fn bits_per_second(bytes: u64, ticks: u64, timescale: u32) -> u64 {
    if ticks == 0 {
        return 0;
    }
    let bits = u128::from(bytes) * 8 * u128::from(timescale);
    u64::try_from(bits.div_ceil(u128::from(ticks))).unwrap_or(u64::MAX)
}

impl Presentation {
    /// Refuses what no manifest can carry safely: names or languages with
    /// quotes, commas in languages, control characters; folders and files
    /// that are absolute, climb out with `..`, or hold characters that
    /// would need URL escaping; renditions without segments.
    pub fn validate(&self) -> Result<(), PackageError> {
        let bad = |what: String| Err(PackageError::Invalid(what));
        for v in &self.video {
            check_path(&v.dir)?;
            check_track(&v.dir, &v.track)?;
            if v.frame_rate.0 == 0 || v.frame_rate.1 == 0 {
                return bad(format!(
                    "video '{}' has frame rate {}/{}",
                    v.dir, v.frame_rate.0, v.frame_rate.1
                ));
            }
        }
        for a in &self.audio {
            check_path(&a.dir)?;
            check_track(&a.dir, &a.track)?;
            check_text(&a.name)?;
            check_language(a.language.as_deref())?;
        }
        for s in &self.subtitles {
            check_path(&s.file)?;
            if !s.file.ends_with(".vtt") {
                return bad(format!("subtitle file {:?} does not end in .vtt", s.file));
            }
            check_text(&s.name)?;
            check_language(s.language.as_deref())?;
        }
        if !(self.duration_seconds.is_finite() && self.duration_seconds > 0.0) {
            return bad(format!("duration {} s", self.duration_seconds));
        }
        Ok(())
    }
}

fn check_path(p: &str) -> Result<(), PackageError> {
    let ok = !p.is_empty()
        && !p.starts_with('/')
        && p.split('/').all(|c| !c.is_empty() && c != "." && c != "..")
        && p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c));
    if ok {
        Ok(())
    } else {
        Err(PackageError::Invalid(format!(
            "path {p:?} must be relative, stay inside the output folder and use only letters, digits, '-', '_', '.' and '/'"
        )))
    }
}

fn check_text(s: &str) -> Result<(), PackageError> {
    if s.is_empty() || s.chars().any(|c| c == '"' || c.is_control()) {
        return Err(PackageError::Invalid(format!(
            "name {s:?} is empty or holds a double quote or a control character (line break, tab), which HLS attributes cannot carry"
        )));
    }
    Ok(())
}

fn check_language(l: Option<&str>) -> Result<(), PackageError> {
    match l {
        Some(l)
            if l.is_empty()
                || l.len() > 35
                || !l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Err(PackageError::Invalid(format!(
                "language {l:?} is not a BCP 47 tag (letters, digits and '-')"
            )))
        }
        _ => Ok(()),
    }
}

fn check_track(dir: &str, t: &Track) -> Result<(), PackageError> {
    if t.segments.is_empty() || t.timescale == 0 {
        return Err(PackageError::Invalid(format!(
            "rendition '{dir}' has no segments or a zero timescale"
        )));
    }
    check_path(&t.init)?;
    t.segments.iter().try_for_each(|s| check_path(&s.file))
}

/// Text for a quoted HLS attribute: double quotes and control characters
/// (which the format cannot carry) become `'` and space. [`Presentation::validate`]
/// refuses them instead, for callers that would rather know.
pub(crate) fn hls_quoted(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '"' => '\'',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect()
}

/// Text for an XML attribute or element.
pub(crate) fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\t' => out.push_str("&#9;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}
