//! The OpenAPI 3.0 document, generated from [`ROUTES`] so it cannot drift
//! from the router.

use crate::routes::{Auth, ROUTES};
use serde_json::{json, Map, Value};

pub mod bodies;
pub mod schemas;

/// The OpenAPI document of every route in [`ROUTES`].
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, summary, auth) in ROUTES {
        let mut op = operation(path, summary, *auth);
        if let Some((request, success)) = bodies::of(method.as_str(), path) {
            if let Some(r) = request {
                let content: Map<String, Value> = r
                    .media
                    .iter()
                    .map(|m| {
                        let schema =
                            json!({ "$ref": format!("#/components/schemas/{}", r.schema) });
                        (m.to_string(), json!({ "schema": schema }))
                    })
                    .collect();
                op["requestBody"] = json!({ "required": true, "content": content });
            }
            let mut answer = json!({ "description": "success" });
            if let Some(schema) = success.schema {
                answer["content"] = json!({ success.media: { "schema": schema } });
            } else if success.status != 204 {
                answer["content"] = json!({ success.media: {} });
            }
            op["responses"][success.status.to_string()] = answer;
            if success.status != 200 {
                if let Some(r) = op["responses"].as_object_mut() {
                    r.remove("200");
                }
            }
        }
        // axum's `{*rest}` (the rest of the path) is OpenAPI's `{rest}`.
        let entry = paths
            .entry(path.replace("{*", "{"))
            .or_insert_with(|| Value::Object(Map::new()));
        entry[method.as_str().to_ascii_lowercase()] = op;
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Tessera API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Projects, members, API keys and DAG jobs of a Tessera server. \
                Authenticate with `Authorization: Bearer tsk_...`. Errors are \
                `{\"error\":{\"code\",\"message\"}}` with a stable code.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas::all(),
        },
    })
}

fn operation(path: &str, summary: &str, auth: Auth) -> Value {
    let parameters: Vec<Value> = path
        .split('/')
        .filter_map(|seg| seg.strip_prefix('{')?.strip_suffix('}'))
        .map(|name| name.trim_start_matches('*'))
        .map(|name| {
            json!({
                "name": name,
                "in": "path",
                "required": true,
                "schema": { "type": "string" },
            })
        })
        .collect();
    let error = |what: &str| {
        json!({
            "description": what,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } },
        })
    };
    let mut responses = Map::new();
    responses.insert("200".into(), json!({ "description": "success" }));
    if auth != Auth::None {
        responses.insert(
            "401".into(),
            error("no key, or an unknown, wrong or revoked key"),
        );
        responses.insert("403".into(), error("the caller may not do this"));
    }
    if matches!(auth, Auth::Project(_) | Auth::Job(_)) {
        responses.insert("404".into(), error("no such project or job"));
    }
    let security = if auth == Auth::None {
        json!([])
    } else {
        json!([{ "bearer": [] }])
    };
    json!({
        "summary": summary,
        "x-tessera-auth": describe(auth),
        "parameters": parameters,
        "security": security,
        "responses": responses,
    })
}

fn describe(auth: Auth) -> String {
    match auth {
        Auth::None => "none".into(),
        Auth::User => "any user".into(),
        Auth::Admin => "admin".into(),
        Auth::Worker => "worker token (twk_...)".into(),
        Auth::Project(role) | Auth::Job(role) => format!("{role} or higher in the project"),
    }
}
