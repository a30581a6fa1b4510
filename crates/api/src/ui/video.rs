//! The encode's own part of its job page: what video it is and what it
//! becomes (settings, source and output sizes, length, frame rate), a map
//! of its chunks along the source's timeline (each a segment coloured by
//! state, with its node and its progress), frames done with fps, speed and
//! time left (kept live by the page's script from the progress events),
//! the verification's checks, and the output playable in the page.

use super::encode::size;
use super::html::escape;
use std::collections::HashMap;
use std::fmt::Write;
use tessera_media::chunk_of_task;
use tessera_service::EncodeView;
use tessera_store::{AttemptRecord, TaskRecord};
use tessera_types::TaskState;

const MAP_W: u64 = 900;
const MAP_H: u64 = 44;

/// Frames of the chunks that have succeeded.
pub(crate) fn frames_done(view: &EncodeView, tasks: &[TaskRecord]) -> u64 {
    tasks
        .iter()
        .filter(|t| t.state == TaskState::Succeeded)
        .filter_map(|t| chunk_of_task(&t.name))
        .filter_map(|n| view.chunk_frames.get(n as usize))
        .map(|&f| u64::from(f))
        .sum()
}

/// The chunks along the source's timeline, as an `<svg id="chunk-map">`:
/// each a segment as long as its frames, coloured by its task's state, its
/// progress (`rect.done`, widened by the script) and its node written in it
/// where it fits.
pub(crate) fn chunk_map(
    view: &EncodeView,
    tasks: &[TaskRecord],
    attempts: &[AttemptRecord],
) -> String {
    let total: u64 = view.chunk_frames.iter().map(|&f| u64::from(f)).sum();
    if total == 0 {
        return r#"<p class="muted" id="chunk-map">The chunks appear here once the plan has cut the video.</p>"#.into();
    }
    let mut svg = format!(
        r#"<svg id="chunk-map" xmlns="http://www.w3.org/2000/svg" width="{MAP_W}" height="{MAP_H}" viewBox="0 0 {MAP_W} {MAP_H}" role="img" aria-label="chunks along the video">"#
    );
    // Each chunk's task, and the node of each task's latest attempt, looked
    // up once (the map is redrawn every few seconds while the job runs).
    let by_chunk: HashMap<u32, &TaskRecord> = tasks
        .iter()
        .filter_map(|t| Some((chunk_of_task(&t.name)?, t)))
        .collect();
    let node_of: HashMap<u32, Option<&str>> = attempts
        .iter()
        .map(|a| (a.task.index, a.node.as_deref()))
        .collect();
    let mut first = 0u64;
    for (n, &frames) in view.chunk_frames.iter().enumerate() {
        let x = first * MAP_W / total;
        let w = (u64::from(frames) * MAP_W / total).max(1);
        first += u64::from(frames);
        let task = by_chunk.get(&(n as u32)).copied();
        let state = task.map_or("waiting", |t| t.state.as_str());
        let node = task
            .and_then(|t| node_of.get(&t.task.index).copied().flatten())
            .unwrap_or("");
        let done = if state == "succeeded" { w } else { 0 };
        let index = task.map_or(String::new(), |t| t.task.index.to_string());
        let _ = write!(
            svg,
            r#"<g class="chunk" data-chunk-task="{index}" data-frames="{frames}" data-state="{state}"><rect class="n s-{state}" x="{x}" y="2" width="{w}" height="{h}"><title>chunk {n}: {frames} frames, {state}{on}</title></rect><rect class="done" x="{x}" y="{bar_y}" width="{done}" height="5" data-full="{w}"/>"#,
            h = MAP_H - 4,
            bar_y = MAP_H - 9,
            on = if node.is_empty() {
                String::new()
            } else {
                format!(" on {}", escape(node))
            },
        );
        let label = if node.is_empty() {
            n.to_string()
        } else {
            format!("{n} {}", escape(node))
        };
        if w >= 7 * label.len() as u64 + 6 {
            let _ = write!(svg, r#"<text x="{}" y="20">{label}</text>"#, x + 4);
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    svg
}

/// The card above the job's graph: the video, its chunks (in
/// `#chunk-box`, redrawn live), frames and speed, checks and player.
pub(crate) fn card(
    job: i64,
    view: &EncodeView,
    chunks: &str,
    done: u64,
    output: Option<&(String, u64)>,
) -> String {
    // A ladder encodes every chunk once per rendition.
    let total: u64 = view.chunk_frames.iter().map(|&f| u64::from(f)).sum::<u64>()
        * u64::from(view.renditions.max(1));
    let fps = view.fps.unwrap_or(0.0);
    let source = match (view.source_seconds, view.fps) {
        (Some(s), Some(f)) => format!(", {s:.1} s at {f:.3} fps"),
        _ => String::new(),
    };
    let settings = if view.ladder {
        // Each rung has its own codec and rate: the ladder card lists them.
        [
            None,
            None,
            None,
            Some(match view.renditions {
                0 => "into an ABR ladder (CMAF)".to_string(),
                n => format!("into an ABR ladder of {n} renditions (CMAF)"),
            }),
            Some(format!("chunks of about {} s", view.chunk_seconds)),
        ]
    } else {
        [
            Some(escape(&view.codec)),
            view.crf.map(|c| format!("crf {c}")),
            view.preset
                .as_deref()
                .map(|p| format!("preset {}", escape(p))),
            Some(format!("into {}", escape(&view.container))),
            Some(format!("chunks of about {} s", view.chunk_seconds)),
        ]
    };
    let settings: Vec<String> = settings.into_iter().flatten().collect();
    let sizes = match output {
        Some((_, bytes)) => format!(
            r#"<p id="sizes">{} in, <b>{}</b> out ({:.0}% of the source)</p>"#,
            size(view.source_bytes),
            size(*bytes),
            *bytes as f64 * 100.0 / view.source_bytes.max(1) as f64
        ),
        None => String::new(),
    };
    let player = match output {
        Some(_) => format!(
            r#"<video id="player" controls preload="metadata" src="/ui/jobs/{job}/output"></video>"#
        ),
        None => String::new(),
    };
    let checks = view.verify.as_deref().map_or(String::new(), |v| {
        format!(
            r#"<details id="checks" open><summary>Verification</summary><pre class="log">{}</pre></details>"#,
            escape(v.trim_end())
        )
    });
    format!(
        r#"<h2>Video</h2><div class="card" id="video-card">
<p id="video-line"><b>{name}</b> ({source_size}{source}) → {settings}</p>{sizes}
<p id="frames-line" data-total="{total}" data-fps="{fps}">Frames: <b id="frames-done">{done}</b> of <span id="frames-total">{total}</span> <span id="frames-rate" class="muted"></span></p>
<div class="scroll" id="chunk-box">{chunks}</div>
{player}{checks}</div>"#,
        name = escape(&view.source_name),
        source_size = size(view.source_bytes),
        settings = settings.join(" · "),
    )
}
