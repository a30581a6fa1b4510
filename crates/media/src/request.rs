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

impl EncodeSettings {
    pub fn new(codec: Codec) -> Self {
        Self {
            codec,
            crf: None,
            preset: None,
            threads_per_chunk: 1,
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
}

impl EncodeRequest {
    pub fn container(&self) -> Result<Container> {
        Container::from_path(&self.output)
    }

    /// Checks what can be checked without ffprobe: paths, container/codec,
    /// numbers. Stream-level checks (bitmap subtitles into mp4) happen at plan time.
    pub fn validate(&self) -> Result<()> {
        check_input_file(&self.input)?;
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
            return Err(MediaError::Unsupported(format!(
                "{}: {} cannot hold {} video; use {}",
                self.output.display(),
                container.muxer(),
                self.settings.codec,
                fits.join(" or ")
            )));
        }
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
        check_output_dir(&self.output)
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
