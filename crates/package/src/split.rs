//! Splitting a one-track fragmented MP4 into `init.mp4` and CMAF media
//! segments (`seg-00001.m4s`, ...), each a `styp` and whole moof+mdat pairs
//! copied byte for byte: with `default_base_moof` a fragment's data offsets
//! are relative to its own moof, so it can move without being rewritten.
//!
//! The file is scanned once (only `moov` and each `moof` are read into
//! memory, each under a size cap), the cuts are planned against the
//! fragments, and only then is anything written, each file under a temporary
//! name renamed into place.

use crate::boxes::{parse_header, Data};
use crate::error::PackageError;
use crate::fragment::{parse_moof, Fragment};
use crate::init::{parse_moov, Init};
use crate::{Cuts, Segment, Track};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

/// Largest `moov` read into memory (ffmpeg's empty moov is under 2 KiB).
const MAX_MOOV: u64 = 16 << 20;
/// Largest `moof` read into memory (a 10 s 60 fps fragment's is ~10 KiB).
const MAX_MOOF: u64 = 64 << 20;
/// Most fragments one file may hold (a 24 h film with a keyframe a second
/// holds ~86,400).
pub(crate) const MAX_FRAGMENTS: usize = 1_000_000;
/// Most segments one split may write.
pub const MAX_SEGMENTS: usize = 100_000;

/// The `styp` every segment starts with: major brand `cmfs` (CMAF segment),
/// compatible `cmfs` and `msdh` (DASH media segment).
const STYP: [u8; 24] = *b"\0\0\0\x18stypcmfs\0\0\0\0cmfsmsdh";

/// What the scan found: where ftyp and moov lie and every fragment.
struct Scan {
    init_ranges: Vec<(u64, u64)>,
    init: Init,
    fragments: Vec<Fragment>,
}

/// See the crate docs: splits `input` into `out_dir/init.mp4` and
/// `out_dir/seg-NNNNN.m4s` by `cuts`.
pub fn split_fmp4(input: &Path, out_dir: &Path, cuts: &Cuts) -> Result<Track, PackageError> {
    let mut file = File::open(input).map_err(|e| PackageError::io(input, "open", e))?;
    let scan = scan(&mut file, input)?;
    let plan = match cuts {
        Cuts::Samples(counts) => plan_samples(input, &scan.fragments, counts)?,
        Cuts::Seconds(starts) => plan_seconds(input, &scan.fragments, scan.init.timescale, starts)?,
    };
    std::fs::create_dir_all(out_dir).map_err(|e| PackageError::io(out_dir, "create folder", e))?;
    write_file(
        &mut file,
        input,
        &out_dir.join("init.mp4"),
        None,
        &scan.init_ranges,
    )?;
    let mut segments = Vec::with_capacity(plan.len());
    for (k, range) in plan.into_iter().enumerate() {
        let frags = &scan.fragments[range];
        let name = format!("seg-{:05}.m4s", k + 1);
        let ranges: Vec<(u64, u64)> = frags.iter().map(|f| (f.moof_offset, f.span)).collect();
        let bytes = write_file(&mut file, input, &out_dir.join(&name), Some(&STYP), &ranges)?;
        segments.push(Segment {
            file: name,
            start: frags[0].decode_time,
            duration: frags.iter().fold(0u64, |a, f| a.saturating_add(f.duration)),
            samples: frags.iter().fold(0u32, |a, f| a.saturating_add(f.samples)),
            bytes,
            iframe: (STYP.len() as u64, frags[0].first_end),
        });
    }
    Ok(Track {
        timescale: scan.init.timescale,
        codec: scan.init.codec,
        media: scan.init.media,
        init: "init.mp4".into(),
        segments,
    })
}

