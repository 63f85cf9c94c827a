//! A JSON-lines file (or standard input) as a source of one partition, whose offsets are line
//! numbers counted from 0.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader};
use std::path::Path;

use super::{Polled, Source};
use crate::batch::RecordBatch;
use crate::error::{Error, SourceError};
use crate::position::{Offset, PartitionId, PartitionState};

const READ_BUFFER_BYTES: usize = 1 << 20;

/// Reads lines as records of partition 0. `-` names standard input.
pub struct FileSource {
    name: String,
    reader: Box<dyn BufRead + Send>,
    next_offset: Offset,
    line: Vec<u8>,
    exhausted: bool,
}

impl FileSource {
    /// The partition a file is read as.
    pub const PARTITION: PartitionId = 0;

    /// Opens `path`, or standard input for `-`.
    pub fn open(path: &Path) -> Result<FileSource, SourceError> {
        let name = path.display().to_string();
        let reader: Box<dyn BufRead + Send> = if name == "-" {
            Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, io::stdin()))
        } else {
            let file = File::open(path).map_err(|source| Error::io(&name, source))?;
            Box::new(BufReader::with_capacity(READ_BUFFER_BYTES, file))
        };
        Ok(FileSource::from_reader(name, reader))
    }

    /// Reads lines from any buffered reader; `name` appears in errors.
    pub fn from_reader(name: impl Into<String>, reader: Box<dyn BufRead + Send>) -> FileSource {
        FileSource { name: name.into(), reader, next_offset: 0, line: Vec::new(), exhausted: false }
    }

    /// Reads the next line into `self.line`, without its line ending; false at the end.
    fn read_line(&mut self) -> Result<bool, SourceError> {
        self.line.clear();
        let read = self.reader.read_until(b'\n', &mut self.line).map_err(|source| Error::io(&self.name, source))?;
        if read == 0 {
            return Ok(false);
        }
        if self.line.last() == Some(&b'\n') {
            self.line.pop();
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
        }
        self.next_offset += 1;
        Ok(true)
    }
}

impl Source for FileSource {
    /// Skips the lines before where the partition resumes.
    fn resume(&mut self, from: &BTreeMap<PartitionId, Offset>) -> Result<(), SourceError> {
        let offset = from.get(&Self::PARTITION).copied().unwrap_or(0);
        while self.next_offset < offset && self.read_line()? {}
        Ok(())
    }

    fn positions(&self) -> Vec<(PartitionId, Offset)> {
        vec![(Self::PARTITION, self.next_offset)]
    }

    fn poll(&mut self, max_records: usize) -> Result<Polled, SourceError> {
        if self.exhausted {
            return Ok(Polled::Exhausted);
        }
        let mut batch = RecordBatch::new(Self::PARTITION, self.next_offset);
        while batch.len() < max_records {
            if !self.read_line()? {
                self.exhausted = true;
                batch.state = PartitionState::Finished;
                break;
            }
            batch.push(self.next_offset - 1, &self.line);
        }
        Ok(Polled::Records(batch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(source: &mut FileSource) -> Vec<(Offset, Vec<u8>)> {
        let mut records = Vec::new();
        while let Polled::Records(batch) = source.poll(2).unwrap() {
            records.extend(batch.iter().map(|r| (r.offset, r.payload.to_vec())));
            if batch.state == PartitionState::Finished {
                break;
            }
        }
        records
    }

    #[test]
    fn lines_become_records_numbered_from_zero() {
        let text = "a\r\n\nccc\nlast-without-newline";
        let mut source = FileSource::from_reader("test", Box::new(io::Cursor::new(text)));
        let records = read_all(&mut source);
        let expected: Vec<(Offset, Vec<u8>)> =
            vec![(0, b"a".to_vec()), (1, b"".to_vec()), (2, b"ccc".to_vec()), (3, b"last-without-newline".to_vec())];
        assert_eq!(records, expected);
        assert!(matches!(source.poll(2).unwrap(), Polled::Exhausted));
    }

    #[test]
    fn resumes_at_an_offset() {
        let mut source = FileSource::from_reader("test", Box::new(io::Cursor::new("a\nb\nc\n")));
        source.resume(&BTreeMap::from([(0, 2)])).unwrap();
        assert_eq!(source.positions(), vec![(0, 2)]);
        assert_eq!(read_all(&mut source), vec![(2, b"c".to_vec())]);
    }

    #[test]
    fn a_missing_file_is_a_clear_error() {
        let error = FileSource::open(Path::new("/nonexistent/events.jsonl")).err().unwrap();
        assert!(error.to_string().contains("/nonexistent/events.jsonl"), "{error}");
    }
}
