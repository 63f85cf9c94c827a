//! A seeded, deterministic generator of the original pipeline's events (spec §8), as JSON
//! payloads: the same configuration always yields the same bytes.
//!
//! Streams are spread over partitions the way a keyed Kafka producer spreads them (murmur2 of
//! the `stream_id`, Kafka's default partitioner), and each partition has its own random
//! sequence, so the output does not depend on how many workers read it.
//!
//! The kinds follow the original's weights. Who joins and leaves follows an [`Audience`]: by
//! default a realistic one — a join only by a user not watching the stream, a leave only by one
//! who is, each stream's popularity drifting so that its audience rises and falls — or the
//! original's independent draws, whose running audience grows without bound.

use std::collections::BTreeMap;
use std::io::Write;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};

use super::event::EventType;
use crate::batch::RecordBatch;
use crate::error::{Error, SourceError};
use crate::position::{owns, partition_of, Offset, PartitionId, PartitionState};
use crate::source::{Polled, Source};
use crate::time::EventTime;

/// The original's relative weights of the six kinds, in [`EventType::ALL`] order.
const WEIGHTS: [u32; 6] = [1, 1, 8, 7, 10, 2];

/// Who joins and leaves a stream.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Audience {
    /// Joins by users not watching, leaves by users watching; each stream's audience tends to
    /// a share of the users (its popularity) that drifts over time.
    #[default]
    Realistic,
    /// The original's: the user of a join or a leave drawn regardless of who watches.
    Independent,
}

/// What to generate.
#[derive(Clone, Debug, PartialEq)]
pub struct GeneratorConfig {
    /// The seed of every random choice.
    pub seed: u64,
    /// Streams `stream_1001`, `stream_1002`, …
    pub streams: u32,
    /// Users `user_1` … `user_N`.
    pub users: u32,
    /// Events in all (across partitions); `None` for an endless stream.
    pub events: Option<u64>,
    /// Events per second of event time, across partitions.
    pub event_rate: f64,
    /// The event time of the first events.
    pub start: EventTime,
    /// Partitions to spread the streams over, by murmur2 of their `stream_id` (a partition may
    /// get none).
    pub partitions: u32,
    /// The share of events whose `ts` lies an hour or more in the past: late under any lateness
    /// shorter than that.
    pub late_ratio: f64,
    /// The share of malformed payloads, of several kinds.
    pub bad_ratio: f64,
    /// Whether event time follows the wall clock: an event is released only once its `ts` has
    /// come, so `event_rate` is also the rate in events per second of real time.
    pub real_time: bool,
    /// Who joins and leaves.
    pub audience: Audience,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        GeneratorConfig {
            seed: 42,
            streams: 3,
            users: 500,
            events: None,
            event_rate: 20.0,
            start: EventTime::parse_rfc3339("2025-12-20T18:00:00Z").expect("a valid constant"),
            partitions: 1,
            late_ratio: 0.0,
            bad_ratio: 0.0,
            real_time: false,
            audience: Audience::Realistic,
        }
    }
}

impl GeneratorConfig {
    /// Checks the numbers fit together.
    pub fn validate(&self) -> Result<(), SourceError> {
        let problem = if self.streams == 0 || self.users == 0 {
            "streams and users must be at least 1"
        } else if self.partitions == 0 {
            "partitions must be at least 1"
        } else if !(self.event_rate > 0.0 && self.event_rate.is_finite()) {
            "the event rate must be a positive number"
        } else if !(0.0..=1.0).contains(&self.late_ratio) || !(0.0..=1.0).contains(&self.bad_ratio) {
            "late and bad ratios must be between 0 and 1"
        } else {
            return Ok(());
        };
        Err(Error::configuration(format!("generator: {problem}")))
    }

    /// The names of the streams of `partition`.
    fn streams_of(&self, partition: PartitionId) -> Vec<String> {
        (0..self.streams)
            .map(|i| format!("stream_{}", 1001 + i))
            .filter(|name| partition_of(name.as_bytes(), self.partitions) == partition)
            .collect()
    }

