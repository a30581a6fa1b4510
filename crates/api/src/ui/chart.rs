//! The UI's charts, drawn server-side with plotters into SVG strings: the
//! dashboard's throughput (jobs finished per time bucket) and a project's
//! usage (cpu-seconds charged per time bucket).

use plotters::prelude::*;
use tessera_types::Millis;

/// Counts of `finished` times per bucket of `bucket_ms`, the last bucket
/// ending at `now`; oldest first. Times outside the window are ignored.
pub(crate) fn buckets(finished: &[Millis], now: Millis, bucket_ms: u64, n: usize) -> Vec<u32> {
    let mut counts = vec![0u32; n];
    let span = bucket_ms * n as u64;
    let start = now.saturating_sub(span);
    for &t in finished {
        if t < start || t > now {
            continue;
        }
        let i = (((t - start) / bucket_ms) as usize).min(n - 1);
        counts[i] += 1;
    }
    counts
}

/// The chart as inline SVG: `counts` are per bucket of `bucket_min`
/// minutes, the last ending now.
pub(crate) fn throughput_svg(counts: &[u32], bucket_min: u32) -> String {
    let values: Vec<f64> = counts.iter().map(|&c| f64::from(c)).collect();
    line_svg(&values, bucket_min, &format!("jobs / {bucket_min} min"))
}

/// Sums of `(value, time)` per bucket of `bucket_ms`, the last bucket
/// ending at `now`; oldest first. Times outside the window are ignored.
pub(crate) fn sums(points: &[(f64, Millis)], now: Millis, bucket_ms: u64, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n];
    let start = now.saturating_sub(bucket_ms * n as u64);
    for &(v, t) in points {
        if t >= start && t <= now {
            out[(((t - start) / bucket_ms) as usize).min(n - 1)] += v;
        }
    }
    out
}

/// A line chart of `values` per bucket of `bucket_min` minutes, the last
/// ending now, with `y_desc` on the vertical axis.
pub(crate) fn line_svg(values: &[f64], bucket_min: u32, y_desc: &str) -> String {
    let mut svg = String::new();
    if let Err(e) = draw(&mut svg, values, bucket_min, y_desc) {
        return format!(
            r#"<p class="muted">chart unavailable: {}</p>"#,
            super::html::escape(&e)
        );
    }
    svg
}

fn draw(out: &mut String, values: &[f64], bucket_min: u32, y_desc: &str) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<_>| e.to_string();
    let hours = values.len() as f64 * f64::from(bucket_min) / 60.0;
    let top = values.iter().copied().fold(1.0_f64, f64::max) * 1.15;
    let points = values.iter().enumerate().map(|(i, &c)| {
        let x = -hours + (i as f64 + 1.0) * f64::from(bucket_min) / 60.0;
        (x, c)
    });
    let root = SVGBackend::with_string(out, (720, 240)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .margin(12)
        .x_label_area_size(34)
        .y_label_area_size(40)
        .build_cartesian_2d(-hours..0.0, 0.0..top)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("hours ago")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{:.0}", x.abs()))
        .light_line_style(RGBColor(238, 240, 244))
        .draw()
        .map_err(err)?;
    let blue = RGBColor(47, 91, 211);
    chart
        .draw_series(LineSeries::new(points.clone(), blue.stroke_width(2)))
        .map_err(err)?;
    chart
        .draw_series(points.map(|p| Circle::new(p, 2, blue.filled())))
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finished_jobs_fall_in_their_buckets() {
        let now = 10_000;
        let c = buckets(&[0, 5_999, 6_000, 9_999, 10_000, 10_001], now, 1_000, 4);
        assert_eq!(c, vec![1, 0, 0, 2]);
    }

    #[test]
    fn the_chart_is_an_svg_with_a_line() {
        let svg = throughput_svg(&[0, 2, 1, 3], 15);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("<polyline"), "{svg}");
        assert!(svg.contains("hours ago"));
    }
}
