//! Reading one `moof`: its decode time, sample count and duration, whether
//! its first sample is a sync sample, and where its sample data lies.
//!
//! Samples are walked without being stored, so a hostile sample count costs
//! time bounded by the box's size (per-sample fields) or by
//! [`MAX_SAMPLES_PER_RUN`] (no per-sample fields), never memory.

use crate::boxes::Data;
use crate::error::PackageError;
use crate::init::{Defaults, Init};

/// The most samples one `trun` may declare when it carries no per-sample
/// fields (so its size does not bound the count): a 10-minute fragment of
/// 48 kHz PCM-sized frames is far below this.
pub(crate) const MAX_SAMPLES_PER_RUN: u32 = 1 << 22;

/// `sample_is_non_sync_sample` in the sample flags.
const NON_SYNC: u32 = 0x0001_0000;

/// One parsed `moof` with the `mdat` that follows it.
#[derive(Clone, Debug)]
pub(crate) struct Fragment {
    pub moof_offset: u64,
    /// Bytes from the moof's start to the end of its mdat.
    pub span: u64,
    pub decode_time: u64,
    pub samples: u32,
    pub duration: u64,
    pub first_sync: bool,
    /// Bytes from the moof's start through the end of the first sample.
    pub first_end: u64,
    /// Sample data range relative to the moof's start: [lo, hi).
    pub data: (u64, u64),
    /// Each sample's (duration, size), in order, while the fragment holds
    /// at most [`MAX_TABLE`] samples (else empty): what merging fragments
    /// into one needs ([`crate::merge`]).
    pub table: Vec<(u32, u32)>,
}

/// The most samples a fragment's [`Fragment::table`] keeps.
pub(crate) const MAX_TABLE: usize = 1 << 16;

/// Parses the payload `moof` of a moof box of `moof_size` bytes that starts
/// at file offset `moof_offset`. `span` is filled in when its mdat is found.
pub(crate) fn parse_moof(
    moof: Data<'_>,
    moof_offset: u64,
    init: &Init,
) -> Result<Fragment, PackageError> {
    let mut trafs = Vec::new();
    for b in moof.boxes() {
        let (h, d) = b?;
        if &h.kind.0 == b"traf" {
            trafs.push(d);
        }
    }
    let [traf] = trafs.as_slice() else {
        return Err(moof.err(
            0,
            format!(
                "'moof' has {} track fragments; one is expected",
                trafs.len()
            ),
        ));
    };
    let traf = *traf;
    let mut r = traf.require(b"tfhd", "traf")?.reader("tfhd");
    let (_, flags) = r.version_flags()?;
    let track_id = r.u32("track_ID")?;
    if track_id != init.track_id {
        return Err(r.err(format!(
            "fragment of track {track_id}, but the file's track is {}",
            init.track_id
        )));
    }
    if flags & 0x01 != 0 {
        return Err(r.err("'tfhd' sets an explicit base-data-offset, so fragments cannot be moved into segments; write with -movflags +default_base_moof"));
    }
    if flags & 0x02 != 0 {
        r.skip(4, "sample_description_index")?;
    }
    let mut d: Defaults = init.defaults;
    if flags & 0x08 != 0 {
        d.duration = r.u32("default_sample_duration")?;
    }
    if flags & 0x10 != 0 {
        d.size = r.u32("default_sample_size")?;
    }
    if flags & 0x20 != 0 {
        d.flags = r.u32("default_sample_flags")?;
    }

    let mut r = traf.require(b"tfdt", "traf")?.reader("tfdt");
    let (version, _) = r.version_flags()?;
    let decode_time = if version == 1 {
        r.u64("baseMediaDecodeTime")?
    } else {
        u64::from(r.u32("baseMediaDecodeTime")?)
    };

    let mut f = Fragment {
        moof_offset,
        span: 0,
        decode_time,
        samples: 0,
        duration: 0,
        first_sync: false,
        first_end: 0,
        data: (u64::MAX, 0),
        table: Vec::new(),
    };
    let mut next_data: Option<u64> = None;
    for b in traf.boxes() {
        let (h, run) = b?;
        if &h.kind.0 == b"trun" {
            trun(run, &d, &mut f, &mut next_data)?;
        }
    }
    if f.samples == 0 {
        return Err(traf.err(0, "track fragment holds no samples"));
    }
    Ok(f)
}