    /// The events partition `partition` produces: the total spread over the partitions that
    /// have streams, the first ones taking one more where it does not divide.
    fn events_of(&self, partition: PartitionId) -> Option<u64> {
        let with_streams: Vec<PartitionId> = (0..self.partitions).filter(|&p| !self.streams_of(p).is_empty()).collect();
        let rank = with_streams.iter().position(|&p| p == partition)?;
        let parts = with_streams.len() as u64;
        self.events.map(|n| n / parts + u64::from((rank as u64) < n % parts))
    }
}

/// Who watches one stream, for the realistic [`Audience`].
#[derive(Clone, Debug)]
struct Watchers {
    /// The users watching, in no order.
    watching: Vec<u32>,
    /// Each user's place in `watching`, or `u32::MAX`.
    place: Vec<u32>,
    /// The share of the users the audience tends to.
    popularity: f64,
}

impl Watchers {
    fn new(users: u32, popularity: f64) -> Watchers {
        Watchers { watching: Vec::new(), place: vec![u32::MAX; users as usize + 1], popularity }
    }

    fn join(&mut self, user: u32) {
        self.place[user as usize] = self.watching.len() as u32;
        self.watching.push(user);
    }

    fn leave(&mut self, user: u32) {
        let at = self.place[user as usize] as usize;
        self.watching.swap_remove(at);
        if let Some(&moved) = self.watching.get(at) {
            self.place[moved as usize] = at as u32;
        }
        self.place[user as usize] = u32::MAX;
    }

    fn is_watching(&self, user: u32) -> bool {
        self.place[user as usize] != u32::MAX
    }
}

/// The event sequence of one partition.
#[derive(Clone, Debug)]
pub struct Generator {
    rng: SmallRng,
    streams: Vec<String>,
    /// Per stream, who watches it (realistic audience only).
    watchers: Option<Vec<Watchers>>,
    users: u32,
    start: EventTime,
    step_micros: f64,
    produced: u64,
    limit: Option<u64>,
    late_ratio: f64,
    bad_ratio: f64,
}

impl Generator {
    /// The generator of `partition` under `config`.
    pub fn new(config: &GeneratorConfig, partition: PartitionId) -> Generator {
        let streams = config.streams_of(partition);
        let seed = config.seed ^ u64::from(partition).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let mut rng = SmallRng::seed_from_u64(seed);
        let watchers = (config.audience == Audience::Realistic)
            .then(|| streams.iter().map(|_| Watchers::new(config.users, rng.random_range(0.05..0.5))).collect());
        Generator {
            rng,
            streams,
            watchers,
            users: config.users,
            start: config.start,
            step_micros: f64::from(config.partitions) * 1e6 / config.event_rate,
            produced: 0,
            limit: Some(config.events_of(partition).unwrap_or(0)).filter(|_| config.events.is_some()),
            late_ratio: config.late_ratio,
            bad_ratio: config.bad_ratio,
        }
    }

    /// The event time of the next event (before any lateness is applied to it).
    pub fn next_time(&self) -> EventTime {
        self.start.plus_micros((self.produced as f64 * self.step_micros) as i64)
    }

    /// Whether the configured count is reached.
    pub fn is_done(&self) -> bool {
        self.limit.is_some_and(|limit| self.produced >= limit) || self.streams.is_empty()
    }

    /// Writes the next payload into `payload` (cleared first) and returns its record key: the
    /// stream it is about, or no key for a malformed record without a `stream_id` (so that it
    /// stays malformed in Kafka, where the key would stand in for it). `None` once the
    /// configured count is reached.
    pub fn next_into(&mut self, payload: &mut Vec<u8>) -> Option<Option<&str>> {
        if self.is_done() {
            return None;
        }
        payload.clear();
        let now = self.next_time();
        self.produced += 1;

        let stream = self.rng.random_range(0..self.streams.len());
        let ts = if self.rng.random_bool(self.late_ratio) {
            now.plus_micros(-3_600_000_000 - self.rng.random_range(0..600_000_000))
        } else {
            now
        };
        let keyed = if self.rng.random_bool(self.bad_ratio) {
            self.write_bad(payload, stream, ts)
        } else {
            self.write_good(payload, stream, ts);
            true
        };
        Some(keyed.then(|| self.streams[stream].as_str()))
    }

