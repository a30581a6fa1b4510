//! What the scores say: identity scores top marks, more compression scores
//! lower, a smaller rendition is scored at the reference's size, a range
//! scores only its frames, 10-bit is scored at 10 bits.

use crate::clips::{encode, reference};
use tessera_quality::{measure, QualityOptions};

fn all() -> QualityOptions {
    QualityOptions::default()
}

#[test]
fn a_file_against_itself_scores_top_marks() {
    let dir = tempfile::tempdir().unwrap();
    let clip = tessera_media::testclips::cfr_25(dir.path()).unwrap();
    let s = measure(&clip, &clip, &all()).unwrap();
    println!("identity: {s:?}");
    assert_eq!(s.frames, 100);
    assert_eq!(s.scored_frames, 100);
    assert!(
        s.vmaf.min >= 97.0,
        "VMAF of a file against itself: {:?}",
        s.vmaf
    );
    assert_eq!(s.psnr_y.min, 60.0, "libvmaf caps 8-bit PSNR at 60 dB");
    assert!(s.ssim.min > 0.999, "{:?}", s.ssim);
}

#[test]
fn a_crf_45_encode_scores_clearly_below_a_crf_20_encode() {
    let dir = tempfile::tempdir().unwrap();
    let src = reference(dir.path(), "src.mkv", "320x240", 50);
    let good = encode(&src, &dir.path().join("crf20.mp4"), 20, &[]);
    let bad = encode(&src, &dir.path().join("crf45.mp4"), 45, &[]);
    let g = measure(&src, &good, &all()).unwrap();
    let b = measure(&src, &bad, &all()).unwrap();
    println!("crf 20: {g:?}\ncrf 45: {b:?}");
    assert!(g.vmaf.mean > 85.0, "{:?}", g.vmaf);
    assert!(
        g.vmaf.mean - b.vmaf.mean > 20.0,
        "{:?} vs {:?}",
        g.vmaf,
        b.vmaf
    );
    assert!(g.psnr_y.mean - b.psnr_y.mean > 5.0);
    assert!(g.ssim.mean > b.ssim.mean);
    assert!(b.vmaf.harmonic_mean <= b.vmaf.mean && b.vmaf.min <= b.vmaf.p5);
}

#[test]
fn a_smaller_rendition_is_scored_at_the_reference_size() {
    let dir = tempfile::tempdir().unwrap();
    let src = reference(dir.path(), "src360.mkv", "640x360", 40);
    let small = encode(
        &src,
        &dir.path().join("180p.mp4"),
        18,
        &["-vf", "scale=320:180"],
    );
    let full = encode(&src, &dir.path().join("360p.mp4"), 18, &[]);
    let s = measure(&src, &small, &all()).unwrap();
    let f = measure(&src, &full, &all()).unwrap();
    println!("180p vs 360p reference: {s:?}\n360p: {f:?}");
    assert_eq!(s.frames, 40);
    assert!(s.vmaf.mean > 10.0, "{:?}", s.vmaf);
    assert!(
        f.vmaf.mean - s.vmaf.mean > 5.0,
        "downscaling loses detail: {:?} vs {:?}",
        f.vmaf,
        s.vmaf
    );
}

#[test]
fn a_range_scores_only_its_frames() {
    let dir = tempfile::tempdir().unwrap();
    let src = reference(dir.path(), "src.mkv", "320x240", 60);
    // A "chunk": frames 30..49 of the source, encoded alone.
    let chunk = encode(
        &src,
        &dir.path().join("chunk.mp4"),
        16,
        &[
            "-vf",
            "trim=start_frame=30:end_frame=50,setpts=PTS-STARTPTS",
        ],
    );
    let range = |first_frame| QualityOptions {
        first_frame,
        frames: Some(20),
        ..Default::default()
    };
    let right = measure(&src, &chunk, &range(30)).unwrap();
    let wrong = measure(&src, &chunk, &range(0)).unwrap();
    println!("chunk vs its range: {right:?}\nvs frames 0..19: {wrong:?}");
    assert_eq!((right.frames, wrong.frames), (20, 20));
    assert!(right.vmaf.mean > 85.0, "{:?}", right.vmaf);
    assert!(
        right.vmaf.mean - wrong.vmaf.mean > 20.0,
        "{:?} vs {:?}",
        right.vmaf,
        wrong.vmaf
    );
    // Subsampling scores every 4th of the 20 frames.
    let sub = QualityOptions {
        subsample: 4,
        ..range(30)
    };
    let s = measure(&src, &chunk, &sub).unwrap();
    assert_eq!((s.frames, s.scored_frames), (20, 5));
}

#[test]
fn ten_bit_video_is_scored_at_ten_bits() {
    let dir = tempfile::tempdir().unwrap();
    let clip = tessera_media::testclips::hevc_10bit_open_gop(dir.path()).unwrap();
    let s = measure(&clip, &clip, &all()).unwrap();
    println!("10-bit identity: {s:?}");
    assert_eq!(s.frames, 72);
    assert_eq!(
        s.psnr_y.min, 72.0,
        "libvmaf caps 10-bit PSNR at 6 x 10 + 12 dB"
    );
    assert!(s.vmaf.min >= 97.0, "{:?}", s.vmaf);
}
