//! Splitting a one-track fragmented MP4 into `init.mp4` and CMAF media
//! segments (`seg-00001.m4s`, ...), each a `styp` and whole moof+mdat pairs
//! copied byte for byte: with `default_base_moof` a fragment's data offsets
//! are relative to its own moof, so it can move without being rewritten.
//!
//! The file is scanned once ([`scan`](crate::scan)), the cuts are planned
//! against the fragments, and only then is anything written, each file under a temporary
//! name renamed into place.

use crate::error::PackageError;
use crate::fragment::Fragment;
use crate::merge::merge;
use crate::scan::scan;
use crate::{Cuts, Segment, Track};
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::Path;

/// Most segments one split may write.
pub const MAX_SEGMENTS: usize = 100_000;

/// The `styp` every segment starts with: major brand `cmfs` (CMAF segment),
/// compatible `cmfs` and `msdh` (DASH media segment).
const STYP: [u8; 24] = *b"\0\0\0\x18stypcmfs\0\0\0\0cmfsmsdh";

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
    let audio = matches!(cuts, Cuts::Seconds(_));
    for (k, range) in plan.into_iter().enumerate() {
        let frags = &scan.fragments[range];
        let name = format!("seg-{:05}.m4s", k + 1);
        // Audio: one fragment per segment (see merge.rs); video segments
        // keep their fragments (one per keyframe) byte for byte.
        let merged = audio
            .then(|| merge(frags, scan.init.track_id, k as u32 + 1))
            .flatten();
        let (bytes, first_end) = match merged {
            Some(m) => {
                let mut prefix = STYP.to_vec();
                prefix.extend_from_slice(&m.header);
                let n = write_file(
                    &mut file,
                    input,
                    &out_dir.join(&name),
                    Some(&prefix),
                    &m.data,
                )?;
                (n, m.first_end)
            }
            None => {
                let ranges: Vec<(u64, u64)> =
                    frags.iter().map(|f| (f.moof_offset, f.span)).collect();
                let n = write_file(&mut file, input, &out_dir.join(&name), Some(&STYP), &ranges)?;
                (n, frags[0].first_end)
            }
        };
        segments.push(Segment {
            file: name,
            start: frags[0].decode_time,
            duration: frags.iter().fold(0u64, |a, f| a.saturating_add(f.duration)),
            samples: frags.iter().fold(0u32, |a, f| a.saturating_add(f.samples)),
            bytes,
            iframe: (STYP.len() as u64, first_end),
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
/// temporary name (removed again on failure); returns the bytes written.
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
    let written = write_tmp(file, input, &tmp, prefix, ranges);
    let renamed = written.and_then(|n| {
        std::fs::rename(&tmp, out).map_err(|e| PackageError::io(out, "rename", e))?;
        Ok(n)
    });
    if renamed.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    renamed
}

fn write_tmp(
    file: &mut File,
    input: &Path,
    tmp: &Path,
    prefix: Option<&[u8]>,
    ranges: &[(u64, u64)],
) -> Result<u64, PackageError> {
    let werr = |e| PackageError::io(tmp, "write", e);
    let mut w = BufWriter::new(File::create(tmp).map_err(|e| PackageError::io(tmp, "create", e))?);
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
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fragments of `(samples, duration, first_sync)`, back to back.
    fn frags(spec: &[(u32, u64, bool)]) -> Vec<Fragment> {
        let mut t = 0;
        spec.iter()
            .map(|&(samples, duration, first_sync)| {
                let f = Fragment {
                    moof_offset: 0,
                    span: 0,
                    decode_time: t,
                    samples,
                    duration,
                    first_sync,
                    first_end: 0,
                    data: (0, 0),
                    table: Vec::new(),
                };
                t += duration;
                f
            })
            .collect()
    }

    #[test]
    fn samples_plan_groups_whole_fragments_and_names_the_bad_cut() {
        let f = frags(&[
            (60, 60, true),
            (30, 30, true),
            (30, 30, false),
            (60, 60, true),
        ]);
        let p = Path::new("v.mp4");
        assert_eq!(
            plan_samples(p, &f, &[60, 60, 60]).unwrap(),
            vec![0..1, 1..3, 3..4]
        );
        let e = plan_samples(p, &f, &[60, 30, 90]).unwrap_err().to_string();
        assert_eq!(e, "v.mp4: segment 3 does not start on a keyframe fragment: its first sample 90 is not a sync sample");
        let e = plan_samples(p, &f, &[70, 110]).unwrap_err().to_string();
        assert!(e.contains("segment 2 does not start on a keyframe fragment: sample 70 lies inside fragment 2 (samples 60..90)"), "{e}");
        assert!(plan_samples(p, &f, &[])
            .unwrap_err()
            .to_string()
            .contains("0 segments requested"));
        let many = vec![1; MAX_SEGMENTS + 1];
        let e = plan_samples(p, &f, &many).unwrap_err().to_string();
        assert!(
            e.contains("100001 segments requested; between 1 and 100000"),
            "{e}"
        );
    }

    #[test]
    fn seconds_plan_snaps_fragments_to_the_nearest_start() {
        // Timescale 1000: fragments start 0, 2.005, 4.010, 6.015.
        let f = frags(&[
            (94, 2005, true),
            (94, 2005, true),
            (94, 2005, true),
            (1, 5, true),
        ]);
        let p = Path::new("a.mp4");
        assert_eq!(
            plan_seconds(p, &f, 1000, &[0.0, 2.0, 4.0]).unwrap(),
            vec![0..1, 1..2, 2..4]
        );
        assert_eq!(
            plan_seconds(p, &f, 1000, &[0.0, 2.002, 4.004, 6.006]).unwrap(),
            vec![0..1, 1..2, 2..3, 3..4]
        );
        // Within half a fragment counts as on time; further is refused.
        assert_eq!(
            plan_seconds(p, &f, 1000, &[0.5, 2.0]).unwrap(),
            vec![0..1, 1..4]
        );
        let e = plan_seconds(p, &f, 1000, &[1.5, 2.0])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("fragment 1 (at 0.000 s) comes before the first segment start 1.5 s"),
            "{e}"
        );
        let e = plan_seconds(p, &f, 1000, &[0.0, f64::NAN])
            .unwrap_err()
            .to_string();
        assert!(e.contains("is not after segment start 1"), "{e}");
    }
}
