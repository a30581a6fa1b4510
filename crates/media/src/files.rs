//! Which files each op reads and writes, by absolute path: what a worker
//! without the server's filesystem must fetch before an op and send back
//! after it. Read from the (server-side) workdir's `request.json` and
//! `plan.json`, so the answer is exact: a chunk's attempt sends back its
//! chunk file and nothing else.

use crate::error::{MediaError, Result};
use crate::request::EncodeRequest;
use crate::workdir::{audio_file, Plan, CHUNK_DIR, PLAN_FILE, PROBE_FILE, REQUEST_FILE};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tessera_types::Reach;

/// The files one op reads and writes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpFiles {
    /// Files the op reads (each must exist before it runs).
    pub inputs: Vec<PathBuf>,
    /// Files the op may write (or, like verify's temporary output, remove).
    pub outputs: Vec<PathBuf>,
    /// Directories the op writes into: they must exist before it runs.
    pub dirs: Vec<PathBuf>,
}

/// The files of `op` run with `args` (as in [`Action::Op`](tessera_types::Action)).
///
/// With a `reach` (an attempt's: the server and its workers, for a task
/// whose files a member may have written), the workdir's state files are
/// read only inside it and through no link ([`tessera_confine::read`]), and
/// every file the op would read or write must lie inside it too, else the
/// answer is a user error naming the first that does not.
pub fn op_files(op: &str, args: &[String], reach: Option<&Reach>) -> Result<OpFiles> {
    let files = files_of(op, args, reach)?;
    if let Some(reach) = reach {
        check_reach(reach, &files)?;
    }
    Ok(files)
}

/// Refuses files outside `reach`: inputs must be readable, outputs
/// writable, folders inside or on the way to a grant.
pub fn check_reach(reach: &Reach, files: &OpFiles) -> Result<()> {
    let out = MediaError::OutOfReach;
    for p in &files.inputs {
        reach.check(p, false).map_err(out)?;
    }
    for p in &files.outputs {
        reach.check(p, true).map_err(out)?;
    }
    for d in &files.dirs {
        if !reach.allows_dir(d) {
            return Err(out(tessera_types::OutOfReach {
                path: d.clone(),
                write: true,
            }));
        }
    }
    Ok(())
}

fn read_state<T: DeserializeOwned>(path: &Path, reach: Option<&Reach>) -> Result<T> {
    let state = |detail: String| MediaError::State {
        path: path.into(),
        detail,
    };
    let bytes = match reach {
        Some(r) => tessera_confine::read(r, path).map_err(|e| match e {
            tessera_confine::ConfineError::OutOfReach(o) => MediaError::OutOfReach(o),
            e => state(e.to_string()),
        })?,
        None => std::fs::read(path).map_err(|e| state(e.to_string()))?,
    };
    serde_json::from_slice(&bytes).map_err(|e| state(e.to_string()))
}

