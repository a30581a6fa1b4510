//! The thumbnail plan, track and argv, without ffmpeg.
use super::*;

fn video(w: u32, h: u32, sar: &str, rotation: i64) -> MediaInfo {
    MediaInfo::from_ffprobe_json(&format!(
        r#"{{"format": {{"format_name": "mov"}}, "streams": [
            {{"index": 0, "codec_type": "audio"}},
            {{"index": 1, "codec_type": "video", "width": {w}, "height": {h},
              "sample_aspect_ratio": "{sar}", "side_data_list": [{{"rotation": {rotation}}}]}}]}}"#
    ))
    .unwrap()
}

fn index(time_base: (i64, i64), pts: Vec<i64>, last_duration: i64) -> FrameIndex {
    FrameIndex {
        time_base,
        keyframes: vec![0],
        pts,
        last_duration,
        timestamp_faults: 0,
    }
}

fn plan(info: &MediaInfo, idx: &FrameIndex, opts: &ThumbOptions) -> Result<ThumbPlan> {
    plan_thumbnails(Path::new("/v/in.mp4"), info, idx, opts)
}

fn cfr(frames: i64) -> FrameIndex {
    index((1, 12_800), (0..frames).map(|n| n * 512).collect(), 512)
}

#[test]
fn tiles_show_the_frame_at_or_just_after_each_interval() {
    let v = video(320, 240, "1:1", 0);
    // 25 fps, 4 s: tiles at 0 and 2 s fall on frames 0 and 50.
    let p = plan(&v, &cfr(100), &ThumbOptions::default()).unwrap();
    assert_eq!(
        (p.tile_frames.clone(), p.duration_us, p.stream),
        (vec![0, 50], 4_000_000, 1)
    );
    // NTSC starting at 0.5 s: 2 s after the first frame is 60000 ticks; frame 60 is at 60060.
    let ntsc = index(
        (1, 30_000),
        (0..125).map(|n| 15_000 + n * 1001).collect(),
        1001,
    );
    let p = plan(&v, &ntsc, &ThumbOptions::default()).unwrap();
    assert_eq!(p.tile_frames, vec![0, 60, 120]);
    // 0.7 s on 25 fps: 17.5 frames -> frame 18 (at or after), 35, 52.5 -> 53.
    let opts = ThumbOptions {
        interval_seconds: 0.7,
        ..Default::default()
    };
    let p = plan(&v, &cfr(60), &opts).unwrap();
    assert_eq!(p.tile_frames, vec![0, 18, 35, 53]);
    // Exactly on a frame is that frame, not the next.
    let opts = ThumbOptions {
        interval_seconds: 0.16,
        ..Default::default()
    };
    assert_eq!(
        plan(&v, &cfr(10), &opts).unwrap().tile_frames,
        vec![0, 4, 8]
    );
}

#[test]
fn a_frame_over_several_tile_times_fills_them_all() {
    let v = video(320, 240, "1:1", 0);
    // ms time base: frames at 0, 5.0, 5.04 .. 7.96 s; 8 s long.
    let mut pts = vec![0];
    pts.extend((0..75).map(|n| 5_000 + n * 40));
    let p = plan(&v, &index((1, 1000), pts, 40), &ThumbOptions::default()).unwrap();
    assert_eq!(p.tile_frames, vec![0, 1, 1, 26]);
    assert_eq!(p.shown, vec![(0, 0), (5_000, 1), (6_000, 3)]);
    let graph = thumbnail_graph(&p);
    assert!(
        graph.contains("setpts='if(lt(N,2),if(lt(N,1),0,1),if(lt(N,3),3,4))'"),
        "{graph}"
    );
    // A long last frame fills the tail (tpad), and the cues reach its end.
    let p = plan(
        &v,
        &index((1, 1000), vec![0, 40, 80], 5_000),
        &ThumbOptions::default(),
    )
    .unwrap();
    assert_eq!(
        (p.tile_frames.clone(), p.duration_us),
        (vec![0, 2, 2], 5_080_000)
    );
    assert!(p
        .vtt()
        .ends_with("00:00:04.000 --> 00:00:05.080\nthumbs-001.jpg#xywh=320,0,160,120\n"));
}

