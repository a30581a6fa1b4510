//! The ladder card of a ladder encode's job page: the ladder played in the
//! page (a `<video>` whose source is the HLS master playlist, which
//! Safari and Chromium play natively), links to both manifests and to
//! `ladder.json`, the poster, and a row per rendition from `ladder.json`
//! (size, codec, average and peak bitrate, bytes, checks). Every URL is
//! the session's route to the ladder's files (`/ui/jobs/{id}/ladder/...`),
//! so the playlists' relative URIs resolve there too.

use super::encode::size;
use super::html::escape;
use std::fmt::Write;
use tessera_media::ladder::LadderReport;

/// A bitrate in bit/s, as people read it.
fn rate(bps: u64) -> String {
    if bps >= 1_000_000 {
        format!("{:.2} Mbit/s", bps as f64 / 1e6)
    } else {
        format!("{:.0} kbit/s", bps as f64 / 1e3)
    }
}

/// The card: `report` is the published `ladder.json`, `None` while the
/// ladder is not published yet (the card then says so).
pub(crate) fn card(job: i64, report: Option<&LadderReport>) -> String {
    let Some(report) = report else {
        return r#"<h2>Ladder</h2><div class="card" id="ladder-card"><p class="muted">The ladder (HLS and DASH) plays here once it is published.</p></div>"#.into();
    };
    let base = format!("/ui/jobs/{job}/ladder");
    let poster = report.thumbnails.as_ref().map_or(String::new(), |t| {
        format!(r#" poster="{base}/thumbs/{}""#, escape(&t.poster))
    });
    let mut rows = String::new();
    for r in &report.renditions {
        let passed = r.checks.iter().filter(|c| c.ok).count();
        let failed: Vec<String> = r
            .checks
            .iter()
            .filter(|c| !c.ok)
            .map(|c| format!("{}: {}", escape(&c.name), escape(&c.detail)))
            .collect();
        let all: Vec<String> = r
            .checks
            .iter()
            .map(|c| format!("{} {}", if c.ok { "✓" } else { "✗" }, escape(&c.name)))
            .collect();
        let checks = if failed.is_empty() {
            format!(
                r#"<span class="s-succeeded" title="{}">{passed} of {} passed</span>"#,
                all.join("&#10;"),
                r.checks.len()
            )
        } else {
            format!(r#"<span class="s-failed">{}</span>"#, failed.join("; "))
        };
        let vmaf = r.quality.as_ref().map_or_else(
            || r#"<span class="muted">not measured</span>"#.to_string(),
            |q| {
                let chunks: Vec<String> = q
                    .chunks
                    .iter()
                    .map(|c| format!("chunk {}: {:.1} (min {:.1})", c.index, c.vmaf_mean, c.vmaf_min))
                    .collect();
                format!(
                    r#"<span title="{}">{:.1} <span class="muted">min {:.1} · PSNR {:.1} dB · SSIM {:.3}</span></span>"#,
                    chunks.join("&#10;"),
                    q.vmaf_mean,
                    q.vmaf_min,
                    q.psnr_y_mean,
                    q.ssim_mean
                )
            },
        );
        let _ = write!(
            rows,
            r#"<tr data-rendition="{name}"><td><a href="{base}/{name}/index.m3u8">{name}</a></td><td>{w}×{h}</td><td>{codec}</td><td>{avg}</td><td>{peak}</td><td>{bytes}</td><td>{frames}</td><td class="vmaf">{vmaf}</td><td>{checks}</td></tr>"#,
            name = escape(&r.name),
            w = r.width,
            h = r.height,
            codec = escape(&r.codec),
            avg = rate(r.average_bandwidth),
            peak = rate(r.peak_bandwidth),
            bytes = size(r.bytes),
            frames = r.frames,
        );
    }
    let extras = [
        (!report.audio.is_empty()).then(|| format!("audio: {}", escape(&report.audio.join(", ")))),
        (!report.subtitles.is_empty())
            .then(|| format!("subtitles: {}", escape(&report.subtitles.join(", ")))),
        (!report.skipped.is_empty()).then(|| {
            format!(
                "left out (they would upscale): {}",
                escape(&report.skipped.join(", "))
            )
        }),
    ];
    let extras: Vec<String> = extras.into_iter().flatten().collect();
    format!(
        r#"<h2>Ladder</h2><div class="card" id="ladder-card">
<video id="ladder-player" controls preload="metadata" playsinline{poster} src="{base}/master.m3u8"></video>
<p id="ladder-links"><a id="ladder-hls" href="{base}/master.m3u8">master.m3u8</a> (HLS) · <a id="ladder-dash" href="{base}/manifest.mpd">manifest.mpd</a> (DASH) · <a id="ladder-json" href="{base}/ladder.json">ladder.json</a></p>
<p id="ladder-line">{duration:.1} s in {segments} segments of {seg} s{extras}</p>
<table id="renditions"><thead><tr><th>rendition</th><th>size</th><th>codec</th><th>average</th><th>peak</th><th>bytes</th><th>frames</th><th>VMAF</th><th>checks</th></tr></thead><tbody>{rows}</tbody></table></div>"#,
        duration = report.duration_seconds,
        segments = report.segments,
        seg = report.segment_seconds,
        extras = if extras.is_empty() {
            String::new()
        } else {
            format!(" · {}", extras.join(" · "))
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_people_read_them() {
        assert_eq!(rate(850_000), "850 kbit/s");
        assert_eq!(rate(2_400_000), "2.40 Mbit/s");
    }

    #[test]
    fn an_unpublished_ladder_says_so_and_names_are_escaped() {
        assert!(card(3, None).contains("once it is published"));
        let report: LadderReport = serde_json::from_value(serde_json::json!({
            "duration_seconds": 3.0, "segment_seconds": 1.0, "segments": 3,
            "renditions": [{"name": "<b>", "width": 320, "height": 240, "codec": "avc1.64000d",
                "frames": 75, "bytes": 1000, "average_bandwidth": 300000, "peak_bandwidth": 400000,
                "checks": [{"name": "frames", "ok": true, "detail": "75"}]}],
            "audio": [], "subtitles": [], "skipped": [], "thumbnails": null
        }))
        .unwrap();
        let html = card(3, Some(&report));
        assert!(
            html.contains(r#"src="/ui/jobs/3/ladder/master.m3u8""#),
            "{html}"
        );
        assert!(
            html.contains("&lt;b&gt;") && !html.contains("<b>"),
            "{html}"
        );
        assert!(html.contains("1 of 1 passed"), "{html}");
        assert!(html.contains("not measured"), "{html}");
        // With quality: the rendition's VMAF, its chunks in the tooltip.
        let mut report = report;
        report.renditions[0].quality = Some(tessera_media::ladder::RenditionQuality {
            vmaf_mean: 91.25,
            vmaf_min: 80.0,
            vmaf_harmonic_mean: 90.0,
            vmaf_p5: 82.0,
            psnr_y_mean: 38.0,
            ssim_mean: 0.98,
            frames: 75,
            scored_frames: 19,
            subsample: 4,
            seconds: 1.0,
            chunks: vec![tessera_media::ladder::ChunkQuality {
                index: 0,
                first: 0,
                count: 75,
                vmaf_mean: 91.25,
                vmaf_min: 80.0,
            }],
        });
        let html = card(3, Some(&report));
        assert!(
            html.contains("91.2 <span") && html.contains("chunk 0: 91.2 (min 80.0)"),
            "{html}"
        );
    }
}
