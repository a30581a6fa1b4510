//! The pipeline's operations. Each takes the job's workdir (holding
//! `request.json`), reads what earlier ops wrote, and writes its own files.
//! Each can run alone, in its own process, any number of times.

use crate::args::{self, ChunkSource, ConcatEntry, MuxPlan};
use crate::error::{MediaError, Result};
use crate::plan::{frames_for_seconds, plan_chunks_for_slots_with_scenes};
use crate::probe::{self, FrameIndex, MediaInfo};
use crate::request::{Container, EncodeRequest};
use crate::runner::{self, argv, Tool};
use crate::tasks::follow_on_tasks;
use crate::verify::{verify_against, VerifyOptions, VerifyReport};
use crate::workdir::*;
use std::path::{Path, PathBuf};
use tessera_types::TaskSpec;

/// Chunks planned per slot at least for a ladder (when each can still last
/// about a second), so the slots share the work evenly to the end. A single
/// output's plan uses the cost model instead
/// ([`plan_chunks_for_slots`](crate::plan::plan_chunks_for_slots)).
pub const CHUNKS_PER_SLOT: u32 = 3;

/// `probe`: validates the request, probes the source and indexes its video
/// frames into `probe.json`.
pub fn probe_op(workdir: &Path) -> Result<ProbeResult> {
    let req = read_request(workdir)?;
    req.validate()?;
    let (info, index) = probe::probe_and_index(&req.input)?;
    let result = ProbeResult { info, index };
    write_json(&workdir.join(PROBE_FILE), &result)?;
    Ok(result)
}

/// `thumbnails --out DIR`: a poster, sprite sheets and a WebVTT thumbnail
/// track of the request's source, from `probe.json`, with the default
/// [`ThumbOptions`](crate::ThumbOptions), written atomically into `out_dir`
/// (see [`write_thumbnails`](crate::write_thumbnails)).
pub fn thumbnails_op(workdir: &Path, out_dir: &Path) -> Result<crate::Thumbs> {
    let req = read_request(workdir)?;
    let probed: ProbeResult = read_json(&workdir.join(PROBE_FILE))?;
    crate::write_thumbnails(
        &req.input,
        &probed.info,
        &probed.index,
        out_dir,
        &crate::ThumbOptions::default(),
    )
}

/// `plan`: cuts the source into chunks, decides audio and subtitles, writes
/// `plan.json` and returns the tasks that do the work.
/// Checks that every stream of the source can be carried into the requested
/// container, before any work is done. Returns the subtitle codec to use
/// for each subtitle stream.
pub fn check_streams(req: &EncodeRequest, info: &MediaInfo) -> Result<Vec<String>> {
    let container = req.container()?;
    let mut subtitles = Vec::new();
    for s in info.streams_of("subtitle") {
        let codec = s.codec_name.as_deref().unwrap_or("unknown");
        match args::subtitle_codec(container, codec) {
            Some(c) => subtitles.push(c.to_string()),
            None => {
                return Err(MediaError::Unsupported(format!(
                    "{}: subtitle stream {} ({codec}) cannot go into {}; use a .mkv output",
                    req.input.display(),
                    s.index,
                    container.muxer()
                )))
            }
        }
    }
    let rotation = info
        .video()
        .and_then(|v| v.rotation)
        .unwrap_or(0)
        .rem_euclid(360);
    if rotation != 0 && matches!(container, Container::Mkv | Container::Webm) {
        return Err(MediaError::Unsupported(format!(
            "{}: the video is displayed rotated by {rotation} degrees, and ffmpeg 5.1 cannot store rotation in {}; use a .mp4 or .mov output",
            req.input.display(),
            container.muxer()
        )));
    }
    Ok(subtitles)
}

pub fn plan_op(workdir: &Path) -> Result<Vec<TaskSpec>> {
    let req = read_request(workdir)?;
    let probed: ProbeResult = read_json(&workdir.join(PROBE_FILE))?;
    if req.ladder.is_some() {
        return crate::ladder::ops::plan_ladder(workdir, &req, &probed);
    }
    let container = req.container()?;
    let subtitles = check_streams(&req, &probed.info)?;
    let audio: Vec<bool> = probed
        .info
        .streams_of("audio")
        .map(|s| args::audio_copyable(container, s))
        .collect();
    let target = frames_for_seconds(&probed.index, req.chunk_seconds);
    let scenes = match probed.info.video() {
        Some(v) if crate::scenes::worth_detecting(&probed.index, false) => {
            crate::scenes::detect_scenes(&req.input, v.index, &probed.index, workdir)?
        }
        _ => Vec::new(),
    };
    let plan = Plan {
        source_key: source_key(&req)?,
        chunks: plan_chunks_for_slots_with_scenes(&probed.index, target, req.slots, &scenes),
        audio: (!audio.is_empty()).then_some(AudioPlan { copy: audio }),
        output: OutputPlan {
            container,
            temp: temp_output(&req.output),
            path: req.output.clone(),
            subtitles,
        },
        ladder: None,
    };
    write_json(&workdir.join(PLAN_FILE), &plan)?;
    Ok(follow_on_tasks(workdir, &plan, &req))
}