#[test]
fn the_track_is_contiguous_from_zero_to_the_end() {
    let v = video(320, 240, "1:1", 0);
    let opts = ThumbOptions {
        interval_seconds: 0.3,
        columns: 3,
        rows: 2,
        ..Default::default()
    };
    let p = plan(&v, &cfr(50), &opts).unwrap();
    assert_eq!((p.count(), p.sheets, p.columns, p.rows), (7, 2, 3, 2));
    let want = "WEBVTT\n\n00:00:00.000 --> 00:00:00.300\nthumbs-001.jpg#xywh=0,0,160,120\n\
        \n00:00:00.300 --> 00:00:00.600\nthumbs-001.jpg#xywh=160,0,160,120\n";
    assert!(p.vtt().starts_with(want), "{}", p.vtt());
    assert!(p
        .vtt()
        .contains("\n00:00:01.500 --> 00:00:01.800\nthumbs-001.jpg#xywh=320,120,160,120\n"));
    assert!(p
        .vtt()
        .ends_with("\n00:00:01.800 --> 00:00:02.000\nthumbs-002.jpg#xywh=0,0,160,120\n"));
    assert_eq!(vtt_time(3_723_456_600), "01:02:03.457");
}

#[test]
fn one_sheet_is_cut_to_the_tiles_it_holds() {
    let v = video(320, 240, "1:1", 0);
    let p = plan(&v, &cfr(25 * 13), &ThumbOptions::default()).unwrap();
    assert_eq!((p.count(), p.columns, p.rows, p.sheets), (7, 7, 1, 1));
    let p = plan(&v, &cfr(25 * 61), &ThumbOptions::default()).unwrap();
    assert_eq!((p.count(), p.columns, p.rows, p.sheets), (31, 10, 4, 1));
    let p = plan(&v, &cfr(25 * 401), &ThumbOptions::default()).unwrap();
    assert_eq!((p.count(), p.columns, p.rows, p.sheets), (201, 10, 10, 3));
    assert_eq!(p.tile_rect(200), (3, [0, 0, 160, 120]));
    assert_eq!(p.tile_rect(123), (2, [480, 240, 160, 120]));
}

#[test]
fn a_long_video_gets_a_larger_whole_second_interval() {
    let v = video(320, 240, "1:1", 0);
    // 3 hours at 1 fps: 10800 s / 2000 = 5.4 -> 6 s, 1800 tiles.
    let idx = index((1, 1), (0..10_800).collect(), 1);
    let p = plan(&v, &idx, &ThumbOptions::default()).unwrap();
    assert_eq!((p.interval_us, p.count(), p.sheets), (6_000_000, 1800, 18));
    assert_eq!(p.tile_frames[1], 6);
    // Just at the bound keeps the interval.
    let idx = index((1, 1), (0..4_000).collect(), 1);
    assert_eq!(
        plan(&v, &idx, &ThumbOptions::default()).unwrap().count(),
        MAX_TILES
    );
}

#[test]
fn tiles_and_poster_take_the_display_shape() {
    // 4:3 pixels on 320x240 display at 426.7x240.
    let p = plan(
        &video(320, 240, "4:3", 0),
        &cfr(100),
        &ThumbOptions::default(),
    )
    .unwrap();
    assert_eq!((p.tile, p.poster), ((160, 90), (426, 240)));
    // A quarter turn swaps the sides.
    let p = plan(
        &video(320, 240, "1:1", -90),
        &cfr(100),
        &ThumbOptions::default(),
    )
    .unwrap();
    assert_eq!((p.tile, p.poster), ((160, 214), (240, 320)));
    // The poster is never upscaled, and is even.
    let opts = ThumbOptions {
        poster_width: Some(1000),
        ..Default::default()
    };
    assert_eq!(
        plan(&video(333, 250, "1:1", 180), &cfr(100), &opts)
            .unwrap()
            .poster,
        (332, 250)
    );
    let opts = ThumbOptions {
        poster_width: Some(160),
        ..Default::default()
    };
    assert_eq!(
        plan(&video(320, 240, "1:1", 0), &cfr(100), &opts)
            .unwrap()
            .poster,
        (160, 120)
    );
}

#[test]
fn the_poster_is_chosen_among_frames_from_10_to_90_percent() {
    let p = plan(
        &video(320, 240, "1:1", 0),
        &cfr(100),
        &ThumbOptions::default(),
    )
    .unwrap();
    let want: Vec<i64> = (1..=9).map(|k| k * 10 * 512).collect();
    assert_eq!(p.poster_pts, want);
    // Few frames: the candidates repeat and are kept once.
    let p = plan(
        &video(320, 240, "1:1", 0),
        &cfr(3),
        &ThumbOptions::default(),
    )
    .unwrap();
    assert_eq!(p.poster_pts, vec![512, 1024]);
    assert!(thumbnail_graph(&p).contains("thumbnail=n=2,scale=320:240"));
}

