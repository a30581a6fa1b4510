//! Browser sessions: an opaque random id in an HttpOnly, SameSite=Strict
//! cookie, mapped in memory to the user and the prefix of the key they
//! logged in with. Sessions last 12 hours, end at logout, end when that key
//! is revoked (checked on every request), and do not survive a restart.

use argon2::password_hash::rand_core::{OsRng, RngCore};
use axum::http::{header, HeaderMap};
use std::collections::HashMap;
use std::fmt::Write;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};
use tessera_types::UserId;

/// The cookie's name.
pub(crate) const COOKIE: &str = "tessera_session";
/// How long a session lasts after login.
pub(crate) const TTL: Duration = Duration::from_secs(12 * 3600);
/// Live sessions one user may hold; a login past it ends their oldest.
/// (Sessions live in memory: without a cap, a user logging in in a loop
/// would grow the map for 12 hours.)
pub(crate) const SESSIONS_PER_USER: usize = 16;

/// What a session id stands for.
#[derive(Clone, Debug)]
pub(crate) struct Session {
    pub user: UserId,
    /// The public prefix of the key used to log in.
    pub key_prefix: String,
    expires: Instant,
}

/// The id of the request's session (set by the UI's gate).
#[derive(Clone, Debug)]
pub(crate) struct SessionId(pub String);

/// Live sessions by id.
#[derive(Default)]
pub(crate) struct Sessions {
    map: Mutex<HashMap<String, Session>>,
}

impl Sessions {
    /// Starts a session; returns its id (for the cookie).
    pub(crate) fn create(&self, user: UserId, key_prefix: String) -> String {
        let id = new_id();
        let now = Instant::now();
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.retain(|_, s| s.expires > now);
        let mine: Vec<(&String, Instant)> = map
            .iter()
            .filter(|(_, s)| s.user == user)
            .map(|(id, s)| (id, s.expires))
            .collect();
        if mine.len() >= SESSIONS_PER_USER {
            if let Some((oldest, _)) = mine.iter().min_by_key(|(_, expires)| *expires) {
                let oldest = (*oldest).clone();
                map.remove(&oldest);
            }
        }
        let session = Session {
            user,
            key_prefix,
            expires: now + TTL,
        };
        map.insert(id.clone(), session);
        id
    }

    /// The live session `id`, if any (an expired one is dropped).
    pub(crate) fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    pub(crate) fn remove(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        map.remove(id);
    }
}

/// 32 random bytes from the OS, as hex.
fn new_id() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// The session id the request's cookies carry, if any.
pub(crate) fn from_cookies(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_string())
}

/// The `Set-Cookie` value that starts session `id`.
pub(crate) fn set_cookie(id: &str) -> String {
    format!(
        "{COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        TTL.as_secs()
    )
}

/// The `Set-Cookie` value that ends the session in the browser.
pub(crate) fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn ids_are_random_hex_and_sessions_end_at_remove() {
        let sessions = Sessions::default();
        let a = sessions.create(UserId(1), "p".into());
        let b = sessions.create(UserId(1), "p".into());
        assert_eq!(a.len(), 64);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
        assert_eq!(sessions.get(&a).unwrap().user, UserId(1));
        sessions.remove(&a);
        assert!(sessions.get(&a).is_none());
        assert!(sessions.get("nope").is_none());
    }

    #[test]
    fn a_user_holds_at_most_sixteen_sessions_and_the_oldest_goes_first() {
        let sessions = Sessions::default();
        let first = sessions.create(UserId(1), "p".into());
        let other = sessions.create(UserId(2), "q".into());
        let rest: Vec<String> = (1..SESSIONS_PER_USER)
            .map(|_| sessions.create(UserId(1), "p".into()))
            .collect();
        assert!(sessions.get(&first).is_some(), "16 are allowed");
        let newest = sessions.create(UserId(1), "p".into());
        assert!(sessions.get(&first).is_none(), "the 17th ended the oldest");
        assert!(rest
            .iter()
            .chain([&newest, &other])
            .all(|id| sessions.get(id).is_some()));
    }

    #[test]
    fn the_session_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.append(
            header::COOKIE,
            HeaderValue::from_static("a=1; tessera_session=abc; b=2"),
        );
        assert_eq!(from_cookies(&h).as_deref(), Some("abc"));
        assert_eq!(from_cookies(&HeaderMap::new()), None);
        let c = set_cookie("abc");
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict"));
    }
}
