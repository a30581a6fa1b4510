//! What the user asked for: the `EncodeRequest` the CLI writes to
//! `<workdir>/request.json`, and its up-front validation.

use crate::error::{MediaError, Result};
use crate::probe::check_input_file;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A video encoder Tessera knows how to drive.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Codec {
    X264,
    X265,
    SvtAv1,
    Vp9,
    Ffv1,
}

impl Codec {
    pub const ALL: [Codec; 5] = [
        Codec::X264,
        Codec::X265,
        Codec::SvtAv1,
        Codec::Vp9,
        Codec::Ffv1,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Codec::X264 => "x264",
            Codec::X265 => "x265",
            Codec::SvtAv1 => "svt-av1",
            Codec::Vp9 => "vp9",
            Codec::Ffv1 => "ffv1",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Codec {
    type Err = MediaError;
    fn from_str(s: &str) -> Result<Self> {
        Codec::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                MediaError::BadRequest(format!(
                    "unknown codec {s:?}; use one of x264, x265, svt-av1, vp9, ffv1"
                ))
            })
    }
}

/// The output container, chosen by the output file's extension.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Container {
    Mp4,
    Mov,
    Mkv,
    Webm,
}

impl Container {
    pub fn from_path(path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "mp4" | "m4v" => Ok(Container::Mp4),
            "mov" => Ok(Container::Mov),
            "mkv" => Ok(Container::Mkv),
            "webm" => Ok(Container::Webm),
            _ => Err(MediaError::Unsupported(format!(
                "{}: output extension {ext:?} is not supported; use .mp4, .mov, .mkv or .webm",
                path.display()
            ))),
        }
    }

    /// The name ffmpeg's `-f` knows it by.
    pub fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4",
            Container::Mov => "mov",
            Container::Mkv => "matroska",
            Container::Webm => "webm",
        }
    }

    pub fn supports(self, codec: Codec) -> bool {
        match self {
            Container::Mkv => true,
            Container::Mp4 | Container::Mov => codec != Codec::Ffv1,
            Container::Webm => matches!(codec, Codec::Vp9 | Codec::SvtAv1),
        }
    }

    /// Whether an audio codec can be stream-copied into this container.
    pub fn accepts_audio(self, codec: &str) -> bool {
        match self {
            Container::Mkv => true,
            Container::Mp4 | Container::Mov => {
                matches!(codec, "aac" | "mp3" | "ac3" | "eac3" | "alac" | "opus")
            }
            Container::Webm => matches!(codec, "opus" | "vorbis"),
        }
    }

    /// The encoder to use for audio this container cannot take as is.
    pub fn audio_encoder(self) -> &'static str {
        match self {
            Container::Webm => "libopus",
            _ => "aac",
        }
    }
}

/// How each chunk is encoded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeSettings {
    pub codec: Codec,
    #[serde(default)]
    pub crf: Option<u32>,
    #[serde(default)]
    pub preset: Option<String>,
    #[serde(default = "one")]
    pub threads_per_chunk: u32,
}

fn one() -> u32 {
    1
}

/// The presets x264 and x265 know, fastest first.
pub const X26X_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];

/// What a codec accepts as `preset` (see [`EncodeSettings::validate`]).
enum Presets {
    Words(&'static [&'static str]),
    /// An integer in this range (svt-av1's `-preset`, vp9's `-cpu-used`).
    Range(i32, i32),
    None,
}

impl Codec {
    /// The CRF values the encoder accepts (`None`: it takes none).
    pub fn crf_range(self) -> Option<(u32, u32)> {
        match self {
            Codec::X264 | Codec::X265 => Some((0, 51)),
            // ffmpeg's libsvtav1 and libvpx-vp9 wrappers: -crf 0..63.
            Codec::SvtAv1 | Codec::Vp9 => Some((0, 63)),
            Codec::Ffv1 => None,
        }
    }

    fn presets(self) -> Presets {
        match self {
            Codec::X264 | Codec::X265 => Presets::Words(&X26X_PRESETS),
            // libsvtav1 -preset -1..13 (-1: the library's default), so 0..13.
            Codec::SvtAv1 => Presets::Range(0, 13),
            // libvpx-vp9 -cpu-used -8..8.
            Codec::Vp9 => Presets::Range(-8, 8),
            Codec::Ffv1 => Presets::None,
        }
    }
}

