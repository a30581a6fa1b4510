//! The chunk planner: pure, from a frame index to exact frame ranges.

use crate::probe::FrameIndex;
use serde::{Deserialize, Serialize};

/// One chunk: frames `[first, first + count)` in presentation order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkPlan {
    pub index: u32,
    pub first: u32,
    pub count: u32,
    /// pts of the keyframe decoding starts from (at or before `start_pts`).
    pub seek_pts: i64,
    /// pts of the first frame of the chunk.
    pub start_pts: i64,
    /// pts where the chunk ends (exclusive): the next chunk's first frame,
    /// or the end of the last frame.
    pub end_pts: i64,
}

/// Seconds of video each slot should get per chunk at least before the
/// planner gives a slot a second (or third) chunk: the cost model's knee.
///
/// Measured on the 2-core machine (16 s of the 720p sample at `veryfast`,
/// chunks of whole GOPs, 2 at a time, `/usr/bin/time` over the whole run):
/// cpu seconds 27.5 for 2 chunks, 28.7 for 6, 31.5 for 12, against 30.4 for
/// one ffmpeg process using every core. Each chunk costs about 0.4 cpu s of
/// its own (a process start, x264's init and lookahead fill, a packet count
/// afterwards): about 1.4 % of a 16 s `veryfast` encode per chunk, 0.5 % at
/// `medium`. More chunks per slot only pay for themselves by shortening the
/// tail (the last wave, where some slots idle); that gain is about half a
/// chunk's length, so a slot gets a second chunk only when it has at least
/// twice this much video to encode.
pub const MIN_SECONDS_PER_CHUNK: f64 = 8.0;

/// Chunks per slot at most, from the floor alone (longer videos get more
/// through `target_frames`): enough to even out slots that run at different
/// speeds on a shared machine.
pub const MAX_CHUNKS_PER_SLOT: u32 = 3;

/// How many chunks the planner asks of `seconds` of video on `slots` slots
/// at least (the cost model, see [`MIN_SECONDS_PER_CHUNK`]): one per slot,
/// plus one per slot for each further [`MIN_SECONDS_PER_CHUNK`] a slot gets,
/// up to [`MAX_CHUNKS_PER_SLOT`] per slot.
///
/// 16 s on 2 slots: 2 chunks (the old fixed 3 per slot made 6, 1.16x the
/// wall time of one ffmpeg); 60 s on 2 slots: 6 (as before, 0.88x).
pub fn min_chunks_for(seconds: f64, slots: u32) -> u32 {
    let slots = slots.max(1);
    let per_slot = if seconds.is_finite() && seconds > 0.0 {
        (seconds / (f64::from(slots) * MIN_SECONDS_PER_CHUNK)).floor()
    } else {
        0.0
    };
    let per_slot = (per_slot as u32).clamp(1, MAX_CHUNKS_PER_SLOT);
    slots.saturating_mul(per_slot)
}

/// The planner with its cost model: chunks of about `target_frames`, at
/// least [`min_chunks_for`] of them, and when there are more chunks than
/// slots, a whole number of waves (a multiple of `slots`), so that the
/// last wave keeps every slot busy; never chunks shorter than about a
/// second unless the video is.
pub fn plan_chunks_for_slots(index: &FrameIndex, target_frames: u32, slots: u32) -> Vec<ChunkPlan> {
    let n = index.pts.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    let fps = rounded_fps(index);
    let slots = u64::from(slots.max(1));
    let seconds = n as f64 / fps as f64;
    let mut k = n
        .div_ceil(u64::from(target_frames.max(1)))
        .max(u64::from(min_chunks_for(seconds, slots as u32)));
    if k > slots {
        k = k.div_ceil(slots).saturating_mul(slots);
    }
    cut_into(index, k.min((n / fps).max(1)))
}

fn rounded_fps(index: &FrameIndex) -> u64 {
    match index.mean_frame_seconds() {
        s if s > 0.0 => (1.0 / s).round().max(1.0) as u64,
        _ => 1,
    }
}

