//! ABR ladders end to end on real ffmpeg: every rendition holds the
//! source's frames with their timing, segments start on IDR frames at the
//! same source frames in every rendition, the manifests name what the
//! bitstreams are, and a failed check publishes nothing.

use crate::support::{index_of, request};
use std::path::{Path, PathBuf};
use tessera_media::ladder::{parse_ladder_file, LadderReport, LadderRequest};
use tessera_media::runner::{self, argv, Tool};
use tessera_media::*;

const TWO_RUNGS: &str = "segment_seconds: 1\nrungs:\n  - {name: r240, height: 240, preset: ultrafast}\n  - {name: r120, height: 120, preset: ultrafast, maxrate: 300}\n";

fn ladder_request(src: &Path, out: &Path, ladder: LadderRequest) -> EncodeRequest {
    let mut req = request(src, out, Codec::X264, 2.0);
    req.ladder = Some(ladder);
    req
}

fn plan_of(workdir: &Path) -> Plan {
    serde_json::from_slice(&std::fs::read(workdir.join(PLAN_FILE)).unwrap()).unwrap()
}

/// Every op of the ladder's DAG, in an order the DAG allows.
fn run_ladder(workdir: &Path, req: &EncodeRequest) -> Result<LadderReport> {
    write_request(workdir, req)?;
    probe_op(workdir)?;
    plan_op(workdir)?;
    encode_all(workdir)?;
    finish(workdir)
}

fn encode_all(workdir: &Path) -> Result<()> {
    let plan = plan_of(workdir);
    for r in &plan.ladder.as_ref().unwrap().renditions {
        for c in &plan.chunks {
            encode_chunk_of(workdir, c.index, Some(&r.name), &mut |_, _| {})?;
        }
    }
    Ok(())
}

fn finish(workdir: &Path) -> Result<LadderReport> {
    let plan = plan_of(workdir);
    let ladder = plan.ladder.as_ref().unwrap();
    for r in &ladder.renditions {
        ladder::package_rendition(workdir, &r.name)?;
    }
    if !ladder.audio.is_empty() {
        ladder::package_audio(workdir)?;
    }
    ladder::ops::package_subtitles(workdir)?;
    ladder::ops::package_thumbnails(workdir)?;
    // (quality-<rendition> is tessera-quality's op: tested in crates/cli.)
    ladder::publish(workdir)
}

/// init + segments of a rendition, joined as a player reads them.
fn joined(dir: &Path, out: &Path) -> PathBuf {
    let playlist = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
    let mut bytes = std::fs::read(dir.join("init.mp4")).unwrap();
    for line in playlist
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        bytes.extend(std::fs::read(dir.join(line)).unwrap());
    }
    std::fs::write(out, bytes).unwrap();
    out.to_path_buf()
}

