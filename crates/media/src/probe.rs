//! ffprobe: the typed model of a media file (`MediaInfo`) and the
//! packet-level frame index of its first video stream (`FrameIndex`).

use crate::error::{MediaError, Result};
use crate::runner::{self, argv, Tool};
use crate::verdict::{input_error, looks_truncated, short};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// What ffprobe says about a file: container, streams, chapters.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MediaInfo {
    pub format_name: String,
    /// Seconds; `None` when the container does not say.
    pub start_time: Option<f64>,
    pub duration: Option<f64>,
    pub tags: BTreeMap<String, String>,
    pub streams: Vec<StreamInfo>,
    pub chapters: Vec<Chapter>,
}

/// One stream of a file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StreamInfo {
    pub index: u32,
    /// `video`, `audio`, `subtitle`, `data`, `attachment`.
    pub kind: String,
    pub codec_name: Option<String>,
    pub time_base: (i64, i64),
    pub start_pts: Option<i64>,
    pub start_time: Option<f64>,
    pub pix_fmt: Option<String>,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Sample (pixel) aspect ratio as (num, den); `None` when square or
    /// unknown (ffprobe's `0:1`). Older `probe.json` files lack it.
    #[serde(default)]
    pub sample_aspect_ratio: Option<(u32, u32)>,
    pub avg_frame_rate: Option<String>,
    pub channels: Option<u32>,
    pub tags: BTreeMap<String, String>,
    /// Dispositions that are set (`default`, `forced`, ...).
    pub disposition: Vec<String>,
    /// Display-matrix rotation in degrees, if any.
    pub rotation: Option<i64>,
    /// `attached_pic` streams (cover art) are not video to encode.
    pub attached_pic: bool,
}

impl StreamInfo {
    pub fn language(&self) -> Option<&str> {
        self.tags.get("language").map(String::as_str)
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Chapter {
    pub start_time: f64,
    pub end_time: f64,
    pub title: Option<String>,
}

impl MediaInfo {
    /// Streams of `kind` in file order (video excludes cover art).
    pub fn streams_of<'a>(&'a self, kind: &'a str) -> impl Iterator<Item = &'a StreamInfo> + 'a {
        self.streams
            .iter()
            .filter(move |s| s.kind == kind && !s.attached_pic)
    }

    pub fn video(&self) -> Option<&StreamInfo> {
        self.streams_of("video").next()
    }

    /// Parses `ffprobe -show_format -show_streams -show_chapters -of json`.
    pub fn from_ffprobe_json(json: &str) -> std::result::Result<Self, serde_json::Error> {
        let raw: raw::Root = serde_json::from_str(json)?;
        let format = raw.format.unwrap_or_default();
        Ok(MediaInfo {
            format_name: format.format_name.unwrap_or_default(),
            start_time: num(&format.start_time),
            duration: num(&format.duration),
            tags: format.tags,
            streams: raw.streams.into_iter().map(stream).collect(),
            chapters: raw
                .chapters
                .into_iter()
                .map(|c| Chapter {
                    start_time: num(&c.start_time).unwrap_or(0.0),
                    end_time: num(&c.end_time).unwrap_or(0.0),
                    title: c.tags.get("title").cloned(),
                })
                .collect(),
        })
    }
}

fn num(s: &Option<String>) -> Option<f64> {
    s.as_deref().and_then(|s| s.parse().ok())
}

fn ratio(s: &str) -> Option<(i64, i64)> {
    let (a, b) = s.split_once('/')?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

/// ffprobe's `sample_aspect_ratio` (`4:3`); square and unknown (`1:1`,
/// `0:1`) are `None`.
fn sar(s: &str) -> Option<(u32, u32)> {
    let (a, b) = s.split_once(':')?;
    let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && b > 0 && a != b).then_some((a, b))
}

fn stream(s: raw::Stream) -> StreamInfo {
    let rotation = s
        .side_data_list
        .iter()
        .find_map(|d| d.rotation)
        .or_else(|| {
            s.tags
                .get("rotate")
                .and_then(|r| r.parse::<i64>().ok())
                .map(|r| -r)
        });
    StreamInfo {
        index: s.index,
        kind: s.codec_type.unwrap_or_default(),
        codec_name: s.codec_name,
        time_base: s.time_base.as_deref().and_then(ratio).unwrap_or((1, 1)),
        start_pts: s.start_pts,
        start_time: num(&s.start_time),
        pix_fmt: s.pix_fmt,
        width: s.width,
        height: s.height,
        sample_aspect_ratio: s.sample_aspect_ratio.as_deref().and_then(sar),
        avg_frame_rate: s.avg_frame_rate,
        channels: s.channels,
        attached_pic: s.disposition.get("attached_pic").copied().unwrap_or(0) != 0,
        disposition: s
            .disposition
            .into_iter()
            .filter(|(_, v)| *v != 0)
            .map(|(k, _)| k)
            .collect(),
        tags: s.tags,
        rotation,
    }
}

mod raw {
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Deserialize)]
    pub struct Root {
        pub format: Option<Format>,
        #[serde(default)]
        pub streams: Vec<Stream>,
        #[serde(default)]
        pub chapters: Vec<Chapter>,
    }
    #[derive(Deserialize, Default)]
    pub struct Format {
        pub format_name: Option<String>,
        pub start_time: Option<String>,
        pub duration: Option<String>,
        #[serde(default)]
        pub tags: BTreeMap<String, String>,
    }
    #[derive(Deserialize)]
    pub struct Stream {
        pub index: u32,
        pub codec_type: Option<String>,
        pub codec_name: Option<String>,
        pub time_base: Option<String>,
        pub start_pts: Option<i64>,
        pub start_time: Option<String>,
        pub pix_fmt: Option<String>,
        pub width: Option<u32>,
        pub height: Option<u32>,
        pub sample_aspect_ratio: Option<String>,
        pub avg_frame_rate: Option<String>,
        pub channels: Option<u32>,
        #[serde(default)]
        pub tags: BTreeMap<String, String>,
        #[serde(default)]
        pub disposition: BTreeMap<String, i64>,
        #[serde(default)]
        pub side_data_list: Vec<SideData>,
    }
    #[derive(Deserialize)]
    pub struct SideData {
        pub rotation: Option<i64>,
    }
    #[derive(Deserialize)]
    pub struct Chapter {
        pub start_time: Option<String>,
        pub end_time: Option<String>,
        #[serde(default)]
        pub tags: BTreeMap<String, String>,
    }
}