pub(crate) fn load(workdir: &Path) -> Result<(crate::request::EncodeRequest, ProbeResult, Plan)> {
    Ok((
        read_request(workdir)?,
        read_json(&workdir.join(PROBE_FILE))?,
        read_json(&workdir.join(PLAN_FILE))?,
    ))
}

/// Counts the video packets of `path` (demux only).
pub fn count_video_packets(path: &Path) -> Result<u64> {
    let mut a = argv(["-v", "error", "-select_streams", "v:0", "-count_packets"]);
    a.extend(argv([
        "-show_entries",
        "stream=nb_read_packets",
        "-of",
        "csv=p=0",
    ]));
    a.extend(runner::media_input(path));
    let out = runner::run(Tool::Ffprobe, &a)?;
    out.stdout
        .trim()
        .trim_end_matches(',')
        .parse()
        .map_err(|_| {
            MediaError::Internal(format!(
                "{}: no packet count in {:?}",
                path.display(),
                out.stdout
            ))
        })
}

/// `encode-chunk N`: encodes exactly the frames of chunk `n`, reporting
/// `on_progress(done, total)` frames. Reuses a finished chunk file whose
/// packet count matches the plan. Returns the chunk file.
pub fn encode_chunk(
    workdir: &Path,
    n: u32,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf> {
    encode_chunk_of(workdir, n, None, on_progress)
}

/// [`encode_chunk`] for a ladder's rendition (`Some(name)`) or the single
/// output (`None`).
pub fn encode_chunk_of(
    workdir: &Path,
    n: u32,
    rendition: Option<&str>,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf> {
    let (req, probed, plan) = load(workdir)?;
    let rendition = match (rendition, &plan.ladder) {
        (None, None) => None,
        (Some(name), Some(l)) => Some(l.rendition(name).ok_or_else(|| {
            MediaError::BadRequest(format!("the ladder has no rendition named {name:?}"))
        })?),
        (None, Some(_)) => {
            return Err(MediaError::BadRequest(
                "this encode is a ladder: name the rendition (--rendition NAME)".into(),
            ))
        }
        (Some(_), None) => {
            return Err(MediaError::BadRequest(
                "this encode is not a ladder; leave --rendition out".into(),
            ))
        }
    };
    let chunk = plan.chunks.get(n as usize).ok_or_else(|| {
        MediaError::BadRequest(format!(
            "chunk {n} does not exist; the plan has {} chunks",
            plan.chunks.len()
        ))
    })?;
    let total = u64::from(chunk.count);
    let out = plan.chunk_path_of(workdir, chunk, rendition);
    if out.exists() && count_video_packets(&out).ok() == Some(total) {
        on_progress(total, total);
        return Ok(out);
    }
    let dir = workdir.join(CHUNK_DIR);
    std::fs::create_dir_all(&dir).map_err(|e| MediaError::io_at(&dir, "creating", e))?;
    let video = probed.info.video().ok_or_else(|| MediaError::NoVideo {
        path: req.input.clone(),
    })?;
    let src = ChunkSource {
        input: &req.input,
        video_stream: video.index,
        time_base: probed.index.time_base,
        format_start: probed.info.start_time.unwrap_or(0.0),
        first_pts: probed.index.pts[0],
        pix_fmt: video.pix_fmt.as_deref(),
    };
    let tmp = out.with_extension("part");
    if let (Some(target), None) = (req.target_vmaf, rendition) {
        on_progress(0, total);
        // Chunks at different CRFs carry different parameter sets (x264's
        // PPS holds the initial QP), and the join keeps only the first
        // chunk's header: each keyframe carries its own (caught by the
        // verify's decode before this was done).
        let extras = args::ChunkExtras {
            codec: runner::argv(["-bsf:v", "dump_extra=freq=keyframe"]),
            ..args::ChunkExtras::default()
        };
        crate::target::encode_to_target(&crate::target::Search {
            src: &src,
            chunk,
            settings: &req.settings,
            extras: &extras,
            target,
            out: &tmp,
        })?;
        return finish_chunk(n, &tmp, &out, total, on_progress);
    }
    let argv = match (rendition, &plan.ladder) {
        (Some(r), Some(l)) => {
            let keyframes = crate::ladder::ops::keyframes_in(l, chunk);
            let extras = crate::ladder::args::rendition_extras(r, &keyframes);
            args::chunk_encode_args_with(&src, chunk, &r.settings, &extras, &tmp)
        }
        _ => args::chunk_encode_args(&src, chunk, &req.settings, &tmp),
    };
    on_progress(0, total);
    runner::run_with_progress(&argv, &mut |frames| on_progress(frames.min(total), total))?;
    finish_chunk(n, &tmp, &out, total, on_progress)
}

/// Checks an encoded chunk's frame count and renames it into place.
fn finish_chunk(
    n: u32,
    tmp: &Path,
    out: &Path,
    total: u64,
    on_progress: &mut dyn FnMut(u64, u64),
) -> Result<PathBuf> {
    let (tmp, out) = (tmp.to_path_buf(), out.to_path_buf());
    let got = count_video_packets(&tmp)?;
    if got != total {
        let _ = std::fs::remove_file(&tmp);
        return Err(MediaError::Internal(format!(
            "chunk {n}: encoded {got} frames, the plan says {total}"
        )));
    }
    std::fs::rename(&tmp, &out).map_err(|e| MediaError::io_at(&out, "renaming into", e))?;
    on_progress(total, total);
    Ok(out)
}

/// `encode-audio`: every audio stream, once, whole, into the audio intermediate ([`audio_file`]).
/// Returns `None` when the source has no audio.
pub fn encode_audio(workdir: &Path) -> Result<Option<PathBuf>> {
    let (req, _, plan) = load(workdir)?;
    let Some(audio) = plan.audio.as_ref().filter(|a| a.needs_encode()) else {
        return Ok(None);
    };
    let out = workdir.join(audio_file(plan.output.container));
    let tmp = out.with_extension("part");
    runner::run(
        Tool::Ffmpeg,
        &args::audio_args(&req.input, &audio.copy, plan.output.container, &tmp),
    )?;
    std::fs::rename(&tmp, &out).map_err(|e| MediaError::io_at(&out, "renaming into", e))?;
    Ok(Some(out))
}

/// `concat`: joins the chunks with their exact durations and muxes audio,
/// subtitles, chapters, metadata and rotation into the temporary output
/// next to the final path. Returns the temporary output.
pub fn concat(workdir: &Path) -> Result<PathBuf> {
    let (req, probed, plan) = load(workdir)?;
    let index: &FrameIndex = &probed.index;
    let mut chunk_files = Vec::new();
    for c in &plan.chunks {
        let p = plan.chunk_path(workdir, c);
        if !p.exists() {
            return Err(MediaError::Internal(format!(
                "chunk {} is missing ({}); run encode-chunk {}",
                c.index,
                p.display(),
                c.index
            )));
        }
        chunk_files.push((p, index.seconds(c.end_pts - c.start_pts)));
    }
    let entries: Vec<ConcatEntry> = chunk_files
        .iter()
        .map(|(p, s)| ConcatEntry {
            path: p,
            seconds: *s,
        })
        .collect();
    let list = workdir.join(CONCAT_FILE);
    write_atomic(&list, args::concat_list(&entries).as_bytes())?;
    let audio = workdir.join(audio_file(plan.output.container));
    let encoded = plan.audio.as_ref().is_some_and(|a| a.needs_encode());
    if encoded && !audio.exists() {
        return Err(MediaError::Internal(
            "the encoded audio is missing; run encode-audio first".into(),
        ));
    }
    let video = probed.info.video().ok_or_else(|| MediaError::NoVideo {
        path: req.input.clone(),
    })?;
    let format_start = probed.info.start_time.unwrap_or(0.0);
    let mux = MuxPlan {
        concat_list: &list,
        video_offset: index.seconds(index.pts[0]) - format_start,
        audio: encoded.then_some(audio.as_path()),
        audio_copy: plan
            .audio
            .as_ref()
            .map_or_else(Vec::new, |a| a.copy.clone()),
        source: &req.input,
        format_start,
        subtitles: plan.output.subtitles.iter().map(String::as_str).collect(),
        video_stream: video.index,
        rotation: video.rotation,
        container: plan.output.container,
        out: &plan.output.temp,
    };
    runner::run(Tool::Ffmpeg, &args::mux_args(&mux)).map_err(|e| match e {
        MediaError::Io { .. } => MediaError::OutputDir {
            path: plan.output.temp.parent().unwrap_or(Path::new(".")).into(),
            detail: e.to_string(),
        },
        e => e,
    })?;
    Ok(plan.output.temp.clone())
}

/// `verify`: checks the joined output against the source; renames it into
/// the final path if every check passes, deletes it otherwise.
pub fn verify_op(workdir: &Path, options: VerifyOptions) -> Result<VerifyReport> {
    let (_, probed, plan) = load(workdir)?;
    // The source was probed at the start of the job; only the output is new.
    let report = verify_against(&probed.info, &probed.index, &plan.output.temp, options)?;
    if report.passed() {
        std::fs::rename(&plan.output.temp, &plan.output.path)
            .map_err(|e| MediaError::io_at(&plan.output.path, "renaming into", e))?;
        Ok(report)
    } else {
        let _ = std::fs::remove_file(&plan.output.temp);
        Err(MediaError::VerifyFailed(report.failures()))
    }
}
