//! One connection to one broker: over TLS and logged in with SASL when the [`Security`] asks,
//! requests framed and matched to their answers, the versions of each request agreed with the
//! broker when connecting.
//!
//! The client asks for versions before the protocol's "flexible" ones (tagged fields): they
//! carry all it needs, every broker since Kafka 2.x serves them, and a broker that sends a
//! tagged field its version does not define (tansu does) cannot break them.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader, SaslAuthenticateRequest,
    SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

use super::client::ClientConfig;
use super::security::{Exchange, Security};
use super::KafkaError;

/// A connection's bytes: plain TCP, or TLS over it.
trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}

impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// The largest answer read: a fetch of many partitions at their most, with room to spare.
const MAX_ANSWER_BYTES: usize = 256 << 20;

/// A connection, ready for requests.
pub struct Connection {
    stream: BufStream<Box<dyn Io>>,
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
    /// Connects to `broker` (`host:port`) as `config` says, learns the versions it serves, and
    /// logs in when the security settings ask.
    pub async fn open(broker: &str, config: &ClientConfig) -> Result<Connection, KafkaError> {
        let io = |source| KafkaError::Io { broker: broker.to_owned(), source };
        let stream = tokio::time::timeout(config.connect_timeout, TcpStream::connect(broker))
            .await
            .map_err(|_| io(std::io::Error::new(std::io::ErrorKind::TimedOut, "connection timed out")))?
            .map_err(io)?;
        stream.set_nodelay(true).map_err(io)?;
        let stream = secure(broker, stream, &config.security, config.connect_timeout).await?;
        let mut connection = Connection {
            stream: BufStream::new(stream),
            broker: broker.to_owned(),
            correlation: 0,
            versions: HashMap::new(),
            client_id: StrBytes::from_string(config.client_id.clone()),
            request_timeout: config.request_timeout,
        };
        // Version 0 is the one every broker answers, whatever it serves.
        let versions: ApiVersionsResponse = connection.send(&ApiVersionsRequest::default(), 0).await?;
        if versions.error_code != 0 {
            return Err(connection.refused("ApiVersions", versions.error_code));
        }
        connection.versions =
            versions.api_keys.iter().map(|api| (api.api_key, (api.min_version, api.max_version))).collect();
        if let Some(sasl) = &config.security.sasl {
            connection.log_in(sasl).await?;
        }
        Ok(connection)
    }

    /// SASL: the handshake naming the mechanism, then its messages until it is done.
    async fn log_in(&mut self, sasl: &super::security::Sasl) -> Result<(), KafkaError> {
        let version = self.version::<SaslHandshakeRequest>(1..=1)?;
        let handshake =
            SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str(sasl.mechanism.name()));
        let answer = self.send(&handshake, version).await?;
        if answer.error_code != 0 {
            let served: Vec<&str> = answer.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(KafkaError::Security {
                broker: self.broker.clone(),
                problem: format!("it does not take SASL {} (it takes {})", sasl.mechanism.name(), served.join(", ")),
            });
        }
        let version = self.version::<SaslAuthenticateRequest>(0..=1)?;
        let mut exchange = Exchange::new(sasl);
        let mut received: Option<Vec<u8>> = None;
        loop {
            let message = exchange.step(received.as_deref()).map_err(|problem| self.security(problem))?;
            let Some(message) = message else { return Ok(()) };
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(message));
            let answer = self.send(&request, version).await?;
            if answer.error_code != 0 {
                let why = answer.error_message.as_ref().map_or("no reason given", |m| m.as_str());
                return Err(self.security(format!("it refused the login of {:?}: {why}", sasl.username)));
            }
            received = Some(answer.auth_bytes.to_vec());
        }
    }

    fn security(&self, problem: impl Into<String>) -> KafkaError {
        KafkaError::Security { broker: self.broker.clone(), problem: problem.into() }
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

/// `stream`, over TLS when `security` asks: the broker's certificate checked as its options say,
/// for the host of `broker`.
async fn secure(
    broker: &str,
    stream: TcpStream,
    security: &Security,
    timeout: Duration,
) -> Result<Box<dyn Io>, KafkaError> {
    let Some(tls) = &security.tls else { return Ok(Box::new(stream)) };
    let refused = |problem: String| KafkaError::Security { broker: broker.to_owned(), problem };
    let config = tls.client_config().map_err(|e| refused(e.to_string()))?;
    let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host).trim_start_matches('[').trim_end_matches(']');
    let name = rustls::pki_types::ServerName::try_from(host.to_owned())
        .map_err(|_| refused(format!("{host:?} is not a host name TLS can check")))?;
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    match tokio::time::timeout(timeout, connector.connect(name, stream)).await {
        Ok(Ok(stream)) => Ok(Box::new(stream)),
        Ok(Err(error)) => match error.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>()) {
            Some(tls) => Err(refused(format!("the TLS handshake failed: {tls}"))),
            None => Err(KafkaError::Io { broker: broker.to_owned(), source: error }),
        },
        Err(_) => Err(KafkaError::Io {
            broker: broker.to_owned(),
            source: std::io::Error::new(std::io::ErrorKind::TimedOut, "the TLS handshake timed out"),
        }),
    }
}