/// Walks one `trun`, adding its samples to `f`. `next` is where the previous
/// run's data ended (relative to the moof), for a run without data_offset.
fn trun(
    run: Data<'_>,
    d: &Defaults,
    f: &mut Fragment,
    next: &mut Option<u64>,
) -> Result<(), PackageError> {
    let mut r = run.reader("trun");
    let (_, flags) = r.version_flags()?;
    let count = r.u32("sample_count")?;
    let mut start = if flags & 0x01 != 0 {
        // Signed in version 1; a negative offset points before the moof.
        let off = r.u32("data_offset")? as i32;
        u64::try_from(off)
            .map_err(|_| r.err(format!("data_offset {off} points before the 'moof'")))?
    } else {
        next.ok_or_else(|| {
            r.err("first 'trun' has no data_offset, so its samples cannot be located")
        })?
    };
    let first_flags = if flags & 0x04 != 0 {
        Some(r.u32("first_sample_flags")?)
    } else {
        None
    };
    let fields = [0x100, 0x200, 0x400, 0x800]
        .iter()
        .filter(|&&b| flags & b != 0)
        .count();
    let per_sample = 4 * fields;
    let fits = if per_sample == 0 {
        count <= MAX_SAMPLES_PER_RUN
    } else {
        (count as usize)
            .checked_mul(per_sample)
            .is_some_and(|n| n <= r.remaining())
    };
    if !fits {
        return Err(r.err(format!(
            "'trun' declares {count} samples, more than its {} bytes can describe",
            r.remaining()
        )));
    }
    let overflow = || run.err(0, "'trun' sample durations or sizes overflow 64 bits");
    if count > 0 && f.samples == 0 {
        f.first_sync = first_flags.unwrap_or(d.flags) & NON_SYNC == 0;
    }
    f.data.0 = f.data.0.min(start);
    if per_sample == 0 {
        // Every sample takes the defaults: no walk needed.
        let n = u64::from(count);
        if count > 0 && f.samples == 0 {
            f.first_end = start.checked_add(u64::from(d.size)).ok_or_else(overflow)?;
        }
        let dur = n.checked_mul(u64::from(d.duration)).ok_or_else(overflow)?;
        f.duration = f.duration.checked_add(dur).ok_or_else(overflow)?;
        let bytes = n.checked_mul(u64::from(d.size)).ok_or_else(overflow)?;
        start = start.checked_add(bytes).ok_or_else(overflow)?;
        if f.table.len() + count as usize <= MAX_TABLE {
            f.table
                .extend(std::iter::repeat_n((d.duration, d.size), count as usize));
        }
    }
    for i in 0..if per_sample == 0 { 0 } else { count } {
        let dur = if flags & 0x100 != 0 {
            r.u32("sample_duration")?
        } else {
            d.duration
        };
        let size = if flags & 0x200 != 0 {
            r.u32("sample_size")?
        } else {
            d.size
        };
        let sflags = if flags & 0x400 != 0 {
            r.u32("sample_flags")?
        } else {
            d.flags
        };
        if flags & 0x800 != 0 {
            r.skip(4, "sample_composition_time_offset")?;
        }
        if f.samples == 0 && i == 0 {
            f.first_sync = first_flags.unwrap_or(sflags) & NON_SYNC == 0;
            f.first_end = start.checked_add(u64::from(size)).ok_or_else(overflow)?;
        }
        f.duration = f
            .duration
            .checked_add(u64::from(dur))
            .ok_or_else(overflow)?;
        start = start.checked_add(u64::from(size)).ok_or_else(overflow)?;
        if f.table.len() < MAX_TABLE {
            f.table.push((dur, size));
        }
    }
    f.data.1 = f.data.1.max(start);
    f.samples = f
        .samples
        .checked_add(count)
        .ok_or_else(|| run.err(0, "fragment sample count overflows 32 bits"))?;
    *next = Some(start);
    Ok(())
}
