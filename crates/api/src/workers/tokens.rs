//! Worker tokens: `twk_<prefix>_<secret>`, separate from users' API keys.
//! They live in `<data dir>/worker-tokens`, one `NAME PREFIX ARGON2-HASH`
//! line each; removing a line revokes the token (the file is read on every
//! check, so a revocation counts at once; argon2 runs once per token and
//! process).

use crate::keys::{hash_key, random_alphanumeric, verify_key};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

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

/// Whether a bearer string looks like a worker token.
pub(crate) fn is_worker_token(key: &str) -> bool {
    key.starts_with(TAG)
}

/// Tokens verified by this process (sha-256 of the token).
#[derive(Default)]
pub(crate) struct Verified(Mutex<HashSet<[u8; 32]>>);

impl Verified {
    /// The name of a valid, unrevoked token; `None` otherwise.
    pub fn check(&self, data_dir: &Path, token: &str) -> Option<String> {
        let rest = token.strip_prefix(TAG)?;
        let (prefix, secret) = rest.split_once('_')?;
        if prefix.len() != PREFIX_LEN || secret.len() != SECRET_LEN {
            return None;
        }
        let text = read(&token_file(data_dir)).ok()?;
        let (name, hash) = text.lines().find_map(|l| {
            let mut f = l.split(' ');
            let (name, p, hash) = (f.next()?, f.next()?, f.next()?);
            (p == prefix).then(|| (name.to_string(), hash.to_string()))
        })?;
        let print: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let mut seen = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.contains(&print) || verify_key(token, &hash) {
            seen.insert(print);
            return Some(name);
        }
        None
    }
}