impl EncodeSettings {
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            crf: None,
            preset: None,
            threads_per_chunk: 1,
        }
    }

    /// Checks `crf` and `preset` against what the codec's encoder accepts
    /// (they reach ffmpeg's argv as they are), naming what is accepted.
    /// Every path to an encode checks it: `tessera encode`, the HTTP encode
    /// route, and each op that reads a request.
    pub fn validate(&self) -> Result<()> {
        let codec = self.codec;
        if let Some(crf) = self.crf {
            match codec.crf_range() {
                Some((lo, hi)) if (lo..=hi).contains(&crf) => {}
                Some((lo, hi)) => {
                    return Err(MediaError::BadRequest(format!(
                        "crf {crf} is out of range for {codec}; use {lo} to {hi} (lower is better)"
                    )))
                }
                None => {
                    return Err(MediaError::BadRequest(format!(
                        "{codec} is lossless and takes no crf; leave crf out"
                    )))
                }
            }
        }
        let Some(preset) = self.preset.as_deref() else {
            return Ok(());
        };
        let shown: String = preset.chars().take(40).collect();
        match codec.presets() {
            Presets::Words(words) if words.contains(&preset) => Ok(()),
            Presets::Words(words) => Err(MediaError::BadRequest(format!(
                "preset {shown:?} is not a {codec} preset; use one of {}",
                words.join(", ")
            ))),
            Presets::Range(lo, hi) => {
                let canonical = preset == "0"
                    || preset
                        .strip_prefix('-')
                        .unwrap_or(preset)
                        .bytes()
                        .enumerate()
                        .all(|(i, b)| b.is_ascii_digit() && (i > 0 || b != b'0'));
                match preset.parse::<i32>() {
                    Ok(n) if canonical && (lo..=hi).contains(&n) => Ok(()),
                    _ => Err(MediaError::BadRequest(format!(
                        "preset {shown:?} is not a {codec} preset; use a whole number from {lo} \
                         (slowest) to {hi} (fastest)"
                    ))),
                }
            }
            Presets::None => Err(MediaError::BadRequest(format!(
                "{codec} takes no preset; leave preset out"
            ))),
        }
    }
}

/// One encode job: the CLI writes it to `<workdir>/request.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EncodeRequest {
    /// Absolute path of the source.
    pub input: PathBuf,
    /// Absolute path of the result.
    pub output: PathBuf,
    pub settings: EncodeSettings,
    pub chunk_seconds: f64,
    /// Chunk encodes that run at once.
    pub slots: u32,
    /// An ABR ladder instead of one file: `output` is then a folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<crate::ladder::LadderRequest>,
    /// Search each chunk's CRF for this VMAF (see [`crate::target`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target_vmaf: Option<f64>,
}

impl EncodeRequest {
    pub fn container(&self) -> Result<Container> {
        Container::from_path(&self.output)
    }

    /// Checks what can be checked without ffprobe: paths, container/codec,
    /// numbers. Stream-level checks (bitmap subtitles into mp4) happen at plan time.
    pub fn validate(&self) -> Result<()> {
        self.settings.validate()?;
        check_input_file(&self.input)?;
        if let Some(t) = self.target_vmaf {
            if self.ladder.is_some() {
                return Err(MediaError::BadRequest(
                    "a target VMAF applies to a single-file encode; a ladder's rungs set their own crf".into(),
                ));
            }
            crate::target::check_target(t, self.settings.codec)?;
        }
        if let Some(ladder) = &self.ladder {
            ladder.validate()?;
            self.check_numbers()?;
            return check_ladder_output(&self.output);
        }
        let container = self.container()?;
        if !container.supports(self.settings.codec) {
            let fits: Vec<&str> = [
                Container::Mp4,
                Container::Mov,
                Container::Mkv,
                Container::Webm,
            ]
            .into_iter()
            .filter(|c| c.supports(self.settings.codec))
            .map(|c| {
                if c == Container::Mkv {
                    "mkv"
                } else {
                    c.muxer()
                }
            })
            .collect();
            // No path in it: a server's encode would show the server's own.
            return Err(MediaError::Unsupported(format!(
                "the output's container ({}) cannot hold {} video; use {}",
                container.muxer(),
                self.settings.codec,
                fits.join(" or ")
            )));
        }
        self.check_numbers()?;
        check_output_dir(&self.output)
    }

    fn check_numbers(&self) -> Result<()> {
        if !(self.chunk_seconds.is_finite() && self.chunk_seconds > 0.0) {
            return Err(MediaError::BadRequest(format!(
                "chunk length must be > 0 s, got {}",
                self.chunk_seconds
            )));
        }
        if self.slots == 0 || self.settings.threads_per_chunk == 0 {
            return Err(MediaError::BadRequest(
                "slots and threads per chunk must be at least 1".into(),
            ));
        }
        if self.input == self.output {
            return Err(MediaError::BadRequest(format!(
                "{}: output would overwrite the input",
                self.output.display()
            )));
        }
        Ok(())
    }
}

