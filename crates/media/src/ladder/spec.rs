//! The ladder a user asks for, and the renditions it gives for one source.

use super::plan::Rendition;
use super::{DEFAULT_SEGMENT_SECONDS, MAX_RUNGS, SEGMENT_SECONDS};
use crate::error::{MediaError, Result};
use crate::probe::StreamInfo;
use crate::request::{Codec, EncodeSettings};
use crate::thumbs::even;
use serde::{Deserialize, Deserializer, Serialize};

/// What `--ladder` asks for: `rungs: None` is the default ladder for the
/// source's size ([`DEFAULT_RUNGS`], never upscaling).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LadderRequest {
    #[serde(default)]
    pub rungs: Option<Vec<Rung>>,
    #[serde(default = "default_segment")]
    pub segment_seconds: f64,
    /// AAC bitrate of each audio track, kbit/s.
    #[serde(default = "default_audio")]
    pub audio_kbps: u32,
}

fn default_segment() -> f64 {
    DEFAULT_SEGMENT_SECONDS
}

fn default_audio() -> u32 {
    128
}

impl LadderRequest {
    /// The default ladder with the default segment length.
    pub fn default_ladder() -> Self {
        Self {
            rungs: None,
            segment_seconds: DEFAULT_SEGMENT_SECONDS,
            audio_kbps: default_audio(),
        }
    }

    /// Checks everything that does not need the source.
    pub fn validate(&self) -> Result<()> {
        let (lo, hi) = SEGMENT_SECONDS;
        if !(self.segment_seconds.is_finite() && (lo..=hi).contains(&self.segment_seconds)) {
            return Err(bad(format!(
                "segment length {} s is out of range; use {lo} to {hi} seconds",
                self.segment_seconds
            )));
        }
        if !(32..=512).contains(&self.audio_kbps) {
            return Err(bad(format!(
                "audio bitrate {} kbit/s is out of range; use 32 to 512",
                self.audio_kbps
            )));
        }
        let Some(rungs) = &self.rungs else {
            return Ok(());
        };
        if rungs.is_empty() || rungs.len() > MAX_RUNGS {
            return Err(bad(format!(
                "a ladder has 1 to {MAX_RUNGS} rungs; this one has {}",
                rungs.len()
            )));
        }
        for (i, r) in rungs.iter().enumerate() {
            r.validate()?;
            if rungs[..i].iter().any(|o| o.name == r.name) {
                return Err(bad(format!(
                    "two rungs are named {:?}; give each its own name",
                    r.name
                )));
            }
        }
        Ok(())
    }
}

fn bad(msg: String) -> MediaError {
    MediaError::BadRequest(msg)
}

/// One rung as the user writes it (YAML or JSON):
/// `{name: 720p, height: 720, codec: x264, crf: 23, maxrate: 3000k}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rung {
    pub name: String,
    pub height: u32,
    /// Default: from the source's display aspect ratio, rounded to even.
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default = "x264")]
    pub codec: Codec,
    #[serde(default)]
    pub crf: Option<u32>,
    #[serde(default)]
    pub preset: Option<String>,
    /// Peak rate cap, kbit/s (`3000`, `"3000k"`, `"3M"`).
    #[serde(default, deserialize_with = "kbps", rename = "maxrate")]
    pub maxrate_kbps: Option<u32>,
    /// The rate cap's buffer, kbit/s; default twice `maxrate`.
    #[serde(default, deserialize_with = "kbps", rename = "bufsize")]
    pub bufsize_kbps: Option<u32>,
}

fn x264() -> Codec {
    Codec::X264
}

/// Reads a bitrate in kbit/s: a number, or a string with `k` or `M`.
fn kbps<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        N(u32),
        S(String),
    }
    let parse = |s: &str| -> Option<u32> {
        let s = s.trim();
        let (digits, scale) = match s.as_bytes().last()? {
            b'k' | b'K' => (&s[..s.len() - 1], 1.0),
            b'M' | b'm' => (&s[..s.len() - 1], 1000.0),
            _ => (s, 1.0),
        };
        let v: f64 = digits.trim().parse().ok()?;
        (v.is_finite() && v > 0.0 && v * scale <= 1_000_000.0).then(|| (v * scale).round() as u32)
    };
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::N(n)) => Ok(Some(n)),
        Some(Raw::S(s)) => parse(&s).map(Some).ok_or_else(|| {
            serde::de::Error::custom(format!(
                "bitrate {:?} is not a rate; write kbit/s like 3000, \"3000k\" or \"3M\"",
                s.chars().take(20).collect::<String>()
            ))
        }),
    }
}

/// The codecs a ladder rung may use: those whose encoder puts an IDR frame
/// exactly where Tessera asks (segment starts) in ffmpeg 5.1, and that
/// CMAF carries and browsers play.
pub const LADDER_CODECS: [Codec; 3] = [Codec::X264, Codec::X265, Codec::Vp9];

