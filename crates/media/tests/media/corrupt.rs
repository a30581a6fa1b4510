//! A chunk whose bytes are damaged but which still counts its frames (the
//! check the chunk encode makes) is caught by the encode's own verify,
//! which decodes the whole output, and nothing is published.

use crate::support::request;
use std::process::Command;
use tessera_media::testclips;
use tessera_media::*;

#[test]
fn a_corrupt_chunk_that_counts_its_frames_fails_the_decode_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::cfr_25(dir.path()).unwrap();
    let workdir = dir.path().join("w");
    let out = dir.path().join("out.mkv");
    let req = request(&src, &out, Codec::X264, 1.0);
    write_request(&workdir, &req).unwrap();
    probe_op(&workdir).unwrap();
    plan_op(&workdir).unwrap();
    let plan: Plan =
        serde_json::from_slice(&std::fs::read(workdir.join(PLAN_FILE)).unwrap()).unwrap();
    for c in &plan.chunks {
        encode_chunk(&workdir, c.index, &mut |_, _| {}).unwrap();
    }
    // Damage chunk 1's packets in place (ffmpeg's noise filter rewrites
    // payload bytes; the packets, and so the frame count, stay).
    let chunk = plan.chunk_path(&workdir, &plan.chunks[1]);
    let damaged = chunk.with_extension("damaged.nut");
    let made = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(&chunk)
        .args(["-c", "copy", "-bsf:v", "noise=amount=8000", "-f", "nut"])
        .arg(&damaged)
        .status()
        .unwrap();
    assert!(made.success());
    assert_eq!(
        count_video_packets(&damaged).unwrap(),
        u64::from(plan.chunks[1].count),
        "the damage keeps the frame count: only a decode can see it"
    );
    std::fs::rename(&damaged, &chunk).unwrap();
    encode_audio(&workdir).unwrap();
    let temp = concat(&workdir).unwrap();
    // Without the decode the counts and times agree; with it, it fails.
    let shallow = verify(&src, &temp, VerifyOptions { decode: false }).unwrap();
    assert!(shallow.passed(), "counts alone pass: {shallow}");
    let err = verify_op(&workdir, VerifyOptions { decode: true }).unwrap_err();
    assert!(err.to_string().contains("decode"), "{err}");
    assert!(!out.exists(), "nothing published at the output path");
    assert!(!temp.exists(), "the temporary output is removed");
}
