//! Benchmarks of `tessera encode` against one ffmpeg process (ignored;
//! figures printed), issue 12's "Speed":
//!
//! ```text
//! cargo test -p tessera-cli --test cli encode_bench -- --ignored --nocapture --test-threads 1
//! ```
//!
//! Each pits runs against each other alternately (A B A B ...) on the same
//! clip and prints per-run wall and cpu seconds (user + sys of the process
//! and every descendant, from `/usr/bin/time`), the medians and their
//! ratios. The machines here are shared: read the ratios, not the times;
//! the cpu ratio is the steadier one when other builds load the machine.
//! `TESSERA_BENCH_RUNS` (default 3) sets the runs per variant,
//! `TESSERA_BENCH_SECONDS` the clip lengths where noted.
//!
//! - `short_clip_vs_one_ffmpeg`: a 16 s 720p sample at `--preset veryfast`,
//!   Tessera's default plan (the cost model's, see
//!   `tessera_media::MIN_SECONDS_PER_CHUNK`) and one ffmpeg using all cores
//!   (x264 at the same crf and preset, audio copied, mp4 out; no
//!   verification, where Tessera decodes its whole output before publishing).
//! - `ladder_vs_one_ffmpeg_split`: `--ladder default` on a 720p sample (720p,
//!   480p, 360p, 240p) against one ffmpeg with a `split` filter and the
//!   same x264 options per rung (crf, preset medium, maxrate, bufsize of
//!   twice maxrate, size, an IDR every 4 s, yuv420p) and the audio encoded
//!   once to AAC 128k: four video mp4s and one audio mp4, no HLS/DASH
//!   packaging, no thumbnails, no verification.
//! - `resume_after_sigkill_at_60_percent`: a full run's wall time, then a
//!   run SIGKILLed (its whole process group) at 60 % of that, then the
//!   rerun: the rerun's wall over the full run's (16 s at `veryfast`, the
//!   default plan: 6 chunks on 2 slots).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tessera_media::testclips;

