//! The ladder's ops and its DAG:
//!
//! ```text
//! plan -> encode-chunk-NNNN-<rendition> (chunks x renditions) -> package-<rendition> ┐
//!      -> package-audio (every audio track, once)                                  ├-> publish
//!      -> package-subtitles (WebVTT)                                               ┘
//! ```
//!
//! Every file is built in the output's temporary folder (or the workdir)
//! and `publish` renames the folder into place only after every rendition
//! passed its checks: a failed ladder leaves nothing at the output path.

use super::args;
use super::plan::{chunk_cuts, AudioTrackPlan, LadderPlan, SubtitlePlan};
use crate::args::{is_text_subtitle, ConcatEntry};
use crate::error::{MediaError, Result};
use crate::ops::{load, CHUNKS_PER_SLOT};
use crate::plan::{chunks_from_cuts, frames_for_seconds, ChunkPlan};
use crate::probe::{MediaInfo, StreamInfo};
use crate::request::{Container, EncodeRequest};
use crate::runner::{self, Tool};
use crate::tasks::rendition_chunk_task_name;
use crate::workdir::*;
use std::path::{Path, PathBuf};
use tessera_types::{Action, TaskSpec};

/// Where `package-<rendition>` writes the rendition's joined fMP4, and
/// `package-audio` each audio track's, inside the workdir.
pub const TRACK_DIR: &str = "tracks";

/// The ladder's thumbnails (poster, sprite sheets, WebVTT track) folder.
pub const THUMBS_DIR: &str = "thumbs";

/// The joined fMP4 of a rendition or audio track, in the workdir.
pub fn track_file(workdir: &Path, name: &str) -> PathBuf {
    workdir.join(TRACK_DIR).join(format!("{name}.mp4"))
}

/// A language tag as it may appear in a folder name and a manifest: two or
/// three ASCII letters (ISO 639), else none.
fn language(s: &StreamInfo) -> Option<String> {
    s.language()
        .filter(|l| (2..=3).contains(&l.len()) && l.bytes().all(|b| b.is_ascii_alphabetic()))
        .map(str::to_ascii_lowercase)
        .filter(|l| l != "und")
}

/// A stream's title for a player's menu: printable, without quotes, short.
fn title(s: &StreamInfo, fallback: String) -> String {
    let t: String = s
        .tags
        .get("title")
        .map(|t| {
            t.chars()
                .filter(|c| !c.is_control() && *c != '"' && *c != '\'')
                .take(64)
                .collect()
        })
        .unwrap_or_default();
    if t.trim().is_empty() {
        fallback
    } else {
        t.trim().to_string()
    }
}

/// `plan` for a ladder: segments, chunks of whole segments, renditions,
/// audio and subtitle tracks; writes `plan.json` and returns the tasks.
pub fn plan_ladder(
    workdir: &Path,
    req: &EncodeRequest,
    probed: &ProbeResult,
) -> Result<Vec<TaskSpec>> {
    let ladder = req.ladder.as_ref().expect("plan_ladder is for ladders");
    let info = &probed.info;
    let index = &probed.index;
    let video = info.video().ok_or_else(|| MediaError::NoVideo {
        path: req.input.clone(),
    })?;
    let (renditions, skipped) = super::resolve(ladder, video, req.settings.preset.as_deref())?;
    let subtitles = subtitle_plans(req, info)?;
    let audio = audio_plans(info);
    // Segments start at scene changes where they can (an IDR where the
    // picture changes anyway), the same frames in every rendition.
    let scenes = crate::scenes::detect_scenes(&req.input, video.index, index, workdir)?;
    let segments = crate::scenes::segments_with_scenes(index, ladder.segment_seconds, &scenes);
    let total = index.pts.len() as u32;
    // Renditions multiply the tasks: fewer chunks keep every slot busy.
    let min_chunks = req
        .slots
        .saturating_mul(CHUNKS_PER_SLOT)
        .div_ceil(renditions.len() as u32);
    let cuts = chunk_cuts(
        &segments,
        total,
        frames_for_seconds(index, req.chunk_seconds),
        min_chunks,
    );
    let cuts: Vec<u64> = cuts.into_iter().map(u64::from).collect();
    let format_start = info.start_time.unwrap_or(0.0);
    let temp = temp_output(&req.output);
    // A temporary folder left by an earlier, failed run is ours to replace.
    if temp.exists() {
        std::fs::remove_dir_all(&temp).map_err(|e| MediaError::io_at(&temp, "removing", e))?;
    }
    let plan = Plan {
        source_key: source_key(req)?,
        chunks: chunks_from_cuts(index, &cuts),
        audio: None,
        output: OutputPlan {
            container: Container::Mp4,
            temp,
            path: req.output.clone(),
            subtitles: Vec::new(),
        },
        ladder: Some(LadderPlan {
            segment_seconds: ladder.segment_seconds,
            segments,
            renditions,
            audio,
            audio_kbps: ladder.audio_kbps,
            subtitles,
            skipped,
            quality: runner::Tool::Vmaf.installed(),
            video_origin: index.seconds(index.pts[0]) - format_start,
        }),
    };
    write_json(&workdir.join(PLAN_FILE), &plan)?;
    Ok(ladder_tasks(workdir, &plan))
}

