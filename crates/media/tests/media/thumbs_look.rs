//! What thumbnails show: the right frames (VFR with an odd start and a
//! gap, NTSC with B-frames), the display shape (SAR, rotation), and a
//! poster that is not the black opening.

use crate::thumbs::{check_track, ffmpeg, mean_luma, probed, size_of};
use std::path::{Path, PathBuf};
use tessera_media::thumbs::ThumbOptions;
use tessera_media::*;
/// 50 frames whose luma is `16 + 4 * N` (frame N in presentation order).
fn ramp(dir: &Path, name: &str, timing: &[&str]) -> PathBuf {
    let out = dir.join(name);
    let mut a = vec![
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=96x64:r=25:d=2,format=yuv420p,geq=lum='16+4*N':cb=128:cr=128",
    ];
    a.extend_from_slice(timing);
    a.extend_from_slice(&["-c:v", "libx264", "-qp", "0", "-g", "12"]);
    a.push(out.to_str().unwrap());
    ffmpeg(&a);
    out
}

#[test]
fn each_tile_shows_its_frame_on_vfr_and_ntsc_clips() {
    let dir = tempfile::tempdir().unwrap();
    let vfr = ramp(
        dir.path(),
        "vfr.mkv",
        &[
            "-vf",
            "settb=1/1000,setpts='(1.5+N/25+0.013*sin(N*1.7))/TB'",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "1:1000",
            "-preset",
            "ultrafast",
        ],
    );
    let ntsc = ramp(
        dir.path(),
        "ntsc.mp4",
        &[
            "-vf",
            "setpts=N*1001/30000/TB",
            "-r",
            "30000/1001",
            "-bf",
            "2",
            "-video_track_timescale",
            "30000",
        ],
    );
    // A 1.2 s gap after frame 9: frame 10 fills the tiles in it.
    let gap = ramp(
        dir.path(),
        "gap.mkv",
        &[
            "-vf",
            "settb=1/1000,setpts='(N+30*gte(N,10))/25/TB'",
            "-fps_mode",
            "passthrough",
            "-enc_time_base",
            "1:1000",
            "-preset",
            "ultrafast",
        ],
    );
    let opts = ThumbOptions {
        interval_seconds: 0.3,
        ..Default::default()
    };
    for src in [vfr, ntsc, gap] {
        let (info, index) = probed(&src);
        assert_eq!(index.len(), 50);
        let out = dir.path().join("t");
        let t = write_thumbnails(&src, &info, &index, &out, &opts).unwrap();
        let cues = check_track(&out, &t, &index, 0.3);
        let mut shown = Vec::new();
        for (k, cue) in cues.iter().enumerate() {
            assert_eq!(
                cue.start_ms,
                300 * k as u64,
                "cue times from the first frame"
            );
            // The frame at or just after k * 0.3 s past the first frame.
            let want = (0..index.len())
                .find(|&i| index.seconds(index.pts[i] - index.pts[0]) >= 0.3 * k as f64 - 1e-9)
                .unwrap();
            let luma = mean_luma(&out.join(&cue.sprite), cue.rect);
            let seen = luma * 219.0 / 255.0 / 4.0;
            assert!(
                (seen - want as f64).abs() < 0.3,
                "{}: tile {k} shows frame {seen:.2}, not {want}",
                src.display()
            );
            shown.push(want);
        }
        if src.ends_with("gap.mkv") {
            assert_eq!(&shown[..7], [0, 8, 10, 10, 10, 10, 15]);
        }
    }
}

#[test]
fn anamorphic_and_rotated_clips_give_tiles_as_a_player_shows_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sar = d.join("sar.mp4");
    let plain = d.join("plain.mp4");
    let rot = d.join("rot.mp4");
    let src = "testsrc2=s=320x240:r=25:d=1";
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        src,
        "-vf",
        "setsar=4/3",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        sar.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        src,
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        plain.to_str().unwrap(),
    ]);
    ffmpeg(&[
        "-i",
        plain.to_str().unwrap(),
        "-c",
        "copy",
        "-metadata:s:v:0",
        "rotate=90",
        rot.to_str().unwrap(),
    ]);
    let opts = ThumbOptions {
        interval_seconds: 0.25,
        ..Default::default()
    };
    for (src, tile, poster) in [
        (&sar, (160, 90), (426, 240)),
        (&rot, (160, 214), (240, 320)),
    ] {
        let (info, index) = probed(src);
        let out = d.join("t");
        let t = write_thumbnails(src, &info, &index, &out, &opts).unwrap();
        assert_eq!(t.tile, tile, "{}", src.display());
        assert_eq!(size_of(&out.join(&t.sprites[0])), (tile.0 * 4, tile.1));
        assert_eq!(size_of(&out.join(&t.poster)), poster);
        check_track(&out, &t, &index, 0.25);
    }
}

#[test]
fn the_poster_skips_a_black_opening() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("fade.mp4");
    ffmpeg(&[
        "-f",
        "lavfi",
        "-i",
        "color=c=black:s=160x120:r=25:d=1.5[a];testsrc2=s=160x120:r=25:d=2.5[b];[a][b]concat=n=2:v=1:a=0",
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        src.to_str().unwrap(),
    ]);
    let (info, index) = probed(&src);
    let out = dir.path().join("t");
    let t = write_thumbnails(&src, &info, &index, &out, &ThumbOptions::default()).unwrap();
    let first_tile = mean_luma(&out.join(&t.sprites[0]), [0, 0, 160, 120]);
    let poster = mean_luma(&out.join(&t.poster), [0, 0, 160, 120]);
    assert!(
        first_tile < 5.0 && poster > 40.0,
        "first tile {first_tile}, poster {poster}"
    );
}
