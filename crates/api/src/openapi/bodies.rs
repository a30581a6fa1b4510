//! What each route of [`ROUTES`](crate::routes::ROUTES) reads and answers,
//! by schema name (see [`super::schemas`]). A route missing here fails the
//! OpenAPI test, so the document covers every route.

use serde_json::{json, Value};

/// A request body: its media types and schema.
pub struct Request {
    pub media: &'static [&'static str],
    pub schema: &'static str,
}

/// A success: its status, media type and schema (`None`: not JSON, or no
/// body).
pub struct Success {
    pub status: u16,
    pub media: &'static str,
    pub schema: Option<Value>,
}

const JSON: &[&str] = &["application/json"];

fn one(name: &str) -> Option<Value> {
    Some(json!({ "$ref": format!("#/components/schemas/{name}") }))
}

fn list(name: &str) -> Option<Value> {
    Some(json!({ "type": "array", "items": { "$ref": format!("#/components/schemas/{name}") } }))
}

fn ok(status: u16, schema: Option<Value>) -> Success {
    Success {
        status,
        media: "application/json",
        schema,
    }
}

fn raw(media: &'static str) -> Success {
    Success {
        status: 200,
        media,
        schema: None,
    }
}

fn req(schema: &'static str) -> Option<Request> {
    Some(Request {
        media: JSON,
        schema,
    })
}

/// The body `method path` reads and what it answers on success.
pub fn of(method: &str, path: &str) -> Option<(Option<Request>, Success)> {
    let none = None;
    Some(match (method, path) {
        ("GET", "/healthz" | "/readyz") => (none, raw("text/plain")),
        ("GET", "/metrics") => (none, raw("text/plain; version=0.0.4")),
        ("GET", "/api/v1/openapi.json") => (none, ok(200, Some(json!({ "type": "object" })))),
        ("GET", "/api/v1/me") => (none, ok(200, one("Me"))),
        ("GET", "/api/v1/users") => (none, ok(200, list("User"))),
        ("POST", "/api/v1/users") => (req("NewUserBody"), ok(201, one("NewUser"))),
        ("GET", "/api/v1/projects") => (none, ok(200, list("Project"))),
        ("POST", "/api/v1/projects") => (req("Name"), ok(201, one("Project"))),
        ("GET", "/api/v1/projects/{project}") => (none, ok(200, one("Project"))),
        ("GET", "/api/v1/projects/{project}/members") => (none, ok(200, list("Member"))),
        ("PUT", "/api/v1/projects/{project}/members/{user}") => {
            (req("RoleBody"), ok(200, one("Member")))
        }
        ("DELETE", "/api/v1/projects/{project}/members/{user}") => (none, ok(204, None)),
        ("GET", "/api/v1/keys") => (none, ok(200, list("Key"))),
        ("POST", "/api/v1/keys") => (req("Name"), ok(201, one("NewKey"))),
        ("DELETE", "/api/v1/keys/{id}") => (none, ok(204, None)),
        ("GET", "/api/v1/projects/{project}/quota") => (none, ok(200, one("Quota"))),
        ("PUT", "/api/v1/projects/{project}/quota") => (req("QuotaBody"), ok(200, one("Quota"))),
        ("GET", "/api/v1/projects/{project}/usage") => (none, ok(200, one("ProjectUsage"))),
        ("GET", "/api/v1/projects/{project}/jobs") => (none, ok(200, list("Job"))),
        ("POST", "/api/v1/projects/{project}/jobs") => (
            Some(Request {
                media: &["application/json", "application/yaml"],
                schema: "JobSpec",
            }),
            ok(201, one("Job")),
        ),
        ("GET", "/api/v1/jobs/{id}") => (none, ok(200, one("Job"))),
        ("GET", "/api/v1/jobs/{id}/tasks") => (none, ok(200, list("Task"))),
        ("GET", "/api/v1/jobs/{id}/attempts") => (none, ok(200, list("Attempt"))),
        ("POST", "/api/v1/jobs/{id}/cancel") => (none, ok(202, one("Job"))),
        (
            "POST",
            "/api/v1/jobs/{id}/suspend" | "/api/v1/jobs/{id}/resume" | "/api/v1/jobs/{id}/retry",
        ) => (none, ok(200, one("Job"))),
        ("PUT", "/api/v1/jobs/{id}/priority") => (req("PriorityBody"), ok(200, one("Job"))),
        ("GET", "/api/v1/jobs/{id}/tasks/{index}/logs") => (none, raw("text/plain; charset=utf-8")),
        ("GET", "/api/v1/jobs/{id}/events") => (none, raw("text/event-stream")),
        ("GET", "/api/v1/projects/{project}/uploads") => (none, ok(200, list("UploadItem"))),
        ("POST", "/api/v1/projects/{project}/uploads") => (
            Some(Request {
                media: &["application/octet-stream", "multipart/form-data"],
                schema: "WorkerMessage",
            }),
            ok(201, one("Upload")),
        ),
        ("DELETE", "/api/v1/projects/{project}/uploads/{upload}") => (none, ok(204, None)),
        ("GET", "/api/v1/volumes") => (none, ok(200, list("Volume"))),
        ("POST", "/api/v1/projects/{project}/encodes") => (req("EncodeBody"), ok(201, one("Job"))),
        ("GET", "/api/v1/jobs/{id}/output") => (none, raw("video/mp4")),
        ("GET", "/api/v1/jobs/{id}/ladder/{*path}") => (none, raw("application/octet-stream")),
        ("DELETE", "/api/v1/jobs/{id}/output") => (none, ok(204, None)),
        ("GET", "/api/v1/nodes") => (none, ok(200, one("Nodes"))),
        ("POST", "/api/v1/nodes/{node}/drain" | "/api/v1/nodes/{node}/undrain") => {
            (none, ok(200, one("Ok")))
        }
        ("POST", p) if p.starts_with("/api/v1/workers") => {
            (req("WorkerMessage"), ok(200, one("WorkerMessage")))
        }
        ("GET", p) if p.ends_with("/files") => (none, raw("application/octet-stream")),
        ("PUT", p) if p.ends_with("/files") => (
            Some(Request {
                media: &["application/octet-stream"],
                schema: "WorkerMessage",
            }),
            ok(200, one("WorkerMessage")),
        ),
        ("DELETE", p) if p.ends_with("/files") => (none, ok(200, one("WorkerMessage"))),
        ("GET", p) if p.ends_with("/files/status") => (none, ok(200, one("WorkerMessage"))),
        _ => return None,
    })
}
