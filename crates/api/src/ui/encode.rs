//! The submit-an-encode page and its form's handler, and the download of
//! an encode's output through the session.
//!
//! The form works without JavaScript: it posts `multipart/form-data` with
//! the file (streamed to an upload as it arrives) or an earlier upload or a
//! volume's file, and the settings; the server creates the encode and
//! redirects (303) to the job's page. With JavaScript (`assets/encode.js`)
//! the file goes first, alone, with a progress bar, then the settings are
//! posted with `Accept: application/json` and the answer is
//! `{"job": id, "url": "/ui/jobs/<id>"}`.

use super::html::{escape, page};
use super::UiError;
use crate::auth::{AsMember, AsViewer, JobAccess, ProjectAccess};
use crate::form::{self, Form};
use crate::incoming::Incoming;
use crate::upload;
use crate::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde_json::json;
use std::fmt::Write;
use tessera_media::Codec;
use tessera_service::EncodeOptions;

const ENCODE_JS: &str = include_str!("../../assets/encode.js");

/// `n` bytes for people: `512 B`, `3.4 KB`, `12.3 MB`, `4.20 GB`.
pub(crate) fn size(n: u64) -> String {
    match n {
        0..=999 => format!("{n} B"),
        1_000..=999_999 => format!("{:.1} KB", n as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} MB", n as f64 / 1e6),
        _ => format!("{:.2} GB", n as f64 / 1e9),
    }
}

/// What the form shows again after a refusal.
#[derive(Default)]
struct Redo<'a> {
    error: Option<&'a str>,
    /// An upload made by the refused post: chosen in the list.
    upload: Option<&'a str>,
}

