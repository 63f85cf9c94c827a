//! A short-lived cache of answers: the same request within `ttl` gets the same bytes without a
//! query. The tables change only when the pipeline commits (every 500 ms by default), so a TTL
//! no longer than the commit interval serves nothing older than the freshness the pipeline
//! promises anyway; dashboards polling the same panels then cost one query per interval.
//!
//! The cache is bounded in bytes (a week of rows in one answer weighs megabytes), drops answers
//! when they expire, and computes an answer once however many requests miss it at the same
//! time: the others wait for that one. Failures are not kept.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

/// The bytes of answers kept at most, by default: 64 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 64 << 20;

/// See the module documentation. A zero `ttl` caches nothing.
#[derive(Clone)]
pub struct AnswerCache {
    answers: Option<moka::future::Cache<String, Bytes>>,
    stats: Arc<CacheStats>,
}

/// How the cache fares.
#[derive(Debug, Default)]
pub struct CacheStats {
    /// Answers served from the cache.
    pub hits: AtomicU64,
    /// Answers computed (once per key and expiry, however many requests waited for it).
    pub computed: AtomicU64,
}

impl AnswerCache {
    /// A cache keeping answers for `ttl`, at most `max_bytes` of them (keys and bodies).
    pub fn new(ttl: Duration, max_bytes: u64) -> AnswerCache {
        let answers = (!ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .time_to_live(ttl)
                .max_capacity(max_bytes)
                .weigher(|key: &String, body: &Bytes| u32::try_from(key.len() + body.len()).unwrap_or(u32::MAX))
                .build()
        });
        AnswerCache { answers, stats: Arc::default() }
    }

    /// The answer to `key`: kept, or computed by `answer` (once for all the requests that miss
    /// it together) and kept when it succeeds.
    pub async fn get_or_compute<E: Send + Sync + 'static>(
        &self,
        key: String,
        answer: impl Future<Output = Result<Bytes, E>>,
    ) -> Result<Bytes, Arc<E>> {
        let computed = async {
            self.stats.computed.fetch_add(1, Relaxed);
            answer.await
        };
        let Some(answers) = &self.answers else { return computed.await.map_err(Arc::new) };
        let mut fresh = false;
        let body = answers
            .try_get_with(key, async {
                fresh = true;
                computed.await
            })
            .await?;
        if !fresh {
            self.stats.hits.fetch_add(1, Relaxed);
        }
        Ok(body)
    }

    /// The bytes of the answers kept now.
    pub async fn bytes(&self) -> u64 {
        match &self.answers {
            Some(answers) => {
                answers.run_pending_tasks().await;
                answers.weighted_size()
            }
            None => 0,
        }
    }

    /// Hits and answers computed so far.
    pub fn stats(&self) -> &CacheStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(text: &'static str) -> Result<Bytes, ()> {
        Ok(Bytes::from_static(text.as_bytes()))
    }

    #[tokio::test]
    async fn answers_expire_and_zero_keeps_nothing() {
        let cache = AnswerCache::new(Duration::from_millis(50), DEFAULT_MAX_BYTES);
        assert_eq!(cache.get_or_compute("a".into(), answer("1")).await.unwrap(), "1");
        assert_eq!(cache.get_or_compute("a".into(), answer("2")).await.unwrap(), "1");
        tokio::time::sleep(Duration::from_millis(80)).await;
        assert_eq!(cache.get_or_compute("a".into(), answer("3")).await.unwrap(), "3");
        let none = AnswerCache::new(Duration::ZERO, DEFAULT_MAX_BYTES);
        none.get_or_compute("a".into(), answer("1")).await.unwrap();
        assert_eq!(none.get_or_compute("a".into(), answer("2")).await.unwrap(), "2");
    }

    #[tokio::test]
    async fn failures_are_not_kept() {
        let cache = AnswerCache::new(Duration::from_secs(60), DEFAULT_MAX_BYTES);
        assert!(cache.get_or_compute("a".into(), async { Err::<Bytes, _>("down") }).await.is_err());
        assert_eq!(cache.get_or_compute("a".into(), answer("up")).await.unwrap(), "up");
    }

    #[tokio::test]
    async fn the_cache_is_bounded_in_bytes() {
        let cache = AnswerCache::new(Duration::from_secs(60), 1 << 20);
        let body = Bytes::from(vec![b'x'; 100_000]);
        for i in 0..100 {
            let body = body.clone();
            cache.get_or_compute(format!("key {i}"), async move { Ok::<_, ()>(body) }).await.unwrap();
        }
        let kept = cache.bytes().await;
        assert!(kept <= 1 << 20, "{kept} bytes kept");
        assert!(kept > 0);
    }

    #[tokio::test]
    async fn requests_that_miss_together_compute_once() {
        let cache = AnswerCache::new(Duration::from_secs(60), DEFAULT_MAX_BYTES);
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok::<_, ()>(Bytes::from_static(b"answer"))
        };
        let mut requests = tokio::task::JoinSet::new();
        for _ in 0..32 {
            let cache = cache.clone();
            requests.spawn(async move { cache.get_or_compute("same".into(), slow()).await });
        }
        while let Some(answer) = requests.join_next().await {
            assert_eq!(answer.unwrap().unwrap(), "answer");
        }
        assert_eq!(cache.stats().computed.load(Relaxed), 1);
        assert_eq!(cache.stats().hits.load(Relaxed), 31);
    }
}