    fn pick_kind(&mut self) -> EventType {
        let mut ticket = self.rng.random_range(0..WEIGHTS.iter().sum::<u32>());
        for (kind, weight) in EventType::ALL.into_iter().zip(WEIGHTS) {
            if ticket < weight {
                return kind;
            }
            ticket -= weight;
        }
        unreachable!("the ticket is below the sum of the weights")
    }

    /// The kind of the next event of `stream` and its user. With a realistic audience a join or
    /// a leave is a change of who watches: which one is drawn so that the audience tends to the
    /// stream's popularity (joins at `p` per user not watching, leaves at `1 - p` per user
    /// watching), and chat messages and donations come from the watchers when there are any.
    fn pick_user(&mut self, stream: usize, kind: EventType) -> (EventType, u32) {
        let users = self.users;
        let Some(watchers) = self.watchers.as_mut().map(|w| &mut w[stream]) else {
            return (kind, self.rng.random_range(1..=users));
        };
        // The popularity drifts a little with every event of the stream.
        watchers.popularity = (watchers.popularity + self.rng.random_range(-0.002..0.002)).clamp(0.02, 0.6);
        match kind {
            EventType::ViewerJoin | EventType::ViewerLeave => {
                let inside = watchers.watching.len() as f64;
                let outside = f64::from(users) - inside;
                let p = watchers.popularity;
                let joins = p * outside;
                let join =
                    inside == 0.0 || (outside > 0.0 && self.rng.random_bool(joins / (joins + (1.0 - p) * inside)));
                if join {
                    let user = loop {
                        let user = self.rng.random_range(1..=users);
                        if !watchers.is_watching(user) {
                            break user;
                        }
                    };
                    watchers.join(user);
                    (EventType::ViewerJoin, user)
                } else {
                    let user = watchers.watching[self.rng.random_range(0..watchers.watching.len())];
                    watchers.leave(user);
                    (EventType::ViewerLeave, user)
                }
            }
            _ if !watchers.watching.is_empty() => {
                (kind, watchers.watching[self.rng.random_range(0..watchers.watching.len())])
            }
            _ => (kind, self.rng.random_range(1..=users)),
        }
    }