/// Splits the frames of `index` into chunks of about `target_frames`
/// frames, at least `min_chunks` of them when each can still last ~1 s.
///
/// Cuts snap to a keyframe within half a chunk of the ideal cut; otherwise
/// the cut falls mid-GOP (the chunk then decodes from the previous keyframe).
/// The ranges cover every frame exactly once, in order.
pub fn plan_chunks(index: &FrameIndex, target_frames: u32, min_chunks: u32) -> Vec<ChunkPlan> {
    let n = index.pts.len() as u64;
    if n == 0 {
        return Vec::new();
    }
    let fps = rounded_fps(index);
    let target = u64::from(target_frames.max(1));
    let k = n.div_ceil(target).max(u64::from(min_chunks.max(1)));
    // Never chunks shorter than about a second unless the video is.
    cut_into(index, k.min((n / fps).max(1)))
}

/// `k` chunks of about equal length, cuts snapped to keyframes near them.
fn cut_into(index: &FrameIndex, k: u64) -> Vec<ChunkPlan> {
    let n = index.pts.len() as u64;
    let len = n as f64 / k as f64;
    let window = (len / 2.0).floor() as i64;
    let mut cuts: Vec<u64> = vec![0];
    for i in 1..k {
        let ideal = (i as f64 * len).round() as i64;
        let prev = *cuts.last().expect("starts with 0") as i64;
        let snapped = index
            .keyframes
            .iter()
            .map(|&kf| i64::from(kf))
            .filter(|&kf| kf > prev && (kf - ideal).abs() <= window)
            .min_by_key(|&kf| ((kf - ideal).abs(), kf));
        let cut = snapped.unwrap_or(ideal);
        if cut > prev && (cut as u64) < n {
            cuts.push(cut as u64);
        }
    }
    chunks_from_cuts(index, &cuts)
}

/// The chunks between `cuts` (first frames, ascending, starting at 0), each
/// decoding from the keyframe at or before its first frame.
pub fn chunks_from_cuts(index: &FrameIndex, cuts: &[u64]) -> Vec<ChunkPlan> {
    let n = index.pts.len() as u64;
    let mut cuts = cuts.to_vec();
    cuts.push(n);
    cuts.windows(2)
        .enumerate()
        .map(|(i, w)| {
            let (first, end) = (w[0] as usize, w[1] as usize);
            let kf = index.keyframes.partition_point(|&k| k as usize <= first);
            let seek_pts = if kf == 0 {
                index.pts[0]
            } else {
                index.pts[index.keyframes[kf - 1] as usize]
            };
            ChunkPlan {
                index: i as u32,
                first: first as u32,
                count: (end - first) as u32,
                seek_pts,
                start_pts: index.pts[first],
                end_pts: if end < index.pts.len() {
                    index.pts[end]
                } else {
                    index.end_pts()
                },
            }
        })
        .collect()
}

