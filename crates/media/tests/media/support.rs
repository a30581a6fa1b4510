use std::path::{Path, PathBuf};
use tessera_media::runner::{self, argv, Tool};
use tessera_media::*;

pub struct Run {
    pub plan: Plan,
    pub tasks: Vec<tessera_types::TaskSpec>,
    pub report: VerifyReport,
    pub output: PathBuf,
}

pub fn request(input: &Path, output: &Path, codec: Codec, chunk_seconds: f64) -> EncodeRequest {
    let mut settings = EncodeSettings::new(codec);
    settings.preset = match codec {
        Codec::X264 | Codec::X265 => Some("ultrafast".into()),
        Codec::SvtAv1 => Some("12".into()),
        Codec::Vp9 => Some("8".into()),
        Codec::Ffv1 => None,
    };
    EncodeRequest {
        input: input.into(),
        output: output.into(),
        settings,
        chunk_seconds,
        slots: 1,
        ladder: None,
        target_vmaf: None,
    }
}

/// probe -> plan -> every chunk -> audio -> concat -> verify, as the DAG would.
pub fn run_pipeline(workdir: &Path, req: &EncodeRequest) -> Result<Run> {
    write_request(workdir, req)?;
    probe_op(workdir)?;
    let tasks = plan_op(workdir)?;
    let plan: Plan =
        serde_json::from_slice(&std::fs::read(workdir.join(PLAN_FILE)).unwrap()).unwrap();
    for c in &plan.chunks {
        let mut last = (0, 0);
        encode_chunk(workdir, c.index, &mut |d, t| last = (d, t))?;
        assert_eq!(
            last,
            (u64::from(c.count), u64::from(c.count)),
            "progress ends at the chunk's frame count"
        );
    }
    encode_audio(workdir)?;
    let temp = concat(workdir)?;
    assert!(
        temp.exists() && !req.output.exists(),
        "concat writes the temporary output only"
    );
    let report = verify_op(workdir, VerifyOptions { decode: true })?;
    assert!(!temp.exists());
    Ok(Run {
        plan,
        tasks,
        report,
        output: req.output.clone(),
    })
}

/// Damages `chunk`'s packets in place with ffmpeg's noise filter: the
/// packets, and so the frame count, stay; only a decode can see it.
pub fn damage(chunk: &Path) {
    let damaged = chunk.with_extension("damaged.nut");
    let made = std::process::Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-y", "-i"])
        .arg(chunk)
        .args(["-c", "copy", "-bsf:v", "noise=amount=8000", "-f", "nut"])
        .arg(&damaged)
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::rename(&damaged, chunk).unwrap();
}

/// Per-frame MD5 of the decoded first video stream (hashes only, no timing).
pub fn framemd5(path: &Path) -> Vec<String> {
    let mut a = argv(["-nostdin", "-v", "error"]);
    a.extend(runner::media_input(path));
    a.extend(argv([
        "-map",
        "0:v:0",
        "-fps_mode",
        "passthrough",
        "-f",
        "framemd5",
        "pipe:1",
    ]));
    let out = runner::run(Tool::Ffmpeg, &a).unwrap();
    out.stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.rsplit(',').next().unwrap().trim().to_string())
        .collect()
}

pub fn index_of(path: &Path) -> FrameIndex {
    let info = probe(path).unwrap();
    frame_index(path, &info).unwrap()
}
