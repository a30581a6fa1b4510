//! API keys: `tsk_<prefix>_<secret>`, random alphanumerics from the OS.
//! The store keeps the public prefix (to find the row) and an argon2 hash of
//! the whole key; the key itself is shown once. Verifying argon2 costs tens
//! of milliseconds, so successful verifications are remembered for a minute,
//! keyed by a SHA-256 of the key (the key itself is never held).
//!
//! Guessing is throttled where it costs: a malformed key or an unknown
//! prefix is refused without argon2, and a known prefix with a wrong secret
//! may fail [`FAILURE_LIMIT`] times per [`FAILURE_WINDOW`]; after that its
//! checks are refused (429, `Retry-After`) until the window ends, without
//! running argon2. The price: someone who knows a key's prefix can make
//! that key's uncached checks wait for up to a minute.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_types::KeyId;

const KEY_TAG: &str = "tsk_";
const PREFIX_LEN: usize = 12;
const SECRET_LEN: usize = 32;
/// How long a successful verification is trusted without argon2.
pub(crate) const CACHE_TTL: Duration = Duration::from_secs(60);
/// Wrong secrets per key prefix per [`FAILURE_WINDOW`] before checks wait.
pub(crate) const FAILURE_LIMIT: u32 = 5;
pub(crate) const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Prefixes with recent failures remembered at most (the oldest go first).
const FAILURES_KEPT: usize = 10_000;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh key: `(full key, shown once; its prefix; argon2 PHC hash of the full key)`.
/// Store the prefix and the hash (`Accounts::create_key`), show the key.
pub fn new_api_key() -> (String, String, String) {
    let prefix = random_alphanumeric(PREFIX_LEN);
    let secret = random_alphanumeric(SECRET_LEN);
    let key = format!("{KEY_TAG}{prefix}_{secret}");
    let hash = hash_key(&key);
    (key, prefix, hash)
}

pub(crate) fn random_alphanumeric(n: usize) -> String {
    // 62 symbols: reject bytes >= 248 (4 * 62) so every symbol is equally likely.
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        OsRng.fill_bytes(&mut buf);
        for &b in buf.iter().filter(|&&b| b < 248) {
            if out.len() == n {
                break;
            }
            out.push(ALPHABET[(b % 62) as usize] as char);
        }
    }
    out
}

pub(crate) fn hash_key(key: &str) -> String {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(key.as_bytes(), &salt)
        .expect("argon2 with default parameters and a fresh salt cannot fail")
        .to_string()
}

/// The prefix of a well-formed key, `None` for anything else.
pub(crate) fn parse_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_TAG)?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (ok(prefix, PREFIX_LEN) && ok(secret, SECRET_LEN)).then_some(prefix)
}

/// Whether `key` matches the PHC `hash` (false for a malformed hash).
pub(crate) fn verify_key(key: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|h| {
            Argon2::default()
                .verify_password(key.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

type Fingerprint = [u8; 32];

fn fingerprint(key: &str) -> Fingerprint {
    Sha256::digest(key.as_bytes()).into()
}

/// Successful verifications of the last minute, and recent failures by
/// key prefix.
#[derive(Default)]
pub(crate) struct KeyCache {
    entries: Mutex<HashMap<Fingerprint, (KeyId, Instant)>>,
    /// Prefix -> (start of its failure window, failures in it).
    failures: Mutex<HashMap<String, (Instant, u32)>>,
}

impl KeyCache {
    /// Whether `key` was verified as key `id` less than a minute ago.
    pub(crate) fn hit(&self, key: &str, id: KeyId) -> bool {
        let fp = fingerprint(key);
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(&fp) {
            Some(&(cached, at)) if cached == id && at.elapsed() < CACHE_TTL => true,
            Some(_) => {
                entries.remove(&fp);
                false
            }
            None => false,
        }
    }

    pub(crate) fn insert(&self, key: &str, id: KeyId) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        // Keep the map bounded by the keys in use this minute.
        entries.retain(|_, (_, at)| at.elapsed() < CACHE_TTL);
        entries.insert(fingerprint(key), (id, Instant::now()));
    }

    /// `Err(wait)` while `prefix` has failed [`FAILURE_LIMIT`] times in its
    /// current window: checking it again must wait that long.
    pub(crate) fn may_check(&self, prefix: &str) -> Result<(), Duration> {
        let failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        match failures.get(prefix) {
            Some(&(since, n)) if n >= FAILURE_LIMIT && since.elapsed() < FAILURE_WINDOW => {
                Err(FAILURE_WINDOW - since.elapsed())
            }
            _ => Ok(()),
        }
    }

    /// Counts a wrong secret for `prefix`.
    pub(crate) fn failed(&self, prefix: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        if failures.len() >= FAILURES_KEPT {
            failures.retain(|_, (since, _)| since.elapsed() < FAILURE_WINDOW);
            if failures.len() >= FAILURES_KEPT {
                failures.clear();
            }
        }
        let entry = failures
            .entry(prefix.to_string())
            .or_insert((Instant::now(), 0));
        if entry.0.elapsed() >= FAILURE_WINDOW {
            *entry = (Instant::now(), 0);
        }
        entry.1 += 1;
    }

    /// Forgets every verification of key `id` (it was revoked).
    pub(crate) fn forget(&self, id: KeyId) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, (cached, _)| *cached != id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_have_the_documented_shape_and_verify_against_their_hash() {
        let (key, prefix, hash) = new_api_key();
        assert_eq!(key.len(), 4 + 12 + 1 + 32);
        assert_eq!(parse_key(&key), Some(prefix.as_str()));
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_key(&key, &hash));
        let mut wrong = key.clone();
        wrong.replace_range(key.len() - 1.., if key.ends_with('a') { "b" } else { "a" });
        assert!(!verify_key(&wrong, &hash));
        assert!(!verify_key(&key, "not a hash"));
    }

    #[test]
    fn malformed_keys_are_refused_before_any_lookup() {
        for bad in [
            "",
            "tsk_",
            "tsk_short_secret",
            "abc_123456789012_12345678901234567890123456789012",
            "tsk_12345678901!_12345678901234567890123456789012",
            "tsk_123456789012_1234567890123456789012345678901",
        ] {
            assert_eq!(parse_key(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_prefix_waits_after_too_many_wrong_secrets_and_others_do_not() {
        let cache = KeyCache::default();
        for _ in 0..FAILURE_LIMIT {
            assert_eq!(cache.may_check("aaaa"), Ok(()));
            cache.failed("aaaa");
        }
        let wait = cache.may_check("aaaa").unwrap_err();
        assert!(
            wait > Duration::from_secs(50) && wait <= FAILURE_WINDOW,
            "{wait:?}"
        );
        assert_eq!(cache.may_check("bbbb"), Ok(()));
    }

    #[test]
    fn the_cache_forgets_revoked_keys() {
        let cache = KeyCache::default();
        cache.insert("k", KeyId(1));
        assert!(cache.hit("k", KeyId(1)));
        assert!(!cache.hit("k", KeyId(2)), "a different row never matches");
        cache.insert("k", KeyId(1));
        cache.forget(KeyId(1));
        assert!(!cache.hit("k", KeyId(1)));
    }
}
