//! The attempts' timeline: one row per task, one bar per attempt from its
//! start to its end (or now, while it runs), colored by outcome.

use super::html::{duration, escape};
use std::fmt::Write;
use tessera_store::{AttemptRecord, TaskRecord};
use tessera_types::Millis;

/// Task rows drawn at most.
pub(crate) const MAX_ROWS: usize = 300;

const LABEL_W: u64 = 170;
const PLOT_W: u64 = 760;
const ROW_H: u64 = 22;
const AXIS_H: u64 = 24;

/// The timeline as an `<svg id="gantt">` (a note when nothing has started).
pub(crate) fn render(tasks: &[TaskRecord], attempts: &[AttemptRecord], now: Millis) -> String {
    let rows: Vec<&TaskRecord> = tasks
        .iter()
        .filter(|t| t.attempt > 0)
        .take(MAX_ROWS)
        .collect();
    let Some(start) = attempts.iter().map(|a| a.started_at).min() else {
        return r#"<p class="muted">No task has started yet.</p>"#.to_string();
    };
    let end = attempts
        .iter()
        .map(|a| a.ended_at.unwrap_or(now))
        .max()
        .unwrap_or(now)
        .max(start + 1);
    let span = end - start;
    let x = |t: Millis| LABEL_W + (t.saturating_sub(start)).min(span) * PLOT_W / span;
    let width = LABEL_W + PLOT_W + 20;
    let plot_h = AXIS_H + rows.len() as u64 * ROW_H + 8;
    let height = plot_h + LEGEND_H;
    let mut svg = format!(
        r#"<svg id="gantt" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" aria-label="attempt timeline">
"#
    );
    let step = tick_step(span);
    for k in 0..=span / step {
        let t = k * step;
        let tx = LABEL_W + t * PLOT_W / span;
        let _ = writeln!(
            svg,
            r#"<line class="axis" x1="{tx}" y1="{AXIS_H}" x2="{tx}" y2="{plot_h}"/><text x="{tx}" y="14" text-anchor="middle">+{}</text>"#,
            duration(t)
        );
    }
    for (row, t) in rows.iter().enumerate() {
        let y = AXIS_H + row as u64 * ROW_H;
        let _ = writeln!(
            svg,
            r#"<text x="4" y="{}">{}</text>"#,
            y + 15,
            escape(&short(&t.name))
        );
        for a in attempts.iter().filter(|a| a.task == t.task) {
            let outcome = a.outcome.as_ref().map_or("running", |o| o.kind());
            let (x1, x2) = (x(a.started_at), x(a.ended_at.unwrap_or(now)));
            let took = a.ended_at.unwrap_or(now).saturating_sub(a.started_at);
            let node = escape(a.node.as_deref().unwrap_or("-"));
            let _ = writeln!(
                svg,
                r#"<rect class="bar o-{outcome}" x="{x1}" y="{}" width="{}" height="{}" rx="3"><title>{} attempt {} on {node}: {outcome}, {}</title></rect>"#,
                y + 4,
                (x2 - x1).max(2),
                ROW_H - 8,
                escape(&t.name),
                a.number,
                duration(took)
            );
            // The node on the bar, where it fits.
            if x2 - x1 >= 8 * node.len() as u64 + 8 {
                let _ = writeln!(
                    svg,
                    r#"<text class="on-bar" x="{}" y="{}">{node}</text>"#,
                    x1 + 4,
                    y + 15
                );
            }
        }
    }
    legend(&mut svg, plot_h);
    svg.push_str("</svg>");
    svg
}

const LEGEND_H: u64 = 22;

/// What the bars' colours mean, in words beside each (colour is never the
/// only sign: each bar's title says its outcome too).
fn legend(svg: &mut String, y: u64) {
    let mut x = LABEL_W;
    for (class, label) in [
        ("o-running", "running"),
        ("o-succeeded", "succeeded"),
        ("o-failed", "failed, timed out or lost"),
        ("o-cancelled", "cancelled"),
    ] {
        let _ = write!(
            svg,
            r#"<rect class="key {class}" x="{x}" y="{}" width="14" height="10" rx="2"/><text class="legend" x="{}" y="{}">{label}</text>"#,
            y + 4,
            x + 18,
            y + 13
        );
        x += 28 + 6 * label.len() as u64;
    }
    svg.push('\n');
}

/// A round step between the axis's ticks (1, 2 or 5 times a power of ten
/// milliseconds, or whole minutes and hours), giving at most five ticks
/// after the start.
fn tick_step(span: Millis) -> Millis {
    const STEPS: [Millis; 24] = [
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 15_000, 30_000, 60_000,
        120_000, 300_000, 600_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 21_600_000,
    ];
    STEPS
        .into_iter()
        .find(|&s| span / s <= 5)
        .unwrap_or_else(|| span.div_ceil(5 * 3_600_000) * 3_600_000)
}

fn short(name: &str) -> String {
    if name.chars().count() > 24 {
        name.chars().take(23).chain(['…']).collect()
    } else {
        name.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::tick_step;

    #[test]
    fn ticks_fall_on_round_values() {
        assert_eq!(tick_step(1), 1);
        assert_eq!(tick_step(1_284), 500); // +0, +500 ms, +1.0 s
        assert_eq!(tick_step(9_000), 2_000);
        assert_eq!(tick_step(61_000), 15_000);
        assert_eq!(tick_step(3_600_000), 900_000);
        for span in [7, 999, 12_345, 400_000, 86_400_000, 10 * 86_400_000] {
            let step = tick_step(span);
            assert!(span / step <= 5, "{span}: {step}");
            assert!(span / step >= 1 || step == 1, "{span}: {step}");
        }
    }
}