/// Every frame of the first video stream, from packets (demux only).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrameIndex {
    /// Stream time base as (num, den).
    pub time_base: (i64, i64),
    /// Presentation timestamps, sorted: index i is the i-th frame shown.
    pub pts: Vec<i64>,
    /// Presentation indices of keyframes, ascending.
    pub keyframes: Vec<u32>,
    /// Duration of the last frame in time-base units (0 when unknown).
    pub last_duration: i64,
    /// Timestamp faults seen in file order: packets whose dts did not
    /// increase, plus frames sharing a pts with another. 0 for a sound file;
    /// a naive segment-and-concat join typically leaves some at each seam.
    #[serde(default)]
    pub timestamp_faults: u32,
}

impl FrameIndex {
    pub fn len(&self) -> usize {
        self.pts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pts.is_empty()
    }

    /// `pts` (time-base units) in seconds.
    pub fn seconds(&self, pts: i64) -> f64 {
        pts as f64 * self.time_base.0 as f64 / self.time_base.1 as f64
    }

    /// Presentation time where the stream ends (last pts + its duration).
    pub fn end_pts(&self) -> i64 {
        self.pts.last().map_or(0, |p| p + self.last_duration)
    }

    /// Mean frame interval in seconds (0 for fewer than two frames).
    pub fn mean_frame_seconds(&self) -> f64 {
        match (self.pts.first(), self.pts.last()) {
            (Some(a), Some(b)) if self.pts.len() > 1 => {
                self.seconds(b.saturating_sub(*a)) / (self.pts.len() - 1) as f64
            }
            _ => 0.0,
        }
    }

