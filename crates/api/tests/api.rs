//! The API end to end: a real SQLite store in a temporary directory, a real
//! driver thread running `serve()` with the local executor, and the router
//! driven in-process (and once over a real listener).

#[path = "api/access.rs"]
mod access;
#[path = "api/after.rs"]
mod after;
#[path = "api/arrays.rs"]
mod arrays;
#[path = "api/control.rs"]
mod control;
#[path = "api/doors.rs"]
mod doors;
#[path = "api/doors_auth.rs"]
mod doors_auth;
#[path = "api/doors_specs.rs"]
mod doors_specs;
#[path = "api/encode_ui.rs"]
mod encode_ui;
#[path = "api/fanin.rs"]
mod fanin;
#[path = "api/harness.rs"]
mod harness;
#[path = "api/ladder.rs"]
mod ladder;
#[path = "api/live.rs"]
mod live;
#[path = "api/meta.rs"]
mod meta;
#[path = "api/nodes.rs"]
mod nodes;
#[path = "api/openapi.rs"]
mod openapi;
#[path = "api/pages.rs"]
mod pages;
#[path = "api/quota.rs"]
mod quota;
#[path = "api/slice.rs"]
mod slice;
#[path = "api/ui.rs"]
mod ui;
#[path = "api/uploads.rs"]
mod uploads;
#[path = "api/validation.rs"]
mod validation;
#[path = "api/walk.rs"]
mod walk;
#[path = "api/walk_table.rs"]
mod walk_table;
#[path = "api/walk_world.rs"]
mod walk_world;
#[path = "api/wire.rs"]
mod wire;
