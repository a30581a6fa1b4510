//! `godfile`: the job's own folder (`GODOCKER_PWD`, Tessera's job folder),
//! listed and read without following any link (a job writes what it likes
//! there), and `god.log` / `god.err`: its first task's output.

use crate::reply::{Refusal, Reply};
use crate::users::caller;
use crate::Gd;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use std::io::Read;
use std::path::PathBuf;
use tessera_service::{AsViewer, JobAccess, Stream};
use tessera_types::{Grant, Reach};

/// The largest file `godfile download` gets.
pub const MAX_DOWNLOAD: u64 = 64 << 20;
/// Entries a listing shows, at most.
const MAX_ENTRIES: usize = 10_000;
/// The exact type godocker-cli takes for a folder's listing.
const LISTING: &str = "application/json; charset=UTF-8";

pub(crate) async fn root(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Reply {
    serve(gd, headers, id, String::new()).await
}

pub(crate) async fn path(
    State(gd): State<Gd>,
    headers: HeaderMap,
    Path((id, path)): Path<(String, String)>,
) -> Reply {
    serve(gd, headers, id, path).await
}

async fn serve(gd: Gd, headers: HeaderMap, id: String, path: String) -> Reply {
    let caller = caller(&gd, &headers).await?;
    let job = gd.service.job::<AsViewer>(&caller, &id).await?;
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
    if parts.len() > 64
        || parts
            .iter()
            .any(|p| *p == "." || *p == ".." || p.contains('\0'))
    {
        return Err(Refusal::bad(format!(
            "{path:?} is not a path inside job {id}'s folder; give one without . or .."
        )));
    }
    let dir = gd.service.data_dir().join("jobs").join(&id);
    let target: PathBuf = parts.iter().fold(dir.clone(), |p, s| p.join(s));
    let reach = Reach::new(vec![Grant::read(&dir).folder()]);
    let shown = path.clone();
    let read = tokio::task::spawn_blocking(move || read(&reach, &target))
        .await
        .map_err(|e| Refusal::from(tessera_service::ServiceError::internal(e)))?;
    match read {
        Ok(Found::Listing(entries)) => Ok((
            [(header::CONTENT_TYPE, LISTING)],
            json!(entries).to_string(),
        )
            .into_response()),
        Ok(Found::File(bytes)) => Ok(file(bytes)),
        Err(Missing::NotFound) if gd.service.archived_at(&job).await.is_some() => {
            Err(Refusal::bad(format!(
                "job {id} was archived: its files were removed from disk (its record stays: \
                 godjob show {id})"
            )))
        }
        Err(Missing::NotFound) if shown == "god.log" || shown == "god.err" => {
            log(&gd, &job, &shown).await
        }
        Err(Missing::NotFound) => Err(Refusal::not_found(format!(
            "job {id}'s folder has no {shown:?}"
        ))),
        Err(Missing::Refused(why)) => Err(Refusal::bad(why)),
    }
}

fn file(bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response()
}

/// `god.log` (stdout) or `god.err` (stderr) of the job's first task.
async fn log(gd: &Gd, job: &JobAccess<AsViewer>, name: &str) -> Reply {
    let stream = if name == "god.err" {
        Stream::Stderr
    } else {
        Stream::Stdout
    };
    Ok(file(gd.service.log(job, 0, None, stream).await?))
}

enum Found {
    Listing(Vec<serde_json::Value>),
    File(Vec<u8>),
}

enum Missing {
    NotFound,
    Refused(String),
}

fn read(reach: &Reach, target: &std::path::Path) -> Result<Found, Missing> {
    let refused = |e: tessera_confine::ConfineError| {
        if e.is_not_found() {
            Missing::NotFound
        } else {
            Missing::Refused(format!("cannot read it: {e}"))
        }
    };
    match tessera_confine::open(reach, target) {
        Ok(mut f) => {
            let mut bytes = Vec::new();
            let _ = (&mut f).take(MAX_DOWNLOAD + 1).read_to_end(&mut bytes);
            if bytes.len() as u64 > MAX_DOWNLOAD {
                return Err(Missing::Refused(format!(
                    "the file is larger than {MAX_DOWNLOAD} bytes; have the job write it to a \
                     project volume and read it there"
                )));
            }
            Ok(Found::File(bytes))
        }
        Err(e) if e.is_not_found() => Err(Missing::NotFound),
        Err(_) => {
            let dir = tessera_confine::open_dir(reach, target).map_err(refused)?;
            list(&dir)
        }
    }
}

/// The entries of an open folder: name, `file` or `dir`, size (links and
/// other kinds are shown as `other`, never followed).
fn list(dir: &std::fs::File) -> Result<Found, Missing> {
    use std::os::fd::AsRawFd;
    let proc = format!("/proc/self/fd/{}", dir.as_raw_fd());
    let entries = std::fs::read_dir(proc).map_err(|e| Missing::Refused(e.to_string()))?;
    let mut out = Vec::new();
    for entry in entries.flatten().take(MAX_ENTRIES) {
        let Ok(meta) = entry.metadata() else { continue };
        let kind = if meta.is_dir() {
            "dir"
        } else if meta.is_file() {
            "file"
        } else {
            "other"
        };
        out.push(json!({
            "name": entry.file_name().to_string_lossy(),
            "type": kind,
            "size": meta.len(),
        }));
    }
    out.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(Found::Listing(out))
}
