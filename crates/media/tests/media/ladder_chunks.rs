//! A ladder's chunk encodes: each rendition's chunk holds exactly its
//! frames, scaled to the rendition, with a keyframe at every segment start
//! the chunk holds and nowhere a segment does not start... except where the
//! encoder adds its own (scene cuts), which the packager keeps inside a segment.

use crate::support::{index_of, request};
use std::path::Path;
use tessera_media::ladder::parse_ladder_file;
use tessera_media::*;

fn plan_of(workdir: &Path) -> Plan {
    serde_json::from_slice(&std::fs::read(workdir.join(PLAN_FILE)).unwrap()).unwrap()
}

#[test]
fn rendition_chunks_put_an_idr_on_every_segment_start() {
    let dir = tempfile::tempdir().unwrap();
    let src = testclips::ntsc(dir.path()).unwrap();
    let workdir = dir.path().join("w");
    let mut req = request(&src, &dir.path().join("out"), Codec::X264, 2.0);
    req.ladder = Some(
        parse_ladder_file(
            "segment_seconds: 1\nrungs: [{name: a, height: 240, preset: ultrafast}, {name: b, height: 120, codec: x265, preset: ultrafast}]",
        )
        .unwrap(),
    );
    write_request(&workdir, &req).unwrap();
    probe_op(&workdir).unwrap();
    plan_op(&workdir).unwrap();
    let plan = plan_of(&workdir);
    let ladder = plan.ladder.clone().unwrap();
    // 4 s of 30000/1001: segments start at frames 0, 30, 60, 90 (1.001 s each).
    assert_eq!(ladder.segments, [0, 30, 60, 90]);
    assert!(plan.chunks.len() >= 2, "{:?}", plan.chunks);
    for r in &ladder.renditions {
        for c in &plan.chunks {
            let file = encode_chunk_of(&workdir, c.index, Some(&r.name), &mut |_, _| {}).unwrap();
            let idx = index_of(&file);
            assert_eq!(idx.pts.len() as u32, c.count);
            for s in ladder
                .segments
                .iter()
                .filter(|s| **s >= c.first && **s < c.first + c.count)
            {
                assert!(
                    idx.keyframes.contains(&(s - c.first)),
                    "{} chunk {}: no keyframe at segment start {s} ({:?})",
                    r.name,
                    c.index,
                    idx.keyframes
                );
            }
            let info = probe(&file).unwrap();
            let v = info.video().unwrap();
            assert_eq!((v.width, v.height), (Some(r.width), Some(r.height)));
        }
    }
    // A ladder chunk task needs its rendition; a single-file op refuses one.
    let err = encode_chunk(&workdir, 0, &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("--rendition"), "{err}");
}