    /// Parses `ffprobe -show_entries packet=pts,dts,duration,flags -of csv`.
    /// Packets flagged discard (`D`) are never shown and are left out.
    pub fn from_packet_csv(
        csv: &str,
        time_base: (i64, i64),
    ) -> std::result::Result<Self, IndexError> {
        let mut frames: Vec<(i64, bool, i64)> = Vec::new();
        let mut faults = 0u32;
        let mut last_dts: Option<i64> = None;
        for line in csv.lines() {
            let mut f = line.trim().split(',');
            if f.next() != Some("packet") {
                continue;
            }
            let (pts, dts, dur, flags) = (f.next(), f.next(), f.next(), f.next().unwrap_or(""));
            if flags.as_bytes().get(1) == Some(&b'D') {
                continue;
            }
            if let Some(d) = dts.and_then(|d| d.parse::<i64>().ok()) {
                if last_dts.is_some_and(|l| d <= l) {
                    faults += 1;
                }
                last_dts = Some(d);
            }
            let pts = pts
                .and_then(|p| p.parse::<i64>().ok())
                .ok_or(IndexError::NoTimestamps)?;
            let dur = dur.and_then(|d| d.parse::<i64>().ok()).unwrap_or(0);
            frames.push((pts, flags.starts_with('K'), dur));
        }
        if frames.is_empty() {
            return Err(IndexError::NoFrames);
        }
        frames.sort_by_key(|f| f.0);
        faults += frames.windows(2).filter(|w| w[0].0 == w[1].0).count() as u32;
        let keyframes = frames
            .iter()
            .enumerate()
            .filter(|(_, f)| f.1)
            .map(|(i, _)| i as u32)
            .collect();
        let last_duration = frames.last().map_or(0, |f| f.2);
        Ok(FrameIndex {
            time_base,
            pts: frames.iter().map(|f| f.0).collect(),
            keyframes,
            last_duration,
            timestamp_faults: faults,
        })
    }
}

#[derive(Debug, PartialEq, Eq)]
pub enum IndexError {
    NoFrames,
    NoTimestamps,
}

/// Checks that `path` exists and is non-empty.
pub(crate) fn check_input_file(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(MediaError::InputMissing { path: path.into() })
        }
        Err(e) => Err(MediaError::io_at(path, "reading", e)),
        Ok(m) if m.is_dir() => Err(MediaError::NotMedia {
            path: path.into(),
            detail: "it is a directory".into(),
        }),
        Ok(m) if m.len() == 0 => Err(MediaError::InputEmpty { path: path.into() }),
        Ok(_) => Ok(()),
    }
}

/// Probes `path`: container, streams and chapters. Fails with a user error
/// when the file is missing, empty, not media or has no video stream.
pub fn probe(path: &Path) -> Result<MediaInfo> {
    check_input_file(path)?;
    let out = runner::run(Tool::Ffprobe, &probe_args(path)).map_err(|e| input_error(path, e))?;
    let info = MediaInfo::from_ffprobe_json(&out.stdout)
        .map_err(|e| MediaError::Internal(format!("ffprobe JSON for {}: {e}", path.display())))?;
    if info.streams.is_empty() {
        return Err(MediaError::NotMedia {
            path: path.into(),
            detail: "ffprobe found no streams".into(),
        });
    }
    if info.video().is_none() {
        return Err(MediaError::NoVideo { path: path.into() });
    }
    Ok(info)
}

/// ffprobe argv for [`probe`].
pub fn probe_args(path: &Path) -> Vec<std::ffi::OsString> {
    let mut a = argv([
        "-v",
        "error",
        "-show_format",
        "-show_streams",
        "-show_chapters",
        "-of",
        "json",
    ]);
    a.extend(runner::media_input(path));
    a
}

/// ffprobe argv for the packet index of the video stream with file index `stream`.
pub fn packet_index_args(path: &Path, stream: &str) -> Vec<std::ffi::OsString> {
    let mut a = argv(["-v", "error", "-select_streams"]);
    a.push(stream.into());
    a.extend(argv([
        "-show_entries",
        "packet=pts,dts,duration,flags",
        "-of",
        "csv",
    ]));
    a.extend(runner::media_input(path));
    a
}

/// Builds the frame index of the first video stream of `path`.
pub fn frame_index(path: &Path, info: &MediaInfo) -> Result<FrameIndex> {
    let video = info
        .video()
        .ok_or_else(|| MediaError::NoVideo { path: path.into() })?;
    let packets = runner::run(
        Tool::Ffprobe,
        &packet_index_args(path, &video.index.to_string()),
    );
    index_from_packets(path, info, packets)
}

