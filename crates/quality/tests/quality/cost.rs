//! What scoring costs beside encoding: VMAF (with PSNR and SSIM) per frame
//! next to an x264 `-preset veryfast` encode per frame, on the README's 720p
//! sample. Ignored by default (tens of seconds); run with
//! `cargo test -p tessera-quality --release -- --ignored --nocapture cost`.

use std::time::Instant;

/// CPU seconds used so far by this process and by its reaped children
/// (ffmpeg): the cost measure that a busy shared machine distorts least.
fn cpu_seconds() -> f64 {
    let secs = |who| {
        // SAFETY: getrusage fills the zeroed struct it is given.
        let mut u: libc::rusage = unsafe { std::mem::zeroed() };
        unsafe { libc::getrusage(who, &mut u) };
        let t = |v: libc::timeval| v.tv_sec as f64 + v.tv_usec as f64 / 1e6;
        t(u.ru_utime) + t(u.ru_stime)
    };
    secs(libc::RUSAGE_SELF) + secs(libc::RUSAGE_CHILDREN)
}
use tessera_media::runner::{self, argv, Tool};
use tessera_quality::{measure, QualityOptions};

#[test]
#[ignore]
fn cost_of_vmaf_per_frame_beside_a_veryfast_encode() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("sample.mp4");
    tessera_media::testclips::sample_720p(&src, 10).unwrap();
    let out = dir.path().join("veryfast.mp4");
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut a = argv(["-nostdin", "-y", "-v", "error"]);
    a.extend(runner::media_input(&src));
    a.extend(argv([
        "-an", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23",
    ]));
    a.push(out.clone().into());
    let (t, c) = (Instant::now(), cpu_seconds());
    runner::run(Tool::Ffmpeg, &a).unwrap();
    let (encode, encode_cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
    let mut report = format!("cores {cores}, 300 frames 1280x720\n");
    report += &format!(
        "x264 veryfast encode (ffmpeg, all cores): {:.1} ms/frame wall, {:.1} ms/frame cpu\n",
        encode * 1000.0 / 300.0,
        encode_cpu * 1000.0 / 300.0
    );
    for (threads, subsample) in [(1, 1), (cores as u32, 1), (cores as u32, 5)] {
        let opts = QualityOptions {
            threads,
            subsample,
            ..Default::default()
        };
        let (t, c) = (Instant::now(), cpu_seconds());
        let s = measure(&src, &out, &opts).unwrap();
        let (secs, cpu) = (t.elapsed().as_secs_f64(), cpu_seconds() - c);
        assert_eq!(s.frames, 300);
        report += &format!(
            "VMAF+PSNR+SSIM, {threads} thread(s), subsample {subsample}: {:.1} ms/frame wall, \
             {:.1} ms/frame cpu (decoding both included), VMAF {:.2}\n",
            secs * 1000.0 / 300.0,
            cpu * 1000.0 / 300.0,
            s.vmaf.mean
        );
    }
    println!("{report}");
}