fn runs() -> usize {
    std::env::var("TESSERA_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3)
        .max(1)
}

fn seconds_or(default: u32) -> u32 {
    std::env::var("TESSERA_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
        .max(2)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn tessera_bin() -> &'static str {
    env!("CARGO_BIN_EXE_tessera")
}

/// Runs `program args` under `/usr/bin/time`, asserting success; returns
/// (wall seconds, cpu seconds of it and its descendants).
fn timed(program: &str, args: &[&str], scratch: &Path) -> (f64, f64) {
    let report = scratch.join("time.txt");
    let out = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%e %U %S")
        .arg("-o")
        .arg(&report)
        .arg(program)
        .args(args)
        .env_remove("TESSERA_STATE_DIR")
        .stdin(Stdio::null())
        .output()
        .expect("run /usr/bin/time");
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let f: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    (f[0], f[1] + f[2])
}

struct Variant {
    name: &'static str,
    wall: Vec<f64>,
    cpu: Vec<f64>,
}

impl Variant {
    fn new(name: &'static str) -> Self {
        Variant {
            name,
            wall: Vec::new(),
            cpu: Vec::new(),
        }
    }
    fn push(&mut self, (wall, cpu): (f64, f64)) {
        println!("  {:<28} wall {wall:7.2} s  cpu {cpu:7.2} s", self.name);
        self.wall.push(wall);
        self.cpu.push(cpu);
    }
}

/// Prints each variant's medians and its ratios to the last variant (the
/// baseline).
fn print_medians(title: &str, vs: &[Variant]) {
    let base = vs.last().unwrap();
    let (bw, bc) = (median(&base.wall), median(&base.cpu));
    println!("{title} (medians of {} runs each):", base.wall.len());
    for v in vs {
        let (w, c) = (median(&v.wall), median(&v.cpu));
        println!(
            "  {:<28} wall {w:7.2} s  cpu {c:7.2} s   wall ratio {:.2}  cpu ratio {:.2}",
            v.name,
            w / bw,
            c / bc
        );
    }
}

fn sample(dir: &Path, seconds: u32) -> PathBuf {
    let src = dir.join(format!("s{seconds}.mp4"));
    testclips::sample_720p(&src, seconds).unwrap();
    src
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn short_clip_vs_one_ffmpeg() {
    let dir = tempfile::tempdir().unwrap();
    let src = sample(dir.path(), seconds_or(16));
    let out = dir.path().join("out.mp4");
    let mut vs = [
        Variant::new("tessera (cost model)"),
        Variant::new("ffmpeg, all cores"),
    ];
    for i in 0..runs() {
        for (v, variant) in vs.iter_mut().enumerate() {
            let state = dir.path().join(format!("st{i}-{v}"));
            let args = [
                "encode",
                s(&src),
                "-o",
                s(&out),
                "-y",
                "--plain",
                "--preset",
                "veryfast",
                "--state-dir",
                s(&state),
            ];
            let r = match v {
                0 => timed(tessera_bin(), &args, dir.path()),
                _ => timed(
                    "ffmpeg",
                    &[
                        "-nostdin",
                        "-y",
                        "-v",
                        "error",
                        "-i",
                        s(&src),
                        "-map",
                        "0:v:0",
                        "-map",
                        "0:a",
                        "-c:v",
                        "libx264",
                        "-crf",
                        "23",
                        "-preset",
                        "veryfast",
                        "-c:a",
                        "copy",
                        s(&out),
                    ],
                    dir.path(),
                ),
            };
            variant.push(r);
        }
    }
    print_medians("16 s 720p, veryfast", &vs);
}

/// The default ladder's rungs for a 1280x720 source (see
/// `tessera_media::ladder` DEFAULT_RUNGS): name, width, height, crf, maxrate.
const RUNGS_720P: [(&str, u32, u32, u32, u32); 4] = [
    ("720p", 1280, 720, 23, 3000),
    ("480p", 854, 480, 23, 1200),
    ("360p", 640, 360, 24, 700),
    ("240p", 426, 240, 25, 350),
];

/// One ffmpeg producing the ladder's renditions: a split filter, one x264
/// output per rung, the audio once.
fn ffmpeg_ladder_args(src: &Path, out: &Path) -> Vec<String> {
    let mut graph = format!("[0:v:0]split={}", RUNGS_720P.len());
    for i in 0..RUNGS_720P.len() {
        graph.push_str(&format!("[s{i}]"));
    }
    for (i, (_, w, h, _, _)) in RUNGS_720P.iter().enumerate() {
        graph.push_str(&format!(
            ";[s{i}]scale={w}:{h}:flags=bicubic,setsar=1,format=yuv420p[v{i}]"
        ));
    }
    let mut a: Vec<String> = ["-nostdin", "-y", "-v", "error", "-i", s(src)]
        .map(String::from)
        .to_vec();
    a.extend(["-filter_complex".into(), graph]);
    for (i, (name, _, _, crf, maxrate)) in RUNGS_720P.iter().enumerate() {
        a.extend([
            "-map".to_string(),
            format!("[v{i}]"),
            "-c:v".into(),
            "libx264".into(),
            "-crf".into(),
            crf.to_string(),
            "-preset".into(),
            "medium".into(),
            "-maxrate".into(),
            format!("{maxrate}k"),
            "-bufsize".into(),
            format!("{}k", maxrate * 2),
            "-force_key_frames".into(),
            "expr:gte(t,n_forced*4)".into(),
            "-forced-idr".into(),
            "1".into(),
            "-an".into(),
            s(&out.join(format!("{name}.mp4"))).into(),
        ]);
    }
    a.extend(
        [
            "-map", "0:a:0", "-vn", "-c:a", "aac", "-b:a", "128k", "-ac", "2",
        ]
        .map(String::from),
    );
    a.push(s(&out.join("audio.mp4")).into());
    a
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn ladder_vs_one_ffmpeg_split() {
    let dir = tempfile::tempdir().unwrap();
    let secs = seconds_or(20);
    let src = sample(dir.path(), secs);
    let ff_out = dir.path().join("ff");
    std::fs::create_dir_all(&ff_out).unwrap();
    let ff_args = ffmpeg_ladder_args(&src, &ff_out);
    let ff_args: Vec<&str> = ff_args.iter().map(String::as_str).collect();
    let mut vs = [
        Variant::new("tessera --ladder default"),
        Variant::new("ffmpeg split, 4 outputs"),
    ];
    for i in 0..runs() {
        let state = dir.path().join(format!("st{i}"));
        let out = dir.path().join(format!("ladder{i}"));
        vs[0].push(timed(
            tessera_bin(),
            &[
                "encode",
                s(&src),
                "-o",
                s(&out),
                "--ladder",
                "default",
                "--plain",
                "--state-dir",
                s(&state),
            ],
            dir.path(),
        ));
        let _ = std::fs::remove_dir_all(&out);
        vs[1].push(timed("ffmpeg", &ff_args, dir.path()));
    }
    print_medians(&format!("{secs} s 720p ladder, 4 renditions"), &vs);
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn resume_after_sigkill_at_60_percent() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let secs = seconds_or(16);
    let src = sample(dir.path(), secs);
    let out = dir.path().join("out.mp4");
    let args = |state: &Path, extra: &[&str]| -> Vec<String> {
        ["encode", s(&src), "-o", s(&out), "-y", "--plain"]
            .into_iter()
            .chain(["--preset", "veryfast", "--state-dir", s(state)])
            .chain(extra.iter().copied())
            .map(String::from)
            .collect()
    };
    let plans: [(&str, &[&str]); 1] = [("cost model", &[])];
    let mut ratios = vec![Vec::new(); plans.len()];
    for i in 0..runs() {
        for (p, (name, extra)) in plans.iter().enumerate() {
            let full_state = dir.path().join(format!("full{i}-{p}"));
            let a = args(&full_state, extra);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let (full, _) = timed(tessera_bin(), &a, dir.path());
            let state = dir.path().join(format!("killed{i}-{p}"));
            let mut child = Command::new(tessera_bin())
                .args(args(&state, extra))
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let started = Instant::now();
            let at = Duration::from_secs_f64(full * 0.6);
            while started.elapsed() < at && child.try_wait().unwrap().is_none() {
                std::thread::sleep(Duration::from_millis(20));
            }
            // The whole group: tessera, its op processes and their ffmpegs.
            let group = format!("-{}", child.id());
            let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
            let _ = child.wait();
            let a = args(&state, extra);
            let a: Vec<&str> = a.iter().map(String::as_str).collect();
            let (rerun, _) = timed(tessera_bin(), &a, dir.path());
            println!(
                "  {name:<10} full {full:7.2} s  killed at {:.2} s  rerun {rerun:7.2} s  ratio {:.2}",
                at.as_secs_f64(),
                rerun / full
            );
            ratios[p].push(rerun / full);
        }
    }
    for (p, (name, _)) in plans.iter().enumerate() {
        println!(
            "{secs} s 720p veryfast, {name}, SIGKILL at 60 %: rerun / full, median of {}: {:.2}",
            ratios[p].len(),
            median(&ratios[p])
        );
    }
}