/// [`probe`] and [`frame_index`] at once: both ffprobe passes run
/// concurrently (the packet pass selects `v:0`, the first video stream, which
/// is the stream [`MediaInfo::video`] names).
pub fn probe_and_index(path: &Path) -> Result<(MediaInfo, FrameIndex)> {
    let (info, packets) = std::thread::scope(|s| {
        let packets = s.spawn(|| runner::run(Tool::Ffprobe, &packet_index_args(path, "v:0")));
        let info = probe(path);
        let packets = packets.join().unwrap_or_else(|_| {
            Err(MediaError::Internal(
                "the ffprobe packet reader panicked".into(),
            ))
        });
        (info, packets)
    });
    let info = info?;
    let index = index_from_packets(path, &info, packets)?;
    Ok((info, index))
}

fn index_from_packets(
    path: &Path,
    info: &MediaInfo,
    packets: Result<runner::RunOutput>,
) -> Result<FrameIndex> {
    let video = info
        .video()
        .ok_or_else(|| MediaError::NoVideo { path: path.into() })?;
    let out = packets.map_err(|e| input_error(path, e))?;
    let lower = out.stderr.to_lowercase();
    if looks_truncated(&lower) {
        return Err(MediaError::Truncated {
            path: path.into(),
            detail: short(&runner::tail(&out.stderr)),
        });
    }
    let index = FrameIndex::from_packet_csv(&out.stdout, video.time_base).map_err(|e| match e {
        IndexError::NoFrames => MediaError::NoFrames { path: path.into() },
        IndexError::NoTimestamps => MediaError::NoTimestamps { path: path.into() },
    })?;
    check_not_truncated(path, info, &index)?;
    Ok(index)
}

/// A container that promises much more than its packets hold was cut short.
fn check_not_truncated(path: &Path, info: &MediaInfo, index: &FrameIndex) -> Result<()> {
    let (Some(duration), Some(first)) = (info.duration, index.pts.first()) else {
        return Ok(());
    };
    let start = info.start_time.unwrap_or(0.0);
    let video_end = index.seconds(index.end_pts());
    let expected_end = start + duration;
    let gap = expected_end - video_end;
    let span = video_end - index.seconds(*first);
    if gap > 2.0 && gap > 0.4 * duration {
        return Err(MediaError::Truncated {
            path: path.into(),
            detail: format!("container says {duration:.2}s, video packets stop after {span:.2}s"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_csv_sorts_into_presentation_order_and_skips_discarded() {
        let csv = "packet,0,-2,1,K_\npacket,3,-1,1,__\npacket,1,0,1,__\npacket,2,1,1,__\npacket,9,2,1,_D\n";
        let idx = FrameIndex::from_packet_csv(csv, (1, 25)).unwrap();
        assert_eq!(idx.pts, vec![0, 1, 2, 3]);
        assert_eq!(idx.keyframes, vec![0]);
        assert_eq!(idx.last_duration, 1);
    }

    #[test]
    fn packet_csv_without_pts_or_packets_is_refused() {
        assert_eq!(
            FrameIndex::from_packet_csv("packet,N/A,N/A,1,K_\n", (1, 1)),
            Err(IndexError::NoTimestamps)
        );
        assert_eq!(
            FrameIndex::from_packet_csv("", (1, 1)),
            Err(IndexError::NoFrames)
        );
    }

    #[test]
    fn ffprobe_json_parses_strings_as_numbers() {
        let json = r#"{"streams":[{"index":0,"codec_type":"video","codec_name":"h264","time_base":"1/1000",
          "start_pts":21,"start_time":"0.021000","disposition":{"default":1,"attached_pic":0},
          "side_data_list":[{"rotation":-90}],"tags":{"language":"eng"}}],
          "chapters":[{"start_time":"0.000000","end_time":"1.5","tags":{"title":"A"}}],
          "format":{"format_name":"matroska,webm","start_time":"0.000000","duration":"6.0"}}"#;
        let info = MediaInfo::from_ffprobe_json(json).unwrap();
        let v = info.video().unwrap();
        assert_eq!(v.time_base, (1, 1000));
        assert_eq!(v.rotation, Some(-90));
        assert_eq!(v.language(), Some("eng"));
        assert_eq!(v.disposition, vec!["default".to_string()]);
        assert_eq!(info.duration, Some(6.0));
        assert_eq!(info.chapters[0].title.as_deref(), Some("A"));
    }
}