/// What can be checked before any work: the ladder resolves for this
/// source (some rung fits) and every subtitle stream can become WebVTT.
pub fn check_ladder(req: &EncodeRequest, info: &MediaInfo) -> Result<()> {
    let ladder = req
        .ladder
        .as_ref()
        .ok_or_else(|| MediaError::BadRequest("this encode is not a ladder".into()))?;
    let video = info.video().ok_or_else(|| MediaError::NoVideo {
        path: req.input.clone(),
    })?;
    super::resolve(ladder, video, req.settings.preset.as_deref())?;
    subtitle_plans(req, info).map(|_| ())
}

fn subtitle_plans(req: &EncodeRequest, info: &MediaInfo) -> Result<Vec<SubtitlePlan>> {
    let mut subtitles = Vec::new();
    for (n, s) in info.streams_of("subtitle").enumerate() {
        let codec = s.codec_name.as_deref().unwrap_or("unknown");
        if !is_text_subtitle(codec) {
            return Err(MediaError::Unsupported(format!(
                "{}: subtitle stream {} ({codec}) is a picture format and cannot become WebVTT; \
                 convert it to text (SRT) first or encode to a single .mkv file",
                req.input.display(),
                s.index
            )));
        }
        let lang = language(s);
        subtitles.push(SubtitlePlan {
            source: n as u32,
            file: format!("subs/{}-{n}.vtt", lang.as_deref().unwrap_or("und")),
            title: title(
                s,
                lang.clone()
                    .unwrap_or_else(|| format!("Subtitles {}", n + 1)),
            ),
            language: lang,
            default: s.disposition.iter().any(|d| d == "default"),
            forced: s.disposition.iter().any(|d| d == "forced"),
        });
    }
    Ok(subtitles)
}

fn audio_plans(info: &MediaInfo) -> Vec<AudioTrackPlan> {
    let audio_streams: Vec<&StreamInfo> = info.streams_of("audio").collect();
    let any_default = audio_streams
        .iter()
        .any(|s| s.disposition.iter().any(|d| d == "default"));
    audio_streams
        .iter()
        .enumerate()
        .map(|(n, s)| {
            let lang = language(s);
            AudioTrackPlan {
                source: n as u32,
                name: format!("audio-{}-{n}", lang.as_deref().unwrap_or("und")),
                title: title(
                    s,
                    lang.clone().unwrap_or_else(|| format!("Audio {}", n + 1)),
                ),
                language: lang,
                channels: s.channels.unwrap_or(2).clamp(1, 8),
                default: if any_default {
                    s.disposition.iter().any(|d| d == "default")
                } else {
                    n == 0
                },
            }
        })
        .collect()
}

/// Frame numbers, counted from `chunk`'s first frame, where its segments
/// start (0 always: a chunk starts a segment).
pub fn keyframes_in(ladder: &LadderPlan, chunk: &ChunkPlan) -> Vec<u32> {
    let end = chunk.first + chunk.count;
    ladder
        .segments
        .iter()
        .filter(|&&s| s >= chunk.first && s < end)
        .map(|s| s - chunk.first)
        .collect()
}

