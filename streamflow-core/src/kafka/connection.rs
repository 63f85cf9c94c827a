//! One connection to one broker: requests framed and matched to their answers, the versions of
//! each request agreed with the broker when connecting.
//!
//! The client asks for versions before the protocol's "flexible" ones (tagged fields): they
//! carry all it needs, every broker since Kafka 2.x serves them, and a broker that sends a
//! tagged field its version does not define (tansu does) cannot break them.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use super::KafkaError;

/// The largest answer read: a fetch of many partitions at their most, with room to spare.
const MAX_ANSWER_BYTES: usize = 256 << 20;

/// A connection, ready for requests.
pub struct Connection {
    stream: BufStream<TcpStream>,
    /// `host:port`, for messages.
    broker: String,
    correlation: i32,
    /// Per API key, the versions the broker serves.
    versions: HashMap<i16, (i16, i16)>,
    client_id: StrBytes,
    request_timeout: Duration,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection").field("broker", &self.broker).finish()
    }
}

impl Connection {
    /// Connects to `broker` (`host:port`) and learns the versions it serves.
    pub async fn open(
        broker: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
    ) -> Result<Connection, KafkaError> {
        let io = |source| KafkaError::Io { broker: broker.to_owned(), source };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(broker))
            .await
            .map_err(|_| io(std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out")))?
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let mut connection = Connection {
            stream: BufStream::new(stream),
            broker: broker.to_owned(),
            correlation: 0,
            versions: HashMap::new(),
            client_id: StrBytes::from_string(client_id.to_owned()),
            request_timeout,
        };
        // Version 0 is the one every broker answers, whatever it serves.
        let versions: ApiVersionsResponse = connection.send(&ApiVersionsRequest::default(), 0).await?;
        if versions.error_code != 0 {
            return Err(connection.refused("ApiVersions", versions.error_code));
        }
        connection.versions =
            versions.api_keys.iter().map(|api| (api.api_key, (api.min_version, api.max_version))).collect();
        Ok(connection)
    }

    /// The broker, `host:port`.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The highest version of `R` in `ours` that the broker serves.
    pub fn version<R: Request>(&self, ours: RangeInclusive<i16>) -> Result<i16, KafkaError> {
        let (min, max) = self.versions.get(&R::KEY).copied().unwrap_or((-1, -1));
        let best = (*ours.end()).min(max);
        if best < *ours.start().max(&min) {
            return Err(KafkaError::Unsupported {
                broker: self.broker.clone(),
                what: format!("API {} in versions {ours:?} (it serves {min}..={max})", R::KEY),
            });
        }
        Ok(best)
    }

    /// Sends `request` as `version` and waits for its answer.
    pub async fn send<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, KafkaError> {
        let timeout = self.request_timeout;
        match tokio::time::timeout(timeout, self.exchange(request, version)).await {
            Ok(answer) => answer,
            Err(_) => Err(KafkaError::Io {
                broker: self.broker.clone(),
                source: std::io::Error::new(std::io::ErrorKind::TimedOut, format!("no answer within {timeout:?}")),
            }),
        }
    }

    async fn exchange<R: Request>(&mut self, request: &R, version: i16) -> Result<R::Response, KafkaError> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation)
            .with_client_id(Some(self.client_id.clone()));
        let mut frame = BytesMut::with_capacity(256);
        frame.put_i32(0); // the size, filled in below
        header.encode(&mut frame, R::header_version(version)).map_err(|e| self.protocol(e))?;
        request.encode(&mut frame, version).map_err(|e| self.protocol(e))?;
        let size = i32::try_from(frame.len() - 4).map_err(|_| self.protocol("request too large"))?;
        frame[..4].copy_from_slice(&size.to_be_bytes());

        let io = |source| KafkaError::Io { broker: self.broker.clone(), source };
        self.stream.write_all(&frame).await.map_err(io)?;
        self.stream.flush().await.map_err(io)?;
        let size = self.stream.read_i32().await.map_err(io)?;
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| s <= MAX_ANSWER_BYTES)
            .ok_or_else(|| self.protocol(format!("an answer of {size} bytes")))?;
        let mut answer = BytesMut::zeroed(size);
        self.stream.read_exact(&mut answer).await.map_err(io)?;
        let mut answer: Bytes = answer.freeze();
        let header =
            ResponseHeader::decode(&mut answer, R::Response::header_version(version)).map_err(|e| self.protocol(e))?;
        if header.correlation_id != self.correlation {
            return Err(self.protocol(format!("answer {} to request {}", header.correlation_id, self.correlation)));
        }
        R::Response::decode(&mut answer, version).map_err(|e| self.protocol(e))
    }

    /// The broker's refusal of a request, by its error code.
    pub fn refused(&self, what: &str, code: i16) -> KafkaError {
        KafkaError::refused(&self.broker, what, code)
    }

    fn protocol(&self, problem: impl std::fmt::Display) -> KafkaError {
        KafkaError::Protocol { broker: self.broker.clone(), problem: problem.to_string() }
    }
}