fn files_of(op: &str, args: &[String], reach: Option<&Reach>) -> Result<OpFiles> {
    let mut workdir = None;
    let mut chunk = None;
    let mut rendition = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--workdir" => workdir = it.next().map(PathBuf::from),
            "--chunk" => chunk = it.next().and_then(|n| n.parse::<u32>().ok()),
            "--rendition" => rendition = it.next().cloned(),
            _ => {}
        }
    }
    let workdir = workdir.ok_or_else(|| {
        MediaError::BadRequest(format!("op {op}: no --workdir among its arguments"))
    })?;
    let request = workdir.join(REQUEST_FILE);
    let req: EncodeRequest = read_state(&request, reach)?;
    let probe = workdir.join(PROBE_FILE);
    let plan_file = workdir.join(PLAN_FILE);
    // probe and plan check that the output's directory exists.
    let mut files = OpFiles {
        dirs: req
            .output
            .parent()
            .map(Path::to_path_buf)
            .into_iter()
            .collect(),
        ..OpFiles::default()
    };
    if op == "probe" {
        files.inputs = vec![request, req.input];
        files.outputs = vec![probe];
        return Ok(files);
    }
    if op == "plan" {
        files.inputs = vec![request, probe, req.input];
        files.outputs = vec![plan_file];
        return Ok(files);
    }
    let plan: Plan = read_state(&plan_file, reach)?;
    if let Some(ladder) = &plan.ladder {
        let mut files = crate::ladder::files::ladder_files(
            op,
            &workdir,
            &req,
            &plan,
            ladder,
            chunk,
            rendition.as_deref(),
        )?;
        files.inputs.splice(0..0, [request, probe, plan_file]);
        return Ok(files);
    }
    let audio = workdir.join(audio_file(plan.output.container));
    let encoded_audio = plan.audio.as_ref().is_some_and(|a| a.needs_encode());
    files.inputs = vec![request, probe, plan_file];
    match op {
        "encode-chunk" => {
            let n = chunk.ok_or_else(|| {
                MediaError::BadRequest("op encode-chunk: no --chunk N among its arguments".into())
            })?;
            let c = plan.chunks.get(n as usize).ok_or_else(|| {
                MediaError::BadRequest(format!(
                    "chunk {n} does not exist; the plan has {} chunks",
                    plan.chunks.len()
                ))
            })?;
            files.inputs.push(req.input);
            files.outputs.push(plan.chunk_path(&workdir, c));
            files.dirs.push(workdir.join(CHUNK_DIR));
        }
        "encode-audio" => {
            files.inputs.push(req.input);
            if encoded_audio {
                files.outputs.push(audio);
            }
        }
        "concat" => {
            for c in &plan.chunks {
                files.inputs.push(plan.chunk_path(&workdir, c));
            }
            if encoded_audio {
                files.inputs.push(audio);
            }
            files.inputs.push(req.input);
            files.outputs.push(plan.output.temp.clone());
        }
        "verify" => {
            files.inputs.push(plan.output.temp.clone());
            files.inputs.push(req.input);
            files.outputs.push(plan.output.path.clone());
            files.outputs.push(plan.output.temp.clone());
        }
        other => {
            return Err(MediaError::BadRequest(format!(
                "unknown op {other:?}; the ops are probe, plan, encode-chunk, encode-audio, concat, verify"
            )))
        }
    }
    for out in &files.outputs {
        if let Some(parent) = out.parent() {
            if !files.dirs.iter().any(|d| d == parent) {
                files.dirs.push(parent.to_path_buf());
            }
        }
    }
    Ok(files)
}

/// A regular file's size and modification time in nanoseconds: what the
/// server and its workers compare before trusting a checksum they hold.
pub fn file_stamp(path: &Path) -> std::io::Result<(u64, i64)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok((
        meta.len(),
        meta.mtime().saturating_mul(1_000_000_000) + meta.mtime_nsec(),
    ))
}

/// The sha256 of a file, as lowercase hex, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    sha256_of(&mut std::fs::File::open(path)?)
}

/// The sha256 of what `f` reads to its end, as lowercase hex.
pub fn sha256_of(f: &mut impl std::io::Read) -> std::io::Result<String> {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_summed_and_stamped_and_directories_are_not_files() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("abc");
        std::fs::write(&f, b"abc").unwrap();
        assert_eq!(
            sha256_file(&f).unwrap(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(file_stamp(&f).unwrap().0, 3);
        assert!(file_stamp(dir.path()).is_err(), "a directory has no stamp");
        assert!(sha256_file(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn an_op_without_a_workdir_or_an_unknown_op_is_refused() {
        assert!(op_files("probe", &[], None).is_err());
        let dir = tempfile::tempdir().unwrap();
        let w = dir.path().to_string_lossy().into_owned();
        assert!(
            op_files("probe", &["--workdir".into(), w], None).is_err(),
            "no request.json"
        );
    }
}