fn op(name: &str, workdir: &Path, extra: &[&str]) -> Action {
    let mut a = vec![
        "--workdir".to_string(),
        workdir.to_string_lossy().into_owned(),
    ];
    a.extend(extra.iter().map(|s| s.to_string()));
    Action::op(name, a)
}

/// The tasks a ladder's `plan` adds.
pub fn ladder_tasks(workdir: &Path, plan: &Plan) -> Vec<TaskSpec> {
    let ladder = plan.ladder.as_ref().expect("a ladder plan");
    let weight = |c: &ChunkPlan, r: &super::Rendition| {
        u64::from(c.count) * u64::from(r.width) * u64::from(r.height)
    };
    let heaviest = plan
        .chunks
        .iter()
        .flat_map(|c| ladder.renditions.iter().map(move |r| weight(c, r)))
        .max()
        .unwrap_or(1)
        .max(1);
    let mut tasks = Vec::new();
    for r in &ladder.renditions {
        for c in &plan.chunks {
            let priority = 10 + (80 * weight(c, r) / heaviest) as i32;
            let n = c.index.to_string();
            tasks.push(
                TaskSpec::new(
                    rendition_chunk_task_name(c.index, &r.name),
                    op(
                        "encode-chunk",
                        workdir,
                        &["--chunk", &n, "--rendition", &r.name],
                    ),
                )
                .with_priority(priority)
                .with_retries(2, 1_000),
            );
        }
        tasks.push(
            TaskSpec::new(
                format!("package-{}", r.name),
                op("package", workdir, &["--rendition", &r.name]),
            )
            .after(&format!("encode-chunk-*-{}", r.name))
            .with_priority(95)
            .with_retries(1, 1_000),
        );
        // VMAF, PSNR and SSIM against the source; publish waits for it.
        if !ladder.quality {
            continue;
        }
        tasks.push(
            TaskSpec::new(
                format!("quality-{}", r.name),
                op("quality", workdir, &["--rendition", &r.name]),
            )
            .after(&format!("package-{}", r.name))
            .with_priority(90)
            .with_retries(1, 1_000),
        );
    }
    if !ladder.audio.is_empty() {
        // One long task per encode: start it first so it never ends up last.
        tasks.push(
            TaskSpec::new("package-audio", op("package-audio", workdir, &[]))
                .with_priority(100)
                .with_retries(2, 1_000),
        );
    }
    // One decode of the whole source: start it early, like the audio.
    tasks.push(
        TaskSpec::new("package-thumbnails", op("package-thumbnails", workdir, &[]))
            .with_priority(100)
            .with_retries(1, 1_000),
    );
    if !ladder.subtitles.is_empty() {
        tasks.push(
            TaskSpec::new("package-subtitles", op("package-subtitles", workdir, &[]))
                .with_priority(100)
                .with_retries(1, 1_000),
        );
    }
    let mut publish = TaskSpec::new("publish", op("publish", workdir, &[])).after("package-*");
    if ladder.quality {
        publish = publish.after("quality-*");
    }
    tasks.push(publish.with_priority(95));
    tasks
}

/// The plan's ladder part; an error for a single-file encode.
pub(crate) fn ladder_of(plan: &Plan) -> Result<&LadderPlan> {
    plan.ladder
        .as_ref()
        .ok_or_else(|| MediaError::BadRequest("this encode is not a ladder".into()))
}

fn create_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| MediaError::io_at(dir, "creating", e))
}

