//! What an encode job's page shows about the video: the settings, the
//! source (name, size, length, frame rate), the chunks as planned (frames
//! each), and the verification's report, read from the encode's workdir.
//! The workdir is the project's (its tasks write there), so every file is
//! read confined to it: a link planted in its place is refused, not
//! followed.

use super::encodes::encode_id;
use crate::access::{JobAccess, Need};
use crate::Service;
use std::path::Path;
use tessera_media::{EncodeRequest, Plan, ProbeResult, PLAN_FILE, PROBE_FILE, REQUEST_FILE};
use tessera_types::{Grant, Reach};

/// The verification's report, as `tessera op verify` writes it.
const VERIFY_REPORT: &str = "verify-report.txt";

/// An encode job's video, as far as it is known yet.
#[derive(Clone, Debug, Default)]
pub struct EncodeView {
    pub codec: String,
    pub crf: Option<u32>,
    pub preset: Option<String>,
    pub container: String,
    pub chunk_seconds: f64,
    /// The source's file name and size.
    pub source_name: String,
    pub source_bytes: u64,
    /// Once probed: the video's length and frames per second.
    pub source_seconds: Option<f64>,
    pub fps: Option<f64>,
    /// Once planned: the frames of each chunk, by chunk number.
    pub chunk_frames: Vec<u32>,
    /// Once verified: the checks, a line each.
    pub verify: Option<String>,
    /// Whether it encodes an ABR ladder (a folder) rather than one file.
    pub ladder: bool,
    /// Once planned, a ladder's renditions: each chunk is encoded once per
    /// rendition (0 for one file).
    pub renditions: u32,
}

impl Service {
    /// The video of an encode job (`None` for another job, or once its
    /// work files were deleted).
    pub async fn encode_view<R: Need>(&self, job: &JobAccess<R>) -> Option<EncodeView> {
        self.read_encode(job, true).await
    }

    /// The same without what only the page's first draw shows (the probe,
    /// which holds every frame's time, and the checks): its settings and
    /// chunks, for the live redraws of the chunk map.
    pub async fn encode_chunks<R: Need>(&self, job: &JobAccess<R>) -> Option<EncodeView> {
        self.read_encode(job, false).await
    }

    async fn read_encode<R: Need>(&self, job: &JobAccess<R>, whole: bool) -> Option<EncodeView> {
        let id = encode_id(job.job()).ok()?.to_string();
        let workdir = self.data_dir.join("encodes").join(id);
        tokio::task::spawn_blocking(move || read_view(&workdir, whole))
            .await
            .ok()
            .flatten()
    }
}

fn read_view(workdir: &Path, whole: bool) -> Option<EncodeView> {
    let reach = Reach::new(vec![Grant::read(workdir).folder()]);
    let json = |name: &str| tessera_confine::read(&reach, &workdir.join(name)).ok();
    let req: EncodeRequest = serde_json::from_slice(&json(REQUEST_FILE)?).ok()?;
    let mut view = EncodeView {
        codec: req.settings.codec.to_string(),
        crf: req.settings.crf,
        preset: req.settings.preset.clone(),
        container: if req.ladder.is_some() {
            "an ABR ladder (CMAF)".into()
        } else {
            req.output
                .extension()
                .map_or_else(String::new, |e| e.to_string_lossy().into_owned())
        },
        ladder: req.ladder.is_some(),
        chunk_seconds: req.chunk_seconds,
        source_name: req
            .input
            .file_name()
            .map_or_else(String::new, |n| n.to_string_lossy().into_owned()),
        // The source is the server's (an upload or a volume file).
        source_bytes: std::fs::metadata(&req.input).map_or(0, |m| m.len()),
        ..EncodeView::default()
    };
    if let Some(plan) = json(PLAN_FILE).and_then(|b| serde_json::from_slice::<Plan>(&b).ok()) {
        view.chunk_frames = plan.chunks.iter().map(|c| c.count).collect();
        view.renditions = plan
            .ladder
            .as_ref()
            .map_or(0, |l| l.renditions.len() as u32);
    }
    if !whole {
        return Some(view);
    }
    if let Some(probe) =
        json(PROBE_FILE).and_then(|b| serde_json::from_slice::<ProbeResult>(&b).ok())
    {
        let frame = probe.index.mean_frame_seconds();
        if frame > 0.0 {
            view.fps = Some(1.0 / frame);
            view.source_seconds = Some(frame * probe.index.pts.len() as f64);
        }
    }
    view.verify = json(VERIFY_REPORT).map(|b| String::from_utf8_lossy(&b).into_owned());
    Some(view)
}
