//! Each test plants what a hostile task could leave in its folders and
//! checks that the confined call refuses it and touches nothing outside.

use super::*;
use std::os::unix::fs::symlink;

struct Rig {
    _dir: tempfile::TempDir,
    /// The job folder (granted, writable).
    job: PathBuf,
    /// A secret outside every grant.
    secret: PathBuf,
    /// A granted file (read-only) beside other files that are not granted.
    media: PathBuf,
    reach: Reach,
}

fn rig() -> Rig {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("jobs/7");
    std::fs::create_dir_all(job.join("tasks/a")).unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, b"the secret").unwrap();
    let vol = dir.path().join("vol");
    std::fs::create_dir(&vol).unwrap();
    let media = vol.join("ep1.mkv");
    std::fs::write(&media, b"video").unwrap();
    std::fs::write(vol.join("ep2.mkv"), b"other video").unwrap();
    let reach = Reach::new(vec![Grant::write(&job), Grant::read(&media)]);
    Rig {
        _dir: dir,
        job,
        secret,
        media,
        reach,
    }
}

#[test]
fn plain_files_inside_the_reach_are_read_and_written() {
    let r = rig();
    let f = r.job.join("tasks/a/out/deep/result.txt");
    let mut w = create(&r.reach, &f, Make::output(Write::Truncate)).unwrap();
    std::io::Write::write_all(&mut w, b"one").unwrap();
    drop(w);
    let mut w = create(&r.reach, &f, Make::output(Write::Append)).unwrap();
    std::io::Write::write_all(&mut w, b"two").unwrap();
    drop(w);
    assert_eq!(read(&r.reach, &f).unwrap(), b"onetwo");
    assert_eq!(stamp(&r.reach, &f).unwrap().0, 6);
    assert_eq!(read(&r.reach, &r.media).unwrap(), b"video");
    let part = r.job.join("tasks/a/.r.part");
    std::fs::write(&part, b"new").unwrap();
    rename_in_place(&r.reach, &part, &r.job.join("tasks/a/r")).unwrap();
    assert_eq!(read(&r.reach, &r.job.join("tasks/a/r")).unwrap(), b"new");
    assert!(remove(&r.reach, &r.job.join("tasks/a/r")).unwrap());
    assert!(!remove(&r.reach, &r.job.join("tasks/a/r")).unwrap());
    create_dir_all(&r.reach, &r.job.join("x/y"), None).unwrap();
    assert!(r.job.join("x/y").is_dir());
}

#[test]
fn paths_outside_the_reach_are_refused_before_anything_is_opened() {
    let r = rig();
    for p in [r.secret.clone(), r.media.with_file_name("ep2.mkv")] {
        let err = read(&r.reach, &p).unwrap_err();
        assert!(matches!(err, ConfineError::OutOfReach(_)), "{err}");
    }
    let err = create(&r.reach, &r.media, Make::output(Write::Truncate)).unwrap_err();
    assert!(
        matches!(err, ConfineError::OutOfReach(_)),
        "read-only grant: {err}"
    );
    assert!(read(&r.reach, &r.job.join("../8/x")).is_err());
    assert_eq!(std::fs::read(&r.media).unwrap(), b"video");
}

#[test]
fn links_planted_in_the_reach_are_never_followed() {
    let r = rig();
    // A link as the file itself.
    symlink(&r.secret, r.job.join("chunk.nut")).unwrap();
    let err = read(&r.reach, &r.job.join("chunk.nut")).unwrap_err();
    assert!(err.to_string().contains("symbolic link"), "{err}");
    // Writing through it neither truncates nor writes the secret.
    assert!(create(
        &r.reach,
        &r.job.join("chunk.nut"),
        Make::output(Write::Truncate)
    )
    .is_err());
    assert_eq!(std::fs::read(&r.secret).unwrap(), b"the secret");
    // A link as a folder on the way, for reads, writes and new folders.
    let outside = r.secret.parent().unwrap().join("outside");
    std::fs::create_dir(&outside).unwrap();
    std::fs::write(outside.join("f"), b"outside").unwrap();
    symlink(&outside, r.job.join("tasks/a/out")).unwrap();
    assert!(read(&r.reach, &r.job.join("tasks/a/out/f")).is_err());
    assert!(create(
        &r.reach,
        &r.job.join("tasks/a/out/new"),
        Make::output(Write::Truncate)
    )
    .is_err());
    assert!(create_dir_all(&r.reach, &r.job.join("tasks/a/out/sub"), None).is_err());
    assert!(!outside.join("new").exists() && !outside.join("sub").exists());
    // Removing a link removes the link, not its target.
    assert!(remove(&r.reach, &r.job.join("chunk.nut")).unwrap());
    assert!(r.secret.exists());
    // A rename onto a link replaces the link.
    std::fs::write(r.job.join(".p"), b"x").unwrap();
    symlink(&r.secret, r.job.join("t")).unwrap();
    rename_in_place(&r.reach, &r.job.join(".p"), &r.job.join("t")).unwrap();
    assert_eq!(std::fs::read(&r.secret).unwrap(), b"the secret");
    assert_eq!(std::fs::read(r.job.join("t")).unwrap(), b"x");
}

#[test]
fn a_fifo_or_a_folder_is_refused_without_waiting() {
    let r = rig();
    let fifo = r.job.join("request.json");
    let c = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let started = std::time::Instant::now();
    let err = read(&r.reach, &fifo).unwrap_err();
    assert!(err.to_string().contains("not a regular file"), "{err}");
    // A blocking open would never return; this one came back at once.
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
    assert!(create(&r.reach, &fifo, Make::output(Write::Append)).is_err());
    assert!(read(&r.reach, &r.job.join("tasks")).is_err());
}

#[test]
fn owners_get_what_is_made() {
    let r = rig();
    // SAFETY: geteuid/getegid have no preconditions.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let owned = Make {
        owner: Some((uid, gid)),
        ..Make::output(Write::Truncate)
    };
    create(&r.reach, &r.job.join("new/dir/f"), owned).unwrap();
    let d = create_dir_all(&r.reach, &r.job.join("tasks/b"), Some((uid, gid))).unwrap();
    assert!(d.metadata().unwrap().is_dir());
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(r.job.join("new/dir"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(
        mode & 0o777,
        0o755,
        "made folders are passable whatever the umask"
    );
    assert!(open_dir(&r.reach, &r.job.join("tasks"))
        .unwrap()
        .metadata()
        .unwrap()
        .is_dir());
}
