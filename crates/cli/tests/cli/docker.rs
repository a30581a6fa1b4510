//! `tessera server --docker`: a task that names an image runs in a
//! container on this machine's Docker engine, shares the job's folder with
//! the host tasks, and runs as the server's user; without `--docker` the
//! same spec is refused at submission.

use crate::server::Server;
use crate::support::{bootstrap, client_of, docker_engine_present, image_flow, run};
use std::time::{Duration, Instant};

/// `inside` writes a file into the job's folder and prints its uid;
/// `outside`, a host process, reads the file back.
fn boxed() -> String {
    image_flow(r#"echo made-in-a-container > \"$TESSERA_JOB_DIR/handoff\"; id -u"#)
}

fn client(server: &Server, key: &str, args: &[&str]) -> crate::support::Outcome {
    run(&mut client_of(&server.url, key, args))
}

#[test]
fn an_image_task_runs_in_a_container_and_hands_files_to_host_tasks() {
    if !docker_engine_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let key = bootstrap(&data);
    // `outside` runs in $TESSERA_JOB_DIR/tasks/outside: ../../handoff is
    // the file `inside` left in the job's folder.
    let flow = dir.path().join("flow.yaml");
    std::fs::write(&flow, boxed()).unwrap();

    // Without --docker: refused at submission, saying how to enable it.
    let server = Server::start_with(&data, &[]);
    let refused = client(&server, &key, &["submit", flow.to_str().unwrap()]);
    assert_eq!(
        refused.code,
        Some(3),
        "{}{}",
        refused.stdout,
        refused.stderr
    );
    assert!(refused.stderr.contains("--docker"), "{}", refused.stderr);
    drop(server);

    let server = Server::start_with(&data, &["--docker"]);
    client(&server, &key, &["submit", flow.to_str().unwrap()]).expect_code(0);
    let start = Instant::now();
    loop {
        let shown = client(&server, &key, &["job", "show", "1"]);
        if shown.stdout.contains("— succeeded") {
            break;
        }
        assert!(
            !shown.stdout.contains("— failed"),
            "{}\n{}",
            shown.stdout,
            client(&server, &key, &["job", "logs", "1", "inside", "--stderr"]).stdout
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            shown.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // As root, the container runs as the project's own task user (the
    // first project, id 1: uid 200001); otherwise as the server's user.
    // SAFETY: geteuid has no preconditions.
    let uid = match unsafe { libc::geteuid() } {
        0 => 200_001,
        me => me,
    };
    let inside = client(&server, &key, &["job", "logs", "1", "inside"]);
    assert_eq!(
        inside.stdout.trim(),
        uid.to_string(),
        "runs as the project's task user (root) or the server's user"
    );
    let outside = client(&server, &key, &["job", "logs", "1", "outside"]);
    assert_eq!(outside.stdout, "made-in-a-container\n");
}

/// Volumes by name in containers: a writable volume takes what one task
/// writes at its mount point, another task mounting it read-only reads it
/// (and cannot write); a subpath mounts a folder inside; an unknown volume,
/// a writable mount of a read-only volume and a subpath leading out are
/// refused, the first two at submission (422), the last when the attempt
/// starts.
#[test]
fn tasks_mount_the_operators_volumes_by_name_and_nothing_else() {
    if !docker_engine_present() {
        return;
    }
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().join("data");
    let storage = dir.path().join("storage");
    let media = dir.path().join("media");
    std::fs::create_dir_all(storage.join("split")).unwrap();
    std::fs::create_dir_all(&media).unwrap();
    // The operator lets the projects' task users write in `storage`.
    for d in [&storage, &storage.join("split")] {
        std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o1777)).unwrap();
    }
    std::fs::write(media.join("clip.txt"), "from media").unwrap();
    std::os::unix::fs::symlink("/etc", media.join("out")).unwrap();
    let key = bootstrap(&data);
    let server = Server::start_with(
        &data,
        &[
            "--docker",
            "--volume",
            &format!("media={}", media.display()),
            "--writable-volume",
            &format!("storage={}", storage.display()),
        ],
    );
    let image = crate::support::local_image();
    let flow = dir.path().join("flow.yaml");
    let submit = |yaml: &str| {
        std::fs::write(&flow, yaml).unwrap();
        client(&server, &key, &["submit", flow.to_str().unwrap()])
    };
    let ok = submit(&format!(
        r#"
name: volumes
tasks:
  - name: write
    image: {image}
    mounts: [{{ volume: storage, subpath: split, target: /uploads }}, {{ volume: media, target: /media, read_only: true }}]
    action: {{ kind: script, script: "cat /media/clip.txt > /uploads/piece; if touch /media/x 2>/dev/null; then echo WROTE-MEDIA > $TESSERA_JOB_DIR/wrote; fi" }}
  - name: read
    image: {image}
    deps: [{{ selector: write }}]
    mounts: [{{ volume: storage, target: /st, read_only: true }}]
    action: {{ kind: script, script: "cat /st/split/piece > $TESSERA_JOB_DIR/seen; if touch /st/y 2>/dev/null; then echo WROTE-RO > $TESSERA_JOB_DIR/wrote; fi" }}
"#
    ));
    ok.expect_code(0);
    let start = Instant::now();
    loop {
        let shown = client(&server, &key, &["job", "show", "1"]);
        if shown.stdout.contains("— succeeded") {
            break;
        }
        assert!(
            !shown.stdout.contains("— failed") && start.elapsed() < Duration::from_secs(60),
            "{}",
            shown.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // What the tasks saw, in their job's folder (not their logs: the
    // Docker executor's log pump can miss the tail of a short container's
    // output, a known gap noted for the Docker API work).
    let job_dir = data.join("jobs/1");
    assert_eq!(
        std::fs::read_to_string(job_dir.join("seen")).unwrap(),
        "from media"
    );
    assert!(
        !job_dir.join("wrote").exists(),
        "a read-only mount was written"
    );
    assert_eq!(
        std::fs::read_to_string(storage.join("split/piece")).unwrap(),
        "from media"
    );
    assert!(!media.join("x").exists() && !storage.join("y").exists());

    let one = |mount: &str| {
        format!(
            "name: m\ntasks:\n  - name: t\n    image: {image}\n    mounts: [{mount}]\n    action: {{ kind: command, argv: [\"true\"] }}\n"
        )
    };
    for (mount, want) in [
        (
            "{ volume: nope, target: /x }",
            "unknown volume \"nope\"; this server has: media, storage",
        ),
        (
            "{ volume: media, target: /x }",
            "volume media is read-only on this server",
        ),
    ] {
        let refused = submit(&one(mount));
        refused.expect_code(3);
        assert!(refused.stderr.contains(want), "{}", refused.stderr);
    }
    // A subpath that is a link out of the volume: the attempt fails saying so.
    submit(&one(
        "{ volume: media, subpath: out, target: /x, read_only: true }",
    ))
    .expect_code(0);
    let start = Instant::now();
    loop {
        let shown = client(&server, &key, &["job", "show", "2"]);
        if shown.stdout.contains("— failed") {
            assert!(
                shown.stdout.contains("is not a folder inside the volume"),
                "{}",
                shown.stdout
            );
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{}",
            shown.stdout
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