    fn write_good(&mut self, out: &mut Vec<u8>, stream: usize, ts: EventTime) {
        let kind = self.pick_kind();
        let (hi, lo): (u64, u64) = (self.rng.random(), self.rng.random());
        let (kind, user) = self.pick_user(stream, kind);
        // Writing into a Vec cannot fail.
        let _ = write!(
            out,
            r#"{{"event_id":"{:08x}-{:04x}-{:04x}-{:04x}-{:012x}","ts":"{ts}","event_type":"{kind}","stream_id":"{}","user_id":"user_{user}""#,
            hi >> 32,
            (hi >> 16) & 0xffff,
            hi & 0xffff,
            lo >> 48,
            lo & 0xffff_ffff_ffff,
            self.streams[stream],
        );
        match kind {
            EventType::ChatMessage => {
                let _ = write!(out, r#","message_len":{}"#, self.rng.random_range(1..=200));
            }
            EventType::Donation => {
                let cents: u32 = self.rng.random_range(100..=20_000);
                let _ = write!(out, r#","amount_usd":{}.{:02}"#, cents / 100, cents % 100);
            }
            _ => {}
        }
        out.push(b'}');
    }

    /// Writes a malformed payload; whether it names its stream.
    fn write_bad(&mut self, out: &mut Vec<u8>, stream: usize, ts: EventTime) -> bool {
        let stream = &self.streams[stream];
        let kind = self.rng.random_range(0..6);
        let _ = match kind {
            0 => write!(out, r#"{{"ts":"{ts}","event_type":"viewer_join","stream_id":"{stream}""#),
            1 => write!(out, r#"{{"ts":"{ts}","event_type":"raid","stream_id":"{stream}"}}"#),
            2 => write!(out, r#"{{"ts":"{ts}","event_type":"chat_message"}}"#),
            3 => write!(out, r#"{{"ts":"yesterday","event_type":"viewer_join","stream_id":"{stream}"}}"#),
            4 => write!(out, r#"{{"ts":"{ts}","event_type":"donation","stream_id":"{stream}","amount_usd":-5}}"#),
            _ => out.write_all(b"\xff\xfe not text"),
        };
        kind != 2
    }
}

/// The generator as a pipeline source: the partitions one worker owns.
#[derive(Clone, Debug)]
pub struct GeneratorSource {
    partitions: Vec<GeneratedPartition>,
    next: usize,
    payload: Vec<u8>,
    real_time: bool,
}

#[derive(Clone, Debug)]
struct GeneratedPartition {
    partition: PartitionId,
    offset: Offset,
    generator: Generator,
    paused: bool,
    /// Whether the batch saying the partition ended was returned.
    finished: bool,
}

impl GeneratorSource {
    /// The partitions of `config` that `worker` of `peers` owns.
    pub fn new(config: &GeneratorConfig, worker: usize, peers: usize) -> Result<GeneratorSource, SourceError> {
        config.validate()?;
        let partitions = (0..config.partitions)
            .filter(|&p| owns(p, worker, peers))
            .map(|partition| GeneratedPartition {
                partition,
                offset: 0,
                generator: Generator::new(config, partition),
                paused: false,
                finished: false,
            })
            .collect();
        Ok(GeneratorSource { partitions, next: 0, payload: Vec::new(), real_time: config.real_time })
    }
}

impl Source for GeneratorSource {
    /// The sequence is deterministic: the events before a partition's offset are generated again
    /// and dropped.
    fn resume(&mut self, from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        for part in &mut self.partitions {
            let offset = from.get(&part.partition).copied().unwrap_or(0);
            while part.offset < offset && part.generator.next_into(&mut self.payload).is_some() {
                part.offset += 1;
            }
        }
        Ok(())
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        self.partitions.iter().map(|p| (p.partition, p.offset)).collect()
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        // Take turns, so that every partition's event time advances together.
        let mut waiting = false;
        for _ in 0..self.partitions.len() {
            let turn = self.next;
            self.next = (self.next + 1) % self.partitions.len();
            let part = &mut self.partitions[turn];
            if part.finished {
                continue;
            }
            if part.paused {
                waiting = true;
                continue;
            }
            let due = if self.real_time { EventTime::now() } else { EventTime(i64::MAX) };
            if part.generator.next_time() > due {
                waiting = true;
                continue;
            }
            let mut batch = RecordBatch::new(part.partition, part.offset);
            while batch.len() < max_records
                && part.generator.next_time() <= due
                && part.generator.next_into(&mut self.payload).is_some()
            {
                batch.push(part.offset, &self.payload);
                part.offset += 1;
            }
            part.finished = part.generator.is_done();
            if part.finished {
                batch.state = PartitionState::Finished;
            }
            return Ok(Polled::Records(batch));
        }
        Ok(if waiting { Polled::Pending } else { Polled::Exhausted })
    }

    fn pause(&mut self, partition: PartitionId, paused: bool) {
        if let Some(part) = self.partitions.iter_mut().find(|p| p.partition == partition) {
            part.paused = paused;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::streams::decode::decode;

    fn sample(config: &GeneratorConfig, partition: PartitionId) -> Vec<Vec<u8>> {
        let mut generator = Generator::new(config, partition);
        let mut payload = Vec::new();
        let mut out = Vec::new();
        while generator.next_into(&mut payload).is_some() {
            out.push(payload.clone());
        }
        out
    }

    #[test]
    fn same_seed_same_bytes_other_seed_other_bytes() {
        let config = GeneratorConfig { events: Some(500), ..GeneratorConfig::default() };
        assert_eq!(sample(&config, 0), sample(&config, 0));
        assert_ne!(sample(&config, 0), sample(&GeneratorConfig { seed: 7, ..config }, 0));
    }

    #[test]
    fn good_events_decode_and_follow_the_mix() {
        let config = GeneratorConfig { events: Some(29_000), ..GeneratorConfig::default() };
        let mut counts = [0usize; 6];
        for payload in sample(&config, 0) {
            let event = decode(&payload).unwrap();
            counts[EventType::ALL.iter().position(|k| *k == event.kind).unwrap()] += 1;
            assert!(event.stream_id.starts_with("stream_100"));
        }
        for (count, weight) in counts.iter().zip(WEIGHTS) {
            let expected = weight as usize * 1000;
            assert!(count.abs_diff(expected) < expected / 5 + 50, "{counts:?}");
        }
    }

    #[test]
    fn bad_ratio_yields_refused_payloads() {
        let config = GeneratorConfig { events: Some(2_000), bad_ratio: 0.25, ..GeneratorConfig::default() };
        let refused = sample(&config, 0).iter().filter(|p| decode(p).is_err()).count();
        assert!((350..650).contains(&refused), "{refused}");
    }

    #[test]
    fn counts_split_over_partitions_exactly() {
        let config = GeneratorConfig { events: Some(1_001), partitions: 3, ..GeneratorConfig::default() };
        let total: usize = (0..3).map(|p| sample(&config, p).len()).sum();
        assert_eq!(total, 1_001);
        // More partitions than streams: some get none, the count is still exact.
        let config = GeneratorConfig { partitions: 8, ..config };
        assert_eq!((0..8).map(|p| sample(&config, p).len()).sum::<usize>(), 1_001);
        assert!(GeneratorConfig { partitions: 0, ..config }.validate().is_err());
    }

    /// The running audience of each stream over `payloads`, after each event.
    fn audiences(payloads: &[Vec<u8>]) -> BTreeMap<String, Vec<i64>> {
        let mut running: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for payload in payloads {
            let Ok(event) = decode(payload) else { continue };
            let series = running.entry(event.stream_id.to_string()).or_default();
            let last = series.last().copied().unwrap_or(0);
            series.push(match event.kind {
                EventType::ViewerJoin => last + 1,
                EventType::ViewerLeave => last - 1,
                _ => last,
            });
        }
        running
    }

    #[test]
    fn a_realistic_audience_stays_within_the_users_and_rises_and_falls() {
        let config = GeneratorConfig { events: Some(200_000), users: 500, ..GeneratorConfig::default() };
        for (stream, series) in audiences(&sample(&config, 0)) {
            let (low, high) = (*series.iter().min().unwrap(), *series.iter().max().unwrap());
            assert!(low >= 0 && high <= 500, "{stream}: from {low} to {high}");
            // It moves: the second half spans a range of its own, not a climb to the ceiling.
            let tail = &series[series.len() / 2..];
            let (tail_low, tail_high) = (*tail.iter().min().unwrap(), *tail.iter().max().unwrap());
            assert!(tail_high - tail_low >= 20 && tail_high < 500, "{stream}: {tail_low}..{tail_high}");
        }
        // The kinds still follow the original's mix.
        let joins_and_leaves = sample(&config, 0)
            .iter()
            .filter_map(|p| decode(p).ok())
            .filter(|e| matches!(e.kind, EventType::ViewerJoin | EventType::ViewerLeave))
            .count();
        assert!((joins_and_leaves as f64 / 200_000.0 - 15.0 / 29.0).abs() < 0.01, "{joins_and_leaves}");
    }

    #[test]
    fn the_original_independent_audience_grows_without_bound() {
        let config =
            GeneratorConfig { events: Some(200_000), audience: Audience::Independent, ..GeneratorConfig::default() };
        let grows = audiences(&sample(&config, 0)).values().any(|series| *series.last().unwrap() > 500);
        assert!(grows, "the original's draws keep more viewers than users");
    }

    #[test]
    fn streams_go_where_kafkas_default_partitioner_puts_their_key() {
        let config = GeneratorConfig { events: Some(3_000), streams: 10, partitions: 4, ..GeneratorConfig::default() };
        for partition in 0..4 {
            for payload in sample(&config, partition) {
                let event = decode(&payload).unwrap();
                assert_eq!(partition_of(event.stream_id.as_bytes(), 4), partition);
            }
        }
    }
}
