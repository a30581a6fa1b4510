//! Authentication, the same for every API: an API key (`tsk_...`) names a
//! user. Keys are looked up by their public prefix, checked with argon2
//! (`verify.rs`: bounded threads, a throttle per prefix) and remembered for
//! a minute (`keys.rs`); a key's use is recorded at most once a minute.

pub(crate) mod keys;
pub(crate) mod verify;

pub use keys::{hash_key, new_api_key, parse_key, random_alphanumeric};
pub use verify::{Guard, FAILURE_LIMIT, FAILURE_WINDOW, VERIFY_QUEUE, VERIFY_THREADS};

pub(crate) use keys::new_key_parts;

use crate::access::Caller;
use crate::{now_ms, Secret, Service, ServiceError};
use tessera_store::{KeyRecord, UserRecord};
use tessera_types::UserId;

/// How often a key's `last_used_at` is written, at most.
const TOUCH_EVERY_MS: u64 = 60_000;

const BAD_KEY: &str =
    "unknown or wrong API key; send a valid key as `Authorization: Bearer tsk_...`";

fn unauthorized(why: &str) -> ServiceError {
    ServiceError::Unauthorized(why.to_string())
}

impl Service {
    /// The user behind the API key `key`: `Unauthorized` for a malformed,
    /// unknown, wrong or revoked key, `TooMany` once its prefix had too
    /// many wrong secrets, `Busy` when the verifier's queue is full.
    pub async fn authenticate(&self, key: &str) -> Result<Caller, ServiceError> {
        let prefix = parse_key(key)
            .ok_or_else(|| unauthorized(BAD_KEY))?
            .to_string();
        let (record, user): (KeyRecord, UserRecord) = self
            .db(move |db| {
                let record = db
                    .key_by_prefix(&prefix)?
                    .ok_or_else(|| unauthorized(BAD_KEY))?;
                let user = db.user(record.user)?.ok_or_else(|| unauthorized(BAD_KEY))?;
                Ok((record, user))
            })
            .await?;
        if !self.keys.hit(key, record.id) {
            let right = self
                .check_secret(
                    &self.keys.guard,
                    Secret::UserKey,
                    &record.prefix,
                    key,
                    &record.hash,
                )
                .await?;
            if !right {
                return Err(unauthorized(BAD_KEY));
            }
            if record.revoked_at.is_none() {
                self.keys.insert(key, record.id);
            }
        }
        if record.revoked_at.is_some() {
            self.keys.forget(record.id);
            return Err(unauthorized(
                "this API key has been revoked; create a new one (POST /api/v1/keys) with a valid key",
            ));
        }
        let now = now_ms();
        if record
            .last_used_at
            .is_none_or(|t| now.saturating_sub(t) >= TOUCH_EVERY_MS)
        {
            let id = record.id;
            let touched = self.db(move |db| Ok(db.touch_key(id, now)?)).await;
            if let Err(e) = touched {
                eprintln!(
                    "tessera-service: could not record the use of key {}: {e}",
                    id.0
                );
            }
        }
        Ok(Caller::new(user))
    }

    /// The caller of a session that `user` started with the key whose
    /// prefix is `key_prefix` (a browser session, a token derived from a
    /// key): `None` once that key is revoked or no longer the user's.
    pub async fn session_caller(
        &self,
        user: UserId,
        key_prefix: String,
    ) -> Result<Option<Caller>, ServiceError> {
        self.db(move |db| {
            let key = db.key_by_prefix(&key_prefix)?;
            let valid = key.is_some_and(|k| k.revoked_at.is_none() && k.user == user);
            Ok(if valid { db.user(user)? } else { None })
        })
        .await
        .map(|user| user.map(Caller::new))
    }

    /// Whether `secret` (of kind `kind`, with public prefix `prefix`)
    /// matches the argon2 `hash`, checked behind `guard` (the throttle of
    /// its kind of secret) on the verifier's threads. For secrets the
    /// service does not keep itself (workers' tokens).
    pub async fn check_secret(
        &self,
        guard: &Guard,
        kind: Secret,
        prefix: &str,
        secret: &str,
        hash: &str,
    ) -> Result<bool, ServiceError> {
        guard
            .check(&self.verifier, kind, prefix, secret, hash)
            .await
    }
}
