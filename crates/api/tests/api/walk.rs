//! THE ROUTE WALK: every route of the API and of the web UI, called by
//! every kind of caller (none, malformed, unknown, wrong, revoked, a worker
//! token, another project's user, a viewer, a member, an owner, an admin),
//! against the hand-written answers of `walk_table.rs`.
//!
//! The table is independent of the code it checks: the walk fails when the
//! router has a route the table lacks (a new route needs its expectations),
//! when the server answers a cell differently, and when the authorization a
//! row implies (the least caller it lets through) is not the one `ROUTES`
//! declares, which is what the OpenAPI document tells clients.

use crate::harness::Resp;
use crate::walk_table::{Row, API, UI};
use crate::walk_world::{form_encode, send, Cred, World};
use axum::http::{header, Method, StatusCode};
use std::collections::{BTreeMap, BTreeSet};
use tessera_api::{Auth, ROUTES};
use tessera_types::Role;

/// The table's columns, in order.
const COLUMNS: [&str; 12] = [
    "none", "bad", "unk", "wrng", "rvkd", "wtok", "othr", "miss", "view", "memb", "ownr", "admn",
];
/// The user columns from the least privileged up.
const RANKS: [&str; 5] = ["othr", "view", "memb", "ownr", "admn"];
/// The columns that carry no valid user credential.
const STRANGERS: [&str; 5] = ["none", "bad", "unk", "wrng", "rvkd"];

#[derive(Clone, Debug, PartialEq)]
enum Want {
    Status(u16),
    /// 303 to the login page, no cookie set.
    ToLogin,
    /// 303 to the dashboard.
    ToUi,
    /// 303 to the login page, clearing the session cookie.
    LoggedOut,
    NotApplicable,
}

impl Want {
    fn parse(cell: &str) -> Want {
        match cell {
            "-" => Want::NotApplicable,
            ">login" => Want::ToLogin,
            ">ui" => Want::ToUi,
            "out" => Want::LoggedOut,
            n => Want::Status(n.parse().unwrap_or_else(|_| panic!("bad cell {n:?}"))),
        }
    }

    /// Whether the caller was kept out (as opposed to let through to the
    /// route's own answer, a success or a refusal of the request itself).
    fn refused(&self) -> bool {
        matches!(self, Want::Status(401 | 403 | 429) | Want::ToLogin)
    }
}

fn cells(row: &Row) -> BTreeMap<&'static str, Want> {
    let cells: Vec<Want> = row.3.split_whitespace().map(Want::parse).collect();
    assert_eq!(
        cells.len(),
        COLUMNS.len(),
        "{} {}: {:?}",
        row.0,
        row.1,
        row.3
    );
    COLUMNS.into_iter().zip(cells).collect()
}

/// What the answer `r` was, in the table's terms, and whether it is `want`.
fn check(r: &Resp, want: &Want) -> Result<(), String> {
    let location = r
        .headers
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok());
    let cookie = r
        .headers
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok());
    let redirect = |to: &str| r.status == StatusCode::SEE_OTHER && location == Some(to);
    let ok = match want {
        Want::Status(n) => r.status.as_u16() == *n,
        Want::ToLogin => redirect("/ui/login") && cookie.is_none(),
        Want::ToUi => redirect("/ui"),
        Want::LoggedOut => redirect("/ui/login") && cookie.is_some_and(|c| c.contains("Max-Age=0")),
        Want::NotApplicable => true,
    };
    if ok {
        return Ok(());
    }
    let text = r.text();
    // An HTML page's error paragraph, or the start of the body.
    let mut text = match text.split_once(r#"<p class="error""#) {
        Some((_, rest)) => rest.split("</p>").next().unwrap_or("").to_string(),
        None => text,
    };
    text.truncate(160);
    Err(format!(
        "got {} (location {location:?}, set-cookie {:?}): {text}",
        r.status.as_u16(),
        cookie.is_some()
    ))
}

/// The authorization a row's cells imply: the least caller let through.
fn implied(method: &str, path: &str, c: &BTreeMap<&str, Want>) -> Auth {
    let through = |col: &str| !c[col].refused();
    if through("none") {
        for col in COLUMNS.iter().filter(|c| **c != "miss") {
            assert!(
                through(col),
                "{method} {path}: public, but {col} is kept out"
            );
        }
        return Auth::None;
    }
    for col in STRANGERS {
        assert!(!through(col), "{method} {path}: {col} gets through");
    }
    if through("wtok") {
        for col in RANKS {
            assert!(
                !through(col),
                "{method} {path}: a worker route lets {col} in"
            );
        }
        return Auth::Worker;
    }
    let least = RANKS
        .iter()
        .position(|col| through(col))
        .unwrap_or_else(|| panic!("{method} {path}: nobody gets through"));
    for higher in &RANKS[least..] {
        assert!(
            through(higher),
            "{method} {path}: {higher} is kept out, {} is not",
            RANKS[least]
        );
    }
    let role = [
        None,
        Some(Role::Viewer),
        Some(Role::Member),
        Some(Role::Owner),
        None,
    ][least];
    match (least, role) {
        (0, _) => Auth::User,
        (4, _) => Auth::Admin,
        (_, Some(role)) if path.contains("{project}") => Auth::Project(role),
        (_, Some(role)) if path.contains("/jobs/{id}") => Auth::Job(role),
        _ => panic!("{method} {path}: a role, but no project or job in the path"),
    }
}

