//! API keys: `tsk_<prefix>_<secret>`, random alphanumerics from the OS.
//! The store keeps the public prefix (to find the row) and an argon2 hash of
//! the whole key; the key itself is shown once. Verifying argon2 costs tens
//! of milliseconds, so successful verifications are remembered for a minute,
//! keyed by a SHA-256 of the key (the key itself is never held).
//!
//! Guessing is throttled where it costs: a malformed key or an unknown
//! prefix is refused without argon2, and a known prefix with a wrong secret
//! may fail [`FAILURE_LIMIT`](super::verify::FAILURE_LIMIT) times per
//! window; after that its checks are refused (`TooMany`, with the seconds to
//! wait) until the window ends, without running argon2 (see [`super::verify`]). The price:
//! someone who knows a key's prefix can make that key's uncached checks
//! wait for up to a minute.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};
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
/// The most argon2 memory a stored hash may ask for (KiB): ours use the
/// default 19 MiB; a hash asking more is treated as not matching rather
/// than allowed to take the verifier's memory.
const MAX_M_COST_KIB: u32 = 64 << 10;
const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A fresh key: `(full key, shown once; its prefix; argon2 PHC hash of the full key)`.
/// Store the prefix and the hash (`Accounts::create_key`), show the key.
pub fn new_api_key() -> (String, String, String) {
    let (key, prefix) = new_key_parts();
    let hash = hash_key(&key);
    (key, prefix, hash)
}

/// A fresh key and its prefix, not hashed yet (the server hashes on its
/// verifier threads, [`super::verify::Verifier::hash`]).
pub(crate) fn new_key_parts() -> (String, String) {
    let prefix = random_alphanumeric(PREFIX_LEN);
    let secret = random_alphanumeric(SECRET_LEN);
    (format!("{KEY_TAG}{prefix}_{secret}"), prefix)
}

pub fn random_alphanumeric(n: usize) -> String {
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

pub fn hash_key(key: &str) -> String {
    hash_key_with(key, &mut Vec::new())
}

/// The argon2id PHC hash (default parameters, fresh salt) of `key`, with
/// argon2's memory in `blocks` (grown as needed, kept by the caller).
pub(crate) fn hash_key_with(key: &str, blocks: &mut Vec<Block>) -> String {
    const INFALLIBLE: &str = "argon2 with default parameters and a fresh salt cannot fail";
    let salt = SaltString::generate(&mut OsRng);
    let params = Params::default();
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), Block::default());
    }
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_bytes)
        .expect(INFALLIBLE);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let (algorithm, version) = (Algorithm::Argon2id, Version::V0x13);
    Argon2::new(algorithm, version, params.clone())
        .hash_password_into_with_memory(key.as_bytes(), salt_bytes, &mut out, &mut blocks[..])
        .expect(INFALLIBLE);
    PasswordHash {
        algorithm: algorithm.ident(),
        version: Some(version.into()),
        params: ParamsString::try_from(&params).expect(INFALLIBLE),
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).expect(INFALLIBLE)),
    }
    .to_string()
}

/// The prefix of a well-formed key, `None` for anything else.
pub fn parse_key(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(KEY_TAG)?;
    let (prefix, secret) = rest.split_once('_')?;
    let ok = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_alphanumeric());
    (ok(prefix, PREFIX_LEN) && ok(secret, SECRET_LEN)).then_some(prefix)
}

/// Whether `key` matches the PHC `hash` (false for a malformed hash).
#[cfg(test)]
pub(crate) fn verify_key(key: &str, hash: &str) -> bool {
    verify_key_with(key, hash, &mut Vec::new())
}

/// [`verify_key`] with argon2's memory in `blocks`, grown as needed and
/// kept by the caller for the next check (see [`super::verify`]).
pub(crate) fn verify_key_with(key: &str, hash: &str, blocks: &mut Vec<Block>) -> bool {
    let Ok(phc) = PasswordHash::new(hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (Algorithm::try_from(phc.algorithm), Params::try_from(&phc))
    else {
        return false;
    };
    let version = match phc.version.map(Version::try_from).transpose() {
        Ok(v) => v.unwrap_or_default(),
        Err(_) => return false,
    };
    let (Some(salt), Some(expected)) = (phc.salt, phc.hash) else {
        return false;
    };
    let mut salt_buf = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_buf) else {
        return false;
    };
    if params.m_cost() > MAX_M_COST_KIB {
        return false;
    }
    if blocks.len() < params.block_count() {
        blocks.resize(params.block_count(), Block::default());
    }
    let mut out = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    if argon2
        .hash_password_into_with_memory(key.as_bytes(), salt, &mut out, &mut blocks[..])
        .is_err()
    {
        return false;
    }
    // Output's equality is constant-time.
    Output::new(&out).is_ok_and(|out| out == expected)
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
    /// Wrong secrets by key prefix, and the checks running now.
    pub(crate) guard: super::verify::Guard,
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
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        // The same as the argon2 crate's own hasher makes, and verifies.
        use argon2::password_hash::{PasswordHasher, PasswordVerifier};
        let theirs = Argon2::default()
            .hash_password(b"x", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        assert_eq!(theirs[..30], hash[..30]);
        let parsed = PasswordHash::new(&hash).unwrap();
        assert!(Argon2::default()
            .verify_password(key.as_bytes(), &parsed)
            .is_ok());
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
