//! The files an encode job keeps in its workdir, written atomically.

use crate::error::{MediaError, Result};
use crate::plan::ChunkPlan;
use crate::probe::{FrameIndex, MediaInfo};
use crate::request::{Container, EncodeRequest};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

pub const REQUEST_FILE: &str = "request.json";
pub const PROBE_FILE: &str = "probe.json";
pub const PLAN_FILE: &str = "plan.json";
/// The joined audio tracks, before the final mux. NUT keeps every audio
/// codec's own time base exactly; Matroska (1 ms) is used only when the
/// output is Matroska anyway, because it takes codecs NUT cannot.
pub fn audio_file(container: Container) -> &'static str {
    match container {
        Container::Mkv => "audio.mka",
        _ => "audio.nut",
    }
}
pub const CONCAT_FILE: &str = "concat.txt";
pub const CHUNK_DIR: &str = "chunks";

/// `probe.json`: the source's streams and its video frame index.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProbeResult {
    pub info: MediaInfo,
    pub index: FrameIndex,
}

/// `plan.json`: chunks, audio and output.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Hash of the source identity (path, size, mtime) and the settings;
    /// chunk file names start with it so a re-run reuses finished chunks.
    pub source_key: String,
    pub chunks: Vec<ChunkPlan>,
    pub audio: Option<AudioPlan>,
    pub output: OutputPlan,
    /// For a ladder encode: segments, renditions, tracks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ladder: Option<crate::ladder::LadderPlan>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AudioPlan {
    /// Per source audio stream: copied (true) or encoded.
    pub copy: Vec<bool>,
}

impl AudioPlan {
    /// Whether any stream must be encoded (otherwise there is no audio task:
    /// copied streams go straight from the source into the final mux, which
    /// keeps their exact timing, edit lists and priming included).
    pub fn needs_encode(&self) -> bool {
        self.copy.iter().any(|c| !c)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutputPlan {
    pub container: Container,
    /// Where concat writes; verify renames it to `path`.
    pub temp: PathBuf,
    pub path: PathBuf,
    /// Codec argument per source subtitle stream (`copy`, `mov_text`, ...).
    pub subtitles: Vec<String>,
}

impl Plan {
    /// The chunk file of `chunk` for `rendition` (a ladder's) or the single output.
    pub fn chunk_path_of(
        &self,
        workdir: &Path,
        chunk: &ChunkPlan,
        rendition: Option<&crate::ladder::Rendition>,
    ) -> PathBuf {
        match rendition {
            None => self.chunk_path(workdir, chunk),
            Some(r) => workdir.join(CHUNK_DIR).join(format!(
                "{}-{}-{}-{:04}-{}-{}.nut",
                self.source_key,
                r.name,
                r.key(),
                chunk.index,
                chunk.first,
                chunk.count
            )),
        }
    }

    pub fn chunk_path(&self, workdir: &Path, chunk: &ChunkPlan) -> PathBuf {
        workdir.join(CHUNK_DIR).join(format!(
            "{}-{:04}-{}-{}.nut",
            self.source_key, chunk.index, chunk.first, chunk.count
        ))
    }
}

/// The temporary name the joined output gets next to its final path.
pub fn temp_output(output: &Path) -> PathBuf {
    let name = output
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    output.with_file_name(format!(".{name}.tessera-tmp"))
}

/// Hash of the source identity and the settings.
pub fn source_key(req: &EncodeRequest) -> Result<String> {
    let meta =
        std::fs::metadata(&req.input).map_err(|e| MediaError::io_at(&req.input, "reading", e))?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let mut h = Sha256::new();
    h.update(req.input.to_string_lossy().as_bytes());
    h.update(format!("\0{}\0{mtime}\0", meta.len()));
    h.update(serde_json::to_vec(&req.settings).unwrap_or_default());
    let digest = h.finalize();
    Ok(digest.iter().take(8).map(|b| format!("{b:02x}")).collect())
}

pub fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T> {
    let bytes = std::fs::read(path).map_err(|e| MediaError::State {
        path: path.into(),
        detail: e.to_string(),
    })?;
    serde_json::from_slice(&bytes).map_err(|e| MediaError::State {
        path: path.into(),
        detail: e.to_string(),
    })
}

/// Writes `value` as JSON to a temporary name, then renames it into place.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> Result<()> {
    let json = serde_json::to_vec_pretty(value).map_err(|e| MediaError::Internal(e.to_string()))?;
    write_atomic(path, &json)
}

pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| MediaError::io_at(&tmp, "writing", e))?;
    std::fs::rename(&tmp, path).map_err(|e| MediaError::io_at(path, "renaming into", e))
}

/// The request in `workdir`, its encoder settings checked (a task may
/// write its own request.json).
pub fn read_request(workdir: &Path) -> Result<EncodeRequest> {
    let req: EncodeRequest = read_json(&workdir.join(REQUEST_FILE))?;
    req.settings.validate()?;
    Ok(req)
}

/// Creates `workdir` if needed and writes `request.json` into it.
pub fn write_request(workdir: &Path, req: &EncodeRequest) -> Result<()> {
    std::fs::create_dir_all(workdir).map_err(|e| MediaError::io_at(workdir, "creating", e))?;
    write_json(&workdir.join(REQUEST_FILE), req)
}
