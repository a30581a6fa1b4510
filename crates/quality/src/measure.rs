//! [`measure`]: pair the frames of a reference and a distorted video and
//! score them.

use crate::decode::{bits_of, FrameFormat, Frames, Range};
use crate::error::QualityError;
use crate::summary::Summary;
use crate::vmaf::Vmaf;
use serde::{Deserialize, Serialize};
use std::path::Path;
use tessera_media::probe;

/// The largest picture scored: 8K UHD (7680x4320). Larger is refused
/// before anything is decoded.
pub const MAX_PIXELS: u64 = 7680 * 4320;
/// The most threads libvmaf is given, whatever is asked.
pub const MAX_THREADS: u32 = 64;

/// What to score.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualityOptions {
    /// The reference's first frame to compare (0-based, decode order).
    pub first_frame: u32,
    /// How many reference frames to compare from `first_frame`; `None`:
    /// to its end. The range applies to the reference only: the distorted
    /// video is read whole and must hold exactly that many frames (a
    /// chunk's encode scored against its slice of the source).
    pub frames: Option<u32>,
    /// Score every Nth frame (1 = all). Skipped frames are still decoded
    /// and paired (VMAF's motion feature needs each one).
    pub subsample: u32,
    /// libvmaf's threads; 0 = one per available core, 1 = the calling thread.
    pub threads: u32,
}

impl Default for QualityOptions {
    fn default() -> Self {
        QualityOptions {
            first_frame: 0,
            frames: None,
            subsample: 1,
            threads: 0,
        }
    }
}

/// The scores of one comparison.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// VMAF (model vmaf_v0.6.1), 0..100.
    pub vmaf: Summary,
    /// PSNR of the luma plane in dB (libvmaf caps identical frames at
    /// 6 x bits + 12: 60 dB at 8 bits).
    pub psnr_y: Summary,
    /// SSIM of the luma plane, 0..1.
    pub ssim: Summary,
    /// Frame pairs compared.
    pub frames: u32,
    /// Of those, the frames scored (every `subsample`th).
    pub scored_frames: u32,
    /// VMAF of each scored frame, in order (frame `i * subsample`): what
    /// per-chunk scores are pooled from. Not written when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_frame_vmaf: Vec<f64>,
}

/// Decodes `reference` and `distorted` with ffmpeg (raw luma over a pipe,
/// frame-exact, streamed), scales the distorted bicubically to the
/// reference's size and bit depth, pairs frames by their order and scores
/// each pair with libvmaf: VMAF (built-in model `vmaf_v0.6.1`), PSNR-Y and
/// SSIM. A different number of frames in the two is an error naming both.
pub fn measure(
    reference: &Path,
    distorted: &Path,
    opts: &QualityOptions,
) -> Result<Scores, QualityError> {
    check_options(opts)?;
    let format = frame_format_of(reference)?;
    // The distorted file is probed too: a clear error if it is not a
    // video, and the same size bound before ffmpeg decodes it.
    let _ = frame_format_of(distorted)?;
    let range = Range {
        first: opts.first_frame,
        count: opts.frames,
    };
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        n => n,
    }
    .min(MAX_THREADS);
    let mut vmaf = Vmaf::new(format, threads, opts.subsample)?;
    let mut refs = Frames::start(reference, format, range)?;
    let mut dists = Frames::start(distorted, format, Range::ALL)?;
    let mut index: u32 = 0;
    loop {
        match (refs.next_frame()?, dists.next_frame()?) {
            (Some(r), Some(d)) => {
                vmaf.push(&r, &d, index)?;
                index = index
                    .checked_add(1)
                    .ok_or_else(|| QualityError::BadOptions("more than 4 billion frames".into()))?;
            }
            (None, None) => break,
            _ => {
                return Err(QualityError::FrameCountMismatch {
                    reference: refs.count_rest()?,
                    distorted: dists.count_rest()?,
                    range: range_words(opts),
                });
            }
        }
    }
    if let Some(n) = opts.frames {
        if refs.count < u64::from(n) {
            return Err(QualityError::ShortReference {
                got: refs.count,
                first: opts.first_frame,
                asked: n,
            });
        }
    }
    if index == 0 {
        return Err(QualityError::BadOptions(format!(
            "{}: no frames to compare{}",
            refs.path().display(),
            range_words(opts)
        )));
    }
    vmaf.flush()?;
    let (mut v, mut p, mut s) = (Vec::new(), Vec::new(), Vec::new());
    for i in (0..index).step_by(opts.subsample as usize) {
        let [a, b, c] = vmaf.scores_at(i)?;
        v.push(a);
        p.push(b);
        s.push(c);
    }
    let pool = |name: &'static str, x: &[f64]| {
        Summary::of(x).ok_or(QualityError::Vmaf {
            call: name,
            code: 0,
            hint: ": a score was not a number",
        })
    };
    Ok(Scores {
        vmaf: pool("vmaf", &v)?,
        psnr_y: pool("psnr_y", &p)?,
        ssim: pool("float_ssim", &s)?,
        frames: index,
        scored_frames: v.len() as u32,
        per_frame_vmaf: v,
    })
}

