//! The route walk's expectations, written by hand: every route of the API
//! (`ROUTES`) and of the web UI, and what each caller must get from it.
//! Nothing here is read from `ROUTES`: `walk.rs` checks that this table
//! names every route the router has, that the server answers each cell,
//! and that the authorization each row implies is the one `ROUTES` (and so
//! the OpenAPI document) declares.
//!
//! Callers, in column order (see `walk.rs` for how each is made):
//!
//! | column | API and UI routes | worker routes (`/api/v1/workers...`) |
//! |---|---|---|
//! | `none` | no credential | no credential |
//! | `bad`  | `Bearer not-a-key`; UI: a cookie that is no session id | same |
//! | `unk`  | a well-formed key no one has; UI: a well-formed unknown session id | a well-formed unknown worker token |
//! | `wrng` | a key's prefix with a wrong secret; UI: a logged-out session | a worker token's prefix with a wrong secret |
//! | `rvkd` | a key used, then revoked; UI: a session of that key | a worker token used, then revoked |
//! | `wtok` | a valid worker token (the UI: sent as a bearer, no session) | a valid worker token |
//! | `othr` | the owner of project beta, not in alpha | that user's key |
//! | `miss` | `othr` on a project, job or key that does not exist | - |
//! | `view`, `memb`, `ownr` | alpha's viewer, member, owner | their keys |
//! | `admn` | an admin, in no project | an admin's key |
//!
//! A cell is a status, `-` (not applicable), `>login` (303 to `/ui/login`,
//! no cookie set: the UI's gate), `>ui` (303 to `/ui`) or `out` (303 to
//! `/ui/login` clearing the session cookie). `{project}` is alpha, `{id}` a
//! job of alpha that has succeeded (a key of another user on `/keys/{id}`),
//! `{user}` a user in no project, `{*path}` `master.m3u8`, `{worker}` a worker registered with the
//! valid token. Bodies are `json:`, `yaml:`, `raw:` or `form:`, with
//! `{caller}` (the column's name) and `{key}` (its credential) filled in.
//!
//! Rows that mutate run in this order: the PUT of a member before its
//! DELETE, the worker's release last, the UI's logout last.

/// `(method, path, body, cells)`.
pub type Row = (&'static str, &'static str, &'static str, &'static str);

