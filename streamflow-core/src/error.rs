//! The library's one error type, [`Error`], with a [`ErrorKind`] an embedder can match on to
//! decide what to do: wait and retry, fix something, or accept a loss.

use std::fmt;

/// What kind of failure an [`Error`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A service could not be reached, or answered that it is busy or restarting: it may pass.
    Unreachable,
    /// A service refused what was asked (credentials, permissions, another writer holds the
    /// pipeline): it will not pass by retrying.
    Rejected,
    /// Data the pipeline needs is gone (records deleted by retention, an input shorter than what
    /// was committed from it): going on means accepting the loss.
    DataLost,
    /// A setting is wrong, or differs from what the stored results were computed with.
    Configuration,
    /// Anything else: a bug, or a worker that stopped abnormally.
    Failed,
}

impl ErrorKind {
    /// Whether retrying may succeed.
    pub fn is_transient(self) -> bool {
        self == ErrorKind::Unreachable
    }
}

/// Why a part of a pipeline could not go on.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl Error {
    /// An error of `kind` with a message.
    pub fn of(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error { kind, message: message.into(), source: None }
    }

    /// A failure with a message only ([`ErrorKind::Failed`]).
    pub fn new(message: impl Into<String>) -> Error {
        Error::of(ErrorKind::Failed, message)
    }

    /// A wrong setting ([`ErrorKind::Configuration`]).
    pub fn configuration(message: impl Into<String>) -> Error {
        Error::of(ErrorKind::Configuration, message)
    }

    /// A refusal ([`ErrorKind::Rejected`]).
    pub fn rejected(message: impl Into<String>) -> Error {
        Error::of(ErrorKind::Rejected, message)
    }

    /// Data that is gone ([`ErrorKind::DataLost`]).
    pub fn data_lost(message: impl Into<String>) -> Error {
        Error::of(ErrorKind::DataLost, message)
    }

    /// A service out of reach ([`ErrorKind::Unreachable`]).
    pub fn unreachable(message: impl Into<String>) -> Error {
        Error::of(ErrorKind::Unreachable, message)
    }

    /// Reading or writing `what` failed.
    pub fn io(what: impl fmt::Display, source: std::io::Error) -> Error {
        Error::new(format!("cannot read or write {what}")).caused_by(source)
    }

    /// This error, with its cause.
    pub fn caused_by(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Error {
        self.source = Some(Box::new(source));
        self
    }

    /// What kind of failure it is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message, without the cause.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// Errors of sources: the library's [`Error`].
pub type SourceError = Error;
/// Errors of sinks: the library's [`Error`].
pub type SinkError = Error;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_kept_and_causes_chained() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = Error::io("events.jsonl", io);
        assert_eq!(error.kind(), ErrorKind::Failed);
        assert_eq!(error.to_string(), "cannot read or write events.jsonl");
        assert_eq!(std::error::Error::source(&error).unwrap().to_string(), "no such file");
        assert!(Error::unreachable("down").kind().is_transient());
        assert!(!Error::rejected("no").kind().is_transient());
    }
}
