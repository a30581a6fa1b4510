//! The schemas of the API's bodies: every view the API answers with and
//! every body it reads. Views are closed (`additionalProperties: false`),
//! so a field added to a view without its schema fails the conformance
//! test (`crates/api/tests/api/openapi.rs`), which checks real answers.

use serde_json::{json, Map, Value};

fn obj(required: &[&str], props: Value) -> Value {
    json!({ "type": "object", "required": required, "properties": props, "additionalProperties": false })
}

fn open(props: Value) -> Value {
    json!({ "type": "object", "properties": props, "additionalProperties": true })
}

fn r(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn nullable(t: &str) -> Value {
    json!({ "type": t, "nullable": true })
}

fn int() -> Value {
    json!({ "type": "integer" })
}

fn text() -> Value {
    json!({ "type": "string" })
}

fn array_of(item: Value) -> Value {
    json!({ "type": "array", "items": item })
}

/// Every named schema, for `components.schemas`.
pub fn all() -> Map<String, Value> {
    let role = json!({ "type": "string", "enum": ["viewer", "member", "owner"] });
    let states = json!({ "type": "string", "enum": [
        "pending", "waiting", "ready", "running", "succeeded", "failed", "cancelled", "skipped"
    ]});
    let mut m = Map::new();
    let mut put = |name: &str, schema: Value| {
        m.insert(name.to_string(), schema);
    };
    put(
        "Error",
        obj(
            &["error"],
            json!({ "error": obj(&["code", "message"], json!({
                "code": text(), "message": text(),
            }))}),
        ),
    );
    put(
        "User",
        obj(
            &["id", "name", "admin", "created_at"],
            json!({
                "id": int(), "name": text(), "admin": { "type": "boolean" }, "created_at": int(),
            }),
        ),
    );
    put(
        "Project",
        obj(
            &["id", "name", "created_at", "role"],
            json!({
                "id": int(), "name": text(), "created_at": int(),
                "role": { "type": "string", "enum": ["viewer", "member", "owner"], "nullable": true },
            }),
        ),
    );
    put(
        "Me",
        obj(
            &["user", "admin", "projects"],
            json!({
                "user": r("User"), "admin": { "type": "boolean" }, "projects": array_of(r("Project")),
            }),
        ),
    );
    put(
        "Member",
        obj(
            &["user", "role"],
            json!({ "user": r("User"), "role": role }),
        ),
    );
    put(
        "Key",
        obj(
            &[
                "id",
                "user",
                "name",
                "prefix",
                "created_at",
                "last_used_at",
                "revoked_at",
            ],
            json!({
                "id": int(), "user": int(), "name": text(), "prefix": text(), "created_at": int(),
                "last_used_at": nullable("integer"), "revoked_at": nullable("integer"),
            }),
        ),
    );
    put(
        "NewKey",
        obj(
            &["key", "secret"],
            json!({ "key": r("Key"), "secret": text() }),
        ),
    );
    put(
        "NewUser",
        obj(
            &["user", "key"],
            json!({ "user": r("User"), "key": r("NewKey") }),
        ),
    );
    put(
        "After",
        obj(
            &["job", "condition", "jobs"],
            json!({
                "job": { "description": "a job id (number) or a name selector (string), as written" },
                "condition": { "type": "string", "enum": ["success", "any", "failure"] },
                "jobs": array_of(int()),
            }),
        ),
    );
    put(
        "Job",
        obj(
            &[
                "id",
                "project",
                "name",
                "state",
                "created_at",
                "updated_at",
                "finished_at",
                "suspended",
                "priority",
            ],
            json!({
                "id": int(), "project": nullable("integer"), "name": text(),
                "state": { "type": "string", "enum": ["pending", "running", "succeeded", "failed", "cancelled"] },
                "created_at": int(), "updated_at": int(), "finished_at": nullable("integer"),
                "suspended": { "type": "boolean" }, "priority": int(),
                "tasks": { "type": "object", "additionalProperties": int(), "description": "task counts by state (single-job reads)" },
                "after": array_of(r("After")),
                "waiting": nullable("string"),
            }),
        ),
    );
    put(
        "Task",
        obj(
            &[
                "index",
                "name",
                "state",
                "attempt",
                "failures",
                "reason",
                "not_before",
                "created_at",
                "updated_at",
                "spec",
                "waiting",
            ],
            json!({
                "index": int(), "name": text(), "state": states, "attempt": int(), "failures": int(),
                "reason": nullable("string"), "not_before": int(), "created_at": int(), "updated_at": int(),
                "spec": r("TaskSpec"), "waiting": nullable("string"),
            }),
        ),
    );
    put(
        "Usage",
        obj(
            &["wall_ms", "cpu_ms", "max_rss_kb"],
            json!({
                "wall_ms": int(), "cpu_ms": int(), "max_rss_kb": int(),
                "transfer_ms": int(), "transfer_bytes": int(),
            }),
        ),
    );
    put(
        "Attempt",
        obj(
            &[
                "task",
                "attempt",
                "node",
                "started_at",
                "ended_at",
                "outcome",
                "message",
                "usage",
            ],
            json!({
                "task": int(), "attempt": int(), "node": nullable("string"), "started_at": int(),
                "ended_at": nullable("integer"),
                "outcome": { "type": "string", "nullable": true, "enum": ["succeeded", "failed", "timed_out", "cancelled", "lost", null] },
                "message": nullable("string"),
                "usage": { "allOf": [r("Usage")], "nullable": true },
            }),
        ),
    );
    let quota = json!({
        "max_cpu": nullable("integer"), "max_memory_mb": nullable("integer"),
        "cpu_ms_per_window": nullable("integer"),
    });
    put(
        "Quota",
        obj(
            &["max_cpu", "max_memory_mb", "cpu_ms_per_window"],
            quota.clone(),
        ),
    );
    put(
        "ProjectUsage",
        obj(
            &[
                "running_cpu",
                "running_memory_mb",
                "decayed_cpu_seconds",
                "window_cpu_seconds",
                "quota",
            ],
            json!({
                "running_cpu": int(), "running_memory_mb": int(),
                "decayed_cpu_seconds": { "type": "number" }, "window_cpu_seconds": { "type": "number" },
                "quota": r("Quota"),
            }),
        ),
    );
    put(
        "UploadItem",
        obj(
            &["upload", "name", "bytes", "created", "duration"],
            json!({
                "upload": text(), "name": text(), "bytes": int(), "created": int(),
                "duration": nullable("number"),
            }),
        ),
    );
    put(
        "Upload",
        obj(
            &["upload", "name", "bytes", "created", "duration", "streams"],
            json!({
                "upload": text(), "name": text(), "bytes": int(), "created": int(),
                "duration": nullable("number"), "streams": array_of(r("Stream")),
            }),
        ),
    );
    put(
        "Stream",
        open(json!({
            "index": int(), "kind": text(), "codec_name": nullable("string"),
            "width": nullable("integer"), "height": nullable("integer"),
            "avg_frame_rate": nullable("string"), "channels": nullable("integer"),
        })),
    );
    put("Volume", obj(&["name"], json!({ "name": text() })));
    put(
        "Nodes",
        obj(
            &["nodes", "unplaceable"],
            json!({
                "nodes": array_of(r("Node")), "unplaceable": array_of(r("Unplaceable")),
            }),
        ),
    );
    put(
        "Node",
        open(json!({
            "id": text(), "name": text(), "local": { "type": "boolean" },
            "state": { "type": "string", "enum": ["ready", "draining", "lost"] },
            "slots": int(), "used": int(), "cpus": int(), "memory_mb": int(), "gpus": int(),
            "disk_free_mb": int(), "labels": { "type": "object" }, "executors": array_of(text()),
            "last_heartbeat_ms": int(), "running": array_of(json!({ "type": "object" })),
            "recent": { "type": "object" },
        })),
    );
    put(
        "Unplaceable",
        open(json!({
            "job": int(), "index": int(), "attempt": int(), "name": text(), "reason": text(),
        })),
    );
    put("Ok", obj(&["ok"], json!({ "ok": { "type": "boolean" } })));
    put(
        "TaskSpec",
        json!({
            "type": "object", "required": ["name", "action"], "additionalProperties": false,
            "properties": {
                "name": text(),
                "action": { "type": "object", "required": ["kind"], "description": "{kind: noop} | {kind: command, argv} | {kind: script, script, shell?} | {kind: op, op, args} | {kind: image, ...}" },
                "image": text(),
                "array": { "type": "object", "description": "{count} or {start, end} (both ends included)" },
                "env": { "type": "object", "additionalProperties": text() },
                "resources": { "type": "object", "description": "{cpu, memory_mb, gpus, labels, rules}" },
                "deps": array_of(json!({ "type": "object", "required": ["selector"], "properties": {
                    "selector": { "type": "string", "description": "a task name, a glob (encode-*), or re:REGEX" },
                    "condition": { "type": "string", "enum": ["success", "any", "failure"] },
                }})),
                "retry": { "type": "object", "description": "{max_attempts, backoff_ms, ...}" },
                "time_limit_ms": int(),
                "priority": int(),
                "expands": { "type": "boolean", "description": "its command writes more tasks (JSON) to $TESSERA_EXPAND" },
                "mounts": array_of(json!({ "type": "object", "description": "{volume, subpath?, target, read_only}" })),
            },
        }),
    );
    put(
        "JobSpec",
        json!({
            "type": "object", "required": ["name", "tasks"], "additionalProperties": false,
            "properties": {
                "name": text(), "tasks": array_of(r("TaskSpec")),
                "params": { "type": "object", "additionalProperties": text() },
                "after": { "description": "jobs this one waits on: an id, a name selector (exact, glob, re:REGEX), or a list of {job, condition}" },
                "meta": { "type": "object", "additionalProperties": text() },
                "grants": array_of(json!({ "type": "object" })),
            },
        }),
    );
    put("Name", obj(&["name"], json!({ "name": text() })));
    put(
        "NewUserBody",
        json!({ "type": "object", "required": ["name"], "properties": {
            "name": text(), "admin": { "type": "boolean" },
        }}),
    );
    put("RoleBody", obj(&["role"], json!({ "role": role })));
    put(
        "QuotaBody",
        json!({ "type": "object", "properties": quota }),
    );
    put(
        "PriorityBody",
        obj(
            &["priority"],
            json!({ "priority": { "type": "integer", "minimum": 0, "maximum": 100 } }),
        ),
    );
    put(
        "EncodeBody",
        json!({ "type": "object", "additionalProperties": false, "properties": {
            "upload": text(), "volume": text(), "path": text(),
            "codec": { "type": "string", "enum": ["x264", "x265", "svt-av1", "vp9", "ffv1"] },
            "crf": int(), "preset": text(),
            "container": { "type": "string", "enum": ["mp4", "mkv", "webm"] },
            "chunk_seconds": { "type": "number" },
            "ladder": { "oneOf": [
                { "type": "string", "enum": ["default"] },
                { "$ref": "#/components/schemas/Ladder" },
            ], "description": "An ABR ladder (HLS and DASH over CMAF) instead of one file: \"default\" (1080p to 240p, never upscaling) or your rungs; read it with GET /api/v1/jobs/{id}/ladder/master.m3u8" },
        }}),
    );
    put(
        "Ladder",
        json!({ "type": "object", "additionalProperties": false, "properties": {
            "rungs": { "type": "array", "minItems": 1, "maxItems": 12, "nullable": true, "items": { "$ref": "#/components/schemas/Rung" } },
            "segment_seconds": { "type": "number", "minimum": 1, "maximum": 20, "default": 4 },
            "audio_kbps": { "type": "integer", "minimum": 32, "maximum": 512, "default": 128 },
        }}),
    );
    let rate = || json!({ "oneOf": [{ "type": "integer" }, { "type": "string", "example": "3000k" }], "description": "kbit/s: 3000, \"3000k\" or \"3M\"" });
    put(
        "Rung",
        json!({ "type": "object", "additionalProperties": false, "required": ["name", "height"], "properties": {
            "name": { "type": "string", "pattern": "^[a-z0-9][a-z0-9_]{0,31}$" },
            "height": { "type": "integer", "minimum": 16, "maximum": 4320 },
            "width": { "type": "integer", "minimum": 16, "maximum": 7680 },
            "codec": { "type": "string", "enum": ["x264", "x265", "vp9"], "default": "x264" },
            "crf": int(), "preset": text(),
            "maxrate": rate(), "bufsize": rate(),
        }}),
    );
    put("WorkerMessage", open(json!({})));
    m
}