/// How many frames a chunk of `chunk_seconds` holds in `index`.
pub fn frames_for_seconds(index: &FrameIndex, chunk_seconds: f64) -> u32 {
    let frame = index.mean_frame_seconds();
    if frame <= 0.0 || !chunk_seconds.is_finite() || chunk_seconds <= 0.0 {
        return index.pts.len().max(1) as u32;
    }
    (chunk_seconds / frame).round().clamp(1.0, u32::MAX as f64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfr(n: usize, gop: usize) -> FrameIndex {
        FrameIndex {
            time_base: (1, 25),
            pts: (0..n as i64).collect(),
            keyframes: (0..n).step_by(gop).map(|k| k as u32).collect(),
            last_duration: 1,
            timestamp_faults: 0,
        }
    }

    fn assert_covers(plan: &[ChunkPlan], idx: &FrameIndex) {
        let mut next = 0;
        for (i, c) in plan.iter().enumerate() {
            assert_eq!(c.index as usize, i);
            assert_eq!(c.first, next);
            assert!(c.count > 0);
            assert_eq!(c.start_pts, idx.pts[c.first as usize]);
            assert!(c.seek_pts <= c.start_pts);
            next += c.count;
        }
        assert_eq!(next as usize, idx.pts.len());
        assert_eq!(plan.last().unwrap().end_pts, idx.end_pts());
    }

    #[test]
    fn cuts_snap_to_nearby_keyframes() {
        let idx = cfr(250, 48);
        let plan = plan_chunks(&idx, 50, 1);
        assert_covers(&plan, &idx);
        assert!(plan.iter().skip(1).all(|c| c.first % 48 == 0), "{plan:?}");
        assert!(plan.iter().all(|c| c.seek_pts == c.start_pts));
    }

    #[test]
    fn sparse_keyframes_cut_mid_gop_and_seek_back() {
        let idx = cfr(250, 200);
        let plan = plan_chunks(&idx, 50, 1);
        assert_covers(&plan, &idx);
        assert_eq!(plan.len(), 5);
        assert_eq!(plan[1].first, 50);
        assert_eq!(plan[1].seek_pts, 0);
        assert!(plan[4].seek_pts == 200 && plan[4].first == 200);
    }

    #[test]
    fn min_chunks_splits_more_but_not_below_a_second() {
        let idx = cfr(250, 25);
        assert_eq!(plan_chunks(&idx, 1_000, 6).len(), 6);
        // 250 frames at 25 fps: at most 10 one-second chunks.
        assert_eq!(plan_chunks(&idx, 1_000, 40).len(), 10);
        assert_eq!(plan_chunks(&cfr(10, 25), 2, 4).len(), 1);
        assert!(plan_chunks(&cfr(0, 1), 2, 4).is_empty());
    }

    #[test]
    fn cost_model_gives_short_clips_one_chunk_per_slot() {
        // 16 s, 2 slots, 10 s chunks asked: 2 chunks, not 6.
        assert_eq!(min_chunks_for(16.0, 2), 2);
        assert_eq!(min_chunks_for(31.9, 2), 2);
        assert_eq!(min_chunks_for(32.0, 2), 4);
        // cfr() is 25 fps: 400 frames are 16 s.
        assert_eq!(plan_chunks_for_slots(&cfr(400, 50), 250, 2).len(), 2);
        // 60 s: 3 per slot, as before.
        assert_eq!(min_chunks_for(60.0, 2), 6);
        assert_eq!(plan_chunks_for_slots(&cfr(1500, 50), 250, 2).len(), 6);
        // 28 s asks 3 chunks of 10 s: rounded up to 2 full waves of 2.
        assert_eq!(plan_chunks_for_slots(&cfr(700, 25), 250, 2).len(), 4);
        // Long videos still get chunks of the asked length, in full waves.
        assert_eq!(plan_chunks_for_slots(&cfr(25 * 600, 50), 250, 2).len(), 60);
        assert_eq!(plan_chunks_for_slots(&cfr(25 * 610, 50), 250, 2).len(), 62);
        // Many slots, short video: one chunk per slot while each lasts 1 s.
        assert_eq!(min_chunks_for(60.0, 16), 16);
        assert_eq!(plan_chunks_for_slots(&cfr(300, 25), 250, 16).len(), 12);
        // Nonsense lengths still give one chunk per slot.
        assert_eq!(min_chunks_for(f64::NAN, 3), 3);
        assert_eq!(min_chunks_for(-1.0, 0), 1);
        assert!(plan_chunks_for_slots(&cfr(0, 1), 2, 4).is_empty());
    }

    #[test]
    fn frames_for_seconds_uses_mean_rate() {
        assert_eq!(frames_for_seconds(&cfr(100, 10), 2.0), 50);
    }

    proptest::proptest! {
        #[test]
        fn plans_cover_every_frame_once(
            n in 1usize..600, gop in 1usize..120, target in 1u32..200, min in 0u32..20,
            jitter in proptest::collection::vec(0i64..3, 600),
        ) {
            let mut idx = cfr(n, gop);
            let mut t = 0;
            for (i, p) in idx.pts.iter_mut().enumerate() { t += 10 + jitter[i]; *p = t; }
            let plan = plan_chunks(&idx, target, min);
            assert_covers(&plan, &idx);
            let plan = plan_chunks_for_slots(&idx, target, min);
            assert_covers(&plan, &idx);
        }
    }
}
