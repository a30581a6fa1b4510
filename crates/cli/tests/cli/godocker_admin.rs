//! godocker-cli 1.0.25, unchanged, for what Go-Docker offered beyond
//! running jobs (harness: `godocker_client.rs`): `godjob archive` (an ended
//! job's files removed, its record kept and shown archived; a running one
//! refused; `--purge` refused), `godproject update`, `delete` (refused while
//! a job has not ended, or to a mere member; then gone from listings) and
//! `quota_reset` (usage counted afresh), `goduser update` and `remove` (keys
//! revoked: the user can no longer log in), and label constraints (`-l
//! NAME==VALUE`: the labels of the workers that run containers, placing
//! the job on the worker that carries them). Checks are on what the client
//! prints: it exits 0 on errors.

use crate::godocker_client::{client_dir, session, God};
use crate::support::{docker_engine_present, local_image, run};
use std::process::Command;
use std::time::{Duration, Instant};

/// Today as the client prints usage dates (`06 Dec 2026`, UTC).
fn today() -> String {
    let out = run(Command::new("date").args(["-u", "+%d %b %Y"]));
    out.stdout.trim().to_string()
}

/// Waits until job `id` runs (its event in `godjob list active` is None).
fn wait_running(god: &God, id: &str) {
    let start = Instant::now();
    while god.row(false, id).map(|r| r[5].clone()).as_deref() != Some("None") {
        assert!(start.elapsed() < Duration::from_secs(60), "{id} never ran");
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn godocker_cli_archives_jobs_deletes_projects_resets_usage_and_removes_users() {
    let Some(mut s) = session() else { return };
    let (ana, bob, image) = (&s.ana, &s.bob, s.image);
    let job = |project: &str, name: &str, cmd: &str| {
        let args = [
            "--external_image",
            "-p",
            project,
            "-i",
            image,
            "-n",
            name,
            "--cmd",
            cmd,
        ];
        ana.create(&args, &[])
    };

    // Archive: a running job is refused; an ended one loses its files.
    let kept = job("video", "kept", "echo kept > out.txt; sleep 1");
    let sleeper = job("video", "sleeper", "sleep 300");
    assert!(ana
        .wait_over(&kept, Duration::from_secs(60))
        .contains("success"));
    assert!(ana.run("godfile", &["list", &kept]).contains("out.txt"));
    wait_running(ana, &sleeper);
    let said = ana.run("godjob", &["archive", "-i", &sleeper]);
    assert!(said.contains("only an ended job is archived"), "{said}");
    let said = ana.run("godjob", &["archive", "-i", &kept, "--purge"]);
    assert!(said.contains("--purge is not offered"), "{said}");
    let said = ana.run("godjob", &["archive", "-i", &kept]);
    assert!(said.contains(&format!("Job {kept} archived.")), "{said}");
    assert_eq!(ana.row(true, &kept).unwrap()[5], "archived");
    assert!(
        !s.data.join("jobs").join(&kept).exists(),
        "its folder is gone"
    );
    let listed = ana.run("godfile", &["list", &kept]);
    assert!(
        listed.contains("its files were removed from disk"),
        "{listed}"
    );
    let said = ana.run(
        "godfile",
        &["download", &kept, "out.txt", ana.home.to_str().unwrap()],
    );
    assert!(said.contains("its files were removed from disk"), "{said}");
    if ana.python2 {
        let shown = ana.run("godjob", &["show", &kept]);
        assert_eq!(ana.rows(&shown, "over"), ["archived"], "{shown}");
    }
    let said = ana.run("godjob", &["archive", "-d", "0"]);
    assert!(said.contains("Jobs will be archived"), "{said}");
    assert!(ana
        .run("godjob", &["kill", &sleeper])
        .contains("kill requested"));
    assert!(ana
        .wait_over(&sleeper, Duration::from_secs(60))
        .contains("killed"));

    // Usage per day, then counted afresh by quota_reset (admins).
    let shown = ana.run("godproject", &["show", "video"]);
    assert_eq!(ana.rows(&shown, &today()).len(), 1, "{shown}");
    let said = bob.run("godproject", &["quota-reset", "video"]);
    assert!(!said.contains("quota reset done"), "{said}");
    let said = ana.run("godproject", &["quota-reset", "video"]);
    assert!(said.contains("Project video quota reset done"), "{said}");
    let shown = ana.run("godproject", &["show", "video"]);
    assert!(ana.rows(&shown, &today()).is_empty(), "{shown}");

    // godproject update (Python 2: under 3 the client crashes in it).
    if ana.python2 {
        let said = ana.run(
            "godproject",
            &["update", "video", "-d", "videos", "-p", "70", "-c", "4"],
        );
        assert!(said.contains("project video was updated"), "{said}");
        let shown = ana.run("godproject", &["show", "video"]);
        assert_eq!(ana.rows(&shown, "video"), ["videos"], "{shown}");
        assert_eq!(ana.rows(&shown, "0"), ["4"], "quota: ram 0, cpu 4: {shown}");
    }

    // Delete: refused while a job runs, and to a mere member; then gone.
    let said = ana.run(
        "godproject",
        &["create", "-n", "gdgone", "-d", "gone", "-m", "bob"],
    );
    assert!(said.contains("project gdgone was created"), "{said}");
    let busy = job("gdgone", "busy", "sleep 300");
    let said = ana.run("godproject", &["delete", "gdgone"]);
    assert!(
        said.contains("still has 1 jobs that have not ended"),
        "{said}"
    );
    let said = bob.run("godproject", &["delete", "gdgone"]);
    assert!(said.contains("only an owner of project gdgone"), "{said}");
    ana.run("godjob", &["kill", &busy]);
    assert!(ana
        .wait_over(&busy, Duration::from_secs(60))
        .contains("killed"));
    let said = ana.run("godproject", &["delete", "gdgone"]);
    assert!(said.contains("Project gdgone has been deleted"), "{said}");
    assert!(!bob.run("godproject", &["list"]).contains("gdgone"));
    assert!(!ana.run("godproject", &["listall"]).contains("gdgone"));
    let said = ana.run("godproject", &["show", "gdgone"]);
    assert!(said.contains("Not Found"), "{said}");

    // goduser update: quotas are per project here; remove: keys revoked.
    if ana.python2 {
        let said = ana.run("goduser", &["update", "bob", "-c", "3"]);
        assert!(
            said.contains("Tessera sets quotas and priority per project"),
            "{said}"
        );
        let said = ana.run("goduser", &["update", "bob"]);
        assert!(said.contains("user bob was updated"), "{said}");
    }
    let said = bob.run("goduser", &["remove", "ana", "--force"]);
    assert!(said.contains("only an admin removes users"), "{said}");
    let said = ana.run("goduser", &["remove", "ana", "--force"]);
    assert!(said.contains("you may not remove yourself"), "{said}");
    assert!(bob.run("godproject", &["list"]).contains("default"));
    let said = ana.run("goduser", &["remove", "bob", "--force"]);
    assert!(said.contains("user bob removal requested"), "{said}");
    let said = bob.run("godproject", &["list"]);
    assert!(said.contains("Unauthorized"), "{said}");
    s.server.terminate(Duration::from_secs(60));
}

/// Workers that run containers offer their labels as Go-Docker's label
/// constraints: the client accepts `-l zone==eu` and the job runs on that
/// worker; an unknown one is refused by the client with the list.
#[test]
fn godocker_cli_label_constraints_place_jobs_on_labelled_workers() {
    let Some(bin) = client_dir() else { return };
    if !docker_engine_present() {
        return;
    }
    let c = crate::workers::Cluster::start_with(2000, &["--slots", "0"]);
    let _eu = c.worker_with(
        "eu",
        1,
        &["--grace", "0", "--docker", "--labels", "zone=eu"],
    );
    let _us = c.worker_with(
        "us",
        1,
        &["--grace", "0", "--docker", "--labels", "zone=us"],
    );
    let ana = God::new(&bin, c.data.with_file_name("ana"));
    let url = c.server.url.trim_end_matches('/').to_string();
    ana.run(
        "godlogin",
        &["-a", &c.key, "-l", "ana", "-s", &url, "--no-certificate"],
    );
    let image = local_image();
    let base = [
        "--external_image",
        "-p",
        "video",
        "-i",
        image,
        "-n",
        "placed",
    ];
    let start = Instant::now();
    let said = loop {
        let args = [&base[..], &["-l", "zone==mars", "--cmd", "true"]].concat();
        let said = ana.run("godjob", &[&["create"], &args[..]].concat());
        if said.contains("zone==us") && said.contains("zone==eu") {
            break said;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "{said}");
        std::thread::sleep(Duration::from_millis(300));
    };
    assert!(
        said.contains("Constraint 'zone==mars does not exist"),
        "{said}"
    );
    for zone in ["eu", "us"] {
        let label = format!("zone=={zone}");
        let args = [&base[..], &["-l", &label, "--cmd", "true"]].concat();
        let id = ana.create(&args, &[]);
        assert!(ana
            .wait_over(&id, Duration::from_secs(120))
            .contains("success"));
        let attempts = c.attempts(id.parse().unwrap());
        assert_eq!(attempts[0]["node"], zone, "{attempts:?}");
    }
}