#[test]
fn bad_inputs_and_options_are_refused_in_one_line() {
    let v = video(320, 240, "1:1", 0);
    let audio = MediaInfo::from_ffprobe_json(
        r#"{"format": {"format_name": "mov"}, "streams": [{"index": 0, "codec_type": "audio"}]}"#,
    )
    .unwrap();
    let err =
        |info: &MediaInfo, idx: &FrameIndex, o: &ThumbOptions| plan(info, idx, o).unwrap_err();
    let d = ThumbOptions::default();
    assert!(matches!(
        err(&audio, &cfr(10), &d),
        MediaError::NoVideo { .. }
    ));
    assert!(matches!(
        err(&v, &index((1, 25), vec![], 0), &d),
        MediaError::NoFrames { .. }
    ));
    let cases: Vec<(MediaInfo, FrameIndex, ThumbOptions, &str)> = vec![
        (
            video(8, 240, "1:1", 0),
            cfr(10),
            d.clone(),
            "8x240 pixels, too small",
        ),
        (
            video(320, 240, "20:1", 0),
            cfr(10),
            d.clone(),
            "aspect ratio past 16:1",
        ),
        (
            v.clone(),
            index((1, 25), vec![7], 0),
            d.clone(),
            "single frame with no duration",
        ),
        (
            v.clone(),
            index((1, 1), vec![i64::MIN, i64::MAX], 1),
            d.clone(),
            "timestamps are damaged",
        ),
        (
            v.clone(),
            cfr(10),
            ThumbOptions {
                interval_seconds: f64::NAN,
                ..d.clone()
            },
            "interval NaN s",
        ),
        (
            v.clone(),
            cfr(10),
            ThumbOptions {
                interval_seconds: 0.01,
                ..d.clone()
            },
            "outside 0.1 to 3600",
        ),
        (
            v.clone(),
            cfr(10),
            ThumbOptions {
                tile_width: 4000,
                ..d.clone()
            },
            "tile width 4000",
        ),
        (
            v.clone(),
            cfr(10),
            ThumbOptions {
                rows: 0,
                ..d.clone()
            },
            "columns and rows must be 1 to 100",
        ),
        (
            v.clone(),
            cfr(10),
            ThumbOptions {
                poster_width: Some(9000),
                ..d.clone()
            },
            "poster width 9000",
        ),
        (
            video(320, 3200, "1:1", 0),
            cfr(25 * 300),
            ThumbOptions {
                tile_width: 1000,
                ..d.clone()
            },
            "larger than 16384 pixels a side",
        ),
    ];
    for (info, idx, opts, want) in cases {
        let e = err(&info, &idx, &opts);
        let msg = e.to_string();
        assert!(
            msg.contains(want) && !msg.contains('\n') && e.is_user_error(),
            "{msg}"
        );
    }
}

#[test]
fn the_argv_opens_one_file_and_writes_two_outputs() {
    let a: Vec<String> = thumbnail_args(
        Path::new("/v/in.mp4"),
        Path::new("/o/.t/g"),
        Path::new("/o/.t"),
    )
    .iter()
    .map(|s| s.to_string_lossy().into_owned())
    .collect();
    let tail = "-filter_complex_script /o/.t/g -map [sheets] -fps_mode passthrough -c:v mjpeg -q:v 4 -f image2 \
        -start_number 1 /o/.t/thumbs-%03d.jpg -map [poster] -frames:v 1 -fps_mode passthrough -c:v mjpeg -q:v 2 \
        -f image2 -update 1 /o/.t/poster.jpg";
    let s = a.join(" ");
    assert!(
        s.starts_with("-nostdin -y -v error -copyts -protocol_whitelist file -format_whitelist "),
        "{s}"
    );
    assert!(
        s.contains(" -i file:/v/in.mp4 ") && s.ends_with(tail),
        "{s}"
    );
}

#[test]
fn the_select_tree_finds_each_key_in_log_steps() {
    let keys: Vec<i64> = (0..2000).map(|k| k * 3).collect();
    let s = select_pts_for_test(&keys);
    // Depth 11 of nested ifs for 2000 keys, each key once as a leaf.
    assert_eq!(s.matches("eq(pts,").count(), 2000);
    assert_eq!(s.matches("if(").count(), 1999);
    assert!(
        s.starts_with("select='(if(lt(pts,3000),if(lt(pts,1500),"),
        "{}",
        &s[..80]
    );
}

fn select_pts_for_test(keys: &[i64]) -> String {
    let plan = ThumbPlan {
        stream: 0,
        interval_us: 1,
        duration_us: 1,
        tile_frames: vec![0],
        shown: keys
            .iter()
            .enumerate()
            .map(|(i, &k)| (k, i as u32))
            .collect(),
        poster_pts: vec![0],
        tile: (2, 2),
        poster: (2, 2),
        columns: 1,
        rows: 1,
        sheets: 1,
    };
    let g = thumbnail_graph(&plan);
    let start = g.find("select=").unwrap();
    g[start..g.find(",scale=").unwrap()].to_string()
}
