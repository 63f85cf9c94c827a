//! A short-lived cache of answers: the same request within `ttl` gets the same bytes without a
//! query. The tables change only when the pipeline commits (every 500 ms by default), so a TTL
//! no longer than the commit interval serves nothing older than the freshness the pipeline
//! promises anyway; dashboards polling the same panels then cost one query per interval.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// Answers kept at most; past it the expired ones go, then all.
const MAX_ENTRIES: usize = 4_096;

/// See the module documentation. A zero `ttl` caches nothing.
#[derive(Debug)]
pub struct AnswerCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, Bytes)>>,
}

impl AnswerCache {
    /// A cache keeping answers for `ttl`.
    pub fn new(ttl: Duration) -> AnswerCache {
        AnswerCache { ttl, entries: Mutex::default() }
    }

    /// The answer to `key`, if one younger than the TTL is kept.
    pub fn get(&self, key: &str) -> Option<Bytes> {
        if self.ttl.is_zero() {
            return None;
        }
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(key).filter(|(at, _)| at.elapsed() < self.ttl).map(|(_, body)| body.clone())
    }

    /// Keeps the answer to `key`.
    pub fn put(&self, key: String, body: Bytes) {
        if self.ttl.is_zero() {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| at.elapsed() < self.ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key, (Instant::now(), body));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_expire_and_zero_keeps_nothing() {
        let cache = AnswerCache::new(Duration::from_millis(50));
        cache.put("a".into(), Bytes::from_static(b"1"));
        assert_eq!(cache.get("a"), Some(Bytes::from_static(b"1")));
        assert_eq!(cache.get("b"), None);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(cache.get("a"), None);
        let none = AnswerCache::new(Duration::ZERO);
        none.put("a".into(), Bytes::from_static(b"1"));
        assert_eq!(none.get("a"), None);
    }
}
