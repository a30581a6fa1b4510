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

/// Seconds of video a chunk lasts at least before the planner gives a slot
/// a second (or third) chunk: the cost model's one parameter.
///
/// What a chunk costs and what it buys, measured on the shared 2-core
/// machine with the 720p sample at `veryfast` (`encode_bench` in the cli
/// tests, and chunk encodes of whole GOPs run by hand, `/usr/bin/time`):
///
/// - Cost: about 0.4 cpu s per chunk (a process start, x264's init and
///   lookahead fill, the packet count afterwards). 16 s cut into 2, 6 and 12
///   chunks took 27.5, 28.7 and 31.5 cpu s (one ffmpeg with every core:
///   30.4). A 2.5 s chunk of 720p `veryfast` costs about 4.3 cpu s here, so
///   the smallest chunk this floor makes pays under 10 % for being one, and
///   slower presets much less.
/// - Through `tessera encode`, 2 and 6 chunks of the 16 s clip cost the same
///   within the noise (cpu 36.6 and 36.4 s, wall medians 45.6 and 46.7 s):
///   what a short encode pays over one ffmpeg (+22 % cpu) is the full decode
///   of the output before publishing (about 6 of the 7 cpu s), not chunks.
/// - What chunks buy: an even end when slots run at different speeds (a
///   machine shared with other work; one chunk per slot ran 40 s where 6
///   chunks ran 21 s in the same round) and less lost to a kill (SIGKILL at
///   60 %: the rerun took 1.06 of a full run with 2 chunks, 0.67 with 6).
///
/// So a slot gets [`MAX_CHUNKS_PER_SLOT`] chunks whenever each lasts this
/// long, fewer only for videos too short for that.
pub const MIN_SECONDS_PER_CHUNK: f64 = 2.5;

/// Chunks per slot at most, from the floor alone (longer videos get more
/// through `target_frames`).
pub const MAX_CHUNKS_PER_SLOT: u32 = 3;

/// How many chunks the planner asks of `seconds` of video on `slots` slots
/// at least (the cost model, see [`MIN_SECONDS_PER_CHUNK`]): one per slot,
/// and as many more per slot, up to [`MAX_CHUNKS_PER_SLOT`], as leave each
/// chunk [`MIN_SECONDS_PER_CHUNK`] long.
///
/// On 2 slots: 4 s gives 2 chunks, 12 s 4, 16 s and longer 6.
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
    plan_chunks_for_slots_with_scenes(index, target_frames, slots, &[])
}

/// [`plan_chunks_for_slots`] cutting at a scene change (`scenes`: frame
/// indices, ascending) when one lies within half a chunk of the ideal cut,
/// in preference to a keyframe.
pub fn plan_chunks_for_slots_with_scenes(
    index: &FrameIndex,
    target_frames: u32,
    slots: u32,
    scenes: &[u32],
) -> Vec<ChunkPlan> {
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
    cut_into(index, k.min((n / fps).max(1)), scenes)
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
    cut_into(index, k.min((n / fps).max(1)), &[])
}

/// `k` chunks of about equal length, cuts snapped to a scene change, else
/// a keyframe, near them.
fn cut_into(index: &FrameIndex, k: u64, scenes: &[u32]) -> Vec<ChunkPlan> {
    let n = index.pts.len() as u64;
    let len = n as f64 / k as f64;
    let window = (len / 2.0).floor() as i64;
    let mut cuts: Vec<u64> = vec![0];
    for i in 1..k {
        let ideal = (i as f64 * len).round() as i64;
        let prev = *cuts.last().expect("starts with 0") as i64;
        let nearest = |candidates: &[u32]| {
            candidates
                .iter()
                .map(|&kf| i64::from(kf))
                .filter(|&kf| kf > prev && (kf - ideal).abs() <= window)
                .min_by_key(|&kf| ((kf - ideal).abs(), kf))
        };
        let cut = nearest(scenes)
            .or_else(|| nearest(&index.keyframes))
            .unwrap_or(ideal);
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
    fn cost_model_gives_short_clips_fewer_chunks_and_fills_waves() {
        // 2 slots: a chunk per slot for 4 s, two for 12 s, three from 15 s.
        assert_eq!(min_chunks_for(4.0, 2), 2);
        assert_eq!(min_chunks_for(12.0, 2), 4);
        assert_eq!(min_chunks_for(14.9, 2), 4);
        assert_eq!(min_chunks_for(15.0, 2), 6);
        assert_eq!(min_chunks_for(60.0, 2), 6);
        // cfr() is 25 fps: 200 frames are 8 s, 400 are 16 s.
        assert_eq!(plan_chunks_for_slots(&cfr(200, 50), 250, 2).len(), 2);
        assert_eq!(plan_chunks_for_slots(&cfr(400, 50), 250, 2).len(), 6);
        assert_eq!(plan_chunks_for_slots(&cfr(1500, 50), 250, 2).len(), 6);
        // Long videos get chunks of the asked length, in whole waves.
        assert_eq!(plan_chunks_for_slots(&cfr(25 * 600, 50), 250, 2).len(), 60);
        assert_eq!(plan_chunks_for_slots(&cfr(25 * 610, 50), 250, 2).len(), 62);
        assert_eq!(plan_chunks_for_slots(&cfr(25 * 130, 50), 250, 4).len(), 16);
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
