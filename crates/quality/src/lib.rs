//! `tessera-quality`: how good an encode looks, measured against its
//! source: VMAF (Netflix's perceptual metric, model `vmaf_v0.6.1`), PSNR of
//! the luma and SSIM, per frame and pooled.
//!
//! [`measure`] decodes both videos with ffmpeg (through
//! [`tessera_media::runner`], raw luma frames over a pipe, streamed: memory
//! stays a few frames whatever the length), scales the distorted video
//! bicubically to the reference's size and bit depth (so a 360p rendition
//! is scored as a player would show it on the source's screen), pairs
//! frames by decode order (`-fps_mode passthrough`: none dropped or
//! duplicated) and feeds the pairs to libvmaf, which `libvmaf-sys` builds
//! from its vendored source. A different frame count in the two videos is
//! an error, never a silent shift.
//!
//! A range of the reference ([`QualityOptions::first_frame`],
//! [`QualityOptions::frames`]) scores one chunk's encode against its slice
//! of the source.
//!
//! ```no_run
//! use std::path::Path;
//! use tessera_quality::{measure, QualityOptions};
//! let scores = measure(Path::new("src.mkv"), Path::new("out.mp4"), &QualityOptions::default())?;
//! println!("VMAF {:.2} (min {:.2})", scores.vmaf.mean, scores.vmaf.min);
//! # Ok::<(), tessera_quality::QualityError>(())
//! ```

mod decode;
mod error;
pub mod ladder;
mod measure;
mod summary;
mod vmaf;

pub use error::QualityError;
pub use measure::{measure, QualityOptions, Scores, MAX_PIXELS, MAX_THREADS};
pub use summary::Summary;

/// The lines `tessera-vmaf measure` (and so `tessera verify --quality`)
/// prints: one per metric.
pub fn quality_lines(s: &Scores) -> String {
    let line = |name: &str, m: &Summary, digits: usize, unit: &str| {
        format!(
            "{name:<7} mean {:.digits$}{unit}  min {:.digits$}  harmonic mean {:.digits$}  5th percentile {:.digits$}",
            m.mean, m.min, m.harmonic_mean, m.p5
        )
    };
    format!(
        "quality over {} frames:\n{}\n{}\n{}",
        s.frames,
        line("VMAF", &s.vmaf, 2, ""),
        line("PSNR-Y", &s.psnr_y, 2, " dB"),
        line("SSIM", &s.ssim, 4, ""),
    )
}