fn check_options(opts: &QualityOptions) -> Result<(), QualityError> {
    if opts.subsample == 0 {
        return Err(QualityError::BadOptions(
            "subsample must be at least 1 (1 scores every frame)".into(),
        ));
    }
    if opts.frames == Some(0) {
        return Err(QualityError::BadOptions(
            "frames must be at least 1, or absent for all".into(),
        ));
    }
    Ok(())
}

/// " (frames F..L of it)" or " (from frame F)" for an error, "" for the whole video.
fn range_words(opts: &QualityOptions) -> String {
    match (opts.first_frame, opts.frames) {
        (0, None) => String::new(),
        (f, None) => format!(" from frame {f} on"),
        (f, Some(n)) => format!(
            " in frames {f}..{} of the {n} asked for",
            u64::from(f) + u64::from(n) - 1
        ),
    }
}

/// Probes `path`'s first video stream for the format to decode to (the
/// reference's size and depth); refuses a missing or absurd size.
fn frame_format_of(path: &Path) -> Result<FrameFormat, QualityError> {
    let info = probe(path)?;
    let video = info
        .video()
        .ok_or_else(|| tessera_media::MediaError::NoVideo { path: path.into() })?;
    let (Some(width), Some(height)) = (video.width, video.height) else {
        return Err(QualityError::NoSize { path: path.into() });
    };
    if width == 0 || height == 0 {
        return Err(QualityError::NoSize { path: path.into() });
    }
    if u64::from(width) * u64::from(height) > MAX_PIXELS {
        return Err(QualityError::TooLarge {
            path: path.into(),
            width,
            height,
            max: MAX_PIXELS,
        });
    }
    Ok(FrameFormat {
        width,
        height,
        bits: bits_of(video.pix_fmt.as_deref().unwrap_or("yuv420p")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_subsample_or_empty_range_is_refused_before_any_work() {
        let missing = Path::new("/nonexistent/x.mp4");
        let opts = QualityOptions {
            subsample: 0,
            ..Default::default()
        };
        let e = measure(missing, missing, &opts).unwrap_err();
        assert!(
            e.to_string().contains("subsample must be at least 1"),
            "{e}"
        );
        let opts = QualityOptions {
            frames: Some(0),
            ..Default::default()
        };
        let e = measure(missing, missing, &opts).unwrap_err();
        assert!(e.to_string().contains("frames must be at least 1"), "{e}");
    }

    #[test]
    fn range_words_name_the_frames() {
        let o = |first_frame, frames| QualityOptions {
            first_frame,
            frames,
            ..Default::default()
        };
        assert_eq!(range_words(&o(0, None)), "");
        assert_eq!(range_words(&o(5, None)), " from frame 5 on");
        assert_eq!(
            range_words(&o(10, Some(20))),
            " in frames 10..29 of the 20 asked for"
        );
    }
}