/// Reads `len` bytes at `offset` of a box that may not exceed `cap`.
fn read_at(file: &mut File, input: &Path, offset: u64, len: u64) -> Result<Vec<u8>, PackageError> {
    let io = |e| PackageError::io(input, "read", e);
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

fn scan(file: &mut File, input: &Path) -> Result<Scan, PackageError> {
    let len = file
        .metadata()
        .map_err(|e| PackageError::io(input, "stat", e))?
        .len();
    let bad = |offset, what: String| PackageError::malformed(input, offset, what);
    let mut offset = 0u64;
    let mut ftyp = None;
    let mut init: Option<(Init, (u64, u64))> = None;
    let mut pending: Option<Fragment> = None;
    let mut fragments = Vec::new();
    while offset < len {
        let head = read_at(file, input, offset, (len - offset).min(16))?;
        let h = parse_header(&head, len - offset).map_err(|w| bad(offset, w))?;
        if pending.is_some() && &h.kind.0 != b"mdat" {
            return Err(bad(
                offset,
                format!("'moof' is followed by '{}', not by its 'mdat'", h.kind),
            ));
        }
        match &h.kind.0 {
            b"ftyp" if ftyp.is_none() && offset == 0 => ftyp = Some((offset, h.size)),
            b"moov" => {
                if init.is_some() || ftyp.is_none() {
                    return Err(bad(
                        offset,
                        "'moov' must come once, right after 'ftyp'".into(),
                    ));
                }
                if h.size > MAX_MOOV {
                    return Err(bad(
                        offset,
                        format!(
                            "'moov' of {} bytes exceeds the {MAX_MOOV}-byte limit",
                            h.size
                        ),
                    ));
                }
                let bytes = read_at(file, input, offset, h.size)?;
                let data = Data {
                    bytes: &bytes,
                    base: offset,
                    file: input,
                }
                .tail(h.header_len as usize);
                init = Some((parse_moov(data)?, (offset, h.size)));
            }
            b"moof" => {
                let Some((init, _)) = &init else {
                    return Err(bad(offset, "'moof' before any 'moov'".into()));
                };
                if h.size > MAX_MOOF {
                    return Err(bad(
                        offset,
                        format!(
                            "'moof' of {} bytes exceeds the {MAX_MOOF}-byte limit",
                            h.size
                        ),
                    ));
                }
                if fragments.len() >= MAX_FRAGMENTS {
                    return Err(bad(offset, format!("more than {MAX_FRAGMENTS} fragments")));
                }
                let bytes = read_at(file, input, offset, h.size)?;
                let data = Data {
                    bytes: &bytes,
                    base: offset,
                    file: input,
                }
                .tail(h.header_len as usize);
                pending = Some(parse_moof(data, offset, init)?);
            }
            b"mdat" => {
                let Some(mut f) = pending.take() else {
                    return Err(bad(offset, "'mdat' without a 'moof' before it".into()));
                };
                let lo = offset - f.moof_offset + h.header_len;
                f.span = offset - f.moof_offset + h.size;
                if f.data.0 < lo || f.data.1 > f.span {
                    return Err(bad(f.moof_offset, format!(
                        "fragment's sample data [{}, {}) lies outside its 'mdat' [{lo}, {}) (offsets from the moof)",
                        f.data.0, f.data.1, f.span
                    )));
                }
                if let Some(prev) = fragments.last() {
                    let prev: &Fragment = prev;
                    let end = prev.decode_time.saturating_add(prev.duration);
                    if f.decode_time < end {
                        return Err(bad(f.moof_offset, format!(
                            "fragment decode time {} goes back before the previous fragment's end {}",
                            f.decode_time, end
                        )));
                    }
                }
                fragments.push(f);
            }
            // Top-level boxes that carry nothing a segment needs (mfra and
            // sidx describe the input's layout; free/skip are padding).
            _ => {}
        }
        offset += h.size;
    }
    if pending.is_some() {
        return Err(bad(
            len,
            "the last 'moof' has no 'mdat' (truncated file?)".into(),
        ));
    }
    let Some(ftyp) = ftyp else {
        return Err(bad(0, "no 'ftyp' at the start: not an MP4 file".into()));
    };
    let Some((init, moov)) = init else {
        return Err(bad(0, "no 'moov' box".into()));
    };
    if fragments.is_empty() {
        return Err(bad(
            len,
            "no fragments ('moof'+'mdat'): write with -movflags +frag_keyframe+empty_moov".into(),
        ));
    }
    Ok(Scan {
        init_ranges: vec![ftyp, moov],
        init,
        fragments,
    })
}

/// Video: segment k holds exactly `counts[k]` samples, starting on a
/// fragment whose first sample is a sync sample.
fn plan_samples(
    input: &Path,
    frags: &[Fragment],
    counts: &[u32],
) -> Result<Vec<Range<usize>>, PackageError> {
    check_count(input, counts.len())?;
    let total: u64 = frags.iter().map(|f| u64::from(f.samples)).sum();
    let wanted: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    if total != wanted {
        return Err(PackageError::cut(
            input,
            format!("the cuts count {wanted} samples but the file holds {total}"),
        ));
    }
    let mut plan = Vec::with_capacity(counts.len());
    let (mut fi, mut pos) = (0usize, 0u64);
    for (k, &n) in counts.iter().enumerate() {
        if n == 0 {
            return Err(PackageError::cut(
                input,
                format!("segment {} has 0 samples", k + 1),
            ));
        }
        let first = fi;
        if !frags[fi].first_sync {
            return Err(PackageError::cut(input, format!(
                "segment {} does not start on a keyframe fragment: its first sample {pos} is not a sync sample",
                k + 1
            )));
        }
        let mut got = 0u64;
        while got < u64::from(n) && fi < frags.len() {
            got += u64::from(frags[fi].samples);
            fi += 1;
        }
        if got > u64::from(n) {
            let f = &frags[fi - 1];
            let f_start = pos + got - u64::from(f.samples);
            return Err(PackageError::cut(input, format!(
                "segment {} does not start on a keyframe fragment: sample {} lies inside fragment {} (samples {}..{}); force a keyframe there",
                k + 2,
                pos + u64::from(n),
                fi,
                f_start,
                pos + got
            )));
        }
        plan.push(first..fi);
        pos += got;
    }
    Ok(plan)
}

/// Audio: segment k holds the fragments starting (within half a fragment)
/// at or after `starts[k]` and before `starts[k+1]`; a fragment that starts
/// near a segment start joins the segment whose start is nearest its own,
/// so AAC's 1024-sample frames (which never land on a round time) snap to
/// the segment they begin.
fn plan_seconds(
    input: &Path,
    frags: &[Fragment],
    timescale: u32,
    starts: &[f64],
) -> Result<Vec<Range<usize>>, PackageError> {
    check_count(input, starts.len())?;
    for (k, w) in starts.windows(2).enumerate() {
        if w[1].partial_cmp(&w[0]) != Some(std::cmp::Ordering::Greater) {
            return Err(PackageError::cut(
                input,
                format!(
                    "segment start {} ({}) is not after segment start {} ({})",
                    k + 2,
                    w[1],
                    k + 1,
                    w[0]
                ),
            ));
        }
    }
    if !starts.iter().all(|s| s.is_finite() && *s >= 0.0) {
        return Err(PackageError::cut(
            input,
            "segment starts must be finite and not negative",
        ));
    }
    let t0 = frags[0].decode_time;
    let ts = f64::from(timescale);
    let mut owner = Vec::with_capacity(frags.len());
    for (i, f) in frags.iter().enumerate() {
        let t = (f.decode_time - t0) as f64 / ts;
        let reach = t + f.duration as f64 / ts / 2.0;
        // The segment whose start is nearest the fragment's, among those
        // starting no later than half a fragment after it.
        let after = starts.partition_point(|&s| s <= t);
        let ahead = after < starts.len() && starts[after] <= reach;
        let k = match (after.checked_sub(1), ahead) {
            (Some(b), true) if t - starts[b] <= starts[after] - t => b,
            (_, true) => after,
            (Some(b), false) => b,
            (None, false) => {
                return Err(PackageError::cut(
                    input,
                    format!(
                        "fragment {} (at {t:.3} s) comes before the first segment start {} s",
                        i + 1,
                        starts[0]
                    ),
                ))
            }
        };
        owner.push(k);
    }
    let mut plan = Vec::with_capacity(starts.len());
    let mut fi = 0;
    for (k, start) in starts.iter().enumerate() {
        let first = fi;
        while fi < frags.len() && owner[fi] == k {
            fi += 1;
        }
        if fi == first {
            return Err(PackageError::cut(input, format!(
                "segment {} (from {} s) gets no fragment: make the audio's -frag_duration no longer than the shortest segment",
                k + 1,
                start
            )));
        }
        plan.push(first..fi);
    }
    Ok(plan)
}

fn check_count(input: &Path, n: usize) -> Result<(), PackageError> {
    if n == 0 || n > MAX_SEGMENTS {
        return Err(PackageError::cut(
            input,
            format!("{n} segments requested; between 1 and {MAX_SEGMENTS} are allowed"),
        ));
    }
    Ok(())
}

/// Writes `prefix` then the byte `ranges` of `file` to `out` through a
/// temporary name; returns the bytes written.
fn write_file(
    file: &mut File,
    input: &Path,
    out: &Path,
    prefix: Option<&[u8]>,
    ranges: &[(u64, u64)],
) -> Result<u64, PackageError> {
    let mut tmp_name = out.file_name().unwrap_or_default().to_os_string();
    tmp_name.push(".tmp");
    let tmp = out.with_file_name(tmp_name);
    let werr = |e| PackageError::io(&tmp, "write", e);
    let mut w =
        BufWriter::new(File::create(&tmp).map_err(|e| PackageError::io(&tmp, "create", e))?);
    let mut total = 0u64;
    if let Some(p) = prefix {
        w.write_all(p).map_err(werr)?;
        total += p.len() as u64;
    }
    for &(offset, len) in ranges {
        file.seek(SeekFrom::Start(offset))
            .map_err(|e| PackageError::io(input, "seek", e))?;
        let copied = std::io::copy(&mut (&mut *file).take(len), &mut w).map_err(werr)?;
        if copied != len {
            return Err(PackageError::malformed(
                input,
                offset,
                "file shrank while being read",
            ));
        }
        total += len;
    }
    let f = w.into_inner().map_err(|e| werr(e.into_error()))?;
    f.sync_all().map_err(werr)?;
    drop(f);
    std::fs::rename(&tmp, out).map_err(|e| PackageError::io(out, "rename", e))?;
    Ok(total)
}