async fn render(
    s: &AppState,
    access: &ProjectAccess<AsMember>,
    redo: Redo<'_>,
) -> Result<String, ApiError> {
    let (project, user) = (access.project(), &access.caller().user().name);
    let id = project.id.0;
    let uploads = s.service.uploads(access).await?;
    let error = redo.error.map(escape).map_or(
        r#"<p class="error" id="encode-error" hidden></p>"#.to_string(),
        |e| format!(r#"<p class="error" id="encode-error">{e}</p>"#),
    );
    let mut earlier = String::new();
    if !uploads.is_empty() {
        earlier.push_str(r#"<label for="upload">or an earlier upload</label><select id="upload" name="upload"><option value="">—</option>"#);
        for u in &uploads {
            let selected = if redo.upload == Some(u.upload.as_str()) {
                " selected"
            } else {
                ""
            };
            let _ = write!(
                earlier,
                r#"<option value="{}"{selected}>{} ({})</option>"#,
                escape(&u.upload),
                escape(&u.name),
                size(u.bytes)
            );
        }
        earlier.push_str("</select>");
    }
    let mut volumes = String::new();
    let names = s.service.volume_names(access.caller());
    if !names.is_empty() {
        volumes.push_str(r#"<label for="volume">or a file in a volume of the server</label><span class="row"><select id="volume" name="volume"><option value="">—</option>"#);
        for v in &names {
            let _ = write!(volumes, r#"<option value="{0}">{0}</option>"#, escape(v));
        }
        volumes.push_str(r#"</select><input type="text" id="path" name="path" placeholder="shows/ep1.mkv"></span>"#);
    }
    // Each codec carries its CRF range: the page's script narrows the CRF
    // field to it (ffv1, lossless, takes none); the hint says it without.
    let codecs: String = Codec::ALL
        .iter()
        .map(|c| {
            let crf = c
                .crf_range()
                .map_or(String::new(), |(lo, hi)| format!("{lo}-{hi}"));
            format!(r#"<option value="{c}" data-crf="{crf}">{c}</option>"#)
        })
        .collect();
    let crf_hint: Vec<String> = Codec::ALL
        .iter()
        .map(|c| match c.crf_range() {
            Some((lo, hi)) => format!("{c} {lo} to {hi}"),
            None => format!("{c} none (lossless)"),
        })
        .collect();
    let crf_hint = crf_hint.join(" · ");
    let limit = s.service.max_upload_bytes();
    Ok(format!(
        r#"<h1>Encode a video · <a href="/ui/projects/{id}">{pname}</a></h1>
<form id="encode-form" class="card encode" method="post" action="/ui/projects/{id}/encode" enctype="multipart/form-data" data-upload="/ui/projects/{id}/uploads" data-limit="{limit}">
{error}
<h2>Source</h2>
<label for="file">Upload a video</label><input type="file" id="file" name="file" accept="video/*,.mkv,.mp4,.mov,.webm,.ts,.m2ts,.avi">
<p class="muted">At most {max}. The server reads the file to check that it is a video; its name does not matter.</p>
{earlier}{volumes}
<h2>Settings</h2>
<label for="codec">Codec</label><select id="codec" name="codec">{codecs}</select>
<label for="container">Container</label><select id="container" name="container"><option value="mp4">mp4</option><option value="mkv">mkv</option><option value="webm">webm</option></select>
<label for="crf">CRF (quality, lower is better; empty: the codec's default)</label><input type="number" id="crf" name="crf" min="0" max="63">
<p class="muted" id="crf-hint">{crf_hint}</p>
<label for="preset">Preset (empty: the codec's default)</label><input type="text" id="preset" name="preset" placeholder="medium">
<label for="chunk_seconds">Chunk length, seconds</label><input type="number" id="chunk_seconds" name="chunk_seconds" min="0.5" step="0.5" value="10">
<div id="upload-progress" hidden><progress id="upload-bar" max="100" value="0"></progress> <span id="upload-status"></span></div>
<p><button type="submit" id="encode">Encode</button></p>
</form>
<script>{ENCODE_JS}</script>"#,
        pname = escape(&project.name),
        max = size(limit),
    ))
    .map(|body| {
        let title = format!("Encode · {}", project.name);
        page(&title, Some(user), &body).0
    })
}

/// `GET /ui/projects/{project}/encode`.
pub(crate) async fn form(
    State(s): State<AppState>,
    access: Result<ProjectAccess<AsMember>, ApiError>,
) -> Result<Response, UiError> {
    let access = access?;
    let html = render(&s, &access, Redo::default()).await?;
    Ok(axum::response::Html(html).into_response())
}

fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"))
}

/// `POST /ui/projects/{project}/encode`: the form, as `multipart/form-data`.
pub(crate) async fn submit(
    State(s): State<AppState>,
    access: Result<ProjectAccess<AsMember>, ApiError>,
    req: Request,
) -> Result<Response, UiError> {
    let json = wants_json(req.headers());
    let access = access?;
    let mut made = None;
    let result = run(&s, &access, req, &mut made).await;
    match result {
        Ok(job) if json => {
            let url = format!("/ui/jobs/{job}");
            Ok((StatusCode::CREATED, Json(json!({"job": job, "url": url}))).into_response())
        }
        Ok(job) => Ok(Redirect::to(&format!("/ui/jobs/{job}")).into_response()),
        Err(e) if json => Ok(e.into_response()),
        Err(ApiError::Internal(detail)) => Err(ApiError::Internal(detail).into()),
        Err(e) => {
            let message = e.to_string();
            let redo = Redo {
                error: Some(&message),
                upload: made.as_deref(),
            };
            let html = render(&s, &access, redo).await?;
            Ok((e.status(), axum::response::Html(html)).into_response())
        }
    }
}

/// Reads the form, streams its file (if any) to a new upload (its id goes
/// to `made`) and submits the encode; the job's id.
async fn run(
    s: &AppState,
    project: &ProjectAccess<AsMember>,
    req: Request,
    made: &mut Option<String>,
) -> Result<i64, ApiError> {
    upload::check_declared(s, req.headers())?;
    if !form::is_multipart(req.headers()) {
        return Err(ApiError::UnsupportedMediaType(
            "the encode form must be sent as multipart/form-data".into(),
        ));
    }
    let mut form = Form::from_request(s, req).await?;
    let file_data = form.file_data();
    let mut options = EncodeOptions::default();
    while let Some(mut field) = form.next().await.map_err(|e| upload::with_limit(s, e))? {
        let name = field.name().unwrap_or("").to_string();
        if name == "file" {
            let file_name = field.file_name().unwrap_or("").to_string();
            if file_name.is_empty() {
                continue; // no file chosen: the browser sends an empty part
            }
            if made.is_some() {
                return Err(ApiError::Invalid(
                    "the form holds more than one file; send one video per encode".into(),
                ));
            }
            let part = Incoming::Part(Box::new(field), file_data.clone());
            let upload = upload::receive(s, project, Some(&file_name), part).await?;
            *made = Some(upload.item.upload);
            continue;
        }
        let value = form::text(&mut field).await?;
        let value = value.trim();
        let value = (!value.is_empty()).then(|| value.to_string());
        let number = |what: &str| ApiError::Invalid(format!("{what} must be a number"));
        match name.as_str() {
            "upload" => options.upload = value,
            "volume" => options.volume = value,
            "path" => options.path = value,
            "codec" => options.codec = value,
            "container" => options.container = value,
            "preset" => options.preset = value,
            "crf" => {
                options.crf = value
                    .map(|v| v.parse().map_err(|_| number("crf")))
                    .transpose()?
            }
            "chunk_seconds" => {
                options.chunk_seconds = value
                    .map(|v| v.parse().map_err(|_| number("chunk_seconds")))
                    .transpose()?
            }
            other => {
                return Err(ApiError::BadRequest(format!(
                    "unknown form field {other:?}"
                )))
            }
        }
    }
    if made.is_some() {
        options.upload.clone_from(made);
    }
    let job = s.service.encode(project, options).await?;
    Ok(job.id.0)
}

/// `GET /ui/jobs/{id}/output`: the output, with range requests.
pub(crate) async fn download(
    State(s): State<AppState>,
    access: Result<JobAccess<AsViewer>, ApiError>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    let out = s.service.output(&access?).await.map_err(ApiError::from)?;
    Ok(crate::range::serve_file(&out.path, out.content_type, &out.name, &headers).await?)
}

/// `GET /ui/jobs/{id}/ladder/{*path}`: a file of a ladder encode's
/// published folder, for the job page's player (the API's route, through
/// the session).
pub(crate) async fn ladder(
    State(s): State<AppState>,
    access: Result<JobAccess<AsViewer>, ApiError>,
    axum::extract::Path((_, path)): axum::extract::Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, UiError> {
    Ok(crate::handlers::ladder_response(&s, &access?, &path, &headers).await?)
}

/// Refuses a cross-site post: a browser sends `Origin` (or
/// `Sec-Fetch-Site`) with a form's or a script's POST, and it must name
/// this server. The session cookie is SameSite=Strict already; this is the
/// second lock.
pub(crate) async fn same_origin(req: Request, next: Next) -> Response {
    let headers = req.headers();
    let text = |name| headers.get(name).and_then(|v| v.to_str().ok());
    let cross_site = text("sec-fetch-site").is_some_and(|v| v == "cross-site");
    let foreign = match (text("origin"), text("host")) {
        (Some(origin), Some(host)) => {
            let authority = origin.split_once("://").map_or("", |(_, rest)| rest);
            !authority.eq_ignore_ascii_case(host)
        }
        (Some(_), None) => true,
        (None, _) => false,
    };
    if cross_site || foreign {
        return UiError(ApiError::Forbidden(
            "this form can only be sent from this server's own pages".into(),
        ))
        .into_response();
    }
    next.run(req).await
}

#[cfg(test)]
mod tests {
    use super::size;

    #[test]
    fn sizes_read_well() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(3_400), "3.4 KB");
        assert_eq!(size(12_345_678), "12.3 MB");
        assert_eq!(size(8 << 30), "8.59 GB");
    }
}
