//! Table tests of the argv builders.
use super::*;

fn s(v: &[OsString]) -> String {
    v.iter()
        .map(|x| x.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

#[test]
fn codec_args_table() {
    let mut set = EncodeSettings::new(Codec::X264);
    set.threads_per_chunk = 2;
    let table: [(Codec, Option<u32>, Option<&str>, &str); 6] = [
        (Codec::X264, None, Some("yuv420p"), "-c:v libx264 -crf 23 -preset medium -threads 2 -pix_fmt yuv420p"),
        (
            Codec::X265,
            Some(20),
            Some("yuv420p10le"),
            "-c:v libx265 -crf 20 -preset medium -x265-params pools=2:frame-threads=2:log-level=error -pix_fmt yuv420p10le",
        ),
        (Codec::SvtAv1, None, Some("yuv422p"), "-c:v libsvtav1 -crf 35 -preset 8 -svtav1-params lp=2"),
        (
            Codec::Vp9,
            None,
            None,
            "-c:v libvpx-vp9 -b:v 0 -crf 32 -row-mt 1 -threads 2 -deadline good -cpu-used 4",
        ),
        (Codec::Ffv1, None, Some("yuv420p"), "-c:v ffv1 -level 3 -slicecrc 1 -g 1 -threads 2"),
        (Codec::X264, Some(18), Some("bgr0"), "-c:v libx264 -crf 18 -preset medium -threads 2"),
    ];
    for (codec, crf, pix, want) in table {
        set.codec = codec;
        set.crf = crf;
        assert_eq!(s(&codec_args(&set, pix)), want);
    }
}

/// How every user-supplied file is opened (see `runner::media_input`).
const MEDIA: &str =
    "-protocol_whitelist file -format_whitelist mov,matroska,avi,flv,mpegts,mpeg,nut,ogg,asf,mxf,ivf,yuv4mpegpipe,dv";

#[test]
fn chunk_args_select_exact_pts_and_seek_past_the_keyframe() {
    let src = ChunkSource {
        input: Path::new("/in.mkv"),
        video_stream: 0,
        time_base: (1, 1000),
        format_start: 0.0,
        first_pts: 21,
        pix_fmt: Some("yuv420p"),
    };
    let chunk = ChunkPlan {
        index: 1,
        first: 40,
        count: 40,
        seek_pts: 1229,
        start_pts: 1610,
        end_pts: 3211,
    };
    let got = s(&chunk_encode_args(
        &src,
        &chunk,
        &EncodeSettings::new(Codec::Ffv1),
        Path::new("/w/c.mkv"),
    ));
    assert!(
        got.contains(&format!(
            "-copyts -ss 1.229500 -noautorotate {MEDIA} -i file:/in.mkv -map 0:0"
        )),
        "{got}"
    );
    assert!(got.contains("select='gte(pts,1610)*lt(pts,3211)'"), "{got}");
    assert!(
        got.contains("-fps_mode passthrough -enc_time_base -1 -frames:v 40"),
        "{got}"
    );
    assert!(
        got.ends_with("-an -sn -dn -map_metadata -1 -map_chapters -1 -f nut /w/c.mkv"),
        "{got}"
    );
    let first = ChunkPlan {
        seek_pts: 21,
        start_pts: 21,
        first: 0,
        ..chunk
    };
    assert!(!s(&chunk_encode_args(
        &src,
        &first,
        &EncodeSettings::new(Codec::Ffv1),
        Path::new("/c")
    ))
    .contains("-ss"));
}

#[test]
fn subtitle_codecs_by_container() {
    assert_eq!(subtitle_codec(Container::Mp4, "subrip"), Some("mov_text"));
    assert_eq!(subtitle_codec(Container::Mp4, "hdmv_pgs_subtitle"), None);
    assert_eq!(
        subtitle_codec(Container::Mkv, "hdmv_pgs_subtitle"),
        Some("copy")
    );
    assert_eq!(subtitle_codec(Container::Mkv, "mov_text"), Some("srt"));
    assert_eq!(subtitle_codec(Container::Webm, "subrip"), Some("webvtt"));
}

#[test]
fn concat_list_quotes_paths_and_keeps_precision() {
    let e = [ConcatEntry {
        path: Path::new("/w/it's.mkv"),
        seconds: 1001.0 / 30000.0,
    }];
    assert_eq!(
        concat_list(&e),
        "ffconcat version 1.0\nfile '/w/it'\\''s.mkv'\nduration 0.033366667\n"
    );
}

#[test]
fn mux_args_offsets_inputs_and_maps_streams() {
    let m = MuxPlan {
        concat_list: Path::new("/w/concat.txt"),
        video_offset: 0.021,
        audio: Some(Path::new("/w/audio.mka")),
        // The first audio stream is copied from the source, the second was encoded.
        audio_copy: vec![true, false],
        source: Path::new("/in.mkv"),
        format_start: 0.0,
        subtitles: vec!["mov_text"],
        video_stream: 0,
        rotation: Some(-90),
        container: Container::Mp4,
        out: Path::new("/o/.out.mp4.tessera-tmp"),
    };
    let got = s(&mux_args(&m));
    assert!(
        got.contains(
            "-copyts -f concat -safe 0 -itsoffset 0.021000 \
             -protocol_whitelist file -format_whitelist concat,nut -i file:/w/concat.txt \
             -protocol_whitelist file -format_whitelist nut,matroska -i file:/w/audio.mka"
        ),
        "{got}"
    );
    assert!(
        got.contains(&format!(
            "-itsoffset -0.000000 {MEDIA} -i file:/in.mkv -map 0:v:0 -map 2:a:0 -map 1:a:0 -map 2:s:0 -c copy -c:s:0 mov_text"
        )),
        "{got}"
    );
    assert!(
        got.contains(
            "-map_metadata 2 -map_metadata:s:v:0 2:s:0 -map_metadata:s:a:0 2:s:a:0 -map_metadata:s:a:1 2:s:a:1 \
             -map_metadata:s:s:0 2:s:s:0 -map_chapters 2 -metadata:s:v:0 rotate=270"
        ),
        "{got}"
    );
    assert!(got.ends_with("-f mp4 /o/.out.mp4.tessera-tmp"), "{got}");
}
