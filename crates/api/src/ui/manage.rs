//! The project page's forms: API keys (create, shown once; revoke) for the
//! signed-in user, and members (add, change role, remove) for the
//! project's owners and admins. Same origin only; each goes through the
//! service as the REST API does, and a refusal is shown on the project
//! page with what was entered kept.

use super::html::{escape, page};
use super::pages::render_project;
use super::UiError;
use crate::auth::{AsOwner, AsViewer, Caller, ProjectAccess};
use crate::{ApiError, AppState};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use tessera_service::ServiceError;
use tessera_types::{KeyId, Role};

/// A form's refusal and what was entered, for the project page.
#[derive(Default)]
pub(crate) struct Said {
    pub error: Option<String>,
    pub user: String,
    pub role: String,
    pub key_name: String,
}

impl Said {
    pub(crate) fn error_html(&self) -> String {
        self.error.as_ref().map_or(String::new(), |e| {
            format!(r#"<p class="error" id="form-error">{}</p>"#, escape(e))
        })
    }
}

const ROLES: [&str; 3] = ["viewer", "member", "owner"];

fn role_select(name: &str, id: &str, chosen: &str) -> String {
    let options: String = ROLES
        .iter()
        .map(|r| {
            let sel = if *r == chosen { " selected" } else { "" };
            format!(r#"<option value="{r}"{sel}>{r}</option>"#)
        })
        .collect();
    format!(r#"<select name="{name}" id="{id}">{options}</select>"#)
}

/// Change a member's role, or remove them.
pub(crate) fn member_buttons(project: i64, user: &str, role: Role) -> String {
    let u = escape(user);
    format!(
        r#"<form class="row" method="post" action="/ui/projects/{project}/members"><input type="hidden" name="user" value="{u}">{select}<button type="submit" name="action" value="set">Set role</button><button type="submit" name="action" value="remove" onclick="return confirm('Remove {u} from the project?')">Remove</button></form>"#,
        select = role_select("role", &format!("role-{u}"), role.as_str()),
    )
}

pub(crate) fn add_member_form(project: i64, said: &Said) -> String {
    let role = if said.role.is_empty() {
        "member"
    } else {
        &said.role
    };
    format!(
        r#"<form class="card row" id="add-member" method="post" action="/ui/projects/{project}/members"><label for="member-user">Add a user</label><input type="text" id="member-user" name="user" value="{user}" required>{select}<button type="submit" name="action" value="set" id="do-add-member">Add</button></form>"#,
        user = escape(&said.user),
        select = role_select("role", "member-role", role),
    )
}

pub(crate) fn new_key_form(project: i64, said: &Said) -> String {
    format!(
        r#"<form class="card row" id="new-key" method="post" action="/ui/keys"><input type="hidden" name="back" value="{project}"><label for="key-name">New key named</label><input type="text" id="key-name" name="name" value="{name}" required placeholder="laptop"><button type="submit" id="do-new-key">Create key</button></form>"#,
        name = escape(&said.key_name),
    )
}

pub(crate) fn revoke_button(project: i64, key: i64, name: &str) -> String {
    format!(
        r#"active <form class="inline" method="post" action="/ui/keys/{key}/revoke"><input type="hidden" name="back" value="{project}"><button type="submit" id="revoke-{key}" onclick="return confirm('Revoke the key {name}? Whatever uses it is refused from then on.')">Revoke</button></form>"#,
        name = escape(name),
    )
}

#[derive(Deserialize)]
pub(crate) struct MemberForm {
    action: String,
    user: String,
    #[serde(default)]
    role: String,
}

pub(crate) async fn member(
    State(s): State<AppState>,
    viewer: Result<ProjectAccess<AsViewer>, ApiError>,
    owner: Result<ProjectAccess<AsOwner>, ApiError>,
    Form(f): Form<MemberForm>,
) -> Result<Response, UiError> {
    let viewer = viewer?;
    let owner = owner?;
    let user = f.user.trim().to_string();
    let done = match f.action.as_str() {
        "set" => match parse_role(&f.role) {
            Ok(role) => s
                .service
                .set_member(&owner, user, Some(role))
                .await
                .map(drop),
            Err(e) => Err(e),
        },
        "remove" => s.service.set_member(&owner, user, None).await.map(drop),
        other => Err(ServiceError::Invalid(format!(
            "{other:?} is not something this page does to a member"
        ))),
    };
    let back = format!("/ui/projects/{}", viewer.id().0);
    match done {
        Ok(()) => Ok(Redirect::to(&back).into_response()),
        Err(e) => {
            let e = ApiError::from(e);
            let said = Said {
                error: Some(e.to_string()),
                user: f.user,
                role: f.role,
                key_name: String::new(),
            };
            let page = render_project(&s, &viewer, true, &said).await?;
            Ok((e.status(), page).into_response())
        }
    }
}

fn parse_role(role: &str) -> Result<Role, ServiceError> {
    match role {
        "viewer" => Ok(Role::Viewer),
        "member" => Ok(Role::Member),
        "owner" => Ok(Role::Owner),
        other => Err(ServiceError::Invalid(format!(
            "{other:?} is not a role; choose viewer, member or owner"
        ))),
    }
}

#[derive(Deserialize)]
pub(crate) struct KeyForm {
    #[serde(default)]
    name: String,
    /// The project page to go back to.
    #[serde(default)]
    back: String,
}

/// Where to go back to: a project page by its id, else the dashboard
/// (never a URL the form names).
fn back_to(back: &str) -> String {
    match tessera_service::parse_id(back) {
        Some(id) => format!("/ui/projects/{id}"),
        None => "/ui".into(),
    }
}

pub(crate) async fn create_key(
    State(s): State<AppState>,
    caller: Caller,
    Form(f): Form<KeyForm>,
) -> Result<Response, UiError> {
    let back = back_to(&f.back);
    let key = s
        .service
        .create_key(&caller, f.name.trim().to_string())
        .await?;
    let body = format!(
        r#"<h1>Your new API key</h1>
<p class="card">Key <b>{name}</b>: copy it now, it is shown only this once (Tessera keeps only its hash).</p>
<pre class="log" id="new-secret">{secret}</pre>
<p>Use it with <code>tessera login --server URL --key …</code>, or as <code>Authorization: Bearer …</code>.</p>
<p><a href="{back}">Back</a></p>"#,
        name = escape(&key.key.name),
        secret = escape(&key.secret),
    );
    let headers = [(header::CACHE_CONTROL, "no-store")];
    Ok((
        headers,
        page("New API key", Some(&caller.user().name), &body),
    )
        .into_response())
}

pub(crate) async fn revoke_key(
    State(s): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Form(f): Form<KeyForm>,
) -> Result<Response, UiError> {
    let id = id
        .parse()
        .map_err(|_| ApiError::NotFound(format!("key {id} does not exist")))?;
    s.service.revoke_key(&caller, KeyId(id)).await?;
    Ok(Redirect::to(&back_to(&f.back)).into_response())
}

/// Delete an ended encode's output (and its work files), from its job page.
pub(crate) fn delete_output_button(job: i64) -> String {
    format!(
        r#" <form class="inline" method="post" action="/ui/jobs/{job}/output/delete"><button type="submit" id="delete-output" onclick="return confirm('Delete this output and the encode\'s work files? This cannot be undone.')">Delete output</button></form>"#
    )
}

pub(crate) async fn delete_output(
    State(s): State<AppState>,
    access: Result<crate::auth::JobAccess<crate::auth::AsMember>, ApiError>,
) -> Result<Response, UiError> {
    let access = access?;
    s.service.delete_output(&access).await?;
    Ok(Redirect::to(&format!("/ui/jobs/{}", access.id())).into_response())
}

/// The project's uploads, each with its delete button (members).
pub(crate) fn uploads_table(
    project: i64,
    uploads: &[tessera_service::UploadItem],
    may_act: bool,
) -> String {
    if uploads.is_empty() {
        return r#"<p class="muted" id="no-uploads">No uploads yet: the encode page takes one.</p>"#.into();
    }
    let rows: Vec<Vec<String>> = uploads
        .iter()
        .map(|u| {
            let mut row = vec![
                escape(&u.name),
                super::encode::size(u.bytes),
                u.duration.map_or(String::new(), |d| format!("{d:.1} s")),
                super::html::time(u.created),
            ];
            if may_act {
                row.push(format!(
                    r#"<form class="inline" method="post" action="/ui/projects/{project}/uploads/{id}/delete"><button type="submit" id="delete-upload-{id}" onclick="return confirm('Delete the upload {name}?')">Delete</button></form>"#,
                    id = escape(&u.upload),
                    name = escape(&u.name),
                ));
            }
            row
        })
        .collect();
    let head: &[&str] = if may_act {
        &["upload", "size", "length", "uploaded (UTC)", ""]
    } else {
        &["upload", "size", "length", "uploaded (UTC)"]
    };
    super::html::table(head, &rows)
}

pub(crate) async fn delete_upload(
    State(s): State<AppState>,
    access: Result<ProjectAccess<crate::auth::AsMember>, ApiError>,
    Path((_, upload)): Path<(String, String)>,
) -> Result<Response, UiError> {
    let access = access?;
    s.service.delete_upload(&access, &upload).await?;
    Ok(Redirect::to(&format!("/ui/projects/{}", access.id().0)).into_response())
}
