//! Tokens of `/api/1.0/authenticate`: random, kept in memory, expiring.
//!
//! Stored rather than signed: godocker-cli authenticates again before
//! every command (it never reuses a token across runs), so a token that a
//! restart forgets costs nothing, while a stored one needs no signing key
//! to keep secret and rotate, and each use re-checks that the key it came
//! from is not revoked. The store is bounded ([`MAX_SESSIONS`]): expired
//! tokens are dropped, then the oldest.

use crate::reply::Refusal;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_service::{Caller, Service};
use tessera_types::UserId;

/// How long a token is accepted.
pub const TOKEN_TTL: Duration = Duration::from_secs(24 * 3600);

/// Tokens held at most; past it the oldest are forgotten.
pub const MAX_SESSIONS: usize = 10_000;

const TOKEN_PREFIX: &str = "gdt_";

struct Session {
    user: UserId,
    key_prefix: String,
    expires: Instant,
}

/// The tokens handed out, by token.
#[derive(Default)]
pub struct Tokens {
    map: Mutex<HashMap<String, Session>>,
}

impl Tokens {
    /// A new token for `caller`, who authenticated with the key whose
    /// prefix is `key_prefix`.
    pub fn issue(&self, caller: &Caller, key_prefix: &str) -> String {
        let token = format!(
            "{TOKEN_PREFIX}{}",
            tessera_service::auth::random_alphanumeric(40)
        );
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.expires > now);
        while map.len() >= MAX_SESSIONS {
            let oldest = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(t, _)| t.clone());
            match oldest {
                Some(t) => map.remove(&t),
                None => break,
            };
        }
        map.insert(
            token.clone(),
            Session {
                user: caller.user().id,
                key_prefix: key_prefix.to_string(),
                expires: now + TOKEN_TTL,
            },
        );
        token
    }

    /// The caller behind `token`, if it is one of ours, unexpired, and its
    /// key still valid.
    pub(crate) async fn caller(&self, service: &Service, token: &str) -> Result<Caller, Refusal> {
        let again = "run godlogin again (with the key `tessera admin create-user` printed)";
        let found = {
            let map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
            map.get(token)
                .map(|s| (s.user, s.key_prefix.clone(), s.expires))
        };
        let Some((user, prefix, expires)) = found else {
            return Err(Refusal::unauthorized(format!(
                "unknown or expired token; {again}"
            )));
        };
        if expires <= Instant::now() {
            return Err(Refusal::unauthorized(format!("token expired; {again}")));
        }
        match service.session_caller(user, prefix).await? {
            Some(caller) => Ok(caller),
            None => Err(Refusal::unauthorized(format!(
                "the API key behind this token was revoked; {again}"
            ))),
        }
    }
}
