//! Decoding both videos to raw luma frames over a pipe, one reader thread
//! each, with a short bounded queue: memory stays a few frames whatever the
//! video's length, and decoding overlaps scoring.
//!
//! VMAF, PSNR-Y and SSIM all read the luma plane only, so ffmpeg hands over
//! just that plane (`extractplanes=y`): exact luma samples, half the pipe
//! traffic of 4:2:0, and no chroma-rounding question for odd sizes.

use crate::error::QualityError;
use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use tessera_media::runner::{self, argv, Tool};

/// Frames queued ahead per video: enough to overlap decoding with scoring,
/// few enough that an 8K 12-bit pair stays well under a gigabyte.
const QUEUE_FRAMES: usize = 2;

/// The raw frame format both videos are decoded to: the reference's size
/// and bit depth.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FrameFormat {
    pub width: u32,
    pub height: u32,
    /// 8, 10 or 12.
    pub bits: u32,
}

impl FrameFormat {
    /// Bytes per sample in the pipe: 1, or 2 (little-endian) above 8 bits.
    pub fn sample_bytes(&self) -> usize {
        if self.bits > 8 {
            2
        } else {
            1
        }
    }

    /// Bytes of one luma frame.
    pub fn frame_bytes(&self) -> usize {
        self.width as usize * self.height as usize * self.sample_bytes()
    }

    /// ffmpeg's name for the 4:2:0 format at this depth (the luma is then
    /// extracted from it).
    fn yuv(&self) -> &'static str {
        match self.bits {
            8 => "yuv420p",
            10 => "yuv420p10le",
            _ => "yuv420p12le",
        }
    }
}

/// The bit depth to decode a video of ffmpeg pixel format `pix_fmt` at: 10
/// or 12 when its name says so, 8 otherwise (deeper formats, rare in
/// delivery, are scored at 12 bits).
pub(crate) fn bits_of(pix_fmt: &str) -> u32 {
    if pix_fmt.contains("10") {
        10
    } else if pix_fmt.contains("12") || pix_fmt.contains("14") || pix_fmt.contains("16") {
        12
    } else {
        8
    }
}

/// Which frames of a video to hand over: from `first` (0-based, in decode
/// order), at most `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Range {
    pub first: u32,
    pub count: Option<u32>,
}

impl Range {
    pub const ALL: Range = Range {
        first: 0,
        count: None,
    };
}

/// ffmpeg's argv that writes `path`'s first video stream as raw luma frames
/// of `format` to stdout: every decoded frame in order (`-fps_mode
/// passthrough`: none dropped or duplicated), unrotated, the range cut by
/// frame number, scaled bicubically to the format's size (VMAF's guidance
/// for scoring a smaller rendition) when it differs. Pure: runs nothing.
pub(crate) fn decode_args(path: &Path, format: FrameFormat, range: Range) -> Vec<OsString> {
    let mut filters = Vec::new();
    if range != Range::ALL {
        let mut trim = format!("trim=start_frame={}", range.first);
        if let Some(n) = range.count {
            trim.push_str(&format!(
                ":end_frame={}",
                u64::from(range.first) + u64::from(n)
            ));
        }
        filters.push(trim);
    }
    filters.push(format!(
        "scale=w={}:h={}:flags=bicubic",
        format.width, format.height
    ));
    filters.push(format!("format={}", format.yuv()));
    filters.push("extractplanes=y".into());
    let mut a = argv(["-nostdin", "-v", "error", "-noautorotate"]);
    a.extend(runner::media_input(path));
    a.extend(argv([
        "-map",
        "0:v:0",
        "-an",
        "-sn",
        "-dn",
        "-fps_mode",
        "passthrough",
        "-vf",
        &filters.join(","),
    ]));
    if let Some(n) = range.count {
        a.extend(argv(["-frames:v", &n.to_string()]));
    }
    a.extend(argv(["-f", "rawvideo", "pipe:1"]));
    a
}

/// One video's frames arriving from its decoder thread.
pub(crate) struct Frames {
    path: PathBuf,
    rx: Receiver<Result<Vec<u8>, QualityError>>,
    /// Frames received so far.
    pub count: u64,
}