fn extinf(playlist: &str) -> Vec<f64> {
    playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|l| {
            l.trim_end_matches(',')
                .split(',')
                .next()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect()
}

/// (profile, level) ffprobe reads from the bitstream.
fn profile_level(path: &Path) -> (String, i64) {
    let mut a = argv(["-v", "error", "-select_streams", "v:0", "-show_entries"]);
    a.extend(argv(["stream=profile,level", "-of", "csv=p=0"]));
    a.extend(runner::media_input(path));
    let out = runner::run(Tool::Ffprobe, &a).unwrap().stdout;
    let (p, l) = out.trim().split_once(',').unwrap();
    (p.to_string(), l.parse().unwrap())
}

/// Checks every promise a ladder makes, against `src`.
fn check_ladder(src: &Path, out: &Path, report: &LadderReport, scratch: &Path) {
    let source = index_of(src);
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(master.contains("#EXT-X-INDEPENDENT-SEGMENTS"), "{master}");
    assert!(out.join("manifest.mpd").is_file());
    assert!(out.join("ladder.json").is_file());
    let thumbs = report.thumbnails.as_ref().expect("thumbnails");
    let vtt = std::fs::read_to_string(out.join("thumbs").join(&thumbs.vtt)).unwrap();
    assert!(vtt.starts_with("WEBVTT") && vtt.contains("#xywh="), "{vtt}");
    assert!(out.join("thumbs").join(&thumbs.poster).is_file());
    let mut reference: Option<Vec<f64>> = None;
    for r in &report.renditions {
        let dir = out.join(&r.name);
        let file = joined(&dir, &scratch.join(format!("{}.mp4", r.name)));
        let got = index_of(&file);
        assert_eq!(got.pts.len(), source.pts.len(), "{}: every frame", r.name);
        assert_eq!(
            first_pts_mismatch(&source, &got, 0.001 + 1e-6),
            None,
            "{}: every frame at the source's time",
            r.name
        );
        // Every segment starts with a keyframe at the planned frame.
        let playlist = std::fs::read_to_string(dir.join("index.m3u8")).unwrap();
        let durations = extinf(&playlist);
        let mut t = 0.0;
        let rel = relative_seconds(&got);
        for d in &durations {
            let frame = rel
                .iter()
                .position(|s| (s - t).abs() < 0.0005)
                .unwrap_or_else(|| panic!("{}: no frame at segment start {t}", r.name));
            assert!(
                got.keyframes.contains(&(frame as u32)),
                "{}: segment at {t}s starts on frame {frame}, not a keyframe ({:?})",
                r.name,
                got.keyframes
            );
            t += d;
        }
        let total: f64 = durations.iter().sum();
        let span = source.seconds(source.end_pts() - source.pts[0]);
        assert!(
            (total - span).abs() < 0.001,
            "{}: {total} vs {span}",
            r.name
        );
        match &reference {
            None => reference = Some(durations),
            Some(d) => assert_eq!(d, &durations, "{}: aligned with the first", r.name),
        }
        // CODECS names the real profile and level.
        let (profile, level) = profile_level(&file);
        let want = match profile.as_str() {
            "High" => format!("avc1.64{:02x}{:02x}", 0, level),
            "Main" => format!("avc1.4d{:02x}{:02x}", 0, level),
            "Constrained Baseline" | "Baseline" => format!("avc1.42{:02x}{:02x}", 0, level),
            p => panic!("profile {p}"),
        };
        let (pp, ll) = (&want[..7], &want[9..]);
        assert!(
            r.codec.starts_with(pp) && r.codec.ends_with(ll),
            "{}: {} for {profile}@{level}",
            r.name,
            r.codec
        );
        assert!(master.contains(&r.codec), "{master}");
        assert!(
            master.contains(&format!("RESOLUTION={}x{}", r.width, r.height)),
            "{master}"
        );
        assert!(r.peak_bandwidth >= r.average_bandwidth && r.average_bandwidth > 0);
        assert!(r.checks.iter().all(|c| c.ok), "{:?}", r.checks);
    }
    assert!(
        !temp_output(out).exists(),
        "the temporary folder is renamed into place"
    );
}

#[test]
fn a_two_rung_ladder_is_aligned_and_frame_exact_on_cfr_ntsc_and_vfr() {
    let dir = tempfile::tempdir().unwrap();
    let ladder = parse_ladder_file(TWO_RUNGS).unwrap();
    for (n, make) in [testclips::cfr_25, testclips::ntsc, testclips::vfr_jitter]
        .into_iter()
        .enumerate()
    {
        let src = make(dir.path()).unwrap();
        let out = dir.path().join(format!("ladder-{n}"));
        let workdir = dir.path().join(format!("w{n}"));
        let report = run_ladder(&workdir, &ladder_request(&src, &out, ladder.clone()))
            .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        assert_eq!(report.renditions.len(), 2);
        assert_eq!(
            (report.renditions[1].width, report.renditions[1].height),
            (160, 120)
        );
        check_ladder(&src, &out, &report, dir.path());
        // Audio: encoded once, one rendition, in the master's audio group.
        let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
        assert!(master.contains("TYPE=AUDIO"), "{master}");
        assert!(master.contains("mp4a.40.2"), "{master}");
    }
}

#[test]
fn every_audio_and_subtitle_track_is_carried_and_the_default_ladder_fits_the_source() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::multi_track(dir.path()).unwrap();
    let out = dir.path().join("ladder");
    let req = ladder_request(&src, &out, LadderRequest::default_ladder());
    let report = run_ladder(&dir.path().join("w"), &req).unwrap();
    // A 320x240 source: one rung at its own height, nothing upscaled.
    let names: Vec<&str> = report.renditions.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["240p"]);
    check_ladder(&src, &out, &report, dir.path());
    assert_eq!(report.audio, ["audio-eng-0", "audio-fre-1"]);
    let master = std::fs::read_to_string(out.join("master.m3u8")).unwrap();
    assert!(
        master.contains("LANGUAGE=\"eng\"") && master.contains("LANGUAGE=\"fre\""),
        "{master}"
    );
    assert!(master.contains("TYPE=SUBTITLES"), "{master}");
    let vtt = std::fs::read_to_string(out.join("subs/eng-0.vtt")).unwrap();
    assert!(vtt.starts_with("WEBVTT"), "{vtt}");
    assert!(
        vtt.contains("00:00.500 --> 00:01.500") && vtt.contains("Hello"),
        "{vtt}"
    );
    let mpd = std::fs::read_to_string(out.join("manifest.mpd")).unwrap();
    assert!(
        mpd.contains("text/vtt") && mpd.contains("lang=\"fre\""),
        "{mpd}"
    );
}

