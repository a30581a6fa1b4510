//! The page frame and small HTML helpers. Every string that came from a
//! user (names, reasons, messages) goes through [`escape`] before it is
//! written into a page.

use axum::response::Html;
use std::fmt::Write;
use tessera_types::Millis;

const CSS: &str = include_str!("../../assets/ui.css");

/// `s` safe to place in HTML text and in quoted attribute values.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title` is escaped here, `body` must already be safe HTML.
/// `user` (the signed-in user's name) adds the top bar with a logout button.
/// Charts along time (`data-end`) open scrolled to their recent end, on
/// a phone as on a desktop.
const END_JS: &str = "document.querySelectorAll('[data-end]').forEach(function (e) { e.scrollLeft = e.scrollWidth; });";

pub(crate) fn page(title: &str, user: Option<&str>, body: &str) -> Html<String> {
    let bar = match user {
        Some(name) => format!(
            r#"<header class="top"><a class="brand" href="/ui">TESSERA</a><a href="/ui">Dashboard</a>
<span class="who">signed in as <b>{}</b></span>
<form method="post" action="/ui/logout"><button type="submit">Log out</button></form></header>"#,
            escape(name)
        ),
        None => r#"<header class="top"><span class="brand">TESSERA</span></header>"#.to_string(),
    };
    Html(format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · Tessera</title>
<style>{CSS}</style></head>
<body>{bar}<main>
{body}
</main><script>{END_JS}</script></body></html>"#,
        escape(title)
    ))
}

/// A state badge; `task` marks it for live updates of that task.
pub(crate) fn badge(state: &str, task: Option<u32>) -> String {
    let state = escape(state);
    match task {
        Some(i) => format!(r#"<span class="badge s-{state}" data-task="{i}">{state}</span>"#),
        None => format!(r#"<span class="badge s-{state}">{state}</span>"#),
    }
}

/// `ms` since the epoch as `YYYY-MM-DD HH:MM:SS` UTC.
pub(crate) fn time(ms: Millis) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// A duration for people: `850 ms`, `12.3 s`, `4 min 05 s`, `2 h 03 min`.
pub(crate) fn duration(ms: Millis) -> String {
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", ms as f64 / 1000.0),
        60_000..=3_599_999 => format!("{} min {:02} s", ms / 60_000, ms % 60_000 / 1000),
        _ => format!("{} h {:02} min", ms / 3_600_000, ms % 3_600_000 / 60_000),
    }
}

/// Howard Hinnant's days-to-civil: (year, month, day) of a day number.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A table from a header row and already-safe cell HTML.
pub(crate) fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    // Wide tables scroll inside their box, never the page (phones).
    let mut out = String::from(r#"<div class="table-box"><table><thead><tr>"#);
    for h in head {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(out, "<td>{cell}</td>");
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_neutralizes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x")</script> & 'y'"#),
            "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &#39;y&#39;"
        );
        assert_eq!(escape("plain-name_1 é"), "plain-name_1 é");
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }

    #[test]
    fn page_escapes_title_and_user() {
        let Html(p) = page("<b>", Some("<i>"), "");
        assert!(p.contains("<title>&lt;b&gt; · Tessera</title>"));
        assert!(p.contains("<b>&lt;i&gt;</b>"));
        assert!(!p.contains("<i>"));
    }

    #[test]
    fn times_and_durations_read_well() {
        assert_eq!(time(0), "1970-01-01 00:00:00");
        assert_eq!(time(1_709_210_096_000), "2024-02-29 12:34:56");
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_340), "12.3 s");
        assert_eq!(duration(245_000), "4 min 05 s");
        assert_eq!(duration(7_380_000), "2 h 03 min");
    }
}
