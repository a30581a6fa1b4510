//! Worker tokens: `twk_<prefix>_<secret>`, separate from users' API keys.
//! They live in `<data dir>/worker-tokens`, one `NAME PREFIX ARGON2-HASH`
//! line each; removing a line revokes the token. The file is parsed again
//! whenever its identity, size or modification time changed (a `stat` per
//! check, so a revocation counts at once); argon2 runs once per token and
//! process, behind the same throttle and verifier as users' keys
//! ([`tessera_service::auth`]): 5 wrong secrets per prefix per minute,
//! then 429.

use super::Pool;
use crate::ApiError;
use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use tessera_service::auth::{hash_key, random_alphanumeric, Guard};
use tessera_service::{Secret, Service};

const TAG: &str = "twk_";
const PREFIX_LEN: usize = 12;
const SECRET_LEN: usize = 32;

/// The token file of a data directory.
pub fn token_file(data_dir: &Path) -> PathBuf {
    data_dir.join("worker-tokens")
}

/// Creates a token named `name` in the data directory's token file and
/// returns it (shown once; only its hash is kept).
pub fn create_worker_token(data_dir: &Path, name: &str) -> Result<String, String> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "worker token name {name:?} must be non-empty, without spaces"
        ));
    }
    let path = token_file(data_dir);
    let text = read(&path)?;
    if text.lines().any(|l| l.split(' ').next() == Some(name)) {
        return Err(format!(
            "a worker token named {name} exists; revoke it first or pick another name"
        ));
    }
    let prefix = random_alphanumeric(PREFIX_LEN);
    let token = format!("{TAG}{prefix}_{}", random_alphanumeric(SECRET_LEN));
    let line = format!("{name} {prefix} {}\n", hash_key(&token));
    write(&path, &format!("{text}{line}"))?;
    Ok(token)
}

/// Removes the token named `name`; false if there was none.
pub fn revoke_worker_token(data_dir: &Path, name: &str) -> Result<bool, String> {
    let path = token_file(data_dir);
    let text = read(&path)?;
    let kept: String = text
        .lines()
        .filter(|l| l.split(' ').next() != Some(name))
        .map(|l| format!("{l}\n"))
        .collect();
    if kept.len() == text.len() {
        return Ok(false);
    }
    write(&path, &kept)?;
    Ok(true)
}

fn read(path: &Path) -> Result<String, String> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

/// Writes the token file: the server's alone (mode 0600), replaced whole.
fn write(path: &Path, text: &str) -> Result<(), String> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .and_then(|mut f| {
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
            f.write_all(text.as_bytes())
        })
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What the worker routes use: the pool (when tasks run on workers), the
/// worker tokens verified so far, and the service (its data directory, its
/// closing, its upload limit and secret checks).
#[derive(Clone)]
pub(crate) struct Workers {
    pub(crate) pool: Option<Arc<Pool>>,
    pub(crate) tokens: Arc<Verified>,
    pub(crate) service: Service,
}

impl Workers {
    pub(super) fn pool(&self) -> Result<Arc<Pool>, ApiError> {
        self.pool.clone().ok_or_else(|| {
            ApiError::Conflict(
                "this server runs its tasks itself; start it with --workers (or --slots 0) to \
                 use workers"
                    .into(),
            )
        })
    }
}

/// Proof that the caller sent a valid worker token (its name inside).
pub(crate) struct WorkerToken(pub String);

impl<S> FromRequestParts<S> for WorkerToken
where
    S: Send + Sync,
    Workers: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let key = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|h| h.to_str().ok())
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| {
                ApiError::Unauthorized(
                    "no worker token; send one as `Authorization: Bearer twk_...`".into(),
                )
            })?
            .to_string();
        if !is_worker_token(&key) {
            return Err(ApiError::Unauthorized(
                "worker routes take a worker token (twk_..., from `tessera admin \
                 create-worker-token`), not an API key"
                    .into(),
            ));
        }
        Verified::check(&Workers::from_ref(state), key)
            .await
            .map(WorkerToken)
    }
}

/// Whether a bearer string looks like a worker token.
pub(crate) fn is_worker_token(key: &str) -> bool {
    key.starts_with(TAG)
}

/// One line of the token file: (name, prefix, argon2 hash).
type Line = (String, String, String);

/// What identifies one version of the token file: device, inode, size and
/// modification time (a rewrite renames a new file into place).
type Stamp = (u64, u64, u64, i64, i64);

/// The token file as last parsed, tokens verified by this process, and
/// wrong secrets by prefix.
#[derive(Default)]
pub(crate) struct Verified {
    file: Mutex<Option<(Stamp, Arc<Vec<Line>>)>>,
    /// sha-256 of a verified token -> the hash it matched.
    seen: Mutex<HashMap<[u8; 32], String>>,
    guard: Guard,
}

const UNKNOWN: &str = "unknown or revoked worker token; create one with `tessera admin \
                       create-worker-token` and pass it with --token";

impl Verified {
    /// The name of the valid, unrevoked worker token `token`: 401 for a
    /// malformed, unknown, revoked or wrong one, 429 once its prefix has
    /// had too many wrong secrets.
    pub(crate) async fn check(state: &Workers, token: String) -> Result<String, ApiError> {
        let unknown = || ApiError::Unauthorized(UNKNOWN.into());
        let rest = token.strip_prefix(TAG).ok_or_else(unknown)?;
        let (prefix, secret) = rest.split_once('_').ok_or_else(unknown)?;
        if prefix.len() != PREFIX_LEN || secret.len() != SECRET_LEN {
            return Err(unknown());
        }
        let prefix = prefix.to_string();
        let this = state.tokens.clone();
        let path = token_file(state.service.data_dir());
        let lines = tokio::task::spawn_blocking(move || this.lines(&path)).await??;
        let (name, hash) = lines
            .iter()
            .find(|(_, p, _)| *p == prefix)
            .map(|(name, _, hash)| (name.clone(), hash.clone()))
            .ok_or_else(unknown)?;
        let print: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let verified = &state.tokens;
        if verified.seen().get(&print) == Some(&hash) {
            return Ok(name);
        }
        let right = state
            .service
            .check_secret(&verified.guard, Secret::WorkerToken, &prefix, &token, &hash)
            .await?;
        if !right {
            return Err(unknown());
        }
        verified.seen().insert(print, hash);
        Ok(name)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<[u8; 32], String>> {
        self.seen.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The token file's lines, parsed again only if the file changed.
    fn lines(&self, path: &Path) -> Result<Arc<Vec<Line>>, ApiError> {
        let stamp = match std::fs::metadata(path) {
            Ok(m) => (m.dev(), m.ino(), m.size(), m.mtime(), m.mtime_nsec()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => (0, 0, 0, 0, 0),
            Err(e) => {
                return Err(ApiError::internal(format!(
                    "cannot read {}: {e}",
                    path.display()
                )))
            }
        };
        let mut file = self.file.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((at, lines)) = file.as_ref() {
            if *at == stamp {
                return Ok(lines.clone());
            }
        }
        let text = read(path).map_err(ApiError::internal)?;
        let lines: Arc<Vec<Line>> = Arc::new(
            text.lines()
                .filter_map(|l| {
                    let mut f = l.split(' ');
                    let line = (f.next()?, f.next()?, f.next()?);
                    Some((line.0.into(), line.1.into(), line.2.into()))
                })
                .collect(),
        );
        *file = Some((stamp, lines.clone()));
        Ok(lines)
    }
}
