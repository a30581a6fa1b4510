//! `op_files` on a real workdir: probe and plan run on a generated clip,
//! then each op's inputs and outputs are exactly the files it touches.

use crate::support::request;
use std::path::Path;
use tessera_media::testclips::cfr_25;
use tessera_media::*;
use tessera_types::{Grant, Reach};

#[test]
fn op_files_name_exactly_what_each_op_reads_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let src = cfr_25(dir.path()).unwrap();
    let work = dir.path().join("work");
    let out = dir.path().join("out").join("result.mkv");
    let req = request(&src, &out, Codec::Ffv1, 1.0);
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    write_request(&work, &req).unwrap();
    let args = |extra: &[&str]| {
        let mut a = vec!["--workdir".to_string(), work.display().to_string()];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let probe = op_files("probe", &args(&[]), None).unwrap();
    assert_eq!(probe.inputs, [work.join(REQUEST_FILE), src.clone()]);
    assert_eq!(probe.outputs, [work.join(PROBE_FILE)]);
    assert_eq!(probe.dirs, [out.parent().unwrap().to_path_buf()]);
    probe_op(&work).unwrap();
    let plan = op_files("plan", &args(&[]), None).unwrap();
    assert_eq!(
        plan.inputs,
        [work.join(REQUEST_FILE), work.join(PROBE_FILE), src.clone()]
    );
    assert_eq!(plan.outputs, [work.join(PLAN_FILE)]);
    plan_op(&work).unwrap();
    let p: Plan = serde_json::from_slice(&std::fs::read(work.join(PLAN_FILE)).unwrap()).unwrap();
    assert!(p.chunks.len() >= 3, "{} chunks", p.chunks.len());
    let head = [
        work.join(REQUEST_FILE),
        work.join(PROBE_FILE),
        work.join(PLAN_FILE),
    ];

    let chunk1 = op_files("encode-chunk", &args(&["--chunk", "1"]), None).unwrap();
    let mut want = head.to_vec();
    want.push(src.clone());
    assert_eq!(chunk1.inputs, want);
    assert_eq!(chunk1.outputs, [p.chunk_path(&work, &p.chunks[1])]);
    assert!(chunk1.dirs.contains(&work.join("chunks")));
    // The op writes exactly the file named.
    encode_chunk(&work, 1, &mut |_, _| {}).unwrap();
    assert!(chunk1.outputs[0].exists());
    assert!(op_files("encode-chunk", &args(&["--chunk", "99"]), None).is_err());
    assert!(op_files("encode-chunk", &args(&[]), None).is_err());

    // cfr_25 has AAC, which ffv1-in-mkv copies: no audio file.
    let audio = op_files("encode-audio", &args(&[]), None).unwrap();
    assert!(audio.outputs.is_empty(), "{audio:?}");

    let concat = op_files("concat", &args(&[]), None).unwrap();
    for c in &p.chunks {
        assert!(concat.inputs.contains(&p.chunk_path(&work, c)));
    }
    assert!(concat.inputs.contains(&src));
    assert_eq!(concat.outputs, std::slice::from_ref(&p.output.temp));
    assert!(concat.dirs.contains(&out.parent().unwrap().to_path_buf()));

    let verify = op_files("verify", &args(&[]), None).unwrap();
    assert!(verify.inputs.contains(&p.output.temp));
    assert_eq!(verify.outputs, [out.clone(), p.output.temp.clone()]);
    assert!(op_files("mystery", &args(&[]), None).is_err());
}

/// A member writes request.json and plan.json of an op task: with the
/// attempt's reach, a file outside it (or a link to one) is refused before
/// anything names it to a worker or the server opens it.
#[test]
fn op_files_within_a_reach_refuse_what_a_member_points_outside() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("jobs/9");
    let work = job.join("tasks/enc");
    let src = cfr_25(dir.path()).unwrap(); // outside the job
    let out = job.join("out.mkv");
    let args = vec!["--workdir".to_string(), work.display().to_string()];
    let reach = Reach::new(vec![Grant::write(&job).folder()]);
    let inside = job.join("in.mp4");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::copy(&src, &inside).unwrap();

    write_request(&work, &request(&inside, &out, Codec::Ffv1, 1.0)).unwrap();
    let ok = op_files("probe", &args, Some(&reach)).unwrap();
    assert_eq!(ok.inputs[1], inside);

    for evil in [src.clone(), "/etc/passwd".into(), job.join("../8/x.mp4")] {
        write_request(&work, &request(&evil, &out, Codec::Ffv1, 1.0)).unwrap();
        let err = op_files("probe", &args, Some(&reach)).unwrap_err();
        assert!(err.is_user_error(), "{err}");
        assert!(
            err.to_string().contains("outside what this job may read"),
            "{err}"
        );
    }
    write_request(
        &work,
        &request(&inside, Path::new("/etc/cron.d/x.mkv"), Codec::Ffv1, 1.0),
    )
    .unwrap();
    let err = op_files("probe", &args, Some(&reach)).unwrap_err();
    assert!(err.to_string().contains("may write"), "{err}");

    // request.json itself a link to a file elsewhere: not read through.
    std::fs::remove_file(work.join(REQUEST_FILE)).unwrap();
    let elsewhere = dir.path().join("request.json");
    write_request(dir.path(), &request(&inside, &out, Codec::Ffv1, 1.0)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, work.join(REQUEST_FILE)).unwrap();
    let err = op_files("probe", &args, Some(&reach)).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // A workdir outside the job.
    let outside = vec!["--workdir".to_string(), dir.path().display().to_string()];
    assert!(op_files("probe", &outside, Some(&reach)).is_err());
}