impl Frames {
    /// Starts ffmpeg on `path` and a thread that reads its frames into a
    /// queue of [`QUEUE_FRAMES`]. Dropping the `Frames` stops the thread and
    /// kills ffmpeg at its next frame.
    pub fn start(path: &Path, format: FrameFormat, range: Range) -> Result<Frames, QualityError> {
        let mut stream =
            runner::spawn_output_stream(Tool::Ffmpeg, &decode_args(path, format, range))?;
        let (tx, rx) = sync_channel(QUEUE_FRAMES);
        let owned = path.to_path_buf();
        std::thread::spawn(move || {
            let mut frame_no = 0u64;
            loop {
                match read_frame(&mut stream, format.frame_bytes()) {
                    Ok(Some(frame)) => {
                        if tx.send(Ok(frame)).is_err() {
                            return; // the consumer is gone; dropping the stream kills ffmpeg
                        }
                        frame_no += 1;
                    }
                    Ok(None) => {
                        if let Err(e) = stream.finish() {
                            let _ = tx.send(Err(e.into()));
                        }
                        return;
                    }
                    Err(detail) => {
                        // A cut frame usually means ffmpeg failed: its error says why.
                        let err = match stream.finish() {
                            Err(e) => e.into(),
                            Ok(_) => QualityError::PartialFrame {
                                path: owned,
                                frame: frame_no,
                                detail,
                            },
                        };
                        let _ = tx.send(Err(err));
                        return;
                    }
                }
            }
        });
        Ok(Frames {
            path: path.to_path_buf(),
            rx,
            count: 0,
        })
    }

    /// The next frame, `None` at the end of the video.
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, QualityError> {
        match self.rx.recv() {
            Ok(Ok(frame)) => {
                self.count += 1;
                Ok(Some(frame))
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// Reads the rest of the frames only to count them (for an error that
    /// says both counts); returns the total.
    pub fn count_rest(&mut self) -> Result<u64, QualityError> {
        while self.next_frame()?.is_some() {}
        Ok(self.count)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Reads exactly one frame of `len` bytes; `Ok(None)` at a clean end,
/// `Err` when the stream ends inside a frame.
fn read_frame(r: &mut impl Read, len: usize) -> Result<Option<Vec<u8>>, String> {
    let mut buf = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match r.read(&mut buf[filled..]) {
            Ok(0) if filled == 0 => return Ok(None),
            Ok(0) => return Err(format!("{filled} of {len} bytes")),
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("reading ffmpeg's output: {e}")),
        }
    }
    Ok(Some(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HD10: FrameFormat = FrameFormat {
        width: 1920,
        height: 1080,
        bits: 10,
    };

    fn joined(a: &[OsString]) -> String {
        a.iter()
            .map(|s| s.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn decode_args_are_frame_exact_scaled_and_luma_only() {
        let a = joined(&decode_args(Path::new("/v/d.mp4"), HD10, Range::ALL));
        assert!(a.contains("-fps_mode passthrough"), "{a}");
        assert!(a.contains("-map 0:v:0"), "{a}");
        assert!(
            a.contains("-vf scale=w=1920:h=1080:flags=bicubic,format=yuv420p10le,extractplanes=y"),
            "{a}"
        );
        assert!(a.ends_with("-f rawvideo pipe:1"), "{a}");
        assert!(a.contains("-noautorotate -protocol_whitelist file"), "{a}");
        assert!(!a.contains("trim") && !a.contains("-frames:v"), "{a}");
    }

    #[test]
    fn a_range_trims_by_frame_number_and_stops_decoding() {
        let r = Range {
            first: 48,
            count: Some(24),
        };
        let a = joined(&decode_args(Path::new("/v/r.mkv"), HD10, r));
        assert!(
            a.contains("-vf trim=start_frame=48:end_frame=72,scale="),
            "{a}"
        );
        assert!(a.contains("-frames:v 24"), "{a}");
        let open = Range {
            first: 5,
            count: None,
        };
        let a = joined(&decode_args(Path::new("/v/r.mkv"), HD10, open));
        assert!(a.contains("-vf trim=start_frame=5,scale="), "{a}");
    }

    #[test]
    fn bit_depth_follows_the_pixel_format_name() {
        assert_eq!(bits_of("yuv420p"), 8);
        assert_eq!(bits_of("yuvj420p"), 8);
        assert_eq!(bits_of("yuv420p10le"), 10);
        assert_eq!(bits_of("p010le"), 10);
        assert_eq!(bits_of("yuv444p12be"), 12);
        assert_eq!(bits_of("yuv420p16le"), 12);
        assert_eq!(HD10.frame_bytes(), 1920 * 1080 * 2);
    }

    #[test]
    fn a_cut_frame_is_an_error_and_a_clean_end_is_none() {
        let mut r: &[u8] = &[1, 2, 3, 4, 5];
        assert_eq!(read_frame(&mut r, 2).unwrap(), Some(vec![1, 2]));
        assert_eq!(read_frame(&mut r, 2).unwrap(), Some(vec![3, 4]));
        assert!(read_frame(&mut r, 2).unwrap_err().contains("1 of 2"));
        let mut empty: &[u8] = &[];
        assert_eq!(read_frame(&mut empty, 2).unwrap(), None);
    }
}