/// A ladder's output folder: its parent must be a writable folder, and the
/// folder itself absent, empty, or a ladder Tessera published (which the
/// new one replaces).
fn check_ladder_output(output: &Path) -> Result<()> {
    check_output_dir(output)?;
    match std::fs::symlink_metadata(output) {
        Err(_) => Ok(()),
        Ok(m) if m.is_dir() => {
            let mut entries =
                std::fs::read_dir(output).map_err(|e| MediaError::io_at(output, "reading", e))?;
            if entries.next().is_none() || output.join(crate::ladder::LADDER_REPORT).is_file() {
                Ok(())
            } else {
                Err(MediaError::OutputDir {
                    path: output.into(),
                    detail: "it holds files that are not a Tessera ladder; choose an empty or new folder".into(),
                })
            }
        }
        Ok(_) => Err(MediaError::OutputDir {
            path: output.into(),
            detail: "it is a file, and a ladder is written into a folder; choose a folder name"
                .into(),
        }),
    }
}

fn check_output_dir(output: &Path) -> Result<()> {
    let dir = match output.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let bad = |detail: String| MediaError::OutputDir {
        path: dir.into(),
        detail,
    };
    match std::fs::metadata(dir) {
        Err(_) => return Err(bad("it does not exist; create it first".into())),
        Ok(m) if !m.is_dir() => return Err(bad("not a directory".into())),
        Ok(_) => {}
    }
    let probe = dir.join(format!(".tessera-write-test-{}", std::process::id()));
    std::fs::write(&probe, b"").map_err(|e| bad(format!("cannot write there: {e}")))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codecs_round_trip_through_strings() {
        for c in Codec::ALL {
            assert_eq!(c.as_str().parse::<Codec>().unwrap(), c);
        }
        assert!("h264".parse::<Codec>().unwrap_err().is_user_error());
    }

    #[test]
    fn presets_and_crf_are_what_each_encoder_accepts() {
        let check = |codec, crf: Option<u32>, preset: Option<&str>| {
            let mut s = EncodeSettings::new(codec);
            s.crf = crf;
            s.preset = preset.map(str::to_string);
            s.validate().map_err(|e| e.to_string())
        };
        let ok = [
            (Codec::X264, Some(0), Some("ultrafast")),
            (Codec::X264, Some(51), Some("placebo")),
            (Codec::X265, Some(28), Some("medium")),
            (Codec::SvtAv1, Some(63), Some("0")),
            (Codec::SvtAv1, Some(0), Some("13")),
            (Codec::Vp9, Some(63), Some("-8")),
            (Codec::Vp9, None, Some("8")),
            (Codec::Ffv1, None, None),
        ];
        for (codec, crf, preset) in ok {
            assert_eq!(
                check(codec, crf, preset),
                Ok(()),
                "{codec} {crf:?} {preset:?}"
            );
        }
        let refused = [
            (
                Codec::X264,
                None,
                Some("-i /etc/passwd"),
                "use one of ultrafast, superfast",
            ),
            (
                Codec::X264,
                Some(52),
                None,
                "crf 52 is out of range for x264; use 0 to 51",
            ),
            (Codec::X265, None, Some("Medium"), "not a x265 preset"),
            (Codec::SvtAv1, None, Some("14"), "from 0 (slowest) to 13"),
            (Codec::SvtAv1, None, Some("+5"), "not a svt-av1 preset"),
            (Codec::SvtAv1, None, Some("05"), "not a svt-av1 preset"),
            (Codec::SvtAv1, Some(64), None, "use 0 to 63"),
            (Codec::Vp9, None, Some("9"), "from -8 (slowest) to 8"),
            (Codec::Vp9, None, Some("fast"), "not a vp9 preset"),
            (
                Codec::Ffv1,
                Some(10),
                None,
                "ffv1 is lossless and takes no crf",
            ),
            (Codec::Ffv1, None, Some("medium"), "ffv1 takes no preset"),
        ];
        for (codec, crf, preset, want) in refused {
            let err = check(codec, crf, preset).unwrap_err();
            assert!(err.contains(want), "{codec} {crf:?} {preset:?}: {err}");
        }
    }

    #[test]
    fn containers_accept_the_documented_codecs() {
        let table = [
            ("a.mp4", Codec::X264, true),
            ("a.mp4", Codec::Ffv1, false),
            ("a.mov", Codec::SvtAv1, true),
            ("a.webm", Codec::Vp9, true),
            ("a.webm", Codec::X264, false),
            ("a.mkv", Codec::Ffv1, true),
        ];
        for (path, codec, ok) in table {
            assert_eq!(
                Container::from_path(Path::new(path))
                    .unwrap()
                    .supports(codec),
                ok,
                "{path} {codec}"
            );
        }
        assert!(Container::from_path(Path::new("a.avi")).is_err());
    }
}
