//! One pass over a fragmented MP4's top-level boxes: `ftyp` and `moov`
//! located and parsed, each `moof` parsed and paired with the `mdat` right
//! after it. Only `moov` and the moofs are read into memory, each under a
//! size cap; mdat payloads are only measured here and copied later.

use crate::boxes::{parse_header, Data};
use crate::error::PackageError;
use crate::fragment::{parse_moof, Fragment};
use crate::init::{parse_moov, Init};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

/// Largest `moov` read into memory (ffmpeg's empty moov is under 2 KiB).
const MAX_MOOV: u64 = 16 << 20;
/// Largest `moof` read into memory (a 10 s 60 fps fragment's is ~10 KiB).
const MAX_MOOF: u64 = 64 << 20;
/// Most fragments one file may hold (a 24 h film with a keyframe a second
/// holds ~86,400).
const MAX_FRAGMENTS: usize = 1_000_000;
/// What the scan found: where ftyp and moov lie and every fragment.
pub(crate) struct Scan {
    pub init_ranges: Vec<(u64, u64)>,
    pub init: Init,
    pub fragments: Vec<Fragment>,
}

/// Reads `len` bytes at `offset` of a box that may not exceed `cap`.
fn read_at(file: &mut File, input: &Path, offset: u64, len: u64) -> Result<Vec<u8>, PackageError> {
    let io = |e| PackageError::io(input, "read", e);
    file.seek(SeekFrom::Start(offset)).map_err(io)?;
    let mut buf = vec![0u8; len as usize];
    file.read_exact(&mut buf).map_err(io)?;
    Ok(buf)
}

pub(crate) fn scan(file: &mut File, input: &Path) -> Result<Scan, PackageError> {
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
