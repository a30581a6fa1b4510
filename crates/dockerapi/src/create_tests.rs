use super::*;
use serde_json::json;

fn refused(body: Value) -> String {
    parse(&body).unwrap_err().message
}

#[test]
fn waitfor_entries_become_selectors_and_leave_the_environment() {
    let r = parse(&json!({
        "Image": "encoder",
        "Cmd": ["sh", "-c", "echo hi"],
        "Env": ["A=1", "waitfor:container==split", "waitfor:container==encode*",
                "waitfor:container==/^enc[0-9]+$/", "constraint:zone==eu",
                "constraint:disk==~ssd", "PATH_ONLY"]
    }))
    .unwrap();
    assert_eq!(r.waitfor, ["split", "encode*", "re:^enc[0-9]+$"]);
    assert_eq!(r.env, BTreeMap::from([("A".to_string(), "1".to_string())]));
    assert_eq!(
        r.labels,
        BTreeMap::from([("zone".to_string(), "eu".to_string())])
    );
    let task = r.task((vec![], vec![]), vec![]).unwrap();
    assert_eq!(task.env.len(), 1);
    assert_eq!(task.image.as_deref(), Some("encoder"));
}

#[test]
fn the_images_entrypoint_and_command_fill_what_the_request_leaves_out() {
    let image = || (vec!["/entry".to_string()], vec!["default".to_string()]);
    let argv = |body: Value| match parse(&body).unwrap().task(image(), vec![]).unwrap().action {
        Action::Command { argv } => argv,
        other => panic!("{other:?}"),
    };
    assert_eq!(argv(json!({"Image": "i"})), ["/entry", "default"]);
    assert_eq!(argv(json!({"Image": "i", "Cmd": ["x"]})), ["/entry", "x"]);
    assert_eq!(argv(json!({"Image": "i", "Entrypoint": ["sh"]})), ["sh"]);
    let none = parse(&json!({"Image": "i"}))
        .unwrap()
        .task((vec![], vec![]), vec![]);
    assert!(none.unwrap_err().message.contains("names no command"));
}

#[test]
fn rights_on_the_host_are_refused_with_the_flag_named() {
    for (host, flag) in [
        (json!({"Privileged": true}), "--privileged"),
        (json!({"NetworkMode": "host"}), "--network=host"),
        (json!({"PidMode": "host"}), "--pid=host"),
        (json!({"CapAdd": ["SYS_ADMIN"]}), "--cap-add"),
        (json!({"Devices": [{"PathOnHost": "/dev/sda"}]}), "--device"),
        (json!({"PortBindings": {"80/tcp": [{}]}}), "-p"),
    ] {
        let why = refused(json!({"Image": "i", "HostConfig": host}));
        assert!(why.starts_with(flag), "{why}");
        assert!(why.contains("never with rights on the host"), "{why}");
    }
    assert!(refused(json!({"Image": "i", "User": "root"})).contains("-u"));
    assert!(refused(json!({"Image": "i", "Tty": true})).contains("-t"));
}

#[test]
fn constraints_and_affinities_become_placement_rules() {
    let r = parse(&json!({
        "Image": "i",
        "Cmd": ["true"],
        "Env": ["constraint:zone==eu", "constraint:disk!=hdd", "constraint:gpu==~a100",
                "constraint:rack!=~r1", "affinity:container==split",
                "affinity:container!=/^enc[0-9]+$/", "affinity:container==~cache*"]
    }))
    .unwrap();
    let label = |k: &str, v: &str| Near::Label {
        key: k.into(),
        value: v.into(),
    };
    let rule = |near, not, soft| PlaceRule { near, not, soft };
    assert_eq!(
        r.labels,
        BTreeMap::from([("zone".to_string(), "eu".to_string())])
    );
    assert_eq!(
        r.rules,
        [
            rule(label("disk", "hdd"), true, false),
            rule(label("gpu", "a100"), false, true),
            rule(label("rack", "r1"), true, true),
        ]
    );
    let affinities: Vec<(&str, bool, bool)> = r
        .affinities
        .iter()
        .map(|a| (a.selector.as_str(), a.not, a.soft))
        .collect();
    assert_eq!(
        affinities,
        [
            ("split", false, false),
            ("re:^enc[0-9]+$", true, false),
            ("cache*", false, true)
        ]
    );
    assert!(r.env.is_empty(), "{:?}", r.env);
    let task = r.task((vec![], vec![]), vec![]).unwrap();
    assert_eq!(task.resources.rules, r.rules);
}

#[test]
fn filters_it_cannot_place_are_refused() {
    let body = |e: &str| json!({"Image": "i", "Env": [e]});
    assert!(refused(body("affinity:image==ubuntu")).contains("only container affinities"));
    assert!(refused(body("affinity:container=split")).contains("KEY==VALUE"));
    assert!(refused(body("constraint:zone!=eu*")).contains("no pattern"));
    assert!(refused(body("constraint:zone==")).contains("both sides"));
    assert!(refused(body("waitfor:image==x")).contains("waitfor:container==NAME"));
    assert!(refused(body("waitfor:container==")).contains("name the container"));
    assert!(refused(body("waitfor:container==/[/")).contains("waitfor"));
    let many: Vec<String> = (0..=MAX_RULES)
        .map(|i| format!("constraint:k{i}!=v"))
        .collect();
    assert!(refused(json!({"Image": "i", "Env": many})).contains("at most"));
}

#[test]
fn binds_and_named_volumes_are_read_with_their_mode() {
    let r = parse(&json!({
        "Image": "i",
        "HostConfig": {
            "Binds": ["storage:/uploads", "/srv/media/a:/in:ro"],
            "Mounts": [{"Type": "volume", "Source": "scratch", "Target": "/tmp/s"}],
            "NanoCpus": 1_500_000_000i64,
            "Memory": 300i64 << 20
        }
    }))
    .unwrap();
    assert_eq!(r.mounts.len(), 3);
    assert_eq!(r.mounts[1].source, "/srv/media/a");
    assert!(r.mounts[1].read_only && !r.mounts[0].read_only);
    assert_eq!((r.cpu, r.memory_mb), (2, 300));
    let bad = json!({"Image": "i", "HostConfig": {"Mounts": [{"Type": "tmpfs", "Target": "/t"}]}});
    assert!(refused(bad).contains("type=tmpfs"));
}

#[test]
fn lists_are_bounded() {
    let env: Vec<String> = (0..=MAX_ITEMS).map(|i| format!("V{i}=1")).collect();
    assert!(refused(json!({"Image": "i", "Env": env})).contains("more than"));
    let waits: Vec<String> = (0..=MAX_WAITFOR)
        .map(|i| format!("waitfor:container==c{i}"))
        .collect();
    assert!(refused(json!({"Image": "i", "Env": waits})).contains("at most"));
    assert!(refused(json!({"Cmd": ["x"]})).contains("give an image"));
}
