//! The OpenAPI document's schemas against real answers: a small validator
//! (types, required and declared properties of closed objects, enums,
//! nullables, `$ref`) checks what the routes really return, so a view
//! that gains a field without its schema fails here.

use crate::harness::Server;
use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

/// What is wrong with `value` against `schema` (empty: it conforms).
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    if let Some(name) = schema["$ref"].as_str() {
        let name = name.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return vec![format!("{at}: $ref {name} names no schema")];
        }
        return check(doc, target, value, at);
    }
    if value.is_null() && schema["nullable"] == true {
        return Vec::new();
    }
    if let Some(all) = schema["allOf"].as_array() {
        return all.iter().flat_map(|s| check(doc, s, value, at)).collect();
    }
    let mut wrong = Vec::new();
    if let Some(allowed) = schema["enum"].as_array() {
        if !allowed.contains(value) {
            wrong.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    let ok = match schema["type"].as_str() {
        None => true,
        Some("object") => value.is_object(),
        Some("array") => value.is_array(),
        Some("integer") => value.is_i64() || value.is_u64(),
        Some("number") => value.is_number(),
        Some("string") => value.is_string(),
        Some("boolean") => value.is_boolean(),
        Some(other) => {
            wrong.push(format!("{at}: unknown type {other}"));
            true
        }
    };
    if !ok {
        wrong.push(format!("{at}: {value} is not {}", schema["type"]));
        return wrong;
    }
    if let Some(items) = value.as_array() {
        for (i, item) in items.iter().enumerate() {
            wrong.extend(check(doc, &schema["items"], item, &format!("{at}[{i}]")));
        }
    }
    if let Some(object) = value.as_object() {
        for key in schema["required"].as_array().into_iter().flatten() {
            if !object.contains_key(key.as_str().unwrap_or("")) {
                wrong.push(format!("{at}: no {key}"));
            }
        }
        for (key, v) in object {
            let declared = &schema["properties"][key];
            let at = format!("{at}.{key}");
            if !declared.is_null() {
                wrong.extend(check(doc, declared, v, &at));
            } else if schema["additionalProperties"] == false {
                wrong.push(format!("{at}: not in the schema"));
            } else if schema["additionalProperties"].is_object() {
                wrong.extend(check(doc, &schema["additionalProperties"], v, &at));
            }
        }
    }
    wrong
}

/// The success schema the document gives `method path`.
fn success_schema(doc: &Value, method: &str, path: &str) -> (u16, Value) {
    let op = &doc["paths"][path][method];
    let responses = op["responses"]
        .as_object()
        .unwrap_or_else(|| panic!("{method} {path}"));
    let (status, answer) = responses
        .iter()
        .find(|(s, _)| s.starts_with('2'))
        .unwrap_or_else(|| panic!("{method} {path} has no success"));
    let schema = answer["content"]["application/json"]["schema"].clone();
    (status.parse().unwrap(), schema)
}

#[tokio::test]
async fn every_route_has_its_bodies_and_real_answers_match_them() {
    let s = Server::start();
    let doc = s
        .call(Method::GET, "/api/v1/openapi.json", None, None)
        .await
        .json();
    // Every operation answers with a documented success; every body it
    // reads is described; every $ref names a schema.
    for (path, ops) in doc["paths"].as_object().unwrap() {
        for (method, op) in ops.as_object().unwrap() {
            let (status, _) = success_schema(&doc, method, path);
            assert!((200..300).contains(&status), "{method} {path}");
            if ["post", "put"].contains(&method.as_str()) && op["requestBody"].is_null() {
                let bodiless = [
                    "/cancel", "/suspend", "/resume", "/retry", "/drain", "/undrain",
                ];
                assert!(
                    bodiless.iter().any(|b| path.ends_with(b)),
                    "{method} {path} reads a body the document does not describe"
                );
            }
        }
    }
    let text = doc.to_string();
    for part in text.split("#/components/schemas/").skip(1) {
        let name = part.split('"').next().unwrap();
        assert!(!doc["components"]["schemas"][name].is_null(), "$ref {name}");
    }

    // Real answers, checked against their schemas.
    let admin = s.admin_key.clone();
    let p = s.project("schemas", &admin).await;
    let spec = "name: typed\nafter: []\ntasks:\n  - {name: a, action: {kind: command, argv: [sh, -c, 'echo hi']}}\n  - {name: b, action: {kind: noop}, deps: [{selector: a}]}\n";
    let r = s
        .post_yaml(&format!("/api/v1/projects/{p}/jobs"), &admin, spec)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.text());
    let job = r.json()["id"].as_i64().unwrap();
    let (_, user) = s.user("vera", false).await;
    let _ = user;
    let member = s
        .send_json(
            Method::PUT,
            &format!("/api/v1/projects/{p}/members/vera"),
            &admin,
            json!({"role": "viewer"}),
        )
        .await;
    let key = s
        .send_json(
            Method::POST,
            "/api/v1/keys",
            &admin,
            json!({"name": "laptop"}),
        )
        .await;
    // Let the job run to its end, so attempts and usage are filled in.
    for _ in 0..200 {
        let j = s.get(&format!("/api/v1/jobs/{job}"), &admin).await.json();
        if j["state"] == "succeeded" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut answers = vec![
        (
            "put",
            "/api/v1/projects/{project}/members/{user}",
            member.json(),
        ),
        ("post", "/api/v1/keys", key.json()),
        ("post", "/api/v1/projects/{project}/jobs", r.json()),
    ];
    for (path, real) in [
        ("/api/v1/me", "/api/v1/me".to_string()),
        ("/api/v1/users", "/api/v1/users".into()),
        ("/api/v1/projects", "/api/v1/projects".into()),
        (
            "/api/v1/projects/{project}",
            format!("/api/v1/projects/{p}"),
        ),
        (
            "/api/v1/projects/{project}/members",
            format!("/api/v1/projects/{p}/members"),
        ),
        ("/api/v1/keys", "/api/v1/keys".into()),
        (
            "/api/v1/projects/{project}/quota",
            format!("/api/v1/projects/{p}/quota"),
        ),
        (
            "/api/v1/projects/{project}/usage",
            format!("/api/v1/projects/{p}/usage"),
        ),
        (
            "/api/v1/projects/{project}/jobs",
            format!("/api/v1/projects/{p}/jobs"),
        ),
        ("/api/v1/jobs/{id}", format!("/api/v1/jobs/{job}")),
        (
            "/api/v1/jobs/{id}/tasks",
            format!("/api/v1/jobs/{job}/tasks"),
        ),
        (
            "/api/v1/jobs/{id}/attempts",
            format!("/api/v1/jobs/{job}/attempts"),
        ),
        (
            "/api/v1/projects/{project}/uploads",
            format!("/api/v1/projects/{p}/uploads"),
        ),
        ("/api/v1/volumes", "/api/v1/volumes".into()),
    ] {
        let r = s.get(&real, &admin).await;
        assert_eq!(r.status, StatusCode::OK, "{real}: {}", r.text());
        answers.push(("get", path, r.json()));
    }
    let mut wrong = Vec::new();
    for (method, path, value) in &answers {
        let (_, schema) = success_schema(&doc, method, path);
        assert!(!schema.is_null(), "{method} {path}: no JSON schema");
        wrong.extend(check(&doc, &schema, value, &format!("{method} {path}")));
    }
    assert!(
        wrong.is_empty(),
        "answers that are not their schema:\n{}",
        wrong.join("\n")
    );
    // The validator itself refuses what it must.
    let job_schema = json!({ "$ref": "#/components/schemas/Job" });
    let mut forged = answers
        .iter()
        .find(|a| a.1 == "/api/v1/jobs/{id}")
        .unwrap()
        .2
        .clone();
    forged["smuggled"] = json!(1);
    forged["state"] = json!("exploded");
    let said = check(&doc, &job_schema, &forged, "job");
    assert_eq!(said.len(), 2, "{said:?}");
}