/// The OpenAPI document's words for `auth`.
fn described(auth: Auth) -> String {
    match auth {
        Auth::None => "none".into(),
        Auth::User => "any user".into(),
        Auth::Admin => "admin".into(),
        Auth::Worker => "worker token (twk_...)".into(),
        Auth::Project(role) | Auth::Job(role) => format!("{role} or higher in the project"),
    }
}

fn route_of(row: &Row) -> (String, String) {
    let path = row.1.split('?').next().unwrap();
    (row.0.to_string(), path.to_string())
}

/// The paths the UI's router names (read from its source, so a route added
/// there is seen here).
fn ui_paths() -> BTreeSet<String> {
    let paths = routes_in(include_str!("../../src/ui/mod.rs"));
    assert!(paths.len() >= 10, "found only {paths:?} in ui/mod.rs");
    paths
}

/// Every `.route("PATH"` of `source`.
fn routes_in(source: &str) -> BTreeSet<String> {
    source
        .split(".route(")
        .skip(1)
        .filter_map(|rest| rest.trim_start().strip_prefix('"')?.split('"').next())
        .map(str::to_string)
        .collect()
}

#[tokio::test]
async fn every_route_answers_every_caller_as_the_hand_written_table_says() {
    let mut w = World::build().await;

    // Every route has a row, once.
    let table: Vec<(String, String)> = API.iter().map(route_of).collect();
    let listed: BTreeSet<_> = table.iter().cloned().collect();
    assert_eq!(listed.len(), table.len(), "a route has two rows");
    let routes: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p, _, _)| (m.to_string(), p.to_string()))
        .collect();
    let missing: Vec<_> = routes.difference(&listed).collect();
    assert!(
        missing.is_empty(),
        "routes without expectations in walk_table.rs: {missing:?}"
    );
    let extra: Vec<_> = listed.difference(&routes).collect();
    assert!(extra.is_empty(), "rows for routes ROUTES lacks: {extra:?}");
    // The UI: its router's paths, and the methods each answers (any other
    // method is a 405 before the session gate).
    let ui_rows: BTreeSet<(String, String)> = UI.iter().map(route_of).collect();
    assert_eq!(ui_rows.len(), UI.len(), "a UI route has two rows");
    let mut served = BTreeSet::new();
    for path in ui_paths() {
        for method in ["GET", "POST", "PUT", "PATCH", "DELETE"] {
            let r = send(&w.s, method, &w.url(&path, "none"), &Cred::Nothing, "").await;
            if r.status != StatusCode::METHOD_NOT_ALLOWED {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    assert_eq!(served, ui_rows, "the UI's routes and walk_table::UI differ");

    // Every cell.
    let doc =
        w.s.call(Method::GET, "/api/v1/openapi.json", None, None)
            .await
            .json();
    let mut wrong = Vec::new();
    let mut calls = 0;
    for (rows, is_api) in [(API, true), (UI, false)] {
        for row in rows {
            let (method, path, body, _) = *row;
            let cells = cells(row);
            // Every row, UI ones too, must rank its callers consistently.
            let auth = implied(method, path, &cells);
            if is_api {
                let (_, bare) = route_of(row);
                let declared = ROUTES
                    .iter()
                    .find(|r| r.0.as_str() == method && r.1 == bare)
                    .unwrap()
                    .3;
                if declared != auth {
                    wrong.push(format!(
                        "{method} {bare}: ROUTES says {declared:?}, the answers say {auth:?}"
                    ));
                }
                let op = &doc["paths"][&bare.replace("{*", "{")][method.to_lowercase()];
                if op["x-tessera-auth"] != described(auth) {
                    wrong.push(format!(
                        "{method} {bare}: the OpenAPI document says {}",
                        op["x-tessera-auth"]
                    ));
                }
            }
            for col in COLUMNS {
                let want = &cells[col];
                if *want == Want::NotApplicable {
                    continue;
                }
                let url = w.url(path, col);
                let (key, cred) = w.credential(col, path);
                let body = body
                    .replace("{caller}", col)
                    .replace("{key}", &form_encode(&key));
                let r = send(&w.s, method, &url, &cred, &body).await;
                calls += 1;
                if let Err(e) = check(&r, want) {
                    wrong.push(format!("{method} {url} as {col}: want {want:?}, {e}"));
                } else if is_api && matches!(want, Want::Status(401 | 403)) {
                    let code = if *want == Want::Status(401) {
                        "unauthorized"
                    } else {
                        "forbidden"
                    };
                    if r.code() != code {
                        wrong.push(format!("{method} {url} as {col}: error code {}", r.code()));
                    }
                }
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {calls} answers are not the table's:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    assert!(calls > 600, "only {calls} calls");
}