impl Rung {
    fn validate(&self) -> Result<()> {
        let n = &self.name;
        let ok_name = !n.is_empty()
            && n.len() <= 32
            && n.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            && !n.starts_with('_');
        if !ok_name {
            return Err(bad(format!(
                "rung name {:?} is not usable as a folder name; use 1 to 32 lowercase letters, digits or _ (like 720p)",
                n.chars().take(40).collect::<String>()
            )));
        }
        if !(16..=4320).contains(&self.height)
            || self.width.is_some_and(|w| !(16..=7680).contains(&w))
        {
            return Err(bad(format!(
                "rung {n}: size out of range; heights run from 16 to 4320, widths from 16 to 7680"
            )));
        }
        if !LADDER_CODECS.contains(&self.codec) {
            return Err(bad(format!(
                "rung {n}: {} cannot be a ladder rung (ffmpeg 5.1 cannot place its keyframes on segment starts, or browsers cannot play it from CMAF); use x264, x265 or vp9",
                self.codec
            )));
        }
        for (what, v) in [
            ("maxrate", self.maxrate_kbps),
            ("bufsize", self.bufsize_kbps),
        ] {
            if v.is_some_and(|v| !(50..=1_000_000).contains(&v)) {
                return Err(bad(format!(
                    "rung {n}: {what} must be 50 to 1000000 kbit/s"
                )));
            }
        }
        self.settings().validate()
    }

    fn settings(&self) -> EncodeSettings {
        let mut s = EncodeSettings::new(self.codec);
        s.crf = self.crf;
        s.preset = self.preset.clone();
        s
    }
}

/// The default H.264 ladder: (name, height, crf, maxrate kbit/s). Capped
/// CRF: quality-driven, with a peak cap per rung for players' bandwidth
/// estimates. Rungs taller than the source are dropped; a source between
/// rungs gets a top rung at its own height.
pub const DEFAULT_RUNGS: [(&str, u32, u32, u32); 5] = [
    ("1080p", 1080, 23, 6000),
    ("720p", 720, 23, 3000),
    ("480p", 480, 23, 1200),
    ("360p", 360, 24, 700),
    ("240p", 240, 25, 350),
];

/// The renditions `ladder` gives for a source whose video is `video`, tallest
/// first, and the names of the user's rungs skipped because they would
/// upscale.
pub fn resolve(
    ladder: &LadderRequest,
    video: &StreamInfo,
    preset: Option<&str>,
) -> Result<(Vec<Rendition>, Vec<String>)> {
    ladder.validate()?;
    let (dw, dh) = crate::thumbs::display_size(video)
        .map_or((0, 0), |(w, h)| (w.round() as u32, h.round() as u32));
    if dw < 16 || dh < 16 {
        return Err(MediaError::Unsupported(format!(
            "the video is {dw}x{dh}; a ladder needs at least 16x16"
        )));
    }
    let aspect = f64::from(dw) / f64::from(dh);
    // The default ladder's sizes name the short side ("1080p" is 1080x1920
    // for a portrait video); a user's rungs say their height.
    let portrait = ladder.rungs.is_none() && dh > dw;
    let rungs: Vec<Rung> = match &ladder.rungs {
        Some(r) => r.clone(),
        None => default_rungs(dh.min(dw), preset),
    };
    let mut skipped = Vec::new();
    let mut out = Vec::new();
    for mut r in rungs {
        if portrait {
            r.width = Some(r.height);
            r.height = even(f64::from(r.height) / aspect);
        }
        if r.height > dh {
            skipped.push(r.name.clone());
            continue;
        }
        let width = r
            .width
            .unwrap_or_else(|| even(f64::from(r.height) * aspect));
        let maxrate = r.maxrate_kbps;
        out.push(Rendition {
            name: r.name.clone(),
            width,
            height: r.height,
            settings: r.settings(),
            maxrate_kbps: maxrate,
            bufsize_kbps: r.bufsize_kbps.or(maxrate.map(|m| m.saturating_mul(2))),
        });
    }
    if out.is_empty() {
        return Err(MediaError::Unsupported(format!(
            "every rung is taller than the video ({dw}x{dh}) and Tessera does not upscale; add a rung of at most {dh} lines"
        )));
    }
    out.sort_by(|a, b| b.height.cmp(&a.height).then(b.width.cmp(&a.width)));
    Ok((out, skipped))
}

fn default_rungs(source_height: u32, preset: Option<&str>) -> Vec<Rung> {
    let rung = |name: String, height: u32, crf: u32, maxrate: u32| Rung {
        name,
        height,
        width: None,
        codec: Codec::X264,
        crf: Some(crf),
        preset: preset.map(str::to_string),
        maxrate_kbps: Some(maxrate),
        bufsize_kbps: None,
    };
    let mut rungs: Vec<Rung> = DEFAULT_RUNGS
        .iter()
        .filter(|(_, h, _, _)| *h <= source_height)
        .map(|(n, h, c, m)| rung(n.to_string(), *h, *c, *m))
        .collect();
    let top = source_height - source_height % 2;
    if rungs.first().is_none_or(|r| r.height < top) && top <= 1080 {
        // The source's own height, capped like the rung above it.
        let (_, _, crf, maxrate) = DEFAULT_RUNGS
            .iter()
            .rev()
            .find(|(_, h, _, _)| *h >= top)
            .copied()
            .unwrap_or(DEFAULT_RUNGS[0]);
        rungs.insert(0, rung(format!("{top}p"), top, crf, maxrate));
    }
    rungs
}

/// Reads a ladder file (YAML, or JSON which YAML reads too), bounded.
pub fn parse_ladder_file(text: &str) -> Result<LadderRequest> {
    if text.len() > 64 * 1024 {
        return Err(bad(
            "the ladder file is over 64 KiB; a ladder is a few lines".into(),
        ));
    }
    let ladder: LadderRequest = serde_yaml::from_str(text)
        .map_err(|e| bad(format!("the ladder file is not a ladder: {e}")))?;
    if ladder.rungs.is_none() {
        return Err(bad(
            "the ladder file names no rungs; list them under `rungs:` (or use --ladder default)"
                .into(),
        ));
    }
    ladder.validate()?;
    Ok(ladder)
}