#[test]
fn a_damaged_rendition_chunk_fails_its_package_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let out = dir.path().join("ladder");
    let workdir = dir.path().join("w");
    let req = ladder_request(&src, &out, parse_ladder_file(TWO_RUNGS).unwrap());
    write_request(&workdir, &req).unwrap();
    probe_op(&workdir).unwrap();
    let tasks = plan_op(&workdir).unwrap();
    let plan = plan_of(&workdir);
    let names: Vec<&str> = tasks.iter().map(|t| t.name.as_str()).collect();
    assert!(names.contains(&"encode-chunk-0000-r240") && names.contains(&"package-r120"));
    assert_eq!(names.last(), Some(&"publish"));
    encode_all(&workdir).unwrap();
    let r = plan.ladder.as_ref().unwrap().rendition("r240").unwrap();
    crate::support::damage(&plan.chunk_path_of(&workdir, &plan.chunks[1], Some(r)));
    let err = ladder::package_rendition(&workdir, "r240").unwrap_err();
    assert!(err.to_string().contains("decode"), "{err}");
    assert!(!out.exists(), "nothing at the output path");
    // The other rendition still packages; publish refuses without r240's.
    ladder::package_rendition(&workdir, "r120").unwrap();
    assert!(ladder::publish(&workdir).is_err());
    assert!(!out.exists());
}

#[test]
fn segments_start_at_scene_changes_in_every_rendition() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::scene_cuts(dir.path()).unwrap();
    let out = dir.path().join("ladder");
    let workdir = dir.path().join("w");
    let mut ladder = parse_ladder_file(TWO_RUNGS).unwrap();
    ladder.segment_seconds = 2.0;
    let report = run_ladder(&workdir, &ladder_request(&src, &out, ladder)).unwrap();
    let plan = plan_of(&workdir);
    let segments = &plan.ladder.as_ref().unwrap().segments;
    // Cuts at 3 s and 6 s (frames 75, 150) start segments; 2 s apart otherwise.
    assert_eq!(segments, &[0, 50, 75, 125, 150, 200], "{segments:?}");
    check_ladder(&src, &out, &report, dir.path());
    let playlist = std::fs::read_to_string(out.join("r240/index.m3u8")).unwrap();
    assert_eq!(
        extinf(&playlist),
        [2.0, 1.0, 2.0, 1.0, 2.0, 1.0],
        "{playlist}"
    );
}
