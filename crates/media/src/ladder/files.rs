//! Which files each of a ladder's ops reads and writes (see
//! [`crate::op_files`]). A rendition's segments are not known before they
//! are cut, so `package`, `package-audio` and `publish` name the folders
//! they write into; they run where the workdir is.

use super::ops::{track_file, TRACK_DIR};
use super::plan::LadderPlan;
use crate::error::{MediaError, Result};
use crate::files::OpFiles;
use crate::request::EncodeRequest;
use crate::workdir::{Plan, CHUNK_DIR};
use std::path::Path;

/// A ladder's ops that write folders whose files are not known before
/// they run (segments, thumbnails) and `publish`, which renames the
/// finished folder into place: they run only where the workdir is (the
/// server's own slots, or a worker that shares its filesystem), never on
/// a worker that gets its files over HTTP one by one.
pub const WORKDIR_OPS: [&str; 5] = [
    "package",
    "package-audio",
    "package-subtitles",
    "package-thumbnails",
    "publish",
];

/// Whether `op` must run where the workdir is (see [`WORKDIR_OPS`]).
pub fn needs_workdir(op: &str) -> bool {
    WORKDIR_OPS.contains(&op)
}

fn rendition_of<'a>(
    op: &str,
    ladder: &'a LadderPlan,
    name: Option<&str>,
) -> Result<&'a super::Rendition> {
    let name = name.ok_or_else(|| {
        MediaError::BadRequest(format!("op {op}: no --rendition NAME among its arguments"))
    })?;
    ladder.rendition(name).ok_or_else(|| {
        MediaError::BadRequest(format!("op {op}: the ladder has no rendition {name:?}"))
    })
}

/// The files of a ladder's `op` (the state files are added by the caller).
pub fn ladder_files(
    op: &str,
    workdir: &Path,
    req: &EncodeRequest,
    plan: &Plan,
    ladder: &LadderPlan,
    chunk: Option<u32>,
    rendition: Option<&str>,
) -> Result<OpFiles> {
    let mut files = OpFiles::default();
    let tracks = workdir.join(TRACK_DIR);
    let temp = &plan.output.temp;
    match op {
        "encode-chunk" => {
            let r = rendition_of(op, ladder, rendition)?;
            let n = chunk.ok_or_else(|| {
                MediaError::BadRequest("op encode-chunk: no --chunk N among its arguments".into())
            })?;
            let c = plan.chunks.get(n as usize).ok_or_else(|| {
                MediaError::BadRequest(format!(
                    "chunk {n} does not exist; the plan has {} chunks",
                    plan.chunks.len()
                ))
            })?;
            files.inputs.push(req.input.clone());
            files.outputs.push(plan.chunk_path_of(workdir, c, Some(r)));
            files.dirs.push(workdir.join(CHUNK_DIR));
        }
        "package" => {
            let r = rendition_of(op, ladder, rendition)?;
            for c in &plan.chunks {
                files.inputs.push(plan.chunk_path_of(workdir, c, Some(r)));
            }
            for ext in ["mp4", "json", "ffconcat", "replay.mp4"] {
                files
                    .outputs
                    .push(tracks.join(format!("{}.{ext}", r.name)));
            }
            files.dirs.extend([tracks, temp.clone(), temp.join(&r.name)]);
        }
        "quality" => {
            let r = rendition_of(op, ladder, rendition)?;
            files.inputs.push(req.input.clone());
            files.inputs.push(track_file(workdir, &r.name));
            files
                .outputs
                .push(super::publish::quality_json(workdir, &r.name));
            files.dirs.push(tracks);
        }
        "package-audio" => {
            files.inputs.push(req.input.clone());
            for a in &ladder.audio {
                files.outputs.push(track_file(workdir, &a.name));
                files.outputs.push(tracks.join(format!("{}.json", a.name)));
                files.dirs.push(temp.join(&a.name));
            }
            files.dirs.extend([tracks, temp.clone()]);
        }
        "package-subtitles" => {
            files.inputs.push(req.input.clone());
            for s in &ladder.subtitles {
                files.outputs.push(temp.join(&s.file));
            }
            files.dirs.extend([temp.clone(), temp.join("subs")]);
        }
        "package-thumbnails" => {
            files.inputs.push(req.input.clone());
            files.outputs.push(tracks.join("thumbs.json"));
            let dir = temp.join(super::ops::THUMBS_DIR);
            files.dirs.extend([
                tracks,
                temp.clone(),
                temp.join(format!(".{}.tessera-tmp", super::ops::THUMBS_DIR)),
                dir,
            ]);
        }
        "publish" => {
            for name in ladder
                .renditions
                .iter()
                .map(|r| &r.name)
                .chain(ladder.audio.iter().map(|a| &a.name))
            {
                files.inputs.push(tracks.join(format!("{name}.json")));
            }
            files.inputs.push(tracks.join("thumbs.json"));
            for r in &ladder.renditions {
                files
                    .inputs
                    .push(super::publish::quality_json(workdir, &r.name));
            }
            files.outputs.push(plan.output.path.clone());
            files.dirs.push(temp.clone());
        }
        other => {
            return Err(MediaError::BadRequest(format!(
                "op {other:?} is not one of a ladder's: encode-chunk, package, package-audio, package-subtitles, package-thumbnails, quality, publish"
            )))
        }
    }
    Ok(files)
}
