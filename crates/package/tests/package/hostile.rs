//! Hostile input: damaged box sizes, absurd counts and random byte
//! mutations of a real init + fragments give a one-line error, never a
//! panic and never a huge allocation.

use crate::support::{video_fmp4, X264};
use proptest::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use tessera_package::{split_fmp4, Cuts};

/// A real tiny fMP4 (30 frames, fragments of 15), made once.
fn sample() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let f = video_fmp4(dir.path(), "tiny", 30, "eq(mod(n,15),0)", X264);
        std::fs::read(f).unwrap()
    })
}

/// Offset of the first box of type `kind` anywhere in `b` (by its name).
fn find(b: &[u8], kind: &[u8; 4]) -> usize {
    b.windows(4).position(|w| w == kind).expect("box present") - 4
}

fn split(dir: &Path, bytes: &[u8]) -> Result<(), String> {
    let input: PathBuf = dir.join("in.mp4");
    std::fs::write(&input, bytes).unwrap();
    let out = dir.join("out");
    let r = split_fmp4(&input, &out, &Cuts::Samples(vec![15, 15]));
    let _ = std::fs::remove_dir_all(&out);
    r.map(|_| ()).map_err(|e| e.to_string())
}

fn refused(bytes: &[u8], what: &str) {
    let dir = tempfile::tempdir().unwrap();
    let e = split(dir.path(), bytes).expect_err("must be refused");
    assert!(e.contains(what), "{e}");
    assert!(e.contains("in.mp4: offset "), "names file and offset: {e}");
    assert!(!e.contains('\n'), "one line: {e}");
}

fn set_u32(b: &mut [u8], at: usize, v: u32) {
    b[at..at + 4].copy_from_slice(&v.to_be_bytes());
}

#[test]
fn the_real_sample_splits() {
    let dir = tempfile::tempdir().unwrap();
    split(dir.path(), sample()).unwrap();
}

#[test]
fn box_sizes_that_do_not_fit_are_refused() {
    let good = sample();
    let moof = find(good, b"moof");
    let mut b = good.to_vec();
    set_u32(&mut b, moof, 4);
    refused(&b, "box 'moof' claims 4 bytes, less than its 8-byte header");
    set_u32(&mut b, moof, u32::MAX);
    refused(&b, "box 'moof' claims 4294967295 bytes but only");
    // 64-bit size: larger than the file, then smaller than its header.
    set_u32(&mut b, moof, 1);
    refused(&b, "box 'moof' claims");
    // Size 0 (to the end of the file): the moof swallows its mdat.
    set_u32(&mut b, moof, 0);
    refused(&b, "the last 'moof' has no 'mdat'");
    // A trun inside claims more than its parent.
    let mut b = good.to_vec();
    set_u32(&mut b, find(good, b"trun"), 100_000);
    refused(&b, "box 'trun' claims 100000 bytes but only");
    // Cut short in the middle of a box.
    refused(&good[..good.len() / 2], "truncated");
    refused(&good[..3], "too few for a box header");
}

#[test]
fn absurd_counts_and_offsets_are_refused() {
    let good = sample();
    let trun = find(good, b"trun");
    let mut b = good.to_vec();
    set_u32(&mut b, trun + 12, 0x4000_0000); // sample_count
    refused(&b, "'trun' declares 1073741824 samples, more than its");
    let mut b = good.to_vec();
    set_u32(&mut b, trun + 16, 0x7fff_0000); // data_offset far past the mdat
    refused(&b, "lies outside its 'mdat'");
    let mut b = good.to_vec();
    set_u32(&mut b, trun + 16, 0xffff_fff0); // negative data_offset
    refused(&b, "points before the 'moof'");
    let mut b = good.to_vec();
    let mdhd = find(good, b"mdhd");
    let ts_at = mdhd + 8 + 4 + 8; // header, version/flags, times (version 0)
    set_u32(&mut b, ts_at, 0);
    refused(&b, "timescale is 0");
    let mut b = good.to_vec();
    b[find(good, b"avcC") + 4..][..4].copy_from_slice(b"xxxx");
    refused(&b, "'avc1' has no 'avcC' box");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Random byte changes anywhere in a real init + fragments never panic:
    /// the split either succeeds or says what is wrong in one line.
    #[test]
    fn mutated_fmp4_never_panics(edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8), cut in any::<prop::sample::Index>(), truncate in any::<bool>()) {
        let mut b = sample().to_vec();
        // Weight edits toward the boxes (the first 2 KiB of each fragment
        // area) where sizes and counts live, by editing one in two near the start.
        for (i, (at, v)) in edits.iter().enumerate() {
            let limit = if i % 2 == 0 { b.len().min(2048) } else { b.len() };
            let at = at.index(limit);
            b[at] = *v;
        }
        if truncate {
            b.truncate(cut.index(b.len()));
        }
        let dir = tempfile::tempdir().unwrap();
        if let Err(e) = split(dir.path(), &b) {
            prop_assert!(!e.contains('\n'), "{}", e);
            prop_assert!(e.starts_with(&dir.path().display().to_string()), "names the file: {}", e);
        }
    }
}
