//! One line saying why an encode's chunks are not `--chunk-seconds` long,
//! when they are not: the planner's cost model (a chunk per slot at least,
//! more only for long enough videos, whole waves of chunks), and cuts moved
//! to the source's keyframes.

use tessera_media::{min_chunks_for, Plan};

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
    let asked = (total / chunk_seconds).ceil().max(1.0) as usize;
    let floor = min_chunks_for(total, slots) as usize;
    let slots = slots.max(1);
    if n > asked && n <= floor {
        let per = floor / slots as usize;
        let fewer = if n < floor {
            " (as many as can last about a second each)"
        } else {
            ""
        };
        why.push(format!(
            "{per} chunk{} per slot ({slots} slots), so every core has work to the end{fewer}",
            if per == 1 { "" } else { "s" }
        ));
    } else if n > asked {
        why.push(format!(
            "a whole number of waves of {slots} chunks, so the last wave keeps every slot busy"
        ));
    } else if total < chunk_seconds {
        why.push(format!("the video lasts only {total:.1} s"));
    } else if n > 1 && (total / n as f64) < chunk_seconds {
        why.push(format!("{n} chunks of about equal length"));
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
        // A short video: a chunk per slot (the cost model's floor).
        let note = explain(&plan(&[60, 60]), 30.0, 10.0, 2).unwrap();
        assert_eq!(
            note,
            "plan: 2 chunks of 2.0 s, not 10 s: 1 chunk per slot (2 slots), so every core has \
             work to the end"
        );
        // 60 s on 2 slots, 20 s asked: three per slot.
        let note = explain(&plan(&[100; 6]), 10.0, 20.0, 2).unwrap();
        assert!(note.contains(": 3 chunks per slot (2 slots)"), "{note}");
        // Fewer than a chunk per slot: one-second chunks.
        let note = explain(&plan(&[25; 3]), 25.0, 10.0, 4).unwrap();
        assert!(
            note.ends_with("(as many as can last about a second each)"),
            "{note}"
        );
        // 130 s asks 13 chunks of 10 s; 4 slots get 16, four full waves.
        let note = explain(&plan(&[203; 16]), 25.0, 10.0, 4).unwrap();
        assert!(note.contains("whole number of waves of 4 chunks"), "{note}");
        // 16 s on 1 slot asks 2 chunks of 10 s: 2 of 8 s.
        let note = explain(&plan(&[200; 2]), 25.0, 10.0, 1).unwrap();
        assert!(note.ends_with(": 2 chunks of about equal length"), "{note}");
        let note = explain(&plan(&[40, 60, 50]), 25.0, 2.0, 1).unwrap();
        assert!(
            note.contains("1.6 to 2.4 s") && note.contains("keyframes"),
            "{note}"
        );
    }
}