/// Joins rendition `name`'s chunks into one fragmented MP4 in the workdir
/// ([`track_file`]). Returns it.
pub fn join_rendition(workdir: &Path, name: &str) -> Result<PathBuf> {
    let (_, probed, plan) = load(workdir)?;
    let ladder = ladder_of(&plan)?;
    let r = ladder
        .rendition(name)
        .ok_or_else(|| MediaError::BadRequest(format!("the ladder has no rendition {name:?}")))?;
    let index = &probed.index;
    let mut files = Vec::with_capacity(plan.chunks.len());
    for c in &plan.chunks {
        let p = plan.chunk_path_of(workdir, c, Some(r));
        if !p.exists() {
            return Err(MediaError::Internal(format!(
                "chunk {} of {name} is missing ({}); run encode-chunk --chunk {} --rendition {name}",
                c.index,
                p.display(),
                c.index
            )));
        }
        files.push((p, index.seconds(c.end_pts - c.start_pts)));
    }
    let entries: Vec<ConcatEntry> = files
        .iter()
        .map(|(path, seconds)| ConcatEntry {
            path,
            seconds: *seconds,
        })
        .collect();
    let list = crate::args::concat_list(&entries);
    create_dir(&workdir.join(TRACK_DIR))?;
    let list_file = workdir.join(TRACK_DIR).join(format!("{name}.ffconcat"));
    write_atomic(&list_file, list.as_bytes())?;
    let out = track_file(workdir, name);
    let tmp = out.with_extension("part");
    runner::run(
        Tool::Ffmpeg,
        &args::rendition_fmp4_args(&list_file, r.settings.codec, &tmp),
    )?;
    std::fs::rename(&tmp, &out).map_err(|e| MediaError::io_at(&out, "renaming into", e))?;
    Ok(out)
}

/// Encodes every audio track once into its fragmented MP4 in the workdir.
pub fn join_audio(workdir: &Path) -> Result<Vec<PathBuf>> {
    let (req, probed, plan) = load(workdir)?;
    let ladder = ladder_of(&plan)?;
    let index = &probed.index;
    let video_seconds = index.seconds(index.end_pts() - index.pts[0]);
    create_dir(&workdir.join(TRACK_DIR))?;
    let mut out = Vec::new();
    for a in &ladder.audio {
        let file = track_file(workdir, &a.name);
        let tmp = file.with_extension("part");
        runner::run(
            Tool::Ffmpeg,
            &args::audio_fmp4_args(
                &args::AudioTrackArgs {
                    input: &req.input,
                    stream: a.source,
                    origin: ladder.video_origin,
                    kbps: ladder.audio_kbps,
                    channels: a.channels,
                    segment_seconds: ladder.segment_seconds,
                    video_seconds,
                },
                &tmp,
            ),
        )?;
        std::fs::rename(&tmp, &file).map_err(|e| MediaError::io_at(&file, "renaming into", e))?;
        out.push(file);
    }
    Ok(out)
}

/// `package-thumbnails`: the poster, sprite sheets and WebVTT thumbnail
/// track into the output's temporary folder ([`THUMBS_DIR`]); what was
/// written is kept in the workdir for `publish`.
pub fn package_thumbnails(workdir: &Path) -> Result<crate::Thumbs> {
    let (_, _, plan) = load(workdir)?;
    ladder_of(&plan)?;
    create_dir(&plan.output.temp)?;
    let thumbs = crate::ops::thumbnails_op(workdir, &plan.output.temp.join(THUMBS_DIR))?;
    create_dir(&workdir.join(TRACK_DIR))?;
    write_json(&workdir.join(TRACK_DIR).join("thumbs.json"), &thumbs)?;
    Ok(thumbs)
}

/// `package-subtitles`: every subtitle track as WebVTT into the output's
/// temporary folder.
pub fn package_subtitles(workdir: &Path) -> Result<Vec<PathBuf>> {
    let (req, _, plan) = load(workdir)?;
    let ladder = ladder_of(&plan)?;
    let mut out = Vec::new();
    for s in &ladder.subtitles {
        let file = plan.output.temp.join(&s.file);
        if let Some(dir) = file.parent() {
            create_dir(dir)?;
        }
        let tmp = file.with_extension("part");
        runner::run(
            Tool::Ffmpeg,
            &args::webvtt_args(&req.input, s.source, ladder.video_origin, &tmp),
        )?;
        std::fs::rename(&tmp, &file).map_err(|e| MediaError::io_at(&file, "renaming into", e))?;
        out.push(file);
    }
    Ok(out)
}
