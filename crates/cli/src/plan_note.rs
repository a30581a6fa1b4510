//! One line saying why an encode's chunks are not `--chunk-seconds` long,
//! when they are not: a few chunks per slot at least, and cuts moved to the
//! source's keyframes.

use tessera_media::{Plan, CHUNKS_PER_SLOT};

/// The note for `plan`, or `None` when its chunks last about
/// `chunk_seconds` (within 10 %). `fps`: the source's frames per second.
pub fn explain(plan: &Plan, fps: f64, chunk_seconds: f64, slots: u32) -> Option<String> {
    if plan.chunks.is_empty() || fps <= 0.0 {
        return None;
    }
    let secs: Vec<f64> = plan
        .chunks
        .iter()
        .map(|c| f64::from(c.count) / fps)
        .collect();
    let (lo, hi) = secs
        .iter()
        .fold((f64::MAX, 0.0_f64), |(lo, hi), &s| (lo.min(s), hi.max(s)));
    let near = |s: f64| (s - chunk_seconds).abs() <= chunk_seconds * 0.1;
    let last_short = secs.len() > 1 && secs[..secs.len() - 1].iter().all(|&s| near(s));
    if (near(lo) && near(hi)) || last_short {
        return None;
    }
    let total: f64 = secs.iter().sum();
    let n = plan.chunks.len();
    let mut why = Vec::new();
    if (n as f64) > (total / chunk_seconds).ceil() {
        let fewer = if (n as u32) < CHUNKS_PER_SLOT * slots {
            " (as many as can last about a second each)"
        } else {
            ""
        };
        why.push(format!(
            "at least {CHUNKS_PER_SLOT} chunks per slot ({slots} slots), so every core has work \
             to the end{fewer}"
        ));
    } else if total < chunk_seconds {
        why.push(format!("the video lasts only {total:.1} s"));
    }
    if hi - lo > 0.1 * hi.max(1e-9) {
        why.push("cuts moved to the source's keyframes where one is near".into());
    }
    if why.is_empty() {
        why.push("chunks last at least about a second each".into());
    }
    let range = if (hi - lo) < 0.05 {
        format!("{lo:.1} s")
    } else {
        format!("{lo:.1} to {hi:.1} s")
    };
    Some(format!(
        "plan: {n} chunks of {range}, not {chunk_seconds} s: {}",
        why.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::explain;
    use tessera_media::{ChunkPlan, Container, OutputPlan, Plan};

    fn plan(counts: &[u32]) -> Plan {
        let mut first = 0;
        let chunks = counts
            .iter()
            .enumerate()
            .map(|(i, &count)| {
                let c = ChunkPlan {
                    index: i as u32,
                    first,
                    count,
                    seek_pts: 0,
                    start_pts: 0,
                    end_pts: 0,
                };
                first += count;
                c
            })
            .collect();
        Plan {
            source_key: "k".into(),
            chunks,
            audio: None,
            output: OutputPlan {
                container: Container::Mp4,
                temp: "t".into(),
                path: "p".into(),
                subtitles: Vec::new(),
            },
            ladder: None,
        }
    }

    #[test]
    fn chunks_of_the_asked_length_need_no_note() {
        assert_eq!(explain(&plan(&[250, 250, 120]), 25.0, 10.0, 2), None);
    }

    #[test]
    fn more_chunks_than_the_length_asks_say_why() {
        let note = explain(&plan(&[100; 12]), 25.0, 10.0, 4).unwrap();
        assert_eq!(
            note,
            "plan: 12 chunks of 4.0 s, not 10 s: at least 3 chunks per slot (4 slots), so every \
             core has work to the end"
        );
        // A short video: fewer, one-second chunks.
        let note = explain(&plan(&[25; 4]), 25.0, 10.0, 2).unwrap();
        assert!(
            note.ends_with("(as many as can last about a second each)"),
            "{note}"
        );
        let note = explain(&plan(&[40, 60, 50]), 25.0, 2.0, 1).unwrap();
        assert!(
            note.contains("1.6 to 2.4 s") && note.contains("keyframes"),
            "{note}"
        );
    }
}
