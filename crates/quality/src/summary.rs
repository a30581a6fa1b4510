//! Pooling per-frame scores into one [`Summary`].

use serde::{Deserialize, Serialize};

/// One metric over the frames scored: its mean, its worst frame, a
/// harmonic mean (which weighs bad frames more, as viewers do) and the 5th
/// percentile (the level the worst 5% of frames fall below).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub mean: f64,
    pub min: f64,
    /// VMAF's convention, used for every metric here: `n / Σ 1/(x+1) - 1`
    /// (the +1 keeps a frame scoring 0 finite). Below the mean whenever
    /// scores vary.
    pub harmonic_mean: f64,
    /// Nearest-rank 5th percentile: the value at rank `ceil(0.05 n)` in
    /// ascending order (the minimum for fewer than 20 frames).
    pub p5: f64,
}

impl Summary {
    /// Pools `values` (one per scored frame); `None` when there are none or
    /// one is not a number.
    pub fn of(values: &[f64]) -> Option<Summary> {
        if values.is_empty() || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let n = values.len() as f64;
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((0.05 * n).ceil() as usize).max(1);
        // 1/(x+1) needs x > -1; SSIM may dip below 0 in theory, never to -1
        // on real video, but clamp so a hostile frame cannot make it infinite.
        let inverse: f64 = values.iter().map(|v| 1.0 / (v + 1.0).max(1e-9)).sum();
        Some(Summary {
            mean: values.iter().sum::<f64>() / n,
            min: sorted[0],
            harmonic_mean: n / inverse - 1.0,
            p5: sorted[rank - 1],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_scores_pool_to_themselves() {
        let s = Summary::of(&[80.0; 7]).unwrap();
        assert_eq!((s.mean, s.min, s.p5), (80.0, 80.0, 80.0));
        assert!((s.harmonic_mean - 80.0).abs() < 1e-9);
    }

    #[test]
    fn the_harmonic_mean_and_p5_weigh_the_bad_frames() {
        // 19 good frames and one bad one: the mean hides it, the others do not.
        let mut v = vec![90.0; 19];
        v.push(10.0);
        let s = Summary::of(&v).unwrap();
        assert!((s.mean - 86.0).abs() < 1e-9);
        assert_eq!(s.min, 10.0);
        assert_eq!(s.p5, 10.0, "rank ceil(0.05*20) = 1");
        // 20 / (19/91 + 1/11) - 1, well below the mean of 86.
        assert!(
            (s.harmonic_mean - 65.7333).abs() < 1e-3,
            "{}",
            s.harmonic_mean
        );
        // With 40 frames the 5th percentile is the second worst.
        let v: Vec<f64> = (1..=40).map(f64::from).collect();
        assert_eq!(Summary::of(&v).unwrap().p5, 2.0);
    }

    #[test]
    fn nothing_or_nan_pools_to_none() {
        assert!(Summary::of(&[]).is_none());
        assert!(Summary::of(&[1.0, f64::NAN]).is_none());
    }
}
