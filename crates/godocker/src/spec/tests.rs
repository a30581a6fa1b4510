use super::*;

fn create(json: &str) -> Create {
    serde_json::from_str(json).unwrap()
}

fn basic() -> Create {
    create(
        r#"{"user": {"project": "video"}, "meta": {"name": "split", "description": "d",
            "tags": ["a"]}, "requirements": {"cpu": 2, "ram": 3, "gpus": 0,
            "array": {"values": null}, "label": [], "failure_policy": 0,
            "tasks": ["12", "13", "14", ""], "tmpstorage": null, "executor": null},
            "container": {"image": "tessera-local:dev", "volumes": [], "root": false},
            "command": {"interactive": false, "cmd": "echo hi"}, "date": 1.0,
            "status": {"primary": null}}"#,
    )
}

#[test]
fn parents_accept_the_trailing_comma_of_a_shell_loop() {
    assert_eq!(
        basic().parents().unwrap(),
        vec![JobId(12), JobId(13), JobId(14)]
    );
    let mut c = basic();
    c.requirements.tasks = vec!["12".into(), "x".into()];
    assert!(c.parents().unwrap_err().contains("\"x\" is not a job id"));
    c.requirements.tasks = vec!["012".into()];
    assert!(c.parents().is_err(), "only canonical ids");
}

#[test]
fn a_job_is_one_image_task_with_its_resources_parents_and_meta() {
    let c = basic();
    let spec = translate(&c, "alice", &[], &c.parents().unwrap()).unwrap();
    assert_eq!(spec.name, "split");
    assert_eq!(spec.after.len(), 3);
    let task = &spec.tasks[0];
    assert_eq!(task.image.as_deref(), Some("tessera-local:dev"));
    assert_eq!(task.resources.cpu, 2);
    assert_eq!(task.resources.memory_mb, 3 * 1024);
    assert_eq!(task.env["GODOCKER_CMD"], "echo hi");
    assert_eq!(spec.meta[META_USER], "alice");
    assert_eq!(spec.meta[META_PARENTS], "12,13,14");
    assert_eq!(spec.meta[META_TAGS], "[\"a\"]");
}

#[test]
fn arrays_give_go_docker_task_ids() {
    let mut c = basic();
    c.requirements.array = Some(ArrayValues {
        values: Some("10:20:5".into()),
    });
    let spec = translate(&c, "a", &[], &[]).unwrap();
    assert_eq!(spec.tasks[0].array.as_ref().unwrap().count, Some(3));
    let Action::Script { script, .. } = &spec.tasks[0].action else {
        panic!("a script")
    };
    assert!(script.contains("GOGOCKER_TASK_ID=$((10 + ${TESSERA_ARRAY_INDEX:-0} * 5))"));
    for bad in ["5:1:1", "1:5:0", "a:b", "1:2:3:4", "0:100000:1"] {
        c.requirements.array = Some(ArrayValues {
            values: Some(bad.into()),
        });
        assert!(translate(&c, "a", &[], &[]).is_err(), "{bad} refused");
    }
}

#[test]
fn what_tessera_does_not_offer_is_refused_in_words() {
    let mut c = basic();
    c.command.interactive = true;
    assert!(translate(&c, "a", &[], &[])
        .unwrap_err()
        .contains("interactive"));
    let mut c = basic();
    c.container.root = true;
    assert!(translate(&c, "a", &[], &[]).unwrap_err().contains("root"));
    let mut c = basic();
    c.requirements.executor = Some("mesos".into());
    assert!(translate(&c, "a", &[], &[])
        .unwrap_err()
        .contains("--placement"));
    let mut c = basic();
    c.container.volumes = vec![Volume {
        name: "media".into(),
        ..Volume::default()
    }];
    let err = translate(&c, "a", &[], &[]).unwrap_err();
    assert!(
        err.contains("godproject volume video --add -n media"),
        "{err}"
    );
}

#[test]
fn project_volumes_mount_with_their_acl() {
    let mut c = basic();
    c.container.volumes = vec![Volume {
        name: "share".into(),
        ..Volume::default()
    }];
    let declared = [Volume {
        name: "share".into(),
        path: None,
        mount: Some("/data".into()),
        acl: Some("rw".into()),
    }];
    let spec = translate(&c, "a", &declared, &[]).unwrap();
    let m = &spec.tasks[0].mounts[0];
    assert_eq!(
        (m.volume.as_str(), m.target.as_str(), m.read_only),
        ("share", "/data", false)
    );
}
