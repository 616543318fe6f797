//! Console sessions and the sign-in throttle, both in memory (a restart of `ferry serve` signs
//! everyone out).
//!
//! A session is a random 256-bit token (the cookie) mapped to the SecretId that signed in, its
//! CSRF token and its expiry; it lasts [`SESSION_LIFETIME_SECONDS`] from sign-in. Failed sign-ins
//! are counted per client address: after [`MAX_FAILURES`] within [`FAILURE_WINDOW_SECONDS`] that
//! address is refused until the window has passed. Time is passed in, so the logic is testable.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use subtle::ConstantTimeEq as _;

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME_SECONDS: i64 = 8 * 3600;
/// Failed sign-ins allowed per client address within [`FAILURE_WINDOW_SECONDS`].
pub const MAX_FAILURES: u32 = 5;
/// The window failed sign-ins are counted in.
pub const FAILURE_WINDOW_SECONDS: i64 = 300;
/// At most this many sessions at once (the oldest goes first).
const MAX_SESSIONS: usize = 1000;
/// At most this many client addresses tracked for failures.
const MAX_TRACKED: usize = 10_000;

/// A signed-in session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub secret_id: String,
    /// The token every action must carry.
    pub csrf: String,
    pub expires_at: i64,
}

/// The sessions and the failed sign-ins.
#[derive(Debug, Default)]
pub struct Sessions {
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<IpAddr, (u32, i64)>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(poisoned) => poisoned.into_inner(),
    }
}

/// 32 random bytes as 64 hex digits.
pub fn random_token() -> Result<String, getrandom::Error> {
    let mut buf = [0u8; 32];
    getrandom::fill(&mut buf)?;
    Ok(hex::encode(buf))
}

impl Sessions {
    pub fn new() -> Sessions {
        Sessions::default()
    }

    /// Starts a session for `secret_id`; the cookie token and the session.
    pub fn create(&self, secret_id: &str, now: i64) -> Result<(String, Session), getrandom::Error> {
        let token = random_token()?;
        let session = Session {
            secret_id: secret_id.to_string(),
            csrf: random_token()?,
            expires_at: now + SESSION_LIFETIME_SECONDS,
        };
        let mut map = lock(&self.sessions);
        map.retain(|_, s| s.expires_at > now);
        if map.len() >= MAX_SESSIONS {
            if let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires_at)
                .map(|(k, _)| k.clone())
            {
                map.remove(&oldest);
            }
        }
        map.insert(token.clone(), session.clone());
        Ok((token, session))
    }

    /// The live session of a cookie token.
    pub fn get(&self, token: &str, now: i64) -> Option<Session> {
        let mut map = lock(&self.sessions);
        match map.get(token) {
            Some(s) if s.expires_at > now => Some(s.clone()),
            Some(_) => {
                map.remove(token);
                None
            }
            None => None,
        }
    }

    /// Ends a session.
    pub fn remove(&self, token: &str) {
        lock(&self.sessions).remove(token);
    }

    /// False while `ip` has used up its failed sign-ins.
    pub fn may_try(&self, ip: IpAddr, now: i64) -> bool {
        match lock(&self.failures).get(&ip) {
            Some((n, since)) => *n < MAX_FAILURES || now - since >= FAILURE_WINDOW_SECONDS,
            None => true,
        }
    }

    /// Counts a failed sign-in of `ip`.
    pub fn failed(&self, ip: IpAddr, now: i64) {
        let mut map = lock(&self.failures);
        if map.len() >= MAX_TRACKED {
            map.retain(|_, (_, since)| now - *since < FAILURE_WINDOW_SECONDS);
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now - entry.1 >= FAILURE_WINDOW_SECONDS {
            *entry = (0, now);
        }
        entry.0 += 1;
    }

    /// Forgets `ip`'s failures (after a successful sign-in).
    pub fn succeeded(&self, ip: IpAddr) {
        lock(&self.failures).remove(&ip);
    }
}

/// Compares two secrets in constant time.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::new();
        let (token, session) = s.create("AKID1", 1000).unwrap();
        assert_eq!(token.len(), 64);
        assert_ne!(token, session.csrf);
        assert_eq!(s.get(&token, 1000 + SESSION_LIFETIME_SECONDS - 1), Some(session));
        assert_eq!(s.get(&token, 1000 + SESSION_LIFETIME_SECONDS), None);
        let (token, _) = s.create("AKID1", 1000).unwrap();
        s.remove(&token);
        assert_eq!(s.get(&token, 1001), None);
        assert_eq!(s.get("nope", 1001), None);
    }

    #[test]
    fn failed_sign_ins_are_throttled_per_address() {
        let s = Sessions::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        for _ in 0..MAX_FAILURES {
            assert!(s.may_try(a, 10));
            s.failed(a, 10);
        }
        assert!(!s.may_try(a, 11));
        assert!(s.may_try(b, 11), "per address");
        assert!(s.may_try(a, 10 + FAILURE_WINDOW_SECONDS));
        s.failed(a, 20);
        s.succeeded(a);
        assert!(s.may_try(a, 21));
    }

    #[test]
    fn secrets_compare_exactly() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "abcd"));
    }
}