/// Every route of the API (`ROUTES`), public ones included.
#[rustfmt::skip]
pub const API: &[Row] = &[
    //                                                                                   none bad  unk  wrng rvkd wtok othr miss view memb ownr admn
    ("GET",    "/healthz", "",                                                          "200  200  200  200  200  200  200  -    200  200  200  200"),
    ("GET",    "/readyz", "",                                                           "200  200  200  200  200  200  200  -    200  200  200  200"),
    // Admins only: it names every project (issue 9).
    ("GET",    "/metrics", "",                                                          "401  401  401  401  401  401  403  -    403  403  403  200"),
    ("GET",    "/api/v1/openapi.json", "",                                              "200  200  200  200  200  200  200  -    200  200  200  200"),
    ("GET",    "/api/v1/me", "",                                                        "401  401  401  401  401  401  200  -    200  200  200  200"),
    ("GET",    "/api/v1/users", "",                                                     "401  401  401  401  401  401  403  -    403  403  403  200"),
    ("POST",   "/api/v1/users", r#"json:{"name": "made-by-{caller}", "admin": false}"#,  "401  401  401  401  401  401  403  -    403  403  403  201"),
    ("GET",    "/api/v1/projects", "",                                                  "401  401  401  401  401  401  200  -    200  200  200  200"),
    ("POST",   "/api/v1/projects", r#"json:{"name": "walk-{caller}"}"#,                 "401  401  401  401  401  401  201  -    201  201  201  201"),
    ("GET",    "/api/v1/projects/{project}", "",                                        "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("GET",    "/api/v1/projects/{project}/members", "",                                "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("PUT",    "/api/v1/projects/{project}/members/{user}", r#"json:{"role": "viewer"}"#, "401  401  401  401  401  401  403  404  403  403  200  200"),
    ("DELETE", "/api/v1/projects/{project}/members/{user}", "",                         "401  401  401  401  401  401  403  404  403  403  204  404"),
    ("GET",    "/api/v1/keys", "",                                                      "401  401  401  401  401  401  200  -    200  200  200  200"),
    ("POST",   "/api/v1/keys", r#"json:{"name": "walk"}"#,                              "401  401  401  401  401  401  201  -    201  201  201  201"),
    // Another user's key: "no such key" to everyone but an admin.
    ("DELETE", "/api/v1/keys/{id}", "",                                                 "401  401  401  401  401  401  404  404  404  404  404  204"),
    ("GET",    "/api/v1/projects/{project}/quota", "",                                  "401  401  401  401  401  401  403  404  200  200  200  200"),
    // Admin-only: the caller is checked before the project is looked up.
    ("PUT",    "/api/v1/projects/{project}/quota", "json:{}",                           "401  401  401  401  401  401  403  403  403  403  403  200"),
    ("GET",    "/api/v1/projects/{project}/usage", "",                                  "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("GET",    "/api/v1/projects/{project}/jobs", "",                                   "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("POST",   "/api/v1/projects/{project}/jobs", "yaml:name: walk\ntasks: [{name: a, action: {kind: noop}}]\n",
                                                                                        "401  401  401  401  401  401  403  404  403  201  201  201"),
    ("GET",    "/api/v1/jobs/{id}", "",                                                 "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("GET",    "/api/v1/jobs/{id}/tasks", "",                                           "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("GET",    "/api/v1/jobs/{id}/attempts", "",                                        "401  401  401  401  401  401  403  404  200  200  200  200"),
    // The job has ended: members get through to a 409.
    ("POST",   "/api/v1/jobs/{id}/cancel", "",                                          "401  401  401  401  401  401  403  404  403  409  409  409"),
    ("POST",   "/api/v1/jobs/{id}/suspend", "",                                         "401  401  401  401  401  401  403  404  403  409  409  409"),
    ("POST",   "/api/v1/jobs/{id}/resume", "",                                          "401  401  401  401  401  401  403  404  403  409  409  409"),
    ("POST",   "/api/v1/jobs/{id}/retry", "",                                           "401  401  401  401  401  401  403  404  403  409  409  409"),
    ("PUT",    "/api/v1/jobs/{id}/priority", r#"json:{"priority": 5}"#,                 "401  401  401  401  401  401  403  404  403  409  409  409"),
    ("GET",    "/api/v1/jobs/{id}/tasks/{index}/logs", "",                              "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("GET",    "/api/v1/jobs/{id}/events", "",                                          "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("GET",    "/api/v1/projects/{project}/uploads", "",                                "401  401  401  401  401  401  403  404  200  200  200  200"),
    ("POST",   "/api/v1/projects/{project}/uploads?name=walk.mp4", "raw:this is no video",
                                                                                        "401  401  401  401  401  401  403  404  403  422  422  422"),
    ("DELETE", "/api/v1/projects/{project}/uploads/{upload}", "",                       "401  401  401  401  401  401  403  404  403  404  404  404"),
    ("GET",    "/api/v1/volumes", "",                                                   "401  401  401  401  401  401  200  -    200  200  200  200"),
    ("POST",   "/api/v1/projects/{project}/encodes", "json:{}",                         "401  401  401  401  401  401  403  404  403  422  422  422"),
    // Not an encode job: it has no output.
    ("GET",    "/api/v1/jobs/{id}/output", "",                                          "401  401  401  401  401  401  403  404  404  404  404  404"),
    // Not an encode job: it has no ladder.
    ("GET",    "/api/v1/jobs/{id}/ladder/{*path}", "",                                  "401  401  401  401  401  401  403  404  404  404  404  404"),
    ("DELETE", "/api/v1/jobs/{id}/output", "",                                          "401  401  401  401  401  401  403  404  403  404  404  404"),
    ("GET",    "/api/v1/nodes", "",                                                     "401  401  401  401  401  401  403  -    403  403  403  200"),
    ("POST",   "/api/v1/nodes/{node}/drain", "",                                        "401  401  401  401  401  401  403  -    403  403  403  409"),
    ("POST",   "/api/v1/nodes/{node}/undrain", "",                                      "401  401  401  401  401  401  403  -    403  403  403  409"),
    // Worker routes: users' keys, even an admin's, are no worker tokens:
    // 401, like a malformed or unknown token (issue 9).
    ("POST",   "/api/v1/workers", r#"json:{"name": "walk-{caller}", "slots": 1}"#,      "401  401  401  401  401  200  401  -    401  401  401  401"),
    ("POST",   "/api/v1/workers/{worker}/lease", r#"json:{"wait_ms": 0}"#,              "401  401  401  401  401  200  401  -    401  401  401  401"),
    ("POST",   "/api/v1/workers/{worker}/heartbeat", "json:{}",                         "401  401  401  401  401  200  401  -    401  401  401  401"),
    // The worker holds no attempt of the job: fenced (409).
    ("POST",   "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/events", r#"json:{"events": []}"#,
                                                                                        "401  401  401  401  401  409  401  -    401  401  401  401"),
    ("GET",    "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files?path=/etc/passwd", "",
                                                                                        "401  401  401  401  401  409  401  -    401  401  401  401"),
    ("PUT",    "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files?path=/etc/passwd&offset=0", "raw:x",
                                                                                        "401  401  401  401  401  409  401  -    401  401  401  401"),
    ("DELETE", "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files?path=/etc/passwd", "",
                                                                                        "401  401  401  401  401  409  401  -    401  401  401  401"),
    ("GET",    "/api/v1/workers/{worker}/attempts/{job}/{index}/{attempt}/files/status?path=/etc/passwd", "",
                                                                                        "401  401  401  401  401  409  401  -    401  401  401  401"),
    ("POST",   "/api/v1/workers/{worker}/release", "",                                  "401  401  401  401  401  200  401  -    401  401  401  401"),
];

/// The web UI's routes: a session cookie, never a bearer key.
#[rustfmt::skip]
pub const UI: &[Row] = &[
    //                                                                                   none   bad    unk    wrng   rvkd   wtok   othr   miss   view   memb   ownr   admn
    ("GET",    "/", "",                                                                 ">ui    >ui    >ui    >ui    >ui    >ui    >ui    -      >ui    >ui    >ui    >ui"),
    ("GET",    "/ui/login", "",                                                         "200    200    200    200    200    200    200    -      200    200    200    200"),
    // The key in the form: a session for a valid user key only.
    ("POST",   "/ui/login", "form:key={key}",                                           "401    401    401    401    401    401    >ui    -      >ui    >ui    >ui    >ui"),
    ("GET",    "/ui", "",                                                               ">login >login >login >login >login >login 200    -      200    200    200    200"),
    // The walk's server takes no workers: admins reach the 409.
    ("POST",   "/ui/nodes/drain", "form:node=nowhere&action=drain",                    ">login >login >login >login >login >login 403    -      403    403    403    409"),
    ("GET",    "/ui/nodes", "",                                                         ">login >login >login >login >login >login 403    -      403    403    403    200"),
    ("GET",    "/ui/projects/{project}", "",                                            ">login >login >login >login >login >login 403    404    200    200    200    200"),
    ("GET",    "/ui/projects/{project}/encode", "",                                     ">login >login >login >login >login >login 403    404    403    200    200    200"),
    // Not multipart: members get through to a 415.
    ("POST",   "/ui/projects/{project}/encode", "json:{}",                              ">login >login >login >login >login >login 403    404    403    415    415    415"),
    ("POST",   "/ui/projects/{project}/uploads?name=walk.mp4", "raw:this is no video",  ">login >login >login >login >login >login 403    404    403    422    422    422"),
    ("GET",    "/ui/projects/{project}/submit", "",                                     ">login >login >login >login >login >login 403    404    403    200    200    200"),
    // A spec that does not parse: members reach the refusal (on the page).
    ("POST",   "/ui/projects/{project}/submit", "form:spec=nope",                       ">login >login >login >login >login >login 403    404    403    422    422    422"),
    // An unknown user: owners reach the refusal (on the project page).
    ("POST",   "/ui/projects/{project}/members", "form:action=set&user=nobody-here&role=viewer", ">login >login >login >login >login >login 403    404    403    403    404    404"),
    ("POST",   "/ui/keys", "form:name=walk",                                           ">login >login >login >login >login >login 200    -      200    200    200    200"),
    ("POST",   "/ui/keys/{id}/revoke", "form:back=x",                                   ">login >login >login >login >login >login 404    404    404    404    404    >ui"),
    ("GET",    "/ui/jobs/{id}", "",                                                     ">login >login >login >login >login >login 403    404    200    200    200    200"),
    ("GET",    "/ui/jobs/{id}/state.json", "",                                          ">login >login >login >login >login >login 403    404    200    200    200    200"),
    ("GET",    "/ui/jobs/{id}/parts.json", "",                                          ">login >login >login >login >login >login 403    404    200    200    200    200"),
    // Resume of a job that is not suspended: members reach the 409.
    ("POST",   "/ui/jobs/{id}/control", "form:action=resume",                         ">login >login >login >login >login >login 403    404    403    409    409    409"),
    ("GET",    "/ui/jobs/{id}/events", "",                                              ">login >login >login >login >login >login 403    404    200    200    200    200"),
    ("GET",    "/ui/jobs/{id}/tasks/{index}/log", "",                                   ">login >login >login >login >login >login 403    404    200    200    200    200"),
    ("GET",    "/ui/jobs/{id}/tasks/{index}/logs", "",                                  ">login >login >login >login >login >login 403    404    200    200    200    200"),
    // Not an encode: members reach the refusal.
    ("POST",   "/ui/jobs/{id}/output/delete", "",                                       ">login >login >login >login >login >login 403    404    403    404    404    404"),
    ("POST",   "/ui/projects/{project}/uploads/{upload}/delete", "",                    ">login >login >login >login >login >login 403    404    403    404    404    404"),
    ("GET",    "/ui/jobs/{id}/output", "",                                              ">login >login >login >login >login >login 403    404    404    404    404    404"),
    ("GET",    "/ui/jobs/{id}/ladder/{*path}", "",                                      ">login >login >login >login >login >login 403    404    404    404    404    404"),
    ("POST",   "/ui/logout", "",                                                        ">login >login >login >login >login >login out    -      out    out    out    out"),
];
