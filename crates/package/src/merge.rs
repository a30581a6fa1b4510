//! One fragment out of several: an audio segment made of the encoder's
//! short fragments becomes a single moof+mdat, as CMAF players expect (a
//! segment of several fragments whose first starts at 0 made video.js
//! 7.5.5 take the second's time for the segment's and play the audio 256
//! ms early).
//!
//! Only audio is merged (every sample a sync sample, no composition
//! offsets), and only fragments whose samples are known one by one
//! ([`Fragment::table`]) and lie back to back in one data range.

use crate::fragment::Fragment;

/// Sample flags of every merged sample: depends on no other, a sync sample.
const SYNC_FLAGS: u32 = 0x0200_0000;

/// The most bytes of sample data one merged fragment may hold.
const MAX_DATA: u64 = 1 << 30;

/// What a merged fragment is written from: its header bytes (moof and the
/// mdat's header), then these byte ranges of the input, in order.
pub(crate) struct Merged {
    pub header: Vec<u8>,
    /// (file offset, length) of each fragment's sample data.
    pub data: Vec<(u64, u64)>,
    /// Bytes from the moof's start through the first sample.
    pub first_end: u64,
}

fn put_box(out: &mut Vec<u8>, kind: &[u8; 4], body: &[u8]) {
    out.extend_from_slice(&((8 + body.len()) as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(body);
}

/// The fragments `frags` of track `track_id` as one fragment numbered
/// `sequence`; `None` when they cannot be merged (one fragment already, a
/// sample table not kept, data not contiguous, too large).
pub(crate) fn merge(frags: &[Fragment], track_id: u32, sequence: u32) -> Option<Merged> {
    if frags.len() < 2 {
        return None;
    }
    let mut table: Vec<(u32, u32)> = Vec::new();
    let mut data = Vec::with_capacity(frags.len());
    let mut total = 0u64;
    for f in frags {
        let bytes: u64 = f.table.iter().map(|&(_, s)| u64::from(s)).sum();
        let whole = f.table.len() == f.samples as usize;
        if !whole || f.data.1.checked_sub(f.data.0) != Some(bytes) {
            return None;
        }
        table.extend_from_slice(&f.table);
        data.push((f.moof_offset + f.data.0, bytes));
        total += bytes;
    }
    if total > MAX_DATA || table.len() > crate::fragment::MAX_TABLE * 8 {
        return None;
    }
    let mut mfhd = vec![0u8; 4];
    mfhd.extend_from_slice(&sequence.to_be_bytes());
    // default-base-is-moof (0x020000) with default sample flags (0x20).
    let mut tfhd = 0x0002_0020u32.to_be_bytes().to_vec();
    tfhd.extend_from_slice(&track_id.to_be_bytes());
    tfhd.extend_from_slice(&SYNC_FLAGS.to_be_bytes());
    let mut tfdt = 0x0100_0000u32.to_be_bytes().to_vec();
    tfdt.extend_from_slice(&frags[0].decode_time.to_be_bytes());
    let trun_len = 8 + 12 + 8 * table.len();
    let traf_len = 8 + (8 + tfhd.len()) + (8 + tfdt.len()) + trun_len;
    let moof_len = 8 + (8 + mfhd.len()) + traf_len;
    // data-offset (0x1), sample duration (0x100) and size (0x200) present.
    let mut trun = 0x0000_0301u32.to_be_bytes().to_vec();
    trun.extend_from_slice(&(table.len() as u32).to_be_bytes());
    trun.extend_from_slice(&((moof_len + 8) as u32).to_be_bytes());
    for &(duration, size) in &table {
        trun.extend_from_slice(&duration.to_be_bytes());
        trun.extend_from_slice(&size.to_be_bytes());
    }
    let mut traf = Vec::with_capacity(traf_len);
    put_box(&mut traf, b"tfhd", &tfhd);
    put_box(&mut traf, b"tfdt", &tfdt);
    put_box(&mut traf, b"trun", &trun);
    let mut moof_body = Vec::with_capacity(moof_len);
    put_box(&mut moof_body, b"mfhd", &mfhd);
    put_box(&mut moof_body, b"traf", &traf);
    let mut header = Vec::with_capacity(moof_len + 8);
    put_box(&mut header, b"moof", &moof_body);
    header.extend_from_slice(&((8 + total) as u32).to_be_bytes());
    header.extend_from_slice(b"mdat");
    debug_assert_eq!(header.len(), moof_len + 8);
    Some(Merged {
        first_end: (moof_len + 8) as u64 + u64::from(table[0].1),
        header,
        data,
    })
}
