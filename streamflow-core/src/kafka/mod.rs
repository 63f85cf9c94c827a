//! A Kafka client of the project's own, on the message codecs of the `kafka-protocol` crate:
//! what the pipeline and its commands need, and no more — the cluster's metadata, offsets,
//! topics, fetching partitions as a read-committed consumer, and producing.
//!
//! Why not a client crate: a consumer must pass transaction markers and skip aborted
//! transactions, which rskafka 0.6 cannot read at all (a fetch holding a marker fails); reading
//! record batches here also puts each record straight into a
//! [`RecordBatch`](crate::RecordBatch), decompressed into a buffer that is kept, without an
//! allocation per record.
//!
//! * [`connection`]: one broker connection, its requests matched to their answers.
//! * [`client`]: the cluster — brokers, leaders, offsets, topics — and [`PartitionProducer`].
//! * [`fetch`]: one fetch of one partition, read committed.
//! * [`records`]: the record batch format, read and written.
//! * [`lz4`]: LZ4 frames, decoded into the buffer a reader keeps.

pub mod client;
pub mod connection;
pub mod fetch;
pub mod lz4;
pub mod records;
pub mod security;

pub use crate::position::partition_of;
pub use client::{ClientConfig, KafkaClient, OffsetAt, PartitionInfo, PartitionProducer};
pub use connection::Connection;
pub use records::{Compression, Produced};
pub use security::{Mechanism, Sasl, Security};

use kafka_protocol::error::{ParseResponseErrorCode, ResponseError};

use crate::position::PartitionId;

/// Why a request to Kafka failed.
#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    /// The connection failed, was lost, or timed out.
    #[error("cannot reach the broker {broker}")]
    Io {
        /// `host:port`.
        broker: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The broker refused the request.
    #[error("{broker} refused {what}: {error:?}")]
    Refused {
        /// `host:port`.
        broker: String,
        /// What was asked.
        what: String,
        /// Its error code.
        error: ResponseError,
    },
    /// The broker does not serve a request in any version this client speaks.
    #[error("{broker} does not serve {what}")]
    Unsupported {
        /// `host:port`.
        broker: String,
        /// What was asked.
        what: String,
    },
    /// The broker's answer could not be read.
    #[error("cannot read the answer of {broker}: {problem}")]
    Protocol {
        /// `host:port`.
        broker: String,
        /// What was wrong.
        problem: String,
    },
    /// Record batches could not be read or written.
    #[error(transparent)]
    Records(#[from] records::RecordsError),
    /// There is no such topic.
    #[error("the topic {0} does not exist")]
    UnknownTopic(String),
    /// There is no such partition.
    #[error("partition {partition} of {topic} does not exist")]
    UnknownPartition {
        /// The topic.
        topic: String,
        /// The partition.
        partition: PartitionId,
    },
    /// The metadata names a leader the client knows no address of, or none.
    #[error("no address is known for the leader, node {0}")]
    NoLeader(i32),
    /// TLS or SASL failed: a certificate refused, a login refused, a mechanism not served.
    #[error("cannot connect securely to {broker}: {problem}")]
    Security {
        /// `host:port`.
        broker: String,
        /// What was wrong.
        problem: String,
    },
    /// The settings are wrong.
    #[error("{0}")]
    Config(String),
}

impl KafkaError {
    /// The error of a refused request, by its code.
    pub fn refused(broker: &str, what: &str, code: i16) -> KafkaError {
        KafkaError::Refused {
            broker: broker.to_owned(),
            what: what.to_owned(),
            error: code.err().unwrap_or(ResponseError::UnknownServerError),
        }
    }

    /// Whether retrying may succeed: the connection failed, a leader moved or is being elected,
    /// a broker is busy, or a topic's metadata is still spreading.
    pub fn is_transient(&self) -> bool {
        match self {
            KafkaError::Io { .. } | KafkaError::NoLeader(_) => true,
            KafkaError::Refused { error, .. } => error.is_retriable(),
            _ => false,
        }
    }

    /// Whether the connection cannot be used again.
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, KafkaError::Io { .. } | KafkaError::Protocol { .. })
    }
}
